//! The audit chain (`audit/chain.jsonl` in the app data folder): every decision and every change
//! to the allowlist, trusted code and config, as signed, hash-linked JSON lines.
//!
//! Each entry carries `prev` (the previous entry's hash; a fixed genesis value first), `hash`
//! (SHA-256 of the canonical entry without `hash` and `sig`, so it covers `seq` and `prev`) and
//! `sig` (Ed25519 over the hash's hex text). A signed checkpoint beside the chain (`size` and the
//! head `hash`) is rewritten after every append, so cutting off the newest entries is detected
//! too. The signing key lives in the private state folder; the public key is published beside the
//! chain so anyone can verify it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::core::canonical;
use crate::durable;
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::lock::StoreLock;
use crate::store::secret;
use crate::syftbox::Layout;

pub mod anchor;
mod shown;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const KEY_FILE: &str = "audit-signing-key";

/// What an entry is about, filled in by the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    pub actor: String,
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
        let bytes = canonical::value_to_vec(value).expect("canonical JSON");
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

/// The last newline-terminated line of a file (without its newline), the offset just after it,
/// and the file's length. Reads backwards from the end in growing chunks.
fn last_complete_line(path: &Path) -> io::Result<(Option<Vec<u8>>, u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut chunk: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.seek(SeekFrom::Start(start))?;
        (&mut f).take(len - start).read_to_end(&mut buf)?;
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            if start == 0 {
                return Ok((None, 0, len));
            }
            chunk *= 4;
            continue;
        };
        match buf[..end].iter().rposition(|b| *b == b'\n') {
            Some(begin) => {
                return Ok((
                    Some(buf[begin + 1..end].to_vec()),
                    start + end as u64 + 1,
                    len,
                ));
            }
            None if start == 0 => return Ok((Some(buf[..end].to_vec()), end as u64 + 1, len)),
            None => chunk *= 4,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let t = text.trim();
    let t = t.strip_prefix("ed25519:").unwrap_or(t);
    VerifyingKey::from_bytes(&unhex::<32>(t)?).ok()
}

fn sign_hex(key: &SigningKey, msg: &str) -> String {
    hex(&key.sign(msg.as_bytes()).to_bytes())
}

