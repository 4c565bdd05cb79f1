//! The human gate: the owner's verdicts (approve, reject, request changes) on jobs no rule
//! approved, and expiry of jobs nobody decided in time. The CLI, the API and the MCP server all
//! come through [`decide`], which applies the verdict with the same crash-safe mover as the
//! daemon, records it in the decision log and the audit chain, and announces it to the hooks
//! and mail of [`crate::announce`].

use std::path::{Path, PathBuf};

use chrono::{Duration as ChronoDuration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::announce::{self, Notifier};
use crate::core::policy::{Disposition, Method};
use crate::error::{Error, Result};
use crate::queue::journal::{Applied, Check, Mover};
use crate::queue::metadata::{self, JobMeta};
use crate::queue::record::Record;
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Queue, Status};
use crate::store::audit::{Actor, AuditLog};
use crate::store::lock::StoreLock;
use crate::syftbox::Layout;

/// What syft-code-queue uses when a job has no timeout.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 86_400;
pub const MAX_RATIONALE: usize = 4_000;
pub const CHANGES_PREFIX: &str = "changes requested: ";

/// The owner's verdict on a pending job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ruling {
    Approve,
    Reject,
    RequestChanges,
}

impl Ruling {
    pub fn parse(s: &str) -> Option<Ruling> {
        match s.trim().to_lowercase().replace('-', "_").as_str() {
            "approve" => Some(Ruling::Approve),
            "reject" => Some(Ruling::Reject),
            "request_changes" => Some(Ruling::RequestChanges),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ruling::Approve => "approve",
            Ruling::Reject => "reject",
            Ruling::RequestChanges => "request_changes",
        }
    }

    pub(crate) fn target(self) -> Status {
        match self {
            Ruling::Approve => Status::Approved,
            Ruling::Reject | Ruling::RequestChanges => Status::Rejected,
        }
    }

    /// The outcome recorded for this verdict (decision log, audit chain, metrics).
    pub fn outcome(self) -> Disposition {
        match self {
            Ruling::Approve => Disposition::Approved,
            Ruling::Reject => Disposition::Rejected,
            Ruling::RequestChanges => Disposition::ChangesRequested,
        }
    }
}

/// A verdict as the API, CLI and MCP send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulingRequest {
    pub verdict: String,
    #[serde(default)]
    pub rationale: Option<String>,
    /// The signature the owner saw; the verdict is refused if the job no longer has it.
    #[serde(default)]
    pub signature: Option<String>,
    /// Which copy is meant when the uid is in several status folders (only `pending` can be
    /// decided); without it such a uid is refused.
    #[serde(default)]
    pub status: Option<Status>,
    /// Refuse a verdict that names no signature (the API and MCP: what the owner saw must be
    /// what is decided). Not part of the request body.
    #[serde(skip)]
    pub signature_required: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decided {
    pub uid: String,
    pub verdict: Ruling,
    pub status: Status,
    pub actor: String,
    pub rationale: Option<String>,
    pub signature: Option<String>,
}

/// Applies an owner's verdict to a pending job. `notifier` is the running daemon's, when the
/// verdict is given in its process; without one the verdict is announced from here.
pub fn decide(
    layout: &Layout,
    uid: &str,
    req: &RulingRequest,
    actor: &Actor,
    notifier: Option<&Notifier>,
) -> Result<Decided> {
    decide_as(layout, uid, req, actor, notifier, Some(Method::Human))
}

/// [`decide`], recorded with `method` (none: the daemon's own refusal when there is no gate).
pub(crate) fn decide_as(
    layout: &Layout,
    uid: &str,
    req: &RulingRequest,
    actor: &Actor,
    notifier: Option<&Notifier>,
    method: Option<Method>,
) -> Result<Decided> {
    let verdict = Ruling::parse(&req.verdict).ok_or_else(|| {
        Error::invalid(
            format!("unknown verdict {:?}", req.verdict),
            "use approve, reject or request_changes",
        )
    })?;
    let rationale = rationale(verdict, req.rationale.as_deref())?;
    let queue = Queue::new(layout.queue.clone());
    let guard = decision_lock(layout)?;
    let dir = locate_pending(&queue, uid, req.status)?;
    let trust = Trust::load(layout)?;
    let r = review::review(&dir, &layout.email, &trust);
    check_seen(&r, uid, verdict, req)?;
    let message = requester_message(verdict, rationale.as_deref());
    let mover = Mover::new(layout);
    apply(&mover, &r, uid, verdict, message, &trust)?;
    crate::store::grants::withdraw_all(layout, uid);
    let mut record = Record::new(actor);
    record.decision(
        &r,
        verdict.outcome(),
        method,
        reasons(verdict, actor, rationale.as_deref()),
    );
    let announced = record.write(layout);
    mover.settled([&r.inspection.uid]);
    // Hooks and mail never run under the queue lock.
    drop(guard);
    for d in announced {
        announce::announce(layout, notifier, d);
    }
    Ok(Decided {
        uid: uid.to_string(),
        verdict,
        status: verdict.target(),
        actor: actor.to_string(),
        rationale,
        signature: r.inspection.signature.clone(),
    })
}

