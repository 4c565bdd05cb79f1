//! The audit chain (`audit/chain.jsonl` in the app data folder): every decision and every change
//! to the allowlist, trusted code and config, as signed, hash-linked JSON lines.
//!
//! Each entry carries `prev` (the previous entry's hash; a fixed genesis value first), `hash`
//! (SHA-256 of the canonical entry without `hash` and `sig`, so it covers `seq` and `prev`) and
//! `sig` (Ed25519 over the hash's hex text). A signed checkpoint beside the chain (`size` and the
//! head `hash`) is rewritten after every append, so cutting off the newest entries is detected
//! too. The signing key lives in the private state folder; the public key is published beside the
//! chain so anyone can verify it.

use std::fs;
use std::io;
use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::durable;
use crate::error::{Error, Result};
use crate::store::lock::StoreLock;
use crate::store::secret;
use crate::syftbox::Layout;

pub(crate) mod anchor;
mod chain;
pub(crate) mod event;
mod keys;
mod shown;
mod verify;

pub use event::{Actor, AuditEvent};
pub use keys::parse_public_key;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const KEY_FILE: &str = "audit-signing-key";

/// What an entry is about, filled in by the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: AuditEvent,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub outcome: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    #[serde(flatten)]
    pub body: Event,
    pub prev: String,
    pub hash: String,
    pub sig: String,
}

impl Entry {
    /// SHA-256 hex of the canonical form: keys sorted, no whitespace, without `hash` and `sig`.
    pub fn compute_hash(&self) -> String {
        let mut value = serde_json::to_value(self).expect("entries serialize");
        if let Value::Object(map) = &mut value {
            map.remove("hash");
            map.remove("sig");
        }
        let bytes = crate::core::canonical::value_to_vec(value).expect("canonical JSON");
        format!("{:x}", Sha256::digest(&bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub size: u64,
    pub hash: String,
    pub sig: String,
}

impl Checkpoint {
    fn message(size: u64, hash: &str) -> String {
        format!("syft-reviewer checkpoint {size} {hash}")
    }
}

/// The result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub valid: bool,
    pub entries: u64,
    /// 0-based line of `chain.jsonl` where the chain stops being trustworthy.
    pub first_break: Option<u64>,
    pub reason: String,
}

/// Where an earlier [`AuditLog::verify_resuming`] stopped: its first `entries` lines (`bytes`
/// long, with SHA-256 `digest`) were linked and signed by `key`, the last with hash `prev`.
#[derive(Debug, Clone)]
pub struct Resume {
    key: [u8; 32],
    entries: usize,
    bytes: usize,
    digest: [u8; 32],
    prev: String,
}

pub struct AuditLog {
    dir: PathBuf,
    state: PathBuf,
}

impl AuditLog {
    pub fn new(layout: &Layout) -> AuditLog {
        AuditLog {
            dir: layout.app_data.join("audit"),
            state: layout.state.clone(),
        }
    }

    pub fn chain_path(&self) -> PathBuf {
        self.dir.join("chain.jsonl")
    }
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }
    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("public_key")
    }

    /// The signing key, created (0600, in the private state folder) on first use; the public key
    /// beside the chain is (re)written to match.
    pub fn signing_key(&self) -> Result<SigningKey> {
        let path = self.state.join(KEY_FILE);
        let key = match durable::read_capped(&path, 4096) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let seed = keys::unhex::<32>(&text).ok_or_else(|| {
                    Error::invalid(
                        format!("{} is not an Ed25519 key", path.display()),
                        "restore it from a backup; without it the audit chain cannot be extended",
                    )
                })?;
                SigningKey::from_bytes(&seed)
            }
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => {
                let key = SigningKey::from_bytes(&secret::random_bytes::<32>());
                durable::ensure_private_dir(&self.state, 0o700)?;
                durable::write_atomic(
                    &path,
                    format!("{}\n", keys::hex(&key.to_bytes())).as_bytes(),
                    0o600,
                )?;
                key
            }
            Err(e) => return Err(e),
        };
        let public = format!("ed25519:{}\n", keys::hex(&key.verifying_key().to_bytes()));
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create folder", &self.dir, e))?;
        if fs::read_to_string(self.public_key_path()).ok().as_deref() != Some(public.as_str()) {
            durable::write_atomic(&self.public_key_path(), public.as_bytes(), 0o644)?;
        }
        Ok(key)
    }
}

