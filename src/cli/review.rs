//! The reviewer's side of reviewer groups, on the reviewer's own machine: `review --owner EMAIL`
//! lists the owner's pending jobs synced to them, `explain`s one, and `decide`s by writing the
//! verdict file into the owner's `verdicts/<own email>/` folder (attested with the reviewer's
//! identity key when they have one), then shows the owner's answer once it is synced back.

use std::path::PathBuf;

use super::args::{Cli, ReviewCommand};
use super::common::{identity, term};
use crate::core::email;
use crate::core::groups::{self, VerdictClaim, Vote};
use crate::durable;
use crate::error::{Error, Result};
use crate::queue::{self, Inspection, Queue, Status};
use crate::store::identity as keys;
use crate::store::verdicts::{self, VerdictFile};
use crate::syftbox::{Identity, Layout};

pub(crate) fn review(cli: &Cli, owner: &str, cmd: &ReviewCommand) -> Result<()> {
    let me = identity(cli)?;
    let owner = email::normalize(owner)?;
    let mine = email::normalize(&me.email)?;
    let owner_layout = Layout::new(&Identity {
        data_dir: me.data_dir.clone(),
        email: owner.clone(),
        source: None,
    });
    let queue = Queue::new(owner_layout.queue.clone());
    match cmd {
        ReviewCommand::List { json } => list(&me, &owner, &mine, &queue, *json),
        ReviewCommand::Explain { uid, json } => {
            let ins = pending(&queue, &owner, uid)?;
            explain(&me, &owner, &mine, &ins, *json)
        }
        ReviewCommand::Decide {
            uid,
            verdict,
            rationale,
            signature,
        } => {
            let ins = pending(&queue, &owner, uid)?;
            decide(
                &me,
                &owner,
                &mine,
                &ins,
                verdict,
                rationale.as_deref(),
                signature.as_deref(),
            )
        }
    }
}

/// The owner's pending job `uid`, as synced here.
fn pending(queue: &Queue, owner: &str, uid: &str) -> Result<Inspection> {
    if !queue::is_valid_uid(uid) {
        return Err(Error::invalid(
            format!("{uid:?} is not a job uid"),
            "give a uid from `syft-reviewer review --owner EMAIL list`",
        ));
    }
    let dir = queue.job_dir(Status::Pending, uid);
    if !dir.is_dir() {
        return Err(Error::not_found(
            format!("pending job {uid} of {owner}"),
            "it is decided, or not synced to you (yet): the owner's reviewer grants reviewers read access to pending jobs",
        ));
    }
    Ok(queue::inspect(&dir, owner))
}

fn answer_of(me: &Identity, owner: &str, mine: &str, uid: &str) -> Option<verdicts::Answer> {
    let path = verdicts::owner_dir(&me.data_dir, owner)
        .join(mine)
        .join(verdicts::ANSWERS)
        .join(format!("{uid}.json"));
    verdicts::read_answer(&path)
}

fn list(me: &Identity, owner: &str, mine: &str, queue: &Queue, json: bool) -> Result<()> {
    let uids = queue.list(Status::Pending);
    for uid in &uids {
        let ins = queue::inspect(&queue.job_dir(Status::Pending, uid), owner);
        let answer = answer_of(me, owner, mine, uid);
        if json {
            let line = serde_json::json!({
                "uid": uid,
                "name": ins.name(),
                "requester": ins.requester(),
                "signature": ins.signature,
                "answer": answer,
            });
            println!("{line}");
            continue;
        }
        println!(
            "{}  {:?} from {}  {}",
            term(uid),
            term(ins.name().unwrap_or("?")),
            term(ins.requester().unwrap_or("?")),
            answer
                .map(|a| format!(
                    "[your verdict: {} ({})]",
                    a.status.as_str(),
                    term(&a.reason)
                ))
                .unwrap_or_else(|| "[no verdict from you]".into())
        );
    }
    if uids.is_empty() && !json {
        println!(
            "no pending job of {owner} is synced to you ({})",
            queue.status_dir(Status::Pending).display()
        );
    }
    Ok(())
}

