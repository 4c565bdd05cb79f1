//! The owner's verdict on a pending job (approve, reject, request changes), applied by the human
//! gate ([`crate::queue::gate::decide`]).

use crate::daemon::live::Live;
use crate::error::Result;
use crate::queue::gate::{self, Decided, RulingRequest};
use crate::store::audit::Actor;
use crate::syftbox::Layout;

/// A verdict given at this machine's command line (it may name no signature).
pub(crate) fn decide(
    layout: &Layout,
    actor: &Actor,
    uid: &str,
    req: &RulingRequest,
) -> Result<Decided> {
    gate::decide(layout, uid, req, actor, None)
}

/// A verdict sent through the web UI or the MCP server, where what the owner saw must be what
/// is decided: it must name the signature reviewed, and a uid in several status folders is a
/// conflict naming each copy (as for every uid these take). The daemon counts and logs it once
/// the audit chain has it (`daemon::verdicts`), as it does verdicts given in other processes.
pub(crate) fn decide_reviewed(
    layout: &Layout,
    live: &Live,
    actor: &Actor,
    uid: &str,
    req: RulingRequest,
) -> Result<Decided> {
    if req.status.is_none() {
        super::jobs::find(layout, uid, None)?;
    }
    let req = RulingRequest {
        signature_required: true,
        ..req
    };
    let notifier = live.notifier();
    gate::decide(layout, uid, &req, actor, notifier.as_deref())
}
