//! Clearing a flood: one verdict with one rationale on many pending jobs, chosen by a filter
//! (sender, name, flagged, age) or by an explicit list of uid + signature. Each job is reviewed
//! again under the queue lock, moved by the same [`Mover`] with its post-move check, and gets its
//! own decision log line and audit event; the work goes in batches, so memory stays bounded and
//! the fsyncs of a batch (journal, renames, metadata, log and chain appends) are shared.
//!
//! The jobs a filter selects are chosen from an index of the queue (`service::select`), never
//! by reading every pending job.
//!
//! Approving in bulk is only possible by explicit list with signatures: what is approved must be
//! what the owner saw. A filter can only turn jobs away.

use chrono::{Duration as ChronoDuration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::announce::{self, Decision, Notifier};
use crate::core::policy::{Method, Outcome};
use crate::daemon::live::Live;
use crate::error::{Error, Result};
use crate::queue::gate::{self, Ruling, RulingRequest};
use crate::queue::journal::{Applied, Check, Mover};
use crate::queue::metadata::{self, Metadata};
use crate::queue::record::Record;
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Queue, Status, layout::is_valid_uid};
use crate::service::jobs::Source;
use crate::service::select::{self, Chosen};
use crate::store::audit::Actor;
use crate::syftbox::Layout;

/// Jobs reviewed, moved and recorded together: one journal file, one log append and one chain
/// append (each with its fsync) per batch, and the most that is held in memory at once.
pub(crate) const BATCH: usize = 500;
/// The longest explicit list one request may name: it always fits in a request body
/// (`web::MAX_BODY`, 1 MiB) with the longest uids.
pub(crate) const MAX_LIST: usize = 4_000;
/// The per-job results an answer carries at most (refusals first); the counts cover every job.
pub(crate) const MAX_RESULTS: usize = 1_000;
/// Ages beyond this (100 years) are refused rather than overflowing date arithmetic.
pub(crate) const MAX_AGE_HOURS: u64 = 876_000;

/// Which pending jobs a filter selects; every criterion given must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Part of the sender's email, case-insensitive (as the listing's filter).
    pub(crate) sender: Option<String>,
    /// Part of the job's name, case-insensitive.
    pub(crate) name: Option<String>,
    /// Only jobs the rules flag (a dry-run verdict of `flag`).
    pub(crate) flagged: bool,
    /// Only jobs created at least this long ago.
    pub(crate) older_than: Option<ChronoDuration>,
    /// Only jobs created at most this long ago (the listing's `max_age_hours`).
    pub(crate) newer_than: Option<ChronoDuration>,
}

/// A job as the owner saw it: its uid and the signature shown with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pick {
    pub(crate) uid: String,
    #[serde(default)]
    pub(crate) signature: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Selection {
    Filter(Filter),
    List(Vec<Pick>),
}