fn verify_hex(key: &VerifyingKey, msg: &str, sig: &str) -> bool {
    unhex::<64>(sig)
        .map(|b| {
            key.verify(msg.as_bytes(), &Signature::from_bytes(&b))
                .is_ok()
        })
        .unwrap_or(false)
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
                let seed = unhex::<32>(&text).ok_or_else(|| {
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
                    format!("{}\n", hex(&key.to_bytes())).as_bytes(),
                    0o600,
                )?;
                key
            }
            Err(e) => return Err(e),
        };
        let public = format!("ed25519:{}\n", hex(&key.verifying_key().to_bytes()));
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create folder", &self.dir, e))?;
        if fs::read_to_string(self.public_key_path()).ok().as_deref() != Some(public.as_str()) {
            durable::write_atomic(&self.public_key_path(), public.as_bytes(), 0o644)?;
        }
        Ok(key)
    }

    fn read_checkpoint(&self) -> Option<Checkpoint> {
        let bytes = durable::read_capped(&self.checkpoint_path(), 1 << 16).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Appends events durably, in one write and one fsync, under the audit lock (so the daemon and
    /// CLI commands never interleave), then rewrites the checkpoint. Returns the new entries.
    pub fn append(&self, events: &[Event]) -> Result<Vec<Entry>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.signing_key()?;
        let _guard = StoreLock::acquire(&self.state, "audit")?;
        let (count, head) = self.repair_and_head(&key)?;
        let anchored = self.anchor_for_append(count, &head)?;
        let mut prev = head;
        let mut out = Vec::with_capacity(events.len());
        let mut buf = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let mut e = Entry {
                seq: count + i as u64,
                time: metadata::format_naive(&metadata::now_naive()),
                body: ev.clone(),
                prev: prev.clone(),
                hash: String::new(),
                sig: String::new(),
            };
            e.hash = e.compute_hash();
            e.sig = sign_hex(&key, &e.hash);
            serde_json::to_writer(&mut buf, &e).expect("entries serialize");
            buf.push(b'\n');
            prev = e.hash.clone();
            out.push(e);
        }
        let path = self.chain_path();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io("append to", &path, e))?;
        self.write_checkpoint(&key, count + events.len() as u64, &prev)?;
        self.advance_anchor(anchored, count, &out)?;
        Ok(out)
    }

    fn write_checkpoint(&self, key: &SigningKey, size: u64, hash: &str) -> Result<()> {
        let cp = Checkpoint {
            size,
            hash: hash.to_string(),
            sig: sign_hex(key, &Checkpoint::message(size, hash)),
        };
        durable::write_atomic(
            &self.checkpoint_path(),
            &serde_json::to_vec_pretty(&cp).expect("checkpoints serialize"),
            0o644,
        )
    }

    /// Finds the number of entries and the head hash, cutting off a torn last line that no
    /// checkpoint ever acknowledged (a crash in the middle of an append).
    fn repair_and_head(&self, key: &SigningKey) -> Result<(u64, String)> {
        let path = self.chain_path();
        let (last, complete, len) = match last_complete_line(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, GENESIS.to_string())),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        // Entries number themselves, so the head is enough: no need to read the whole chain.
        let (count, head) = match &last {
            None => (0, GENESIS.to_string()),
            Some(l) => serde_json::from_slice::<Entry>(l)
                .map(|e| (e.seq + 1, e.hash))
                .map_err(|e| {
                    Error::invalid(
                        format!("the last entry of {} is not readable ({e})", path.display()),
                        "run `syft-reviewer audit verify` to find the damage",
                    )
                })?,
        };
        if complete < len {
            let acknowledged = self.read_checkpoint().map_or(0, |c| c.size);
            if count < acknowledged {
                return Err(Error::invalid(
                    format!(
                        "the last line of {} is torn but was acknowledged",
                        path.display()
                    ),
                    "the chain was damaged after the fact: run `syft-reviewer audit verify` and restore it from a backup",
                ));
            }
            log::warn!(
                "cutting off a torn last line of {} (a crash interrupted an append)",
                path.display()
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?;
            f.set_len(complete)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io("truncate", &path, e))?;
        }
        // A crash between the append and the checkpoint leaves the checkpoint behind.
        if count > 0
            && self
                .read_checkpoint()
                .is_none_or(|c| c.size != count || c.hash != head)
        {
            self.write_checkpoint(key, count, &head)?;
        }
        Ok((count, head))
    }

    /// Checks the whole chain against `public` (by default the published key, which must also
    /// match this datasite's signing key when that is available).
    pub fn verify(&self, public: Option<VerifyingKey>) -> Verification {
        self.verify_resuming(public, &mut None)
    }

    /// [`AuditLog::verify`] that skips the signature checks of the entries `resume` vouches for
    /// when the chain still starts with exactly the bytes they were checked in, and updates
    /// `resume` for the next call: a daemon that checks its chain after every append does the
    /// expensive work once per entry, not once per entry per check.
    pub fn verify_resuming(
        &self,
        public: Option<VerifyingKey>,
        resume: &mut Option<Resume>,
    ) -> Verification {
        let v = self.verify_signed(public, resume);
        self.against_anchor(v, resume.as_ref().map(|r| r.prev.as_str()))
    }

    /// The checks that need only the public key: links, hashes, signatures, checkpoint.
    fn verify_signed(
        &self,
        public: Option<VerifyingKey>,
        resume: &mut Option<Resume>,
    ) -> Verification {
        let previous = resume.take();
        let fail = |entries, at: Option<u64>, reason: String| Verification {
            valid: false,
            entries,
            first_break: at,
            reason,
        };
        let published = fs::read_to_string(self.public_key_path())
            .ok()
            .and_then(|t| parse_public_key(&t));
        let key = match public.or(published) {
            Some(k) => k,
            None => {
                if !self.chain_path().exists() {
                    return Verification {
                        valid: true,
                        entries: 0,
                        first_break: None,
                        reason: "the chain is empty".into(),
                    };
                }
                return fail(
                    0,
                    Some(0),
                    "no public key to verify with (audit/public_key is missing or invalid)".into(),
                );
            }
        };
        if public.is_none()
            && let Ok(bytes) = fs::read(self.state.join(KEY_FILE))
            && let Some(seed) = unhex::<32>(&String::from_utf8_lossy(&bytes))
            && SigningKey::from_bytes(&seed).verifying_key() != key
        {
            return fail(
                0,
                Some(0),
                "audit/public_key is not this datasite's key: the chain may have been re-signed"
                    .into(),
            );
        }
        let data = match fs::read(self.chain_path()) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return fail(0, Some(0), format!("cannot read the chain: {e}")),
        };
        let checkpoint = self.read_checkpoint();
        let torn = !data.is_empty() && data.last() != Some(&b'\n');
        let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut note = String::new();
        if torn {
            let acknowledged = checkpoint.as_ref().map_or(0, |c| c.size);
            if (lines.len() as u64) > acknowledged {
                lines.pop();
                note = "; a torn last line from an interrupted append is ignored (it is cut off at the next append)".into();
            }
        }
        let mut prev = GENESIS.to_string();
        let mut skip = 0usize;
        // The digest of the bytes checked so far, carried on to cover what is checked now.
        let mut digest = Sha256::new();
        let mut hashed = 0usize;
        if let Some(r) = previous
            && r.key == key.to_bytes()
            && r.entries <= lines.len()
            && data.len() >= r.bytes
        {
            digest.update(&data[..r.bytes]);
            hashed = r.bytes;
            if digest.clone().finalize().as_slice() == r.digest {
                skip = r.entries;
                prev = r.prev;
            }
        }
        for (i, line) in lines.iter().enumerate().skip(skip) {
            let i = i as u64;
            let e: Entry = match serde_json::from_slice(line) {
                Ok(e) => e,
                Err(err) => {
                    return fail(i, Some(i), format!("entry {i} is not a valid entry: {err}"));
                }
            };
            if e.seq != i {
                return fail(
                    i,
                    Some(i),
                    format!(
                        "entry {i} has seq {} (entries were deleted, inserted or reordered)",
                        e.seq
                    ),
                );
            }
            if e.prev != prev {
                return fail(
                    i,
                    Some(i),
                    format!(
                        "entry {i} does not link to the entry before it (entries were deleted or reordered)"
                    ),
                );
            }
            if e.compute_hash() != e.hash {
                return fail(
                    i,
                    Some(i),
                    format!("entry {i} was edited: its content does not match its hash"),
                );
            }
            if !verify_hex(&key, &e.hash, &e.sig) {
                return fail(
                    i,
                    Some(i),
                    format!(
                        "entry {i} is not signed by the datasite's key (written or re-signed by someone else)"
                    ),
                );
            }
            prev = e.hash;
        }
        let n = lines.len() as u64;
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        if hashed > bytes {
            // The chain shrank below what was checked before: hash what is there now.
            digest = Sha256::new();
            hashed = 0;
        }
        digest.update(&data[hashed..bytes]);
        *resume = Some(Resume {
            key: key.to_bytes(),
            entries: lines.len(),
            bytes,
            digest: digest.finalize().into(),
            prev: prev.clone(),
        });
        match checkpoint {
            None if n > 0 => fail(n, Some(n), "the checkpoint (audit/checkpoint.json) is missing, so a cut-off tail cannot be ruled out".into()),
            None => Verification { valid: true, entries: 0, first_break: None, reason: "the chain is empty".into() },
            Some(cp) => {
                if !verify_hex(&key, &Checkpoint::message(cp.size, &cp.hash), &cp.sig) {
                    return fail(n, Some(n.min(cp.size)), "the checkpoint is not signed by the datasite's key".into());
                }
                if n < cp.size {
                    return fail(n, Some(n), format!("the chain was truncated: the checkpoint vouches for {} entries, {n} remain", cp.size));
                }
                if cp.size > 0 && lines.get(cp.size as usize - 1).and_then(|l| serde_json::from_slice::<Entry>(l).ok()).map(|e| e.hash) != Some(cp.hash.clone()) {
                    return fail(n, Some(cp.size - 1), "the entry the checkpoint vouches for was replaced".into());
                }
                Verification {
                    valid: true,
                    entries: n,
                    first_break: None,
                    reason: format!("all {n} entries are linked and signed by the datasite's key{note}"),
                }
            }
        }
    }

    /// Entries from `since` (an ISO time prefix compare) on, as stored.
    pub fn entries(&self) -> Vec<Entry> {
        fs::read(self.chain_path())
            .map(|d| {
                d.split(|b| *b == b'\n')
                    .filter_map(|l| serde_json::from_slice(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syftbox::Identity;

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
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.chain_path())
            .unwrap();
        f.write_all(br#"{"seq":3,"time":"2026-11-22T0"#).unwrap();
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

/// Records a change to a store (allowlist, trusted code, config) made by `actor`; failures are
/// logged, never returned: the change itself already happened.
pub fn record_change(
    layout: &Layout,
    event: &str,
    actor: &str,
    subject: Subject<'_>,
    reasons: Vec<String>,
) {
    let (email, signature) = match subject {
        Subject::Email(e) => (Some(e.to_string()), None),
        Subject::Signature(s) => (None, Some(s.to_string())),
        Subject::None => (None, None),
    };
    let ev = Event {
        event: event.to_string(),
        actor: actor.to_string(),
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
    None,
}

impl AuditLog {
    /// Entries appended after byte `offset` of the chain, and the new end offset.
    pub fn read_since(&self, offset: u64) -> (Vec<Entry>, u64) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = fs::File::open(self.chain_path()) else {
            return (Vec::new(), 0);
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = if offset > len { 0 } else { offset };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
            return (Vec::new(), len);
        }
        let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let entries = buf[..end]
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect();
        (entries, start + end as u64)
    }
}