fn explain(me: &Identity, owner: &str, mine: &str, ins: &Inspection, json: bool) -> Result<()> {
    let answer = answer_of(me, owner, mine, &ins.uid);
    if json {
        let files: Vec<_> = ins
            .scan
            .iter()
            .flat_map(|s| &s.files)
            .map(|f| serde_json::json!({"path": f.path, "sha256": f.sha256}))
            .collect();
        let v = serde_json::json!({
            "uid": ins.uid, "path": ins.dir, "name": ins.name(), "requester": ins.requester(),
            "signature": ins.signature, "files": files, "problems": ins.problems,
            "code_doubts": ins.findings.code_doubts, "answer": answer,
        });
        println!("{}", crate::core::visible::json_pretty(&v));
        return Ok(());
    }
    println!(
        "job {} \"{}\" from {} to {owner}",
        term(&ins.uid),
        term(ins.name().unwrap_or("?")),
        term(ins.requester().unwrap_or("?"))
    );
    println!("folder:    {}", term(&ins.dir.display().to_string()));
    println!(
        "signature: {}",
        ins.signature.as_deref().unwrap_or("(none)")
    );
    for f in ins.scan.iter().flat_map(|s| &s.files) {
        println!("  sha256:{}  {}", f.sha256, term(&f.path));
    }
    for p in ins.problems.iter().chain(&ins.findings.code_doubts) {
        println!("  ! {}", term(p));
    }
    match answer {
        Some(a) => println!("your verdict: {} ({})", a.status.as_str(), term(&a.reason)),
        None => println!(
            "your verdict: none yet (syft-reviewer review --owner {owner} decide {} approve|reject|request-changes)",
            term(&ins.uid)
        ),
    }
    Ok(())
}

fn decide(
    me: &Identity,
    owner: &str,
    mine: &str,
    ins: &Inspection,
    verdict: &str,
    rationale: Option<&str>,
    seen: Option<&str>,
) -> Result<()> {
    let vote = Vote::parse(verdict).ok_or_else(|| {
        Error::invalid(
            format!("unknown verdict {verdict:?}"),
            "use approve, reject or request-changes",
        )
    })?;
    let Some(signature) = ins.signature.clone() else {
        return Err(Error::invalid(
            format!(
                "job {} has no signature: its code is not synced in full",
                ins.uid
            ),
            ins.problems.join("; "),
        ));
    };
    if let Some(seen) = seen.filter(|s| *s != signature) {
        return Err(Error::Conflict {
            what: format!("job {} changed since you looked at it ({seen})", ins.uid),
            hint: format!("its signature is now {signature}; look at it again before deciding"),
        });
    }
    let rationale = rationale.map(str::trim).filter(|r| !r.is_empty());
    if vote != Vote::Approve && rationale.is_none() {
        return Err(Error::invalid(
            format!(
                "a rationale is required to {}",
                vote.as_str().replace('_', " ")
            ),
            "say what is wrong with --rationale TEXT, so the requester knows what to fix",
        ));
    }
    let claim = VerdictClaim {
        owner,
        reviewer: mine,
        uid: &ins.uid,
        signature: &signature,
        verdict: vote,
        rationale: rationale.unwrap_or(""),
    };
    let (attestation, how) = attest(me, &claim);
    let file = VerdictFile {
        verdict: vote.as_str().into(),
        rationale: rationale.map(str::to_owned),
        signature: signature.clone(),
        reviewer: Some(mine.to_string()),
        attestation,
    };
    let path: PathBuf = verdicts::verdict_path(&me.data_dir, owner, mine, &ins.uid);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create folder", parent, e))?;
    }
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    durable::write_atomic(&path, text.as_bytes(), 0o644)?;
    println!(
        "wrote your verdict ({}) on job {} (signature {signature}) to {}; {how}",
        vote.as_str(),
        term(&ins.uid),
        path.display()
    );
    println!(
        "SyftBox syncs it to {owner}, whose reviewer answers in {}",
        path.with_file_name(verdicts::ANSWERS).display()
    );
    Ok(())
}

/// An attestation made with the reviewer's identity key, when they have a published one.
fn attest(
    me: &Identity,
    claim: &VerdictClaim<'_>,
) -> (Option<crate::core::attestation::Attestation>, String) {
    let Ok(key) = keys::read_private(&super::keys::key_path(me, None)) else {
        return (
            None,
            "not attested: you have no identity key (`syft-reviewer keys init`)".into(),
        );
    };
    let did = keys::did_path(&me.data_dir, claim.reviewer);
    match keys::read_published(&did) {
        Ok(p) if p.public == key.verifying_key().to_bytes() => (
            Some(groups::sign_verdict(&key, &p.key_id, claim)),
            format!(
                "attested with {}",
                crate::core::attestation::fingerprint(&p.public)
            ),
        ),
        Ok(_) => (
            None,
            "not attested: your private key is not the one published in your did.json".into(),
        ),
        Err(e) => (None, format!("not attested: {e}")),
    }
}
