//! `audit` (verify, show, export, reset the anchor) and `status`.

use std::path::Path;

use serde::Serialize;

use super::args::{AuditCommand, Cli};
use super::common::{layout, term};
use crate::core::config_words::InForce;
use crate::daemon::live::Unexplained;
use crate::error::{Error, Result};
use crate::queue::Status;
use crate::service::status::{self, JobCounts};
use crate::store::audit::AuditLog;
use crate::store::decision_log::{DecisionLog, Record};
use crate::store::lock::InstanceLock;

pub(crate) fn audit(cli: &Cli, cmd: &AuditCommand) -> Result<()> {
    let l = layout(cli)?;
    match cmd {
        AuditCommand::Verify { public_key } => {
            let v = crate::service::audit::verify(&l, public_key.as_deref())?;
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            if !v.valid {
                return Err(Error::invalid("the audit chain does not verify", v.reason));
            }
        }
        AuditCommand::Show => {
            if AuditLog::new(&l).print_verified("") == 0 {
                eprintln!(
                    "the audit chain has no entries yet: decisions and store changes are recorded there"
                );
            }
        }
        AuditCommand::Export { since } => {
            let since = since.as_deref().unwrap_or("");
            if AuditLog::new(&l).print_verified(since) == 0 {
                if since.is_empty() {
                    eprintln!(
                        "the audit chain has no entries yet: decisions and store changes are recorded there"
                    );
                } else {
                    eprintln!("no audit entries since {since}");
                }
            }
        }
        AuditCommand::ResetAnchor { yes } => {
            println!("{}", crate::service::audit::reset_anchor(&l, *yes)?)
        }
    }
    Ok(())
}

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
    allowlisted_senders: usize,
    trusted_code: usize,
    ignored_store_files: &'a [String],
    config_error: &'a Option<String>,
    rule_sets: &'a [String],
    recent_decisions: &'a [Record],
    unexplained_jobs: &'a [Unexplained],
}

pub(crate) fn status(cli: &Cli, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let o = status::overview(&l)?;
    let running = InstanceLock::is_held(&l.state);
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
        "jobs:      {}",
        Status::ALL
            .iter()
            .map(|s| format!("{} {}", o.jobs.get(*s), s))
            .collect::<Vec<_>>()
            .join(", ")
    );
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
