//! Verifying the chain: links, hashes and signatures of every entry, the signed checkpoint, and
//! the rollback anchor; a verification can resume from where the previous one stopped.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

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

    /// The checks that need only the public key: links, hashes, signatures, checkpoint. The
    /// chain is read a line at a time, never whole: after 100,000 decisions it is tens of
    /// megabytes, and the status a UI polls checks it after every append.
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
        let checkpoint = self.read_checkpoint();
        let acknowledged = checkpoint.as_ref().map_or(0, |c| c.size);
        let path = self.chain_path();
        let walked = match walk(&path, &key, acknowledged, previous.as_ref()) {
            // What the earlier verification vouched for is no longer the chain's start.
            Err(Stop::Restart) => walk(&path, &key, acknowledged, None),
            other => other,
        };
        let w = match walked {
            Ok(w) => w,
            Err(Stop::Broken(v)) => return v,
            Err(Stop::Restart) => return unreadable(),
        };
        let v = against_checkpoint(&key, checkpoint, w.entries, w.vouched.as_deref(), &w.note);
        *resume = Some(Resume {
            key: key.to_bytes(),
            entries: w.entries as usize,
            bytes: w.bytes,
            digest: w.digest.finalize().into(),
            prev: w.prev,
        });
        v
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

/// The longest line taken for an entry (entries are a few hundred bytes; this bounds what a
/// hand-edited chain can make a verification hold).
const MAX_LINE: u64 = 16 << 20;

/// Why a walk of the chain stopped early.
enum Stop {
    Broken(Verification),
    /// The verification resumed from does not describe the chain's start any more.
    Restart,
}

/// A walk with nothing to resume from never asks to restart; should one, the answer is a break
/// at the start, not a panic.
fn unreadable() -> Verification {
    broken(
        0,
        Some(0),
        "the chain could not be read consistently".into(),
    )
}

/// What a walk of the chain found, every entry counted checked.
struct Walked {
    entries: u64,
    /// The hash of the last entry.
    prev: String,
    /// The SHA-256 of the bytes of the entries counted, and their length.
    digest: Sha256,
    bytes: usize,
    /// The hash of the entry the checkpoint vouches for (the `acknowledged`-th).
    vouched: Option<String>,
    note: String,
}

/// Reads the chain at `path` a line at a time and checks each entry (number, link, hash,
/// signature), skipping the checks of the entries `previous` vouches for when the chain still
/// starts with exactly their bytes. A torn last line that the checkpoint (`acknowledged`
/// entries) does not cover is left out, with a note.
fn walk(
    path: &Path,
    key: &VerifyingKey,
    acknowledged: u64,
    previous: Option<&Resume>,
) -> std::result::Result<Walked, Stop> {
    let mut w = Walked {
        entries: 0,
        prev: GENESIS.to_string(),
        digest: Sha256::new(),
        bytes: 0,
        vouched: None,
        note: String::new(),
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(w),
        Err(e) => return Err(Stop::Broken(cannot_read(0, &e))),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    // Only a verification made with this key vouches for anything.
    let mut skipping = previous.filter(|r| r.key == key.to_bytes() && r.entries > 0);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Stop::Broken(cannot_read(w.entries, &e)))?;
        if read == 0 {
            break;
        }
        let i = w.entries;
        let complete = line.last() == Some(&b'\n');
        if !complete && read as u64 > MAX_LINE {
            let reason = format!("entry {i} is longer than any entry the reviewer writes");
            return Err(Stop::Broken(broken(i, Some(i), reason)));
        }
        if !complete && i + 1 > acknowledged {
            w.note = "; a torn last line from an interrupted append is ignored (it is cut off at the next append)".into();
            break;
        }
        w.digest.update(&line);
        w.bytes += line.len();
        w.entries += 1;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(r) = skipping {
            if i + 1 == acknowledged {
                w.vouched = serde_json::from_slice::<Entry>(body).ok().map(|e| e.hash);
            }
            if w.entries as usize == r.entries {
                if w.bytes != r.bytes || w.digest.clone().finalize().as_slice() != r.digest {
                    return Err(Stop::Restart);
                }
                w.prev.clone_from(&r.prev);
                skipping = None;
            }
            continue;
        }
        w.prev = check_entry(key, i, body, &w.prev).map_err(Stop::Broken)?;
        if i + 1 == acknowledged {
            w.vouched = Some(w.prev.clone());
        }
    }
    if skipping.is_some() {
        // The chain is shorter than what was vouched for.
        return Err(Stop::Restart);
    }
    Ok(w)
}

fn cannot_read(at: u64, e: &io::Error) -> Verification {
    broken(at, Some(at), format!("cannot read the chain: {e}"))
}

/// Checks entry `i` (the one before it has hash `prev`): number, link, hash, signature. Returns
/// its hash, or the break.
fn check_entry(
    key: &VerifyingKey,
    i: u64,
    line: &[u8],
    prev: &str,
) -> std::result::Result<String, Verification> {
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
    match problem {
        Some(reason) => Err(broken(i, Some(i), reason)),
        None => Ok(e.hash),
    }
}

/// The verdict on a chain of `n` entries (each already checked) given the signed checkpoint;
/// `vouched` is the hash of the entry it vouches for.
fn against_checkpoint(
    key: &VerifyingKey,
    checkpoint: Option<Checkpoint>,
    n: u64,
    vouched: Option<&str>,
    note: &str,
) -> Verification {
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
            if cp.size > 0 && vouched != Some(cp.hash.as_str()) {
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