/// Records a change to a store (allowlist, trusted code, config) made by `actor`; failures are
/// logged, never returned: the change itself already happened.
pub fn record_change(
    layout: &Layout,
    event: AuditEvent,
    actor: impl Into<Actor>,
    subject: Subject<'_>,
    reasons: Vec<String>,
) {
    let (email, signature) = match subject {
        Subject::Email(e) => (Some(e.to_string()), None),
        Subject::Signature(s) => (None, Some(s.to_string())),
    };
    let ev = Event {
        event,
        actor: actor.into(),
        uid: None,
        signature,
        email,
        outcome: "changed".into(),
        reasons,
    };
    if let Err(e) = AuditLog::new(layout).append(&[ev]) {
        log::error!("could not append to the audit chain: {e}");
    }
}

/// Held while a store is changed and the change recorded, and while the daemon looks for changes
/// nobody recorded, so a recorded change is never also taken for a hand edit.
pub fn change_lock(layout: &Layout) -> Result<StoreLock> {
    StoreLock::acquire(&layout.state, "changes")
}

#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Email(&'a str),
    Signature(&'a str),
}

#[cfg(test)]
mod tests {
    use super::keys::{hex, sign_hex};
    use super::*;
    use crate::syftbox::Identity;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn setup() -> (tempfile::TempDir, AuditLog) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(&Identity {
            data_dir: tmp.path().to_path_buf(),
            email: "o@x.org".into(),
            source: None,
        });
        fs::create_dir_all(&layout.app_data).unwrap();
        fs::create_dir_all(&layout.state).unwrap();
        let log = AuditLog::new(&layout);
        (tmp, log)
    }

    fn ev(n: usize) -> Event {
        Event {
            event: "decision".into(),
            actor: "daemon".into(),
            uid: Some(format!("job-{n}")),
            outcome: "approved".into(),
            reasons: vec![format!("reason {n}")],
            ..Event::default()
        }
    }

    fn fill(log: &AuditLog, n: usize) {
        for i in 0..n {
            log.append(&[ev(i)]).unwrap();
        }
    }

    /// Bytes added to the chain file by hand, as an editor (or a torn write) leaves them.
    fn append_raw(log: &AuditLog, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .open(log.chain_path())
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn rewrite_lines(log: &AuditLog, f: impl FnOnce(&mut Vec<String>)) {
        let text = fs::read_to_string(log.chain_path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        f(&mut lines);
        fs::write(log.chain_path(), lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn intact_chain_verifies() {
        let (_t, log) = setup();
        fill(&log, 5);
        log.append(&[ev(5), ev(6)]).unwrap();
        let v = log.verify(None);
        assert!(v.valid, "{v:?}");
        assert_eq!(v.entries, 7);
        assert_eq!(v.first_break, None);
    }

    #[test]
    fn resumed_verification_checks_only_what_was_appended_and_still_sees_edits() {
        let (_t, log) = setup();
        fill(&log, 5);
        let mut resume = None;
        assert!(log.verify_resuming(None, &mut resume).valid);
        log.append(&[ev(5), ev(6)]).unwrap();
        let v = log.verify_resuming(None, &mut resume);
        assert_eq!((v.valid, v.entries), (true, 7), "{v:?}");
        // An entry already vouched for is edited: the resumed check must not trust it.
        rewrite_lines(&log, |l| l[2] = l[2].replace("approved", "rejected"));
        let v = log.verify_resuming(None, &mut resume);
        assert_eq!((v.valid, v.first_break), (false, Some(2)), "{v:?}");
        assert_eq!(log.verify(None), v, "the same answer as a full check");
    }

    #[test]
    fn a_chain_without_its_last_newline_or_cut_short_is_judged_as_a_full_check_judges_it() {
        let (_t, log) = setup();
        fill(&log, 5);
        let mut resume = None;
        assert!(log.verify_resuming(None, &mut resume).valid);
        // The last newline removed by hand: the checkpoint covers that line, so it counts.
        let text = fs::read_to_string(log.chain_path()).unwrap();
        fs::write(log.chain_path(), text.trim_end()).unwrap();
        let v = log.verify_resuming(None, &mut resume);
        assert_eq!((v.valid, v.entries), (true, 5), "{v:?}");
        assert_eq!(log.verify(None), v);
        assert_eq!(log.verify_resuming(None, &mut resume), v, "resumed again");
        // Cut below what the earlier check vouched for: no entry is taken on trust.
        rewrite_lines(&log, |l| l.truncate(3));
        let v = log.verify_resuming(None, &mut resume);
        assert_eq!((v.valid, v.first_break), (false, Some(3)), "{v:?}");
        assert!(v.reason.contains("truncated"), "{}", v.reason);
        assert_eq!(log.verify(None), v, "the same answer as a full check");
    }

    #[test]
    fn a_line_longer_than_any_entry_is_a_break_not_a_buffer() {
        let (_t, log) = setup();
        fill(&log, 2);
        let mut line = vec![b'x'; 17 << 20];
        line.push(b'\n');
        append_raw(&log, &line);
        let v = log.verify(None);
        assert_eq!((v.valid, v.first_break), (false, Some(2)), "{v:?}");
        assert!(v.reason.contains("longer"), "{}", v.reason);
    }

    #[test]
    fn edited_field_is_caught_at_its_line() {
        let (_t, log) = setup();
        fill(&log, 5);
        rewrite_lines(&log, |l| l[2] = l[2].replace("approved", "rejected"));
        let v = log.verify(None);
        assert!(!v.valid);
        assert_eq!(v.first_break, Some(2));
        assert!(v.reason.contains("edited"), "{}", v.reason);
    }

    #[test]
    fn deleted_entry_is_caught() {
        let (_t, log) = setup();
        fill(&log, 5);
        rewrite_lines(&log, |l| {
            l.remove(1);
        });
        let v = log.verify(None);
        assert_eq!((v.valid, v.first_break), (false, Some(1)));
        assert!(v.reason.contains("deleted"), "{}", v.reason);
    }

    #[test]
    fn swapped_entries_are_caught() {
        let (_t, log) = setup();
        fill(&log, 5);
        rewrite_lines(&log, |l| l.swap(2, 3));
        let v = log.verify(None);
        assert_eq!((v.valid, v.first_break), (false, Some(2)));
        assert!(v.reason.contains("reordered"), "{}", v.reason);
    }

    #[test]
    fn truncated_tail_is_caught_by_the_checkpoint() {
        let (_t, log) = setup();
        fill(&log, 5);
        rewrite_lines(&log, |l| l.truncate(3));
        let v = log.verify(None);
        assert_eq!((v.valid, v.first_break), (false, Some(3)));
        assert!(v.reason.contains("truncated"), "{}", v.reason);
    }

    #[test]
    fn entry_appended_without_the_key_is_caught() {
        let (_t, log) = setup();
        fill(&log, 3);
        let last: Entry = log.entries().pop().unwrap();
        let mut forged = Entry {
            seq: 3,
            time: last.time.clone(),
            body: ev(99),
            prev: last.hash.clone(),
            hash: String::new(),
            sig: "00".repeat(64),
        };
        forged.hash = forged.compute_hash();
        rewrite_lines(&log, |l| l.push(serde_json::to_string(&forged).unwrap()));
        let v = log.verify(None);
        assert_eq!((v.valid, v.first_break), (false, Some(3)));
        assert!(v.reason.contains("not signed"), "{}", v.reason);
    }

    #[test]
    fn chain_re_signed_with_another_key_is_caught() {
        let (_t, log) = setup();
        fill(&log, 3);
        let other = SigningKey::from_bytes(&[7u8; 32]);
        // Re-sign every entry and the checkpoint with another key and publish that key.
        let mut entries = log.entries();
        let mut prev = GENESIS.to_string();
        for e in &mut entries {
            e.prev = prev.clone();
            e.hash = e.compute_hash();
            e.sig = sign_hex(&other, &e.hash);
            prev = e.hash.clone();
        }
        rewrite_lines(&log, |l| {
            *l = entries
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
        });
        fs::write(
            log.public_key_path(),
            hex(&other.verifying_key().to_bytes()),
        )
        .unwrap();
        let v = log.verify(None);
        assert!(!v.valid);
        assert_eq!(v.first_break, Some(0));
        assert!(v.reason.contains("not this datasite's key"), "{}", v.reason);
        // A third party holding the real public key sees the same.
        let real = log.signing_key().unwrap().verifying_key();
        let v = log.verify(Some(real));
        assert_eq!((v.valid, v.first_break), (false, Some(0)));
    }

    #[test]
    fn torn_unacknowledged_line_verifies_and_is_cut_at_next_append() {
        let (_t, log) = setup();
        fill(&log, 3);
        append_raw(&log, br#"{"seq":3,"time":"2026-11-22T0"#);
        let v = log.verify(None);
        assert!(v.valid, "{v:?}");
        assert_eq!(v.entries, 3);
        log.append(&[ev(3)]).unwrap();
        let v = log.verify(None);
        assert!(v.valid, "{v:?}");
        assert_eq!(v.entries, 4);
    }

    #[test]
    fn stale_checkpoint_after_a_crash_is_brought_up_to_date() {
        let (_t, log) = setup();
        fill(&log, 2);
        let cp = fs::read(log.checkpoint_path()).unwrap();
        log.append(&[ev(2)]).unwrap();
        fs::write(log.checkpoint_path(), cp).unwrap();
        log.append(&[ev(3)]).unwrap();
        let v = log.verify(None);
        assert!(v.valid, "{v:?}");
        assert_eq!(v.entries, 4);
    }
}
