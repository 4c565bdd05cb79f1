//! The audit chain's private anchor (`audit-anchor.json` in the private state folder, 0600): the
//! identity of the chain (the hash of its first entry), how many entries it had at the last
//! append and the hash of the last one.
//!
//! The chain and its checkpoint sit in the datasite, where whoever can write the owner's files (a
//! restored backup, the sync server, a mistaken `rm`) can put back an older, fully valid pair or
//! remove both. Signatures cannot tell an old valid chain from the current one; the anchor can,
//! because it is rewritten durably after every append and lives where nothing else writes.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Actor, AuditEvent, AuditLog, Entry, Event, GENESIS, Verification};
use crate::durable;
use crate::error::{Error, Result};
use crate::store::audit::chain::last_complete_line;
use crate::store::lock::StoreLock;

pub const FILE_NAME: &str = "audit-anchor.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// Hash of entry 0: which chain this is.
    pub chain_id: String,
    /// Entries acknowledged so far (the next entry gets this seq).
    pub entries: u64,
    /// Hash of entry `entries - 1`.
    pub head: String,
}

/// How the chain disagrees with its anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tamper {
    /// Chain and checkpoint are gone although the anchor vouches for entries.
    Deleted { anchored: u64 },
    /// Fewer entries than the anchor vouches for: an older copy was restored, or the tail cut.
    RolledBack { anchored: u64, remaining: u64 },
    /// The entry the anchor vouches for is not the one in the chain: another chain, or history
    /// rewritten and re-signed.
    Replaced { at: u64 },
    /// The anchor itself cannot be read.
    Unreadable { why: String },
}

impl Tamper {
    pub fn describe(&self) -> String {
        match self {
            Tamper::Deleted { anchored } => format!(
                "the audit chain was deleted: audit/chain.jsonl and audit/checkpoint.json are gone, but the private anchor vouches for {anchored} entries"
            ),
            Tamper::RolledBack {
                anchored,
                remaining,
            } => format!(
                "the audit chain was rolled back: the private anchor vouches for {anchored} entries, the chain holds {remaining} (an older copy of chain.jsonl and checkpoint.json was restored, or its newest entries were cut off)"
            ),
            Tamper::Replaced { at } => format!(
                "the audit chain was replaced: entry {at} is not the one the private anchor vouches for (another chain, or history rewritten)"
            ),
            Tamper::Unreadable { why } => format!("the private audit anchor is unreadable: {why}"),
        }
    }

    /// Why an append is refused, and how the owner gets going again.
    pub fn refusal(&self) -> Error {
        Error::invalid(
            format!(
                "{}; nothing more is recorded until the owner decides",
                self.describe()
            ),
            "restore the newest chain.jsonl and checkpoint.json from a backup, or accept the chain as it is now with `syft-reviewer audit reset-anchor --yes` (recorded in the chain)",
        )
    }
}

pub fn path(state: &Path) -> PathBuf {
    state.join(FILE_NAME)
}

/// The anchor, `None` before the first append of this version.
pub fn load(state: &Path) -> std::result::Result<Option<Anchor>, Tamper> {
    let p = path(state);
    match durable::read_capped(&p, 1 << 12) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Tamper::Unreadable {
                why: format!("{}: {e}", p.display()),
            }),
        Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(Tamper::Unreadable { why: e.to_string() }),
    }
}

pub fn store(state: &Path, a: &Anchor) -> Result<()> {
    let mut sync = durable::Sync::batch();
    store_with(state, a, &mut sync)?;
    sync.commit()
}

/// [`store`], leaving the fsyncs to `sync` (an append makes the checkpoint and the anchor
/// durable together, after the chain itself).
pub fn store_with(state: &Path, a: &Anchor, sync: &mut durable::Sync) -> Result<()> {
    durable::ensure_private_dir(state, 0o700)?;
    let body = serde_json::to_vec(a).expect("anchors serialize");
    durable::write_atomic_with(&path(state), &body, 0o600, sync)
}

pub fn remove(state: &Path) -> Result<()> {
    let p = path(state);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", &p, e)),
        _ => durable::fsync_dir(state),
    }
}

/// Compares a chain of `n` entries with `anchor`; `hash_at(i)` gives the hash of entry `i`.
pub fn compare(anchor: &Anchor, n: u64, hash_at: impl Fn(u64) -> Option<String>) -> Option<Tamper> {
    if anchor.entries == 0 {
        return None;
    }
    if n == 0 {
        return Some(Tamper::Deleted {
            anchored: anchor.entries,
        });
    }
    if hash_at(0).as_deref() != Some(anchor.chain_id.as_str()) {
        return Some(Tamper::Replaced { at: 0 });
    }
    if n < anchor.entries {
        return Some(Tamper::RolledBack {
            anchored: anchor.entries,
            remaining: n,
        });
    }
    let at = anchor.entries - 1;
    if hash_at(at).as_deref() != Some(anchor.head.as_str()) {
        return Some(Tamper::Replaced { at });
    }
    None
}