#[derive(Debug, Clone)]
pub(crate) struct BulkRequest {
    pub(crate) selection: Selection,
    pub(crate) verdict: Ruling,
    pub(crate) rationale: Option<String>,
    /// Decide at most this many (what the owner confirmed); the matching jobs beyond stay
    /// pending and `limit_reached` says so.
    pub(crate) limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobOutcome {
    Decided,
    Refused,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobResult {
    pub(crate) uid: String,
    pub(crate) result: JobOutcome,
    /// Why a job was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// What a bulk verdict did: the counts over every job, and per-job results up to
/// [`MAX_RESULTS`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BulkOutcome {
    pub(crate) verdict: Ruling,
    /// Where decided jobs went.
    pub(crate) status: Status,
    /// Jobs selected (for a list: the jobs named).
    pub(crate) matched: usize,
    pub(crate) decided: usize,
    pub(crate) refused: usize,
    /// The request's limit stopped the work before every matching job was decided.
    pub(crate) limit_reached: bool,
    pub(crate) results: Vec<JobResult>,
    /// Results left out of `results` to keep the answer small.
    pub(crate) results_omitted: usize,
    /// Where a filter's jobs were chosen (none for a list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<Source>,
}

impl BulkOutcome {
    fn new(verdict: Ruling) -> BulkOutcome {
        BulkOutcome {
            verdict,
            status: verdict.target(),
            matched: 0,
            decided: 0,
            refused: 0,
            limit_reached: false,
            results: Vec::new(),
            results_omitted: 0,
            source: None,
        }
    }

    fn push(&mut self, uid: &str, reason: Option<String>) {
        let result = if reason.is_some() {
            self.refused += 1;
            JobOutcome::Refused
        } else {
            self.decided += 1;
            JobOutcome::Decided
        };
        let r = JobResult {
            uid: uid.to_string(),
            result,
            reason,
        };
        if self.results.len() < MAX_RESULTS {
            self.results.push(r);
            return;
        }
        self.results_omitted += 1;
        // A refusal says something the owner must read: it takes the place of a decided job.
        if result == JobOutcome::Refused
            && let Some(i) = self
                .results
                .iter()
                .rposition(|r| r.result == JobOutcome::Decided)
        {
            self.results[i] = r;
        }
    }
}

/// What a filter selects now, without deciding anything: the count and up to `senders` of the
/// distinct senders (for the confirmation a person is asked).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Preview {
    pub(crate) matched: usize,
    pub(crate) senders: Vec<String>,
}

/// Refuses a request that cannot be carried out as asked, before anything is locked.
pub(crate) fn check_request(req: &BulkRequest) -> Result<Option<String>> {
    if req.verdict == Ruling::Approve && matches!(req.selection, Selection::Filter(_)) {
        return Err(Error::invalid(
            "jobs cannot be approved by a filter",
            "approve in bulk by listing each job's uid with the signature you reviewed \
             (\"jobs\": [{\"uid\": ..., \"signature\": ...}]); a filter can reject or request changes",
        ));
    }
    if let Selection::List(picks) = &req.selection
        && picks.len() > MAX_LIST
    {
        return Err(Error::invalid(
            format!("{} jobs are listed, more than {MAX_LIST}", picks.len()),
            format!("send at most {MAX_LIST} jobs per request"),
        ));
    }
    if let Selection::Filter(f) = &req.selection {
        check_filter(f)?;
    }
    gate::rationale(req.verdict, req.rationale.as_deref())
}

fn check_filter(f: &Filter) -> Result<()> {
    let max = ChronoDuration::hours(MAX_AGE_HOURS as i64);
    for d in [f.older_than, f.newer_than].into_iter().flatten() {
        if d > max || d < ChronoDuration::zero() {
            return Err(Error::invalid(
                "an age in the filter is more than 100 years",
                "use a smaller age, or leave it out",
            ));
        }
    }
    Ok(())
}

/// Applies one verdict to the jobs `req` selects. `live` is the running daemon's (the API), whose
/// notifier announces the decisions and whose metrics count them, and whose index chooses the
/// jobs a filter selects; without it the decisions are announced from here and the jobs chosen
/// from the disk.
pub(crate) fn decide_many(
    layout: &Layout,
    actor: &Actor,
    req: &BulkRequest,
    live: Option<&Live>,
) -> Result<BulkOutcome> {
    check_request(req)?;
    let chosen = match &req.selection {
        Selection::Filter(f) => Some(select::in_process(
            layout,
            live.map(|l| &l.index),
            f,
            metadata::now_naive(),
        )),
        Selection::List(_) => None,
    };
    decide_among(layout, actor, req, live, chosen)
}

/// [`decide_many`] with the jobs of a filter chosen already (`service::select`; `None` chooses
/// them from the disk). Each is still reviewed again, and meets the filter, before its verdict.
pub(crate) fn decide_among(
    layout: &Layout,
    actor: &Actor,
    req: &BulkRequest,
    live: Option<&Live>,
    chosen: Option<Chosen>,
) -> Result<BulkOutcome> {
    let rationale = check_request(req)?;
    let queue = Queue::new(layout.queue.clone());
    let mover = Mover::new(layout);
    let daemon_notifier = live.and_then(Live::notifier);
    let own_notifier = match daemon_notifier {
        Some(_) => None,
        None => announce::one_shot(layout, "the jobs decided together"),
    };
    let notifier = daemon_notifier.as_deref().or(own_notifier.as_ref());
    let mut out = BulkOutcome::new(req.verdict);
    let mut run = Run {
        layout,
        actor,
        req,
        rationale: rationale.as_deref(),
        mover: &mover,
        out: &mut out,
        notifier,
        live,
    };
    match &req.selection {
        Selection::Filter(f) => {
            let chosen =
                chosen.unwrap_or_else(|| select::from_disk(layout, f, metadata::now_naive()));
            run.out.source = Some(chosen.source);
            // Only names are held for the whole selection; everything else is per batch.
            let uids: Vec<String> = chosen.jobs.into_iter().map(|(u, _)| u).collect();
            for chunk in uids.chunks(BATCH) {
                if !run.batch(&queue, Batch::Filter(f, chunk))? {
                    break;
                }
            }
        }
        Selection::List(picks) => {
            let mut seen = std::collections::HashSet::new();
            let mut unique = Vec::with_capacity(picks.len());
            for p in picks {
                run.out.matched += 1;
                if !is_valid_uid(&p.uid) {
                    run.out.push(&p.uid, Some("not a job uid".into()));
                } else if !seen.insert(p.uid.as_str()) {
                    run.out
                        .push(&p.uid, Some("listed more than once: decided once".into()));
                } else {
                    unique.push(p);
                }
            }
            for chunk in unique.chunks(BATCH) {
                if !run.batch(&queue, Batch::List(chunk))? {
                    break;
                }
            }
        }
    }
    if let Some(n) = &own_notifier {
        n.close(n.one_shot_budget());
    }
    Ok(out)
}

/// What a filter selects now among the `chosen` jobs (for the CLI's count and confirmation): the
/// chosen ones themselves, unless `flagged` needs a review of each (no daemon's verdicts). Reads
/// the jobs without the queue lock: the decision reviews each job again.
pub(crate) fn preview(
    layout: &Layout,
    f: &Filter,
    chosen: &Chosen,
    senders: usize,
) -> Result<Preview> {
    check_filter(f)?;
    let mut p = Preview {
        matched: 0,
        senders: Vec::new(),
    };
    let mut count = |sender: &str| {
        p.matched += 1;
        if p.senders.len() < senders && !p.senders.iter().any(|s| s == sender) {
            p.senders.push(sender.to_string());
        }
    };
    if !f.flagged || chosen.flagged_known {
        chosen.jobs.iter().for_each(|(_, s)| count(s));
        return Ok(p);
    }
    let queue = Queue::new(layout.queue.clone());
    let trust = Trust::load(layout)?;
    let uids: Vec<&str> = chosen.uids().collect();
    for chunk in uids.chunks(BATCH) {
        let dirs: Vec<_> = chunk
            .iter()
            .map(|u| queue.job_dir(Status::Pending, u))
            .collect();
        let hits = crate::queue::par::map(&dirs, |d| {
            let r = review::review(d, &layout.email, &trust);
            is_flagged(&r).then(|| r.inspection.requester().unwrap_or("").to_lowercase())
        });
        hits.iter().flatten().for_each(|s| count(s));
    }
    Ok(p)
}

enum Batch<'a> {
    Filter(&'a Filter, &'a [String]),
    List(&'a [&'a Pick]),
}

