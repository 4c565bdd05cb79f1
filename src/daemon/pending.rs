//! Deciding the pending jobs whose settle window has passed, as one batch: the jobs that wait
//! for the owner are noted, the ones a rule approves are moved together, and every decision is
//! recorded and announced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Daemon, Known, RETRY_AFTER, rank};
use crate::core::attestation::Standing;
use crate::core::policy::{Disposition, Method, Outcome, Verdict};
use crate::queue::Status;
use crate::queue::gate;
use crate::queue::journal::{Applied, Check};
use crate::queue::record::Record;
use crate::queue::review::{self, Review};
use crate::store::lock::StoreLock;

impl Daemon {
    /// Decides the jobs `uids` (first seen at `first_seen`) as one batch.
    pub(super) fn decide(&mut self, uids: Vec<String>, first_seen: &HashMap<String, Instant>) {
        let mut record = Record::new("daemon");
        let mut closed = Vec::new();
        let approvals = self.review_due(uids, &mut record, &mut closed);
        let mut moved = Vec::new();
        if !approvals.is_empty() {
            // The CLI and the API move jobs too; one mover at a time, and only what can be recorded.
            let Some(_guard) = self.lock_or_retry(&approvals) else {
                return;
            };
            moved = self.approve(&approvals, first_seen, &mut record);
            self.withdraw_grants(&moved);
            self.indexer.moved(&moved);
        }
        let decided = record.write(&self.layout);
        self.mover.settled(&moved);
        // Queued for the notifier's workers: this returns at once whatever the hooks do.
        for d in decided {
            self.notifier.announce(d);
        }
        self.reject_ungated(closed);
    }

    /// Reviews the jobs `uids`: notes (once) the ones that wait for the owner, are flagged or
    /// are ignored, and returns the ones a rule approves.
    /// With no human gate (`approval.enabled: false`) those go to `closed` instead.
    fn review_due(
        &mut self,
        uids: Vec<String>,
        record: &mut Record,
        closed: &mut Vec<Review>,
    ) -> Vec<Review> {
        let mut approvals = Vec::new();
        let dirs: Vec<PathBuf> = uids
            .iter()
            .map(|u| self.queue.job_dir(Status::Pending, u))
            .collect();
        let looked = review::review_all(&dirs, &self.layout.email, &self.trust);
        self.stats.reviews += looked.len() as u64;
        for ((uid, dir), looked) in uids.into_iter().zip(dirs).zip(looked) {
            let Some((fingerprint, r)) = looked else {
                self.jobs.forget(&uid);
                self.retries.clear(&uid);
                continue;
            };
            self.indexer.reviewed(&uid, &r);
            let outcome = r.verdict.as_ref().map(|v| v.outcome);
            let known = Known {
                fingerprint,
                outcome,
                sender: rank::sender_key(r.inspection.requester()),
                signature: rank::key(r.inspection.signature.as_deref()),
                expires: None,
            };
            let repeated = self
                .jobs
                .known(&uid)
                .is_some_and(|k| (k.fingerprint, k.outcome) == (fingerprint, outcome));
            match &r.verdict {
                None => {
                    if !repeated {
                        log::info!(
                            "ignoring pending/{uid}: {}",
                            r.inspection.ignored.as_deref().unwrap_or("")
                        );
                    }
                    self.jobs.know(&uid, known);
                }
                Some(v) if v.outcome == Outcome::Approve => approvals.push(r),
                Some(_) if !self.trust.config.approval.enabled => closed.push(r),
                Some(v) => {
                    if !repeated {
                        note_waiting(&uid, &r, v, record);
                    }
                    let expires = self.expiry_of(&r, &dir);
                    self.jobs.know(&uid, Known { expires, ..known });
                    self.grant_reviewers(&uid, &dir);
                }
            }
        }
        approvals
    }

    /// When a job waiting for the owner expires.
    fn expiry_of(&self, r: &Review, dir: &Path) -> Option<chrono::NaiveDateTime> {
        let m = r.inspection.meta.as_ref()?;
        gate::expires_at(&m.meta, dir, self.trust.config.approval.max_timeout_seconds)
    }

    /// Takes the queue lock for the approvals, or puts them back to be tried again later.
    fn lock_or_retry(&mut self, approvals: &[Review]) -> Option<StoreLock> {
        match gate::decision_lock(&self.layout) {
            Ok(g) => Some(g),
            Err(e) => {
                log::error!("{e}; retrying in {} s", RETRY_AFTER.as_secs());
                let now = Instant::now();
                for r in approvals {
                    let uid = &r.inspection.uid;
                    self.jobs
                        .put_pending(uid, now, now, now + RETRY_AFTER, None);
                }
                None
            }
        }
    }

    /// Moves the approved jobs to `approved/` (the caller holds the queue lock) and records what
    /// happened to each. Returns the uids the mover handled.
    fn approve(
        &mut self,
        approvals: &[Review],
        first_seen: &HashMap<String, Instant>,
        record: &mut Record,
    ) -> Vec<String> {
        let batch: Vec<_> = approvals
            .iter()
            .map(|r| (r, Status::Approved, Check::Policy, None))
            .collect();
        let results = self.mover.apply(&batch, &self.trust);
        let moved = results.iter().map(|(u, _)| u.clone()).collect();
        let by_uid: HashMap<&str, &Review> = approvals
            .iter()
            .map(|r| (r.inspection.uid.as_str(), r))
            .collect();
        for (uid, applied) in results {
            let Some(r) = by_uid.get(uid.as_str()).copied() else {
                continue;
            };
            let Some(v) = &r.verdict else { continue };
            match applied {
                Applied::Done => self.approved(uid, r, v, first_seen, record),
                Applied::SentBack(why) => self.sent_back(uid, r, v, why, record),
                Applied::Failed(err) => self.approval_failed(uid, r, err.to_string(), record),
            }
        }
        moved
    }

