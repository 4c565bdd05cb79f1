//! The private state file (`peers.json` in the state folder): who was approved or revoked, by
//! whom, and which grants this app added, so nothing is done twice and revoking undoes exactly
//! what was done.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::durable;
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::peers::folders::FILE_MODE;
use crate::syftbox::Layout;

fn state_path(layout: &Layout) -> PathBuf {
    layout.state.join("peers.json")
}

pub(super) fn now() -> String {
    metadata::format_naive(&metadata::now_naive())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerStatus {
    Approved,
    Revoked,
}

/// One read grant on a dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub at: String,
    /// True when syft-reviewer added the grant (and so removes it on revocation); false when
    /// the peer could already read the folder.
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub status: PeerStatus,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    /// Dataset folder (relative to the datasite) -> its grant.
    #[serde(default)]
    pub shared: BTreeMap<String, Share>,
}

/// What was done for whom, keyed by the peer's email.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub peers: BTreeMap<String, PeerRecord>,
}

impl State {
    pub fn load(layout: &Layout) -> Result<State> {
        let path = state_path(layout);
        match durable::read_capped(&path, 64 << 20) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(
                    format!("{} is not a valid peer state file ({e})", path.display()),
                    "restore it from a backup; without it syft-reviewer forgets which grants it added and which peers were revoked",
                )
            }),
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => Ok(State::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the state file (private to the owner).
    pub(super) fn save(&self, layout: &Layout) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("the state serializes");
        durable::write_atomic(&state_path(layout), text.as_bytes(), FILE_MODE)
    }

    /// The emails of the peers whose record passes `keep`.
    pub(super) fn emails_where(&self, keep: impl Fn(&str, &PeerRecord) -> bool) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(m, r)| keep(m, r))
            .map(|(m, _)| m.clone())
            .collect()
    }

    pub(super) fn is_approved(&self, mail: &str) -> bool {
        self.peers
            .get(mail)
            .is_some_and(|r| r.status == PeerStatus::Approved)
    }
}
