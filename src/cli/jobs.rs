//! The commands about jobs: `hash`, `signature`, `explain`, `rules check`, `jobs`, `decide` and
//! `submit`.

use std::path::{Path, PathBuf};

use super::args::Cli;
use super::common::{layout, resolve_job, term};
use super::demo;
use crate::core::signature;
use crate::error::{Error, Result};
use crate::queue::gate::RulingRequest;
use crate::queue::metadata::Metadata;
use crate::queue::review::Trust;
use crate::queue::{Queue, Status};
use crate::service::decide;
use crate::service::jobs::{self, ListQuery};
use crate::store::audit::Actor;
use crate::syftbox::{Identity, Layout};
use serde_json::Value;

pub(crate) fn hash(files: &[PathBuf]) -> Result<()> {
    for f in files {
        println!("{}  {}", signature::prefixed_file_hash(f)?, f.display());
    }
    Ok(())
}

pub(crate) fn signature(job_dir: &Path) -> Result<()> {
    if !job_dir.join("metadata.json").exists() {
        return Err(Error::invalid(
            format!("{} is not a job folder", job_dir.display()),
            "give the folder of one job (it holds metadata.json and code/), e.g. a folder of the queue's pending/",
        ));
    }
    let m = Metadata::read(job_dir)?;
    let scan = signature::scan_code(&job_dir.join("code"))?;
    for p in &scan.problems {
        eprintln!("warning: {}", term(p));
    }
    println!(
        "{}",
        signature::signature_v1(&m.meta.name, &m.meta.description, &m.meta.tags, &scan.files)
    );
    Ok(())
}

pub(crate) fn explain(
    cli: &Cli,
    job: &str,
    status: Option<Status>,
    json: bool,
    diff: bool,
) -> Result<()> {
    let l = layout(cli)?;
    let dir = resolve_job(&l, job, status)?;
    let r = crate::service::jobs::review(&l, &dir)?;
    let ex = r.explanation();
    let changes = diff
        .then(|| crate::service::diff::diff_dir(&l, &dir))
        .transpose()?;
    if json {
        let mut v = serde_json::to_value(&ex).unwrap_or_default();
        if let (Some(d), Some(o)) = (&changes, v.as_object_mut()) {
            o.insert("diff".into(), serde_json::to_value(d).unwrap_or_default());
        }
        println!("{}", crate::core::visible::json_pretty(&v));
        return Ok(());
    }
    println!(
        "job {} \"{}\" from {}",
        term(ex.uid),
        term(ex.name.unwrap_or("?")),
        term(ex.requester.unwrap_or("?"))
    );
    println!("folder:    {}", term(&ex.path));
    println!("signature: {}", ex.signature.unwrap_or("(none)"));
    println!("would:     {}", ex.would);
    for reason in &ex.reasons {
        println!("  - {}", term(reason));
    }
    if let Some(d) = &changes {
        super::diff::print(d);
    }
    Ok(())
}

pub(crate) fn rules_check(cli: &Cli, job: &str, status: Option<Status>, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let dir = resolve_job(&l, job, status)?;
    let trust = Trust::load(&l)?;
    if let Some(e) = &trust.config_error {
        return Err(Error::invalid("config.yaml cannot be used", e.clone()));
    }
    let ins = crate::queue::inspect(&dir, &l.email);
    let (Some(_), Some(_)) = (&ins.meta, &ins.scan) else {
        return Err(Error::invalid(
            format!("job {job} cannot be checked"),
            ins.problems.join("; "),
        ));
    };
    let checks = crate::queue::review::rules_for(&ins, &trust);
    if json {
        println!("{}", crate::core::visible::json_pretty(&checks));
        return Ok(());
    }
    if checks.is_empty() {
        println!(
            "no rule set is enabled (jobs.enabled is false in {})",
            l.config_file().display()
        );
    }
    for c in &checks {
        println!(
            "rule set {:?}: {}",
            c.name,
            if c.matches() {
                "MATCHES"
            } else {
                "does not match"
            }
        );
        for cond in &c.conditions {
            println!(
                "  [{}] {}",
                if cond.ok { "ok" } else { "no" },
                term(&cond.what)
            );
        }
    }
    for p in ins.problems.iter().chain(&ins.findings.code_doubts) {
        println!(
            "note: the job is flagged, so no rule approves it: {}",
            term(p)
        );
    }
    Ok(())
}

/// `syft-reviewer jobs`: every job of each status, newest first, from the running daemon's
/// index through its local API, or read from the disk when no reviewer runs.
pub(crate) fn jobs(cli: &Cli, status: Option<Status>, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let statuses: Vec<Status> = status
        .map(|s| vec![s])
        .unwrap_or_else(|| Status::ALL.to_vec());
    let mut table = Vec::new();
    for s in statuses {
        for row in listed(&l, s)? {
            if json {
                print_row(&row);
            } else {
                table.push(table_row(&row));
            }
        }
    }
    if !json {
        print_jobs(&table, status);
    }
    Ok(())
}

