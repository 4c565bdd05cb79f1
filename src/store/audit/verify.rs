//! Verifying the chain: links, hashes and signatures of every entry, the signed checkpoint, and
//! the rollback anchor; a verification can resume from where the previous one stopped.

use std::fs;
use std::io;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{AuditLog, Checkpoint, Entry, GENESIS, KEY_FILE, Resume, Verification};
use crate::store::audit::keys::{parse_public_key, unhex, verify_hex};

impl AuditLog {
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
    pub(super) fn verify_signed(
        &self,
        public: Option<VerifyingKey>,
        resume: &mut Option<Resume>,
    ) -> Verification {
        let previous = resume.take();
        let key = match self.verifying_key(public) {
            Ok(k) => k,
            Err(v) => return v,
        };
        let data = match fs::read(self.chain_path()) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return broken(0, Some(0), format!("cannot read the chain: {e}")),
        };
        let checkpoint = self.read_checkpoint();
        let (lines, note) = lines_of(&data, checkpoint.as_ref());
        let start = Start::resumed(previous, &key, &lines, &data);
        let prev = match check_entries(&key, &lines, start.skip, start.prev.clone()) {
            Ok(prev) => prev,
            Err(v) => return v,
        };
        *resume = Some(start.carry_on(&key, &lines, &data, prev));
        against_checkpoint(&key, checkpoint, &lines, &note)
    }

    /// The key to verify with: `public`, or the published one, which must be this datasite's.
    /// A verdict instead when there is none to use (which an empty chain does not need).
    fn verifying_key(
        &self,
        public: Option<VerifyingKey>,
    ) -> std::result::Result<VerifyingKey, Verification> {
        let published = fs::read_to_string(self.public_key_path())
            .ok()
            .and_then(|t| parse_public_key(&t));
        let Some(key) = public.or(published) else {
            if !self.chain_path().exists() {
                return Err(Verification {
                    valid: true,
                    entries: 0,
                    first_break: None,
                    reason: "the chain is empty".into(),
                });
            }
            return Err(broken(
                0,
                Some(0),
                "no public key to verify with (audit/public_key is missing or invalid)".into(),
            ));
        };
        if public.is_none()
            && let Ok(bytes) = fs::read(self.state.join(KEY_FILE))
            && let Some(seed) = unhex::<32>(&String::from_utf8_lossy(&bytes))
            && SigningKey::from_bytes(&seed).verifying_key() != key
        {
            return Err(broken(
                0,
                Some(0),
                "audit/public_key is not this datasite's key: the chain may have been re-signed"
                    .into(),
            ));
        }
        Ok(key)
    }
}

fn broken(entries: u64, at: Option<u64>, reason: String) -> Verification {
    Verification {
        valid: false,
        entries,
        first_break: at,
        reason,
    }
}

/// The chain's lines, without a torn last line no checkpoint acknowledged (and a note saying
/// it was left out).
fn lines_of<'a>(data: &'a [u8], checkpoint: Option<&Checkpoint>) -> (Vec<&'a [u8]>, String) {
    let torn = !data.is_empty() && data.last() != Some(&b'\n');
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut note = String::new();
    if torn {
        let acknowledged = checkpoint.map_or(0, |c| c.size);
        if (lines.len() as u64) > acknowledged {
            lines.pop();
            note = "; a torn last line from an interrupted append is ignored (it is cut off at the next append)".into();
        }
    }
    (lines, note)
}

/// Where the entry checks start: after the entries an earlier verification vouches for.
struct Start {
    skip: usize,
    prev: String,
    /// The digest of the bytes checked so far, carried on to cover what is checked now.
    digest: Sha256,
    hashed: usize,
}

impl Start {
    fn resumed(
        previous: Option<Resume>,
        key: &VerifyingKey,
        lines: &[&[u8]],
        data: &[u8],
    ) -> Start {
        let mut start = Start {
            skip: 0,
            prev: GENESIS.to_string(),
            digest: Sha256::new(),
            hashed: 0,
        };
        if let Some(r) = previous
            && r.key == key.to_bytes()
            && r.entries <= lines.len()
            && data.len() >= r.bytes
        {
            start.digest.update(&data[..r.bytes]);
            start.hashed = r.bytes;
            if start.digest.clone().finalize().as_slice() == r.digest {
                start.skip = r.entries;
                start.prev = r.prev;
            }
        }
        start
    }

    /// What the next verification may skip: every line checked now, ending with hash `prev`.
    fn carry_on(self, key: &VerifyingKey, lines: &[&[u8]], data: &[u8], prev: String) -> Resume {
        let Start {
            mut digest,
            mut hashed,
            ..
        } = self;
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        if hashed > bytes {
            // The chain shrank below what was checked before: hash what is there now.
            digest = Sha256::new();
            hashed = 0;
        }
        digest.update(&data[hashed..bytes]);
        Resume {
            key: key.to_bytes(),
            entries: lines.len(),
            bytes,
            digest: digest.finalize().into(),
            prev,
        }
    }
}

/// Checks the entries from `skip` on (the one before them has hash `prev`): number, link, hash,
/// signature. Returns the hash of the last one, or the first break.
fn check_entries(
    key: &VerifyingKey,
    lines: &[&[u8]],
    skip: usize,
    mut prev: String,
) -> std::result::Result<String, Verification> {
    for (i, line) in lines.iter().enumerate().skip(skip) {
        let i = i as u64;
        let e: Entry = serde_json::from_slice(line)
            .map_err(|err| broken(i, Some(i), format!("entry {i} is not a valid entry: {err}")))?;
        let problem = if e.seq != i {
            Some(format!(
                "entry {i} has seq {} (entries were deleted, inserted or reordered)",
                e.seq
            ))
        } else if e.prev != prev {
            Some(format!(
                "entry {i} does not link to the entry before it (entries were deleted or reordered)"
            ))
        } else if e.compute_hash() != e.hash {
            Some(format!(
                "entry {i} was edited: its content does not match its hash"
            ))
        } else if !verify_hex(key, &e.hash, &e.sig) {
            Some(format!(
                "entry {i} is not signed by the datasite's key (written or re-signed by someone else)"
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(broken(i, Some(i), reason));
        }
        prev = e.hash;
    }
    Ok(prev)
}

/// The verdict on `lines` (each already checked) given the signed checkpoint.
fn against_checkpoint(
    key: &VerifyingKey,
    checkpoint: Option<Checkpoint>,
    lines: &[&[u8]],
    note: &str,
) -> Verification {
    let n = lines.len() as u64;
    match checkpoint {
        None if n > 0 => broken(n, Some(n), "the checkpoint (audit/checkpoint.json) is missing, so a cut-off tail cannot be ruled out".into()),
        None => Verification { valid: true, entries: 0, first_break: None, reason: "the chain is empty".into() },
        Some(cp) => {
            if !verify_hex(key, &Checkpoint::message(cp.size, &cp.hash), &cp.sig) {
                return broken(n, Some(n.min(cp.size)), "the checkpoint is not signed by the datasite's key".into());
            }
            if n < cp.size {
                return broken(n, Some(n), format!("the chain was truncated: the checkpoint vouches for {} entries, {n} remain", cp.size));
            }
            if cp.size > 0 && lines.get(cp.size as usize - 1).and_then(|l| serde_json::from_slice::<Entry>(l).ok()).map(|e| e.hash) != Some(cp.hash.clone()) {
                return broken(n, Some(cp.size - 1), "the entry the checkpoint vouches for was replaced".into());
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