/// The `hash` of line `i` of the chain at `chain`, read line by line up to it.
pub fn hash_of_line(chain: &Path, i: u64) -> Option<String> {
    #[derive(Deserialize)]
    struct Hash {
        hash: String,
    }
    let f = std::fs::File::open(chain).ok()?;
    let line = BufReader::new(f)
        .split(b'\n')
        .nth(usize::try_from(i).ok()?)?
        .ok()?;
    serde_json::from_slice::<Hash>(&line).ok().map(|h| h.hash)
}

impl AuditLog {
    /// Entries and head hash of the chain as it is, without repairing anything.
    fn head_now(&self) -> Result<(u64, String)> {
        let path = self.chain_path();
        match last_complete_line(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((0, GENESIS.to_string())),
            Err(e) => Err(Error::io("read", &path, e)),
            Ok((None, ..)) => Ok((0, GENESIS.to_string())),
            Ok((Some(l), ..)) => serde_json::from_slice::<Entry>(&l)
                .map(|e| (e.seq.saturating_add(1), e.hash))
                .map_err(|e| {
                    Error::invalid(
                        format!("the last entry of {} is not readable ({e})", path.display()),
                        "run `syft-reviewer audit verify` to find the damage",
                    )
                }),
        }
    }

    fn hash_at(&self, i: u64, count: u64, head: &str) -> Option<String> {
        if i.checked_add(1) == Some(count) {
            return Some(head.to_string());
        }
        hash_of_line(&self.chain_path(), i)
    }

    /// The anchor an append of a chain with `count` entries ending in `head` may extend; refuses
    /// a chain that was rolled back, deleted or replaced, so it never silently starts over.
    pub(super) fn anchor_for_append(&self, count: u64, head: &str) -> Result<Option<Anchor>> {
        let anchor = load(&self.state).map_err(|t| t.refusal())?;
        if let Some(a) = &anchor {
            // The usual case: the anchor was written by the last append.
            if a.entries == count && a.head == head {
                return Ok(anchor);
            }
            if let Some(t) = compare(a, count, |i| self.hash_at(i, count, head)) {
                return Err(t.refusal());
            }
        }
        Ok(anchor)
    }

    /// Moves the anchor to the end of `appended`, the entries just written after `count` others
    /// (durable once `sync` commits).
    pub(super) fn advance_anchor(
        &self,
        anchored: Option<Anchor>,
        count: u64,
        appended: &[Entry],
        sync: &mut durable::Sync,
    ) -> Result<()> {
        let Some(last) = appended.last() else {
            return Ok(());
        };
        let chain_id = match anchored {
            Some(a) if a.entries > 0 => a.chain_id,
            _ if count == 0 => appended[0].hash.clone(),
            // First append of a version with anchors: the chain as it is becomes the reference.
            _ => hash_of_line(&self.chain_path(), 0).unwrap_or_default(),
        };
        store_with(
            &self.state,
            &Anchor {
                chain_id,
                entries: last.seq.saturating_add(1),
                head: last.hash.clone(),
            },
            sync,
        )
    }

    /// `v` (a verification by signatures) failed when the chain is not the one the anchor knows.
    pub(super) fn against_anchor(&self, v: Verification, head: Option<&str>) -> Verification {
        if !v.valid {
            return v;
        }
        let tamper = match load(&self.state) {
            Err(t) => Some(t),
            Ok(None) => None,
            Ok(Some(a)) => compare(&a, v.entries, |i| match head {
                Some(h) if i.checked_add(1) == Some(v.entries) => Some(h.to_string()),
                _ => hash_of_line(&self.chain_path(), i),
            }),
        };
        match tamper {
            None => v,
            Some(t) => Verification {
                valid: false,
                entries: v.entries,
                first_break: Some(match t {
                    Tamper::Replaced { at } => at,
                    _ => v.entries,
                }),
                reason: format!(
                    "{}; if this is expected, accept it with `syft-reviewer audit reset-anchor --yes`",
                    t.describe()
                ),
            },
        }
    }

    /// Whether an append would be accepted now (the chain still extends its anchor).
    pub fn appendable(&self) -> Result<()> {
        let Some(a) = load(&self.state).map_err(|t| t.refusal())? else {
            return Ok(());
        };
        let (count, head) = self.head_now()?;
        if a.entries == count && a.head == head {
            return Ok(());
        }
        match compare(&a, count, |i| self.hash_at(i, count, &head)) {
            Some(t) => Err(t.refusal()),
            None => Ok(()),
        }
    }

    /// [`AuditLog::reset_anchor`] by the owner at the command line, who must confirm.
    pub fn reset_anchor_confirmed(&self, yes: bool) -> Result<String> {
        if !yes {
            return Err(Error::invalid(
                "resetting the anchor accepts the audit chain as it is now, even if it was rolled back or deleted",
                "run `syft-reviewer audit verify` first, then `syft-reviewer audit reset-anchor --yes`",
            ));
        }
        self.reset_anchor(Actor::Cli)
    }

