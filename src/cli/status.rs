//! `status`: the paths, the job counts, whether the daemon runs and the recent decisions. The
//! counts come from the running reviewer's index (its `/api/status`), else from the disk.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::args::Cli;
use super::common::{layout, term};
use crate::core::config_words::InForce;
use crate::daemon::live::Unexplained;
use crate::error::Result;
use crate::queue::Status;
use crate::service::jobs::Source;
use crate::service::status::{self, JobCounts};
use crate::store::decision_log::{DecisionLog, Record};
use crate::store::lock::InstanceLock;
use crate::syftbox::Layout;

/// `status --json`: the status report with what only this machine's command line knows.
#[derive(Serialize)]
struct Report<'a> {
    owner: &'a str,
    datasite: &'a Path,
    queue: &'a Path,
    app_data: &'a Path,
    state: &'a Path,
    daemon_running: bool,
    jobs: &'a JobCounts,
    /// Where the counts come from: the running reviewer's index, or the status folders.
    jobs_source: Source,
    /// Pending jobs waiting for the owner, and those flagged (apart), by the running reviewer's
    /// reviews (`null` when no reviewer answers: only its reviews know).
    waiting: Option<usize>,
    flagged: Option<usize>,
    allowlisted_senders: usize,
    trusted_code: usize,
    ignored_store_files: &'a [String],
    config_error: &'a Option<String>,
    rule_sets: &'a [String],
    recent_decisions: &'a [Record],
    unexplained_jobs: &'a [Unexplained],
}

/// What the running reviewer says of its queue.
struct Counted {
    counts: Vec<(Status, usize)>,
    source: Source,
    waiting: usize,
    flagged: usize,
}

/// The running reviewer's counts, or `None` when none answers (with a note when one runs but
/// could not answer: the counts then come from the disk).
fn from_daemon(l: &Layout) -> Option<Counted> {
    let v = match crate::remote::ask(&l.state, "/api/status") {
        Ok(v) => v?,
        Err(why) => {
            eprintln!(
                "note: the running reviewer could not give its counts ({why}); counted on the disk instead"
            );
            return None;
        }
    };
    let count = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    let counts = Status::ALL
        .iter()
        .map(|s| Some((*s, count(&v["jobs"][s.as_str()])?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Counted {
        counts,
        // A reviewer that does not say (an older one) counted its folders.
        source: match v["jobs_source"].as_str() {
            Some("index") => Source::Index,
            _ => Source::Disk,
        },
        waiting: count(&v["waiting"])?,
        flagged: count(&v["flagged"])?,
    })
}

pub(crate) fn status(cli: &Cli, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let running = InstanceLock::is_held(&l.state);
    let daemon = running.then(|| from_daemon(&l)).flatten();
    let (counts, source) = match &daemon {
        Some(d) => (Some(d.counts.clone()), d.source),
        None => (None, Source::Disk),
    };
    let o = status::overview_with(&l, counts)?;
    let recent = DecisionLog::new(&l).tail(5);
    let unexplained = crate::daemon::bypass::unexplained_now(&l);
    if json {
        let report = Report {
            owner: &l.email,
            datasite: &l.datasite,
            queue: &l.queue,
            app_data: &l.app_data,
            state: &l.state,
            daemon_running: running,
            jobs: &o.jobs,
            jobs_source: source,
            waiting: daemon.as_ref().map(|d| d.waiting),
            flagged: daemon.as_ref().map(|d| d.flagged),
            allowlisted_senders: o.allowlisted_senders,
            trusted_code: o.trusted_code,
            ignored_store_files: &o.ignored_store_files,
            config_error: &o.config_error,
            rule_sets: &o.rule_sets,
            recent_decisions: &recent,
            unexplained_jobs: &unexplained,
        };
        println!("{}", crate::core::visible::json_pretty(&report));
        return Ok(());
    }
    println!("owner:     {}", l.email);
    println!("datasite:  {}", l.datasite.display());
    println!("queue:     {}", l.queue.display());
    println!("app data:  {}", l.app_data.display());
    println!(
        "daemon:    {}",
        if running { "running" } else { "not running" }
    );
    println!(
        "jobs:      {} ({})",
        Status::ALL
            .iter()
            .map(|s| format!("{} {}", o.jobs.get(*s), s))
            .collect::<Vec<_>>()
            .join(", "),
        match source {
            Source::Index => "from the running reviewer's index",
            Source::Disk => "counted on the disk",
        }
    );
    if let Some(d) = &daemon {
        println!(
            "waiting:   {} for your verdict, {} flagged",
            d.waiting, d.flagged
        );
    }
    println!(
        "trust:     {} allowlisted sender(s), {} trusted code pattern(s)",
        o.allowlisted_senders, o.trusted_code
    );
    println!(
        "rules:     {}",
        if o.config_error.is_some() {
            if running {
                "as the running daemon read them before config.yaml became invalid (the defaults if it started with the invalid file)"
            } else {
                "the defaults (config.yaml is invalid): no rule set approves jobs"
            }
            .to_string()
        } else if o.rule_sets.is_empty() {
            "off".to_string()
        } else {
            o.rule_sets.join(", ")
        }
    );
    if let Some(e) = &o.config_error {
        // Only the running daemon knows whether it read a valid config before.
        let e = match running {
            true => e.replace(
                InForce::Defaults.words(),
                "the running daemon keeps the config it read before (the defaults, if it started with this file)",
            ),
            false => e.clone(),
        };
        println!("warning:   {e}");
    }
    for bad in &o.ignored_store_files {
        println!("warning:   ignored {bad}");
    }
    for u in &unexplained {
        println!(
            "ALERT:     job {} is in {}/ but {} (left as it is; find out who put it there)",
            u.uid.escape_debug(),
            u.status,
            u.why.escape_debug()
        );
    }
    for d in recent {
        println!(
            "recent:    {} {} {} ({})",
            term(&d.time),
            term(d.outcome.as_str()),
            term(&d.uid),
            term(&d.reasons.first().cloned().unwrap_or_default())
        );
    }
    Ok(())
}
