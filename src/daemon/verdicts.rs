//! The owner's verdicts, wherever they were given (the web UI and API in this process, MCP and
//! the command line in others), as the daemon learns of them: from the audit chain, where every
//! verdict is recorded. Each is counted in [`Live`] beside the daemon's own decisions (the one
//! count `/metrics`, `/api/status` and the status line all read) and logged in one line, as the
//! daemon logs its own decisions.

use crate::core::policy::{Disposition, Method};
use crate::daemon::live::Live;
use crate::store::audit::{Actor, AuditEvent, Entry};

/// Takes in one entry appended to the audit chain since the daemon started.
pub(crate) fn note(e: &Entry, live: Option<&Live>) {
    let b = &e.body;
    // The daemon counts and logs its own decisions as it makes them.
    if b.event != AuditEvent::Decision || matches!(b.actor, Actor::Daemon | Actor::Filesystem) {
        return;
    }
    let Some(outcome) = Disposition::parse(&b.outcome).filter(|o| {
        matches!(
            o,
            Disposition::Approved | Disposition::Rejected | Disposition::ChangesRequested
        )
    }) else {
        return;
    };
    if let Some(live) = live {
        live.count_decision(outcome.as_str(), Method::Human.as_str(), None);
    }
    log::info!(
        "{} job {} from {} by the owner ({}): {}",
        outcome.as_str().replace('_', " "),
        b.uid.as_deref().unwrap_or("?"),
        b.email.as_deref().unwrap_or("?"),
        via(&b.actor),
        b.reasons.join("; ")
    );
}

fn via(actor: &Actor) -> &str {
    match actor {
        Actor::Web => "web UI or API",
        Actor::Mcp => "MCP",
        Actor::Cli => "command line",
        other => other.as_str(),
    }
}