    /// The signing key if it exists (never creates one).
    pub fn existing_signing_key(&self) -> Option<ed25519_dalek::SigningKey> {
        let bytes = durable::read_capped(&self.state.join(super::KEY_FILE), 4096).ok()?;
        crate::store::audit::keys::unhex::<32>(&String::from_utf8_lossy(&bytes))
            .map(|s| ed25519_dalek::SigningKey::from_bytes(&s))
    }

    /// Accepts the chain as it is now (after a rollback, deletion or replacement the owner
    /// knows about) and records that in the chain itself. Returns what was accepted.
    pub fn reset_anchor(&self, actor: Actor) -> Result<String> {
        let v = self.verify_signed(None, &mut None);
        if !v.valid {
            return Err(Error::invalid(
                format!(
                    "the audit chain does not verify by its signatures: {}",
                    v.reason
                ),
                "only a chain whose entries are intact can be accepted; restore it from a backup",
            ));
        }
        let before = load(&self.state).ok().flatten();
        let accepted = {
            let _guard = StoreLock::acquire(&self.state, "audit")?;
            let (count, head) = self.head_now()?;
            let what = before
                .as_ref()
                .and_then(|a| compare(a, count, |i| self.hash_at(i, count, &head)))
                .map_or_else(
                    || "the chain already matched its anchor".to_string(),
                    |t| t.describe(),
                );
            if count == 0 {
                remove(&self.state)?;
            } else {
                store(
                    &self.state,
                    &Anchor {
                        chain_id: hash_of_line(&self.chain_path(), 0).unwrap_or_default(),
                        entries: count,
                        head,
                    },
                )?;
            }
            format!("the owner accepted the chain as it is ({count} entries): {what}")
        };
        let mut reasons = vec![accepted.clone()];
        if let Some(a) = before {
            reasons.push(format!(
                "the previous anchor vouched for {} entries ending in {}",
                a.entries, a.head
            ));
        }
        self.append(&[Event {
            event: AuditEvent::AnchorReset,
            actor,
            outcome: "changed".into(),
            reasons,
            ..Event::default()
        }])?;
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(entries: u64) -> Anchor {
        Anchor {
            chain_id: "h0".into(),
            entries,
            head: format!("h{}", entries - 1),
        }
    }

    fn log() -> (tempfile::TempDir, AuditLog) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = crate::syftbox::Layout::new(&crate::syftbox::Identity {
            data_dir: tmp.path().to_path_buf(),
            email: "o@x.org".into(),
            source: None,
        });
        std::fs::create_dir_all(&layout.app_data).unwrap();
        (tmp, AuditLog::new(&layout))
    }

    fn ev() -> Event {
        Event {
            event: "decision".into(),
            actor: "daemon".into(),
            outcome: "approved".into(),
            ..Event::default()
        }
    }

    #[test]
    fn rollback_and_deletion_are_refused_until_reset() {
        let (_t, log) = log();
        log.append(&[ev(), ev()]).unwrap();
        let old = (
            std::fs::read(log.chain_path()).unwrap(),
            std::fs::read(log.checkpoint_path()).unwrap(),
        );
        log.append(&[ev()]).unwrap();
        assert!(log.verify(None).valid);
        std::fs::write(log.chain_path(), &old.0).unwrap();
        std::fs::write(log.checkpoint_path(), &old.1).unwrap();
        let v = log.verify(None);
        assert!(!v.valid && v.reason.contains("rolled back"), "{v:?}");
        assert!(log.append(&[ev()]).is_err());
        assert!(log.appendable().is_err());
        std::fs::remove_file(log.chain_path()).unwrap();
        std::fs::remove_file(log.checkpoint_path()).unwrap();
        let v = log.verify(None);
        assert!(!v.valid && v.reason.contains("deleted"), "{v:?}");
        assert!(log.append(&[ev()]).is_err(), "no silent fresh chain");
        log.reset_anchor(Actor::Cli).unwrap();
        let v = log.verify(None);
        assert!(v.valid, "{v:?}");
        assert_eq!(log.entries()[0].body.event, "audit.anchor_reset");
        log.append(&[ev()]).unwrap();
        assert!(log.verify(None).valid);
    }

    #[test]
    fn comparisons() {
        let hashes = |n: u64| move |i: u64| (i < n).then(|| format!("h{i}"));
        assert_eq!(compare(&a(3), 3, hashes(3)), None);
        assert_eq!(compare(&a(3), 5, hashes(5)), None, "appended after");
        assert_eq!(
            compare(&a(3), 2, hashes(2)),
            Some(Tamper::RolledBack {
                anchored: 3,
                remaining: 2
            })
        );
        assert_eq!(
            compare(&a(3), 0, hashes(0)),
            Some(Tamper::Deleted { anchored: 3 })
        );
        let other = |i: u64| Some(format!("x{i}"));
        assert_eq!(compare(&a(3), 4, other), Some(Tamper::Replaced { at: 0 }));
        let forked = |i: u64| Some(if i < 2 { format!("h{i}") } else { "y".into() });
        assert_eq!(compare(&a(3), 4, forked), Some(Tamper::Replaced { at: 2 }));
    }
}