/// What the requester reads in the job's metadata about the owner's verdict.
pub(crate) fn requester_message(verdict: Ruling, rationale: Option<&str>) -> Option<String> {
    match verdict {
        Ruling::Approve => None,
        Ruling::Reject => rationale.map(str::to_owned),
        Ruling::RequestChanges => rationale.map(|r| format!("{CHANGES_PREFIX}{r}")),
    }
}

/// The reasons recorded with an owner's verdict (decision log and audit chain).
pub(crate) fn reasons(verdict: Ruling, actor: &Actor, rationale: Option<&str>) -> Vec<String> {
    let mut reasons = vec![format!(
        "{} by {actor}",
        verdict.outcome().as_str().replace('_', " ")
    )];
    if let Some(r) = rationale {
        reasons.push(format!("rationale: {r}"));
    }
    reasons
}

/// The rationale, trimmed (none if empty); required for every verdict but approval.
pub(crate) fn rationale(verdict: Ruling, given: Option<&str>) -> Result<Option<String>> {
    let rationale = given
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if rationale
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_RATIONALE)
    {
        return Err(Error::invalid(
            "the rationale is too long",
            format!("keep it under {MAX_RATIONALE} characters"),
        ));
    }
    if verdict != Ruling::Approve && rationale.is_none() {
        return Err(Error::invalid(
            format!(
                "a rationale is required to {}",
                verdict.as_str().replace('_', " ")
            ),
            "say what is wrong, so the requester knows what to fix",
        ));
    }
    Ok(rationale)
}

/// The folder of pending job `uid` (the copy in `status`, when named).
pub(crate) fn locate_pending(queue: &Queue, uid: &str, status: Option<Status>) -> Result<PathBuf> {
    let found = match crate::queue::copies::locate(queue, uid, status) {
        // The copy named is gone: say where the job went, if it is anywhere.
        Err(Error::NotFound { .. }) if status.is_some() => {
            crate::queue::copies::locate(queue, uid, None)
        }
        other => other,
    };
    match found {
        Ok((Status::Pending, dir)) => Ok(dir),
        // A conflict with the job's state (409 in the API), not a malformed request.
        Ok((status, _)) => Err(Error::Conflict {
            what: format!("job {uid} is no longer pending (it is {status})"),
            hint: "only pending jobs can be decided; reload to see its current state".into(),
        }),
        Err(Error::NotFound { .. }) => Err(Error::not_found(
            format!("pending job {uid:?}"),
            "give a uid from `syft-reviewer jobs --status pending`",
        )),
        Err(e) => Err(e),
    }
}

/// Refuses a verdict on a job that is not the owner's, or not the code the owner saw.
pub(crate) fn check_seen(
    r: &Review,
    uid: &str,
    verdict: Ruling,
    req: &RulingRequest,
) -> Result<()> {
    if let Some(why) = &r.inspection.ignored {
        return Err(Error::invalid(
            format!("job {uid} is not yours to decide"),
            why.clone(),
        ));
    }
    // A job that has no signature (code not read in full) can still be turned away unseen;
    // approving needs the signature of what was reviewed.
    let unsigned_refusal = r.inspection.signature.is_none() && verdict != Ruling::Approve;
    if req.signature_required
        && !unsigned_refusal
        && req.signature.as_deref().is_none_or(|s| s.trim().is_empty())
    {
        return Err(Error::invalid(
            format!("a verdict on job {uid} needs the signature of the code you reviewed"),
            "send \"signature\" as shown with the job (GET /api/v1/jobs/{uid} or approvals.list)",
        ));
    }
    if let Some(seen) = req.signature.as_deref().filter(|s| !s.is_empty())
        && r.inspection.signature.as_deref() != Some(seen)
    {
        return Err(Error::Conflict {
            what: format!("job {uid} changed since you looked at it"),
            hint: format!(
                "its signature is now {}; look at the job again before deciding",
                r.inspection.signature.as_deref().unwrap_or("(none)")
            ),
        });
    }
    Ok(())
}