/// The `jobs` table, each column as wide as its widest cell (uids need not be UUIDs).
fn print_jobs(rows: &[[String; 4]], status: Option<Status>) {
    if rows.is_empty() {
        match status {
            Some(s) => println!("no {s} jobs in the queue"),
            None => println!("no jobs in the queue"),
        }
        return;
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [uid, status, from, name] in rows {
        println!("{uid:<w0$}  {status:<w1$}  {from:<w2$}  {name}");
    }
}

/// The entries of one status, as the API gives them (`view=brief`, page after page) or, without a
/// running reviewer, as the same listing code reads them from the disk.
fn listed(l: &Layout, status: Status) -> Result<Vec<Value>> {
    match from_daemon(l, status) {
        Ok(Some(rows)) => return Ok(rows),
        Ok(None) => {}
        // Worth saying: the listing below may lag what the reviewer sees.
        Err(why) => eprintln!(
            "note: the running reviewer could not list the jobs ({why}); read from the disk instead"
        ),
    }
    let q = ListQuery {
        status,
        ..ListQuery::default()
    };
    let (_, _, rows) = jobs::select(l, None, status, &jobs::filter(&q)?, 0, usize::MAX);
    rows.iter()
        .map(|r| serde_json::to_value(r).map_err(|e| Error::invalid("a job entry", e.to_string())))
        .collect()
}

/// `Ok(None)` when no reviewer runs, `Err` (why) when one runs but could not answer.
fn from_daemon(l: &Layout, status: Status) -> std::result::Result<Option<Vec<Value>>, String> {
    let mut rows = Vec::new();
    let q = crate::remote::query(&[("status", status.as_str())]);
    let running = crate::remote::each_entry(&l.state, &q, |r| rows.push(r.clone()))?;
    Ok(running.then_some(rows))
}

fn fields(r: &Value) -> (String, String, String, String) {
    let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let name = r["name"]
        .as_str()
        .map_or_else(|| "(unreadable metadata)".to_string(), str::to_owned);
    (text("uid"), text("status"), text("requester"), name)
}

fn print_row(r: &Value) {
    let (uid, status, from, name) = fields(r);
    println!(
        "{}",
        crate::core::visible::json_line(&serde_json::json!({
            "uid": uid, "status": status, "name": name, "requester": from,
            "created_at": r["created_at"].as_str().unwrap_or(""),
        }))
    );
}

fn table_row(r: &Value) -> [String; 4] {
    let (uid, status, from, name) = fields(r);
    [
        term(&uid).into_owned(),
        status,
        term(&from).into_owned(),
        term(&name).into_owned(),
    ]
}

pub(crate) fn decide(cli: &Cli, uid: &str, req: RulingRequest) -> Result<()> {
    let l = layout(cli)?;
    let d = decide::decide(&l, &Actor::Cli, uid, &req)?;
    println!(
        "job {} is now {} ({})",
        term(&d.uid),
        d.status,
        d.verdict.as_str()
    );
    Ok(())
}

/// What `submit` writes: a job as a requester's client would.
pub(crate) struct Submission<'a> {
    pub(crate) code: &'a Path,
    pub(crate) from: &'a str,
    pub(crate) to: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) tags: &'a [String],
    /// Sign it as the sender, with this key file or the config's.
    pub(crate) sign: Option<Option<&'a Path>>,
}

pub(crate) fn submit(cli: &Cli, s: Submission<'_>) -> Result<()> {
    let l = layout(cli)?;
    let to = s.to.map_or_else(|| l.email.clone(), str::to_owned);
    let target = Layout::new(&Identity {
        data_dir: l.data_dir.clone(),
        email: crate::core::email::normalize(&to)?,
        source: None,
    });
    // The signer is the sender, in this machine's SyftBox folder (their key and did.json).
    let signer = match s.sign {
        Some(key) => {
            let me = super::common::identity(cli)?;
            let sender = Identity {
                data_dir: me.data_dir,
                email: crate::core::email::normalize(s.from)?,
                source: me.source,
            };
            Some(super::keys::Signer::load(&sender, key)?)
        }
        None => None,
    };
    let signed = std::cell::RefCell::new(None);
    let sign = |dir: &Path| -> Result<()> {
        if let Some(signer) = &signer {
            *signed.borrow_mut() = Some(signer.sign(dir)?);
        }
        Ok(())
    };
    let uid = demo::submit(
        &Queue::new(target.queue),
        s.code,
        s.from,
        &to,
        s.name,
        s.description,
        s.tags,
        Status::Pending,
        Some(&sign),
    )?;
    if let Some(done) = signed.into_inner() {
        eprintln!("signed with {} ({})", done.key, done.fingerprint);
    }
    println!("{uid}");
    Ok(())
}