    fn approved(
        &mut self,
        uid: String,
        r: &Review,
        v: &Verdict,
        first_seen: &HashMap<String, Instant>,
        record: &mut Record,
    ) {
        if let Some(live) = &self.live {
            live.count_decision(
                "approved",
                v.method.map_or("none", Method::as_str),
                first_seen.get(&uid).map(|t| t.elapsed()),
            );
        }
        self.jobs.forget(&uid);
        self.retries.clear(&uid);
        log::info!(
            "approved job {uid} {} ({}): {}",
            describe_job(r),
            method_name(v.method),
            v.reasons.join("; ")
        );
        record.decision(r, Disposition::Approved, v.method, v.reasons.clone());
        if let (Some(Standing::ProvenFirst { fingerprint }), Some(sender)) =
            (&r.proof, r.inspection.requester())
        {
            self.pin_first_key(&sender.to_lowercase(), fingerprint);
        }
    }

    /// Trust on first use: an allowlisted sender approved by a proof, with no key pinned yet,
    /// has that key pinned now, so a later change of key is never followed silently.
    fn pin_first_key(&mut self, sender: &str, fingerprint: &str) {
        let Some(mut pin) = crate::store::pin::of(&self.layout, sender) else {
            match crate::store::peers::pin_first_key(&self.layout, sender, fingerprint) {
                Ok(true) => log::info!(
                    "pinned peer {sender}'s identity key {fingerprint} (their first proven job)"
                ),
                Ok(false) => {}
                Err(e) => log::error!("could not pin peer {sender}'s identity key: {e}"),
            }
            return;
        };
        pin.key = Some(fingerprint.to_string());
        pin.pinned_at = Some(crate::queue::metadata::format_naive(
            &crate::queue::metadata::now_naive(),
        ));
        match crate::store::pin::set(&self.layout, sender, &pin) {
            Ok(()) => {
                log::info!("pinned {sender}'s identity key {fingerprint} (their first proven job)");
                crate::store::audit::record_change(
                    &self.layout,
                    crate::store::audit::AuditEvent::AllowlistPin,
                    crate::store::audit::Actor::Daemon,
                    crate::store::audit::Subject::Email(sender),
                    vec![format!(
                        "proof {}, key {fingerprint} (first proof)",
                        pin.proof.as_str()
                    )],
                );
            }
            Err(e) => log::error!("could not pin {sender}'s identity key: {e}"),
        }
    }

    /// The mover found the job changed since it was reviewed: it is evaluated again.
    fn sent_back(
        &mut self,
        uid: String,
        r: &Review,
        v: &Verdict,
        why: String,
        record: &mut Record,
    ) {
        self.stats.sent_back += 1;
        let f = self.retries.failed(&uid, &why, Instant::now());
        if f.log {
            log::warn!(
                "job {uid} was not approved ({} time(s) in a row): {why}; it will be evaluated again in {:?}",
                f.attempts,
                f.retry_in
            );
        }
        // Each distinct reason once: a job sent back again and again for the same reason must
        // not fill the audit chain.
        if f.new {
            let mut reasons = v.reasons.clone();
            reasons.push(why);
            record.decision(r, Disposition::SentBack, v.method, reasons);
        }
        self.touch_pending(uid);
    }

    /// The move failed: it is tried again, less and less often.
    fn approval_failed(&mut self, uid: String, r: &Review, why: String, record: &mut Record) {
        let f = self.retries.failed(&uid, &why, Instant::now());
        if f.log {
            log::error!(
                "could not approve job {uid} ({} attempt(s)): {why}; retrying in {:?}, then less and less often (at least once a minute)",
                f.attempts,
                f.retry_in
            );
        }
        if f.new {
            record.event(r, Disposition::ApprovalFailed, vec![why]);
        }
        let now = Instant::now();
        let due = self.held(&uid, now + f.retry_in);
        self.jobs.put_pending(&uid, now, now, due, None);
    }
}

/// Logs a job that waits for the owner (or is flagged) and records it in the decision log.
fn note_waiting(uid: &str, r: &Review, v: &Verdict, record: &mut Record) {
    let word = if v.outcome == Outcome::Invalid {
        log::warn!("job {uid} is flagged: {}", v.reasons.join("; "));
        Disposition::Flagged
    } else {
        log::info!("job {uid} {}: {}", describe_job(r), v.reasons.join("; "));
        Disposition::Waiting
    };
    record.entry(r, word, v.method, v.reasons.clone());
}

fn describe_job(r: &Review) -> String {
    format!(
        "{:?} from {}",
        r.inspection.name().unwrap_or("?"),
        r.inspection.requester().unwrap_or("?")
    )
}

fn method_name(m: Option<Method>) -> &'static str {
    match m {
        Some(Method::Allowlist) => "trusted sender",
        Some(Method::TrustedCode) => "trusted code",
        Some(Method::Rules) => "rules",
        Some(Method::Human) => "the owner",
        None => "no method",
    }
}
