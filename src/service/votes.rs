//! Reviewers' verdicts applied: every file under `verdicts/` is checked when it is applied
//! (membership, folder, attestation, signature, the job still pending; `core::groups::admit`),
//! the votes of each job are counted (`core::groups::tally`), and a vote that decides goes
//! through the owner's gate ([`crate::queue::gate`]) with the reviewer as actor. Every vote is
//! recorded in the audit chain, and every file gets an answer beside it and a log line.

use std::collections::BTreeMap;

use crate::announce::Notifier;
use crate::core::groups::{self, ApprovalConfig, Ballot, JobState, Tally, VerdictClaim, Vote};
use crate::core::policy::Method;
use crate::queue::gate::{self, Decided, RulingRequest};
use crate::queue::{Queue, Status, metadata};
use crate::store::audit::{self, Actor, AuditEvent, AuditLog};
use crate::store::identity;
use crate::store::verdicts::{self, Answer, AnswerStatus, Found, VerdictFile};
use crate::syftbox::Layout;

/// One vote as the owner's UI and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ShownVote {
    pub reviewer: String,
    pub verdict: String,
    pub signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    pub attested: bool,
    /// `counted`, `applied` or `refused`, as answered (none: not looked at yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AnswerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The votes on one job and who is still needed.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct JobVotes {
    pub uid: String,
    pub enabled: bool,
    pub required_approvals: u32,
    pub groups: BTreeMap<String, Vec<String>>,
    pub votes: Vec<ShownVote>,
    /// Approvals still needed (0 when decided or no reviewers).
    pub needed: u32,
    /// Named reviewers who have not voted yet.
    pub not_voted: Vec<String>,
}

/// The votes on job `uid` as the files and their answers say now.
pub(crate) fn of_job(layout: &Layout, cfg: &ApprovalConfig, uid: &str) -> JobVotes {
    let mut votes = Vec::new();
    for f in verdicts::scan_uid(layout, uid) {
        let (Ok(folder), Ok(v)) = (&f.folder, &f.content) else {
            continue;
        };
        let answer =
            verdicts::read_answer(&f.answer_path(layout)).filter(|a| a.verdict_sha256 == f.sha256);
        votes.push(ShownVote {
            reviewer: folder.clone(),
            verdict: v.verdict.clone(),
            signature: v.signature.clone(),
            rationale: v.rationale.clone(),
            attested: v.attestation.is_some(),
            status: answer.as_ref().map(|a| a.status),
            reason: answer.map(|a| a.reason),
        });
    }
    let approvals = votes
        .iter()
        .filter(|v| v.verdict == "approve" && v.status != Some(AnswerStatus::Refused))
        .count();
    let decided = votes
        .iter()
        .any(|v| v.status == Some(AnswerStatus::Applied));
    let needed = if decided || !cfg.has_reviewers() {
        0
    } else {
        cfg.required_approvals
            .saturating_sub(u32::try_from(approvals).unwrap_or(u32::MAX))
    };
    let not_voted = cfg
        .named_reviewers_except(&layout.email)
        .into_iter()
        .filter(|r| !votes.iter().any(|v| &v.reviewer == r))
        .collect();
    JobVotes {
        uid: uid.to_string(),
        enabled: cfg.enabled,
        required_approvals: cfg.required_approvals,
        groups: cfg.reviewer_groups.clone(),
        votes,
        needed,
        not_voted,
    }
}

/// A verdict file that can be counted, once read.
struct Readable<'a> {
    found: &'a Found,
    ballot: Ballot,
}

/// Applies every verdict file under `verdicts/` with the approval config in force. Returns the
/// jobs the reviewers decided.
pub(crate) fn apply(
    layout: &Layout,
    cfg: &ApprovalConfig,
    notifier: Option<&Notifier>,
) -> Vec<Decided> {
    let found = verdicts::scan(layout);
    let mut by_uid: BTreeMap<&str, Vec<Readable<'_>>> = BTreeMap::new();
    for f in &found {
        match readable(layout, f) {
            Ok(r) => by_uid
                .entry(f.uid.as_deref().unwrap_or(""))
                .or_default()
                .push(r),
            Err(why) => answer(layout, f, AnswerStatus::Refused, why),
        }
    }
    let queue = Queue::new(layout.queue.clone());
    let mut decided = Vec::new();
    for (uid, files) in by_uid {
        if let Some(d) = apply_job(layout, cfg, notifier, &queue, uid, files) {
            decided.push(d);
        }
    }
    decided
}

