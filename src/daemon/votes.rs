//! The daemon's side of reviewer groups and of `approval.enabled`: reviewers' read access kept
//! in step with the pending jobs and the groups, their verdict files applied when they change
//! (and at every rescan), and, when there is no human gate, jobs no trust rule approves rejected
//! at once.

use std::collections::BTreeSet;
use std::path::Path;

use super::Daemon;
use crate::queue::gate::{self, RulingRequest};
use crate::queue::review::Review;
use crate::queue::{Status, copies};
use crate::store::audit::Actor;
use crate::store::grants;

/// What a sender is told when the datasite has no human gate.
pub(crate) const CLOSED: &str = "this datasite accepts only trusted senders and code (approval.enabled is false), and no trust rule approved this job: ask the owner to add you to their allowlist, to trust this code, or to add a rule for it";

impl Daemon {
    /// Reviewers who should read pending jobs now.
    fn wanted_readers(&self) -> BTreeSet<String> {
        let a = &self.trust.config.approval;
        if a.enabled {
            a.named_reviewers_except(&self.layout.email)
        } else {
            BTreeSet::new()
        }
    }

    /// Gives the reviewers read access to a job that waits (and takes it from those who left
    /// the groups). The daemon's own write must not make the job look changed.
    pub(super) fn grant_reviewers(&mut self, uid: &str, dir: &Path) {
        let wanted = self.wanted_readers();
        match grants::sync_locked(&self.layout, uid, dir, &wanted) {
            Ok(true) => {
                log::info!(
                    "job {uid}: read access for reviewers set to {}",
                    if wanted.is_empty() {
                        "nobody".to_string()
                    } else {
                        wanted.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                );
                self.jobs.set_fingerprint(uid, copies::fingerprint(dir));
            }
            Ok(false) => {}
            Err(e) => log::error!("could not give reviewers read access to job {uid}: {e}"),
        }
    }

    /// Takes the reviewers' read access back from jobs the daemon just moved (the caller
    /// holds the queue lock).
    pub(super) fn withdraw_grants(&self, moved: &[String]) {
        for uid in moved {
            grants::withdraw_all(&self.layout, uid);
        }
    }

    /// After the stores are read (a verdict file, the groups or anything else changed) and at
    /// start: grants on decided jobs withdrawn, verdict files applied.
    pub(super) fn review_by_groups(&mut self) {
        grants::sweep_decided(&self.layout);
        if let Err(e) = crate::store::verdicts::ensure_folder(&self.layout) {
            log::error!("could not set up the reviewers' verdict folder: {e}");
        }
        let cfg = self.trust.config.approval.clone();
        let decided = crate::service::votes::apply(&self.layout, &cfg, Some(&self.notifier));
        for d in decided {
            self.jobs.forget(&d.uid);
            self.retries.clear(&d.uid);
            if let Some(live) = &self.live {
                live.count_decision(
                    d.verdict.outcome().as_str(),
                    crate::core::policy::Method::Human.as_str(),
                    None,
                );
            }
        }
    }

    /// Rejects the jobs no trust rule approved while there is no human gate.
    pub(super) fn reject_ungated(&mut self, closed: Vec<Review>) {
        for r in closed {
            let uid = r.inspection.uid.clone();
            let req = RulingRequest {
                verdict: "reject".into(),
                rationale: Some(CLOSED.into()),
                signature: r.inspection.signature.clone(),
                status: Some(Status::Pending),
                signature_required: false,
            };
            let waited = r.verdict.as_ref().map(|v| v.reasons.join("; "));
            match gate::decide_as(
                &self.layout,
                &uid,
                &req,
                &Actor::Daemon,
                Some(&self.notifier),
                None,
            ) {
                Ok(_) => {
                    log::info!(
                        "job {uid} rejected: approval.enabled is false and no trust rule approved it ({})",
                        waited.unwrap_or_default()
                    );
                    self.jobs.forget(&uid);
                }
                Err(e) => {
                    // Not known, so the next rescan tries again.
                    log::error!("could not reject job {uid} (approval.enabled is false): {e}");
                }
            }
        }
    }
}