/// The state of one bulk verdict across its batches.
struct Run<'a> {
    layout: &'a Layout,
    actor: &'a Actor,
    req: &'a BulkRequest,
    rationale: Option<&'a str>,
    mover: &'a Mover,
    out: &'a mut BulkOutcome,
    notifier: Option<&'a Notifier>,
    live: Option<&'a Live>,
}

impl Run<'_> {
    /// Decides one batch under the queue lock, then announces it with the lock released.
    /// Returns whether to go on (false once the limit is reached).
    fn batch(&mut self, queue: &Queue, batch: Batch<'_>) -> Result<bool> {
        let guard = gate::decision_lock(self.layout)?;
        // Loaded per batch: an allowlist or trust change made meanwhile counts for what follows.
        let trust = Trust::load(self.layout)?;
        let now = metadata::now_naive();
        let reviews = self.select(queue, batch, &trust, now);
        let verdict = self.req.verdict;
        let message = gate::requester_message(verdict, self.rationale);
        let moves: Vec<_> = reviews
            .iter()
            .map(|r| (r, verdict.target(), Check::Signature, message.clone()))
            .collect();
        let mut record = Record::new(self.actor.clone());
        let mut settle = Vec::with_capacity(moves.len());
        for (uid, applied) in self.mover.apply(&moves, &trust) {
            let refusal = match applied {
                Applied::Done => {
                    // Reviewers lose the read access they had while the job waited.
                    crate::store::grants::withdraw_all(self.layout, &uid);
                    if let Some(r) = reviews.iter().find(|r| r.inspection.uid == uid) {
                        let reasons = gate::reasons(verdict, self.actor, self.rationale);
                        record.decision(r, verdict.outcome(), Some(Method::Human), reasons);
                    }
                    None
                }
                Applied::SentBack(why) => Some(format!("not {}: {why}", verdict.outcome())),
                Applied::Failed(e) => Some(e.to_string()),
            };
            self.out.push(&uid, refusal);
            settle.push(uid);
        }
        let announced = record.write(self.layout);
        self.mover.settled(&settle);
        drop(guard);
        self.announce(announced);
        Ok(!self.out.limit_reached)
    }

    /// The jobs of the batch to decide, reviewed now; the others are refused (a list) or left
    /// alone (a filter).
    fn select(
        &mut self,
        queue: &Queue,
        batch: Batch<'_>,
        trust: &Trust,
        now: NaiveDateTime,
    ) -> Vec<Review> {
        let owner = &self.layout.email;
        let (dirs, signatures): (Vec<_>, Vec<Option<&str>>) = match &batch {
            // Chosen from an index: the review below checks the filter on what it reads.
            Batch::Filter(_, uids) => uids
                .iter()
                .map(|u| (queue.job_dir(Status::Pending, u), None))
                .unzip(),
            Batch::List(picks) => {
                let mut dirs = Vec::new();
                let mut sigs = Vec::new();
                for p in picks.iter() {
                    match gate::locate_pending(queue, &p.uid, None) {
                        Ok(d) => {
                            dirs.push(d);
                            sigs.push(Some(p.signature.as_deref().unwrap_or("")));
                        }
                        Err(e) => self.out.push(&p.uid, Some(e.to_string())),
                    }
                }
                (dirs, sigs)
            }
        };
        let reviewed = crate::queue::par::map(&dirs, |d| {
            d.is_dir().then(|| review::review(d, owner, trust))
        });
        let mut take = Vec::with_capacity(reviewed.len());
        for ((r, sig), dir) in reviewed.into_iter().zip(signatures).zip(&dirs) {
            let Some(r) = r else {
                if sig.is_some() {
                    let uid = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                    let why = "it is no longer pending: it was moved while being selected";
                    self.out.push(&uid.unwrap_or_default(), Some(why.into()));
                }
                continue;
            };
            let uid = r.inspection.uid.clone();
            if let Batch::Filter(f, _) = &batch {
                // The decision is made on what was reviewed now, not on the first read.
                let meta = r.inspection.meta.as_ref();
                if !meta_matches(f, meta, now) || (f.flagged && !is_flagged(&r)) {
                    continue;
                }
                self.out.matched += 1;
            }
            let seen = RulingRequest {
                verdict: String::new(),
                rationale: None,
                signature: sig.map(str::to_owned),
                status: None,
                signature_required: sig.is_some(),
            };
            if let Err(e) = gate::check_seen(&r, &uid, self.req.verdict, &seen) {
                self.out.push(&uid, Some(e.to_string()));
                continue;
            }
            if self
                .req
                .limit
                .is_some_and(|l| self.out.decided + take.len() >= l)
            {
                self.out.limit_reached = true;
                continue;
            }
            take.push(r);
        }
        take
    }

    fn announce(&self, decisions: Vec<Decision>) {
        for d in decisions {
            if let Some(live) = self.live {
                live.count_decision(&d.outcome, Method::Human.as_str(), None);
            }
            match self.notifier {
                Some(n) => n.decision(d),
                None => drop(d),
            }
        }
    }
}