/// Moves the job to the verdict's status folder with the crash-safe mover.
fn apply(
    mover: &Mover,
    r: &Review,
    uid: &str,
    verdict: Ruling,
    message: Option<String>,
    trust: &Trust,
) -> Result<()> {
    let results = mover.apply(&[(r, verdict.target(), Check::Signature, message)], trust);
    match results.into_iter().next().map(|(_, a)| a) {
        Some(Applied::Done) => Ok(()),
        Some(Applied::SentBack(why)) => {
            mover.settled([&r.inspection.uid]);
            Err(Error::invalid(
                format!(
                    "job {uid} was not {}",
                    match verdict {
                        Ruling::Approve => "approved",
                        Ruling::Reject => "rejected",
                        Ruling::RequestChanges => "sent back for changes",
                    }
                ),
                why,
            ))
        }
        Some(Applied::Failed(e)) => Err(e),
        None => Err(Error::invalid(
            format!("job {uid} was not decided"),
            "try again",
        )),
    }
}

/// When a pending job expires: `created_at + timeout_seconds` (capped by `cap`), falling back to
/// the metadata file's modification time when `created_at` is missing.
pub fn expires_at(meta: &JobMeta, job_dir: &Path, cap: Option<u64>) -> Option<NaiveDateTime> {
    let created = meta.created_at.or_else(|| {
        let mtime = std::fs::metadata(job_dir.join(metadata::FILE_NAME))
            .ok()?
            .modified()
            .ok()?;
        Some(chrono::DateTime::<chrono::Local>::from(mtime).naive_local())
    })?;
    let mut timeout = meta.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if let Some(cap) = cap {
        timeout = timeout.min(cap);
    }
    let timeout = i64::try_from(timeout)
        .unwrap_or(i64::MAX / 4)
        .min(i64::MAX / 4 / 1000);
    created.checked_add_signed(ChronoDuration::seconds(timeout))
}

/// Moves expired jobs to `timedout/`, announcing each to `notifier`. Returns the uids that were
/// expired.
pub fn expire(
    layout: &Layout,
    reviews: &[Review],
    trust: &Trust,
    notifier: &Notifier,
) -> Vec<String> {
    if reviews.is_empty() {
        return Vec::new();
    }
    let Ok(guard) = decision_lock(layout) else {
        return Vec::new();
    };
    let mover = Mover::new(layout);
    let msg = |r: &Review| {
        let timeout = r
            .inspection
            .meta
            .as_ref()
            .and_then(|m| m.meta.timeout_seconds)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        format!(
            "expired: nobody approved or rejected this job within its timeout of {timeout} seconds"
        )
    };
    let batch: Vec<_> = reviews
        .iter()
        .map(|r| (r, Status::Timedout, Check::Nothing, Some(msg(r))))
        .collect();
    let mut done = Vec::new();
    let mut announced = Vec::new();
    let results = mover.apply(&batch, trust);
    let uids: Vec<String> = results.iter().map(|(u, _)| u.clone()).collect();
    for (uid, applied) in results {
        let Some(r) = reviews.iter().find(|r| r.inspection.uid == uid) else {
            continue;
        };
        match applied {
            Applied::Done => {
                log::info!("job {uid} expired and was moved to timedout/");
                let mut record = Record::new("daemon");
                record.decision(r, Disposition::Expired, None, vec![msg(r)]);
                announced.extend(record.write(layout));
                done.push(uid);
            }
            Applied::SentBack(why) => log::warn!("job {uid} did not expire: {why}"),
            Applied::Failed(e) => log::error!("could not expire job {uid}: {e}"),
        }
    }
    mover.settled(&uids);
    for uid in &done {
        crate::store::grants::withdraw_all(layout, uid);
    }
    drop(guard);
    for d in announced {
        announce::announce(layout, Some(notifier), d);
    }
    done
}

/// Takes the queue lock for a decision, refusing while the audit chain would refuse to record it
/// (rolled back or deleted): a decision must never happen unrecorded.
pub fn decision_lock(layout: &Layout) -> Result<StoreLock> {
    let guard = StoreLock::acquire(&layout.state, "queue")?;
    AuditLog::new(layout).appendable()?;
    Ok(guard)
}
