//! Peers the owner approves or revokes by hand, and the listing of peers and requests.

use serde::Serialize;

use crate::core::config::Config;
use crate::error::{Error, Result};
use crate::store::audit::{self, Actor};
use crate::store::peers::{self, Approval, Revocation};
use crate::syftbox::Layout;

pub(crate) use crate::store::peers::list;

/// An approval, and why no dataset was shared now if config.yaml could not be read (the running
/// daemon shares them with the config it has in force).
#[derive(Debug)]
pub(crate) struct Approved {
    pub(crate) approval: Approval,
    pub(crate) config_error: Option<Error>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Revoked {
    #[serde(flatten)]
    pub(crate) revocation: Revocation,
    pub(crate) revoked: bool,
}

/// Approves a peer and shares the config's `peers.auto_share_datasets` with them.
pub(crate) fn approve(layout: &Layout, actor: &Actor, input: &str) -> Result<Approved> {
    let _changing = audit::change_lock(layout)?;
    let (config, config_error) = match Config::load(&layout.config_file()) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    let approval = peers::approve(layout, config.as_ref(), input, actor.as_str())?;
    Ok(Approved {
        approval,
        config_error,
    })
}

/// Revokes a peer; `None` when it was not an approved peer.
pub(crate) fn revoke(layout: &Layout, actor: &Actor, input: &str) -> Result<Option<Revoked>> {
    let _changing = audit::change_lock(layout)?;
    Ok(
        peers::revoke(layout, input, actor.as_str())?.map(|revocation| Revoked {
            revocation,
            revoked: true,
        }),
    )
}