fn is_flagged(r: &Review) -> bool {
    matches!(&r.verdict, Some(v) if v.outcome == Outcome::Invalid)
}

/// Whether a job's metadata meets the filter's sender, name and age (a job whose metadata
/// cannot be read meets only a filter that names neither sender nor name, and no age).
fn meta_matches(f: &Filter, m: Option<&Metadata>, now: NaiveDateTime) -> bool {
    let Some(m) = m else {
        return f.sender.is_none()
            && f.name.is_none()
            && f.older_than.is_none()
            && f.newer_than.is_none();
    };
    let contains = |hay: &str, needle: &Option<String>| {
        needle
            .as_deref()
            .is_none_or(|n| hay.to_lowercase().contains(&n.to_lowercase()))
    };
    if !contains(&m.meta.requester_email, &f.sender) || !contains(&m.meta.name, &f.name) {
        return false;
    }
    if f.older_than.is_none() && f.newer_than.is_none() {
        return true;
    }
    let Some(age) = m.meta.created_at.map(|c| now.signed_duration_since(c)) else {
        return false;
    };
    f.older_than.is_none_or(|d| age >= d) && f.newer_than.is_none_or(|d| age <= d)
}

/// A duration as the CLI takes it: a whole number with a unit, `s`, `m`, `h`, `d` or `w`
/// (`90m`, `36h`, `7d`).
pub(crate) fn parse_duration(s: &str) -> std::result::Result<ChronoDuration, String> {
    let s = s.trim();
    let bad = || {
        format!("{s:?} is not a duration: use a whole number and a unit, e.g. 90m, 36h, 7d or 2w")
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    let max = MAX_AGE_HOURS as i64 * 3_600;
    match n.checked_mul(secs) {
        Some(t) if (0..=max).contains(&t) => Ok(ChronoDuration::seconds(t)),
        _ => Err(format!("{s:?} is more than 100 years")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_unit_and_stay_under_a_century() {
        assert_eq!(parse_duration("90m"), Ok(ChronoDuration::minutes(90)));
        assert_eq!(parse_duration("7d"), Ok(ChronoDuration::days(7)));
        assert_eq!(parse_duration("2w"), Ok(ChronoDuration::weeks(2)));
        for bad in ["", "7", "d", "-1h", "1.5h", "3y", "99999999999999w", "1é"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_take_the_place_of_decided_jobs_in_a_full_answer() {
        let mut out = BulkOutcome::new(Ruling::Reject);
        for i in 0..MAX_RESULTS + 5 {
            out.push(&format!("u{i}"), None);
        }
        out.push("bad", Some("changed".into()));
        assert_eq!((out.decided, out.refused), (MAX_RESULTS + 5, 1));
        assert_eq!(out.results.len(), MAX_RESULTS);
        assert_eq!(out.results_omitted, 6);
        assert!(out.results.iter().any(|r| r.uid == "bad"));
    }

    #[test]
    fn a_filter_cannot_approve() {
        let req = BulkRequest {
            selection: Selection::Filter(Filter::default()),
            verdict: Ruling::Approve,
            rationale: None,
            limit: None,
        };
        let e = check_request(&req).unwrap_err().to_string();
        assert!(e.contains("cannot be approved by a filter"), "{e}");
    }
}