/// The ballot a file holds, or why it cannot be one.
fn readable<'a>(layout: &Layout, f: &'a Found) -> Result<Readable<'a>, String> {
    let folder = f.folder.clone()?;
    let uid = f.uid.clone()?;
    let v: &VerdictFile = f.content.as_ref().map_err(Clone::clone)?;
    let vote = Vote::parse(&v.verdict).ok_or_else(|| {
        format!(
            "its verdict {:?} is not approve, reject or request_changes",
            v.verdict
        )
    })?;
    let rationale = v
        .rationale
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let attested = v.attestation.as_ref().map(|att| {
        let published = identity::read_published(&identity::did_path(&layout.data_dir, &folder))
            .map_err(|e| format!("the identity key of {folder} cannot be read: {e}"))?;
        let claim = VerdictClaim {
            owner: &layout.email,
            reviewer: &folder,
            uid: &uid,
            signature: &v.signature,
            verdict: vote,
            rationale: v.rationale.as_deref().unwrap_or(""),
        };
        groups::verify_verdict(att, &claim, &published.key_id, &published.public)
            .map(|()| crate::core::attestation::fingerprint(&published.public))
            .map_err(|e| e.to_string())
    });
    Ok(Readable {
        found: f,
        ballot: Ballot {
            folder,
            claimed: v.reviewer.clone(),
            vote,
            signature: v.signature.clone(),
            rationale: rationale.map(str::to_owned),
            attested,
        },
    })
}

/// Where job `uid` stands for a vote.
fn job_state(queue: &Queue, owner: &str, uid: &str) -> JobState {
    match queue.find(uid) {
        Some((Status::Pending, dir)) => {
            let ins = crate::queue::inspect(&dir, owner);
            if ins.ignored.is_some() {
                JobState::Missing
            } else {
                JobState::Pending {
                    signature: ins.signature,
                }
            }
        }
        Some((s, _)) => JobState::Elsewhere(s.as_str().to_string()),
        None => JobState::Missing,
    }
}

