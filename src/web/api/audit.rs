//! `/api/status`, `/api/v1/audit/verify` and `/api/v1/decisions`: what the reviewer is doing
//! and what it recorded.

use serde::Serialize;

use super::answer::{Answer, Call, Ctx, ok};
use crate::daemon::live::Unexplained;
use crate::service::jobs::Source;
use crate::service::status::JobCounts;
use crate::service::{audit, status};
use crate::store::audit::Verification;
use crate::syftbox::Layout;

#[derive(Serialize)]
struct Watcher {
    healthy: bool,
    last_event: Option<String>,
    last_error: Option<String>,
    rescans: u64,
    events: u64,
}

/// `/api/status`: the status report with the running daemon's live state.
#[derive(Serialize)]
struct Report<'a> {
    owner: &'a str,
    datasite: &'a std::path::Path,
    version: &'static str,
    uptime_seconds: u64,
    jobs: JobCounts,
    /// Where `jobs` was counted: the daemon's index, or the status folders while it is not built.
    jobs_source: Source,
    waiting: usize,
    flagged: usize,
    approved_since_start: u64,
    allowlisted_senders: usize,
    trusted_code: usize,
    watcher: Watcher,
    ignored_store_files: Vec<String>,
    config_error: Option<String>,
    /// The daemon's rules in force, which outlive an invalid edit of config.yaml.
    rule_sets: Vec<String>,
    audit: Verification,
    /// Jobs in approved/ or running/ that no decision explains (reported, left as they are).
    unexplained_jobs: Vec<Unexplained>,
    status_permission_restores: u64,
}

pub(crate) fn status(ctx: &Ctx, _: &Call) -> Answer {
    let counts = ctx.live.job_counts();
    let jobs_source = match counts {
        Some(_) => Source::Index,
        None => Source::Disk,
    };
    let o = status::overview_with(&ctx.layout, counts)?;
    let s = ctx.live.snapshot();
    let integrity = ctx.live.integrity();
    let layout: &Layout = &ctx.layout;
    ok(Report {
        owner: &layout.email,
        datasite: &layout.datasite,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: ctx.live.started.elapsed().as_secs(),
        jobs: o.jobs,
        jobs_source,
        waiting: s.waiting,
        flagged: s.flagged,
        approved_since_start: ctx.live.approved(),
        allowlisted_senders: o.allowlisted_senders,
        trusted_code: o.trusted_code,
        watcher: Watcher {
            healthy: s.watcher_healthy,
            last_event: s.last_event,
            last_error: s.last_error,
            rescans: s.rescans,
            events: s.events,
        },
        ignored_store_files: o.ignored_store_files,
        // The daemon's words say what it has in force; the file's alone cannot.
        config_error: s.config_error.or(o.config_error),
        rule_sets: s.rule_sets,
        audit: ctx.audit.get(layout),
        unexplained_jobs: integrity.unexplained_jobs,
        status_permission_restores: integrity.permission_restores,
    })
}

pub(crate) fn verify(ctx: &Ctx, _: &Call) -> Answer {
    ok(audit::verify(&ctx.layout, None)?)
}

pub(crate) fn decisions(ctx: &Ctx, call: &Call) -> Answer {
    let limit = call.query.number("limit")?.unwrap_or(100).min(10_000);
    ok(audit::decisions(&ctx.layout, limit))
}
