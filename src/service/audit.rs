//! Questions about the audit chain and the decision log: verify, the verified decisions, and
//! the owner's acceptance of the chain as it is (reset of the anchor).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::audit::{self, AuditLog, Resume, Verification};
use crate::store::decision_log::{self, DecisionLog};
use crate::syftbox::Layout;

/// The newest verified decisions, newest first.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Decisions {
    pub(crate) decisions: Vec<decision_log::Record>,
    pub(crate) unverified_lines: u64,
}

/// Verifies the chain, with the public key in `public_key` or else the one beside the chain.
pub(crate) fn verify(layout: &Layout, public_key: Option<&Path>) -> Result<Verification> {
    let key = match public_key {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
            Some(audit::parse_public_key(&text).ok_or_else(|| {
                Error::invalid(
                    format!("{} is not an Ed25519 public key", p.display()),
                    "it should hold ed25519:<64 hex>",
                )
            })?)
        }
    };
    Ok(AuditLog::new(layout).verify(key))
}

/// The newest `limit` lines of the decision log that verify against the audit chain (the log
/// sits in the datasite, where anyone with write access could add lines).
pub(crate) fn decisions(layout: &Layout, limit: usize) -> Decisions {
    let mut t = DecisionLog::new(layout).tail_verified(limit);
    t.entries.reverse();
    Decisions {
        decisions: t.entries,
        unverified_lines: t.unverified_lines,
    }
}

/// Accepts the chain as it is now after a rollback or deletion the owner knows about.
pub(crate) fn reset_anchor(layout: &Layout, confirmed: bool) -> Result<String> {
    AuditLog::new(layout).reset_anchor_confirmed(confirmed)
}

/// Length and modification time of a file.
type Stamp = Option<(u64, Option<SystemTime>)>;

/// The last verification of a chain, redone only when the chain or its checkpoint changed (the
/// web UI asks every few seconds, and a full check of a long chain is not free); when the chain
/// grew, only what was appended is checked.
#[derive(Debug, Default)]
pub(crate) struct CachedVerification {
    last: Mutex<(Stamp, Stamp, Option<Verification>, Option<Resume>)>,
}

impl CachedVerification {
    pub(crate) fn get(&self, layout: &Layout) -> Verification {
        let log = AuditLog::new(layout);
        let stamp = |p: PathBuf| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        };
        let key = (stamp(log.chain_path()), stamp(log.checkpoint_path()));
        let mut cache = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (chain, checkpoint, last, resume) = &mut *cache;
        if let Some(v) = last
            && (*chain, *checkpoint) == key
        {
            return v.clone();
        }
        let v = log.verify_resuming(None, resume);
        (*chain, *checkpoint) = key;
        *last = Some(v.clone());
        v
    }
}