fn apply_job(
    layout: &Layout,
    cfg: &ApprovalConfig,
    notifier: Option<&Notifier>,
    queue: &Queue,
    uid: &str,
    files: Vec<Readable<'_>>,
) -> Option<Decided> {
    let state = job_state(queue, &layout.email, uid);
    let mut admitted: Vec<&Readable<'_>> = Vec::new();
    let mut events = Vec::new();
    for r in &files {
        let done = verdicts::read_answer(&r.found.answer_path(layout))
            .filter(|a| a.verdict_sha256 == r.found.sha256);
        // An applied vote stays applied: the job it decided is no longer pending.
        if done
            .as_ref()
            .is_some_and(|a| a.status == AnswerStatus::Applied)
        {
            continue;
        }
        let new = done
            .as_ref()
            .is_none_or(|a| a.status == AnswerStatus::Refused);
        match groups::admit(cfg, &layout.email, &state, &r.ballot) {
            Ok(in_groups) => {
                if new {
                    events.push(vote_event(uid, &r.ballot, "counted", &in_groups));
                }
                admitted.push(r);
            }
            Err(why) => {
                let member = !cfg.groups_of(&layout.email, &r.ballot.folder).is_empty();
                if member
                    && done
                        .as_ref()
                        .is_none_or(|a| a.status != AnswerStatus::Refused)
                {
                    events.push(vote_event(uid, &r.ballot, &format!("refused: {why}"), &[]));
                }
                answer(layout, r.found, AnswerStatus::Refused, why.to_string());
            }
        }
    }
    if let Err(e) = AuditLog::new(layout).append(&events) {
        log::error!("could not record reviewers' votes in the audit chain: {e}");
    }
    let ballots: Vec<&Ballot> = admitted.iter().map(|r| &r.ballot).collect();
    let (by, req) = match groups::tally(cfg, &ballots) {
        Tally::Open { approvals, needed } => {
            let why = format!(
                "counted: {} of {} approval(s) of this signature; {needed} more needed",
                approvals.len(),
                cfg.required_approvals
            );
            for r in &admitted {
                answer(layout, r.found, AnswerStatus::Counted, why.clone());
            }
            return None;
        }
        Tally::Refused { by, vote } => {
            let b = ballots.iter().find(|b| b.folder == by)?;
            (by, request(vote, b.rationale.clone(), &b.signature))
        }
        Tally::Approved { by } => {
            let sig = ballots
                .first()
                .map(|b| b.signature.clone())
                .unwrap_or_default();
            let mut why = format!(
                "approved by {} ({} of {} required approval(s))",
                by.join(", "),
                by.len(),
                cfg.required_approvals
            );
            for b in ballots.iter().filter(|b| b.rationale.is_some()) {
                why.push_str(&format!(
                    "; {}: {}",
                    b.folder,
                    b.rationale.as_deref().unwrap_or("")
                ));
            }
            let why: String = why.chars().take(gate::MAX_RATIONALE).collect();
            let last = by.last().cloned().unwrap_or_default();
            (last, request(Vote::Approve, Some(why), &sig))
        }
    };
    let actor = Actor::reviewer(&by);
    match gate::decide_as(layout, uid, &req, &actor, notifier, Some(Method::Human)) {
        Ok(d) => {
            log::info!(
                "job {uid} {} by reviewer {by} (approval.reviewer_groups)",
                d.verdict.outcome()
            );
            let why = format!("applied: the job was {} (by {by})", d.verdict.outcome());
            for r in &admitted {
                answer(layout, r.found, AnswerStatus::Applied, why.clone());
            }
            Some(d)
        }
        Err(e) => {
            for r in admitted.iter().filter(|r| r.ballot.folder == by) {
                answer(
                    layout,
                    r.found,
                    AnswerStatus::Refused,
                    format!("not applied: {e}"),
                );
            }
            None
        }
    }
}

fn request(vote: Vote, rationale: Option<String>, signature: &str) -> RulingRequest {
    RulingRequest {
        verdict: vote.as_str().to_string(),
        rationale,
        signature: Some(signature.to_string()),
        status: Some(Status::Pending),
        signature_required: true,
    }
}

fn vote_event(uid: &str, b: &Ballot, outcome: &str, in_groups: &[String]) -> audit::Event {
    let mut reasons = vec![format!("{} by {}", b.vote.as_str(), b.folder)];
    if !in_groups.is_empty() {
        reasons.push(format!("member of {}", in_groups.join(", ")));
    }
    match &b.attested {
        Some(Ok(fp)) => reasons.push(format!("attested with identity key {fp}")),
        Some(Err(why)) => reasons.push(format!("attestation does not hold: {why}")),
        None => reasons.push("not attested (the folder name is the identity)".into()),
    }
    if let Some(r) = &b.rationale {
        reasons.push(format!("rationale: {r}"));
    }
    audit::Event {
        event: AuditEvent::ReviewVote,
        actor: Actor::reviewer(&b.folder),
        uid: Some(uid.to_string()),
        signature: Some(b.signature.clone()),
        email: Some(b.folder.clone()),
        outcome: outcome.chars().take(500).collect(),
        reasons,
    }
}

/// Writes the answer to `f` and logs it, once per distinct answer.
fn answer(layout: &Layout, f: &Found, status: AnswerStatus, reason: String) {
    let a = Answer {
        uid: f.uid.clone().unwrap_or_default(),
        status,
        reason,
        verdict_sha256: f.sha256.clone(),
        time: metadata::format_naive(&metadata::now_naive()),
    };
    let path = f.answer_path(layout);
    match verdicts::write_answer(&path, &a) {
        Ok(true) if status == AnswerStatus::Refused => {
            log::warn!("verdict file {} refused: {}", f.path.display(), a.reason)
        }
        Ok(true) => log::info!(
            "verdict file {} {}: {}",
            f.path.display(),
            status.as_str(),
            a.reason
        ),
        Ok(false) => {}
        Err(e) => log::error!("could not answer {}: {e}", f.path.display()),
    }
}
