//! How a trusted sender must prove a job is theirs (SPEC §9): the proof mode and the pinned key
//! fingerprint, kept in the sender's allowlist file (`{"email", "added_at", "status", "proof",
//! "key", "pinned_at"}`), which only the owner writes and only that sender may read.
//!
//! A file made by hand without these fields (even an empty one) is `optional` with no pin: jobs
//! from that sender are approved as before, labelled unverified.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use serde::Serialize;

use crate::core::attestation::{Pin, ProofMode, ProofStatus, ProofView};
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::identity;
use crate::store::lock::StoreLock;
use crate::syftbox::Layout;

/// An allowlist file is a few hundred bytes; anything larger is not one of ours.
const ENTRY_LIMIT: u64 = 16 * 1024;

/// Reads the pin from an allowlist file. Unreadable or foreign content gives the default (no
/// pin, optional) together with why, so a damaged file is reported and never trusted more.
pub fn read(path: &Path) -> (Pin, Option<String>) {
    let bytes = match durable::read_capped(path, ENTRY_LIMIT) {
        Ok(b) => b,
        Err(e) => return (Pin::default(), Some(e.to_string())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (Pin::default(), None);
    }
    let doc: Map<String, Value> = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            return (
                Pin::default(),
                Some(format!("{} is not a JSON object ({e})", path.display())),
            );
        }
    };
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut why = None;
    let proof = match text("proof").as_deref() {
        None => ProofMode::Optional,
        Some(s) => ProofMode::parse(s).unwrap_or_else(|| {
            why = Some(format!(
                "{}: proof {s:?} is neither \"required\" nor \"optional\"; it counts as required",
                path.display()
            ));
            // An unknown mode must never loosen the rule the owner meant.
            ProofMode::Required
        }),
    };
    (
        Pin {
            proof,
            key: text("key"),
            pinned_at: text("pinned_at"),
        },
        why,
    )
}

/// Writes the pin into an allowlist file, keeping its other fields.
pub fn write(path: &Path, pin: &Pin, mode: u32, sync: &mut Sync) -> Result<()> {
    let mut doc: Map<String, Value> = durable::read_capped(path, ENTRY_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    doc.insert("proof".into(), pin.proof.as_str().into());
    match &pin.key {
        Some(k) => doc.insert("key".into(), k.clone().into()),
        None => doc.remove("key"),
    };
    match &pin.pinned_at {
        Some(t) => doc.insert("pinned_at".into(), t.clone().into()),
        None => doc.remove("pinned_at"),
    };
    let body = serde_json::to_vec(&doc)
        .map_err(|e| Error::invalid("the allowlist entry cannot be written", e.to_string()))?;
    durable::write_atomic_with(path, &body, mode, sync)
}

/// An entry file's pin, and how far it holds against the key `email` publishes now.
pub fn standing_of_entry(layout: &Layout, path: &Path, email: &str) -> (Pin, ProofView) {
    let (pin, damaged) = read(path);
    let published = identity::read_published(&identity::did_path(&layout.data_dir, email))
        .map(|p| crate::core::attestation::fingerprint(&p.public))
        .map_err(|e| e.to_string());
    let mut proof = ProofView::of_entry(&pin, published);
    if let Some(why) = damaged {
        proof.status = ProofStatus::Invalid;
        proof.reason = Some(why);
    }
    (pin, proof)
}

/// The proof settings of a listed email (`None` when it is not listed).
pub fn of(layout: &Layout, email: &str) -> Option<Pin> {
    Some(read(&listed_file(layout, email)?).0)
}

/// The file the allowlist folder holds for `email` (a hand-made or older name decodes to the
/// same address as the canonical one, so the folder is asked, not the encoding).
fn listed_file(layout: &Layout, email: &str) -> Option<PathBuf> {
    let listing = crate::store::allowlist::Allowlist::new(layout)
        .load()
        .ok()?;
    let name = listing.entries.get(&email.to_lowercase())?;
    Some(layout.allowlist_dir().join(name))
}

/// The sender's file: the listed one, else the one `allow add` makes.
fn entry_file(layout: &Layout, email: &str) -> Result<PathBuf> {
    match listed_file(layout, email) {
        Some(p) => Ok(p),
        None => Ok(layout
            .allowlist_dir()
            .join(crate::core::email::encode(email)?)),
    }
}

/// Rewrites a listed sender's pin (under the allowlist lock).
pub fn set(layout: &Layout, email: &str, pin: &Pin) -> Result<()> {
    let path = entry_file(layout, email)?;
    let _guard = StoreLock::acquire(&layout.state, "allowlist")?;
    let mut sync = Sync::batch();
    write(&path, pin, crate::store::allowlist::FILE_MODE, &mut sync)?;
    sync.commit()
}

/// What pinning a sender did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pinned {
    pub email: String,
    pub pin: Pin,
    /// Why no key was pinned (no published `did.json`, or an unreadable one).
    pub no_key: Option<String>,
}

/// Pins the sender's currently published identity key in their allowlist file. The mode is
/// `required` when a key is published, `optional` when none is, unless `mode` says otherwise.
pub fn pin_published(layout: &Layout, email: &str, mode: Option<ProofMode>) -> Result<Pinned> {
    let path = entry_file(layout, email)?;
    let _guard = StoreLock::acquire(&layout.state, "allowlist")?;
    pin_file(
        layout,
        &path,
        email,
        mode,
        crate::store::allowlist::FILE_MODE,
    )
}

/// The pin `email`'s published identity key gives (see [`pin_published`]), and why none is
/// pinned when no key can be read.
pub fn published(layout: &Layout, email: &str, mode: Option<ProofMode>) -> (Pin, Option<String>) {
    let (key, no_key) = match identity::read_published(&identity::did_path(&layout.data_dir, email))
    {
        Ok(p) => (Some(crate::core::attestation::fingerprint(&p.public)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let pin = Pin {
        proof: mode.unwrap_or(if key.is_some() {
            ProofMode::Required
        } else {
            ProofMode::Optional
        }),
        pinned_at: key
            .as_ref()
            .map(|_| metadata::format_naive(&metadata::now_naive())),
        key,
    };
    (pin, no_key)
}

/// Pins `email`'s published key in the entry file `path` (an allowlist or approved-peer file;
/// the caller holds that store's lock).
pub fn pin_file(
    layout: &Layout,
    path: &Path,
    email: &str,
    mode: Option<ProofMode>,
    file_mode: u32,
) -> Result<Pinned> {
    let (pin, no_key) = published(layout, email, mode);
    // Unchanged, the file is left alone: rewriting it would move the pin's date and make the
    // daemon re-evaluate every pending job for nothing.
    let (current, _) = read(path);
    if (current.proof, &current.key) == (pin.proof, &pin.key) {
        return Ok(Pinned {
            email: email.to_string(),
            pin: current,
            no_key,
        });
    }
    let mut sync = Sync::batch();
    write(path, &pin, file_mode, &mut sync)?;
    sync.commit()?;
    Ok(Pinned {
        email: email.to_string(),
        pin,
        no_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_and_damaged_entries_never_loosen_the_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("bob_at_x_dot_org");
        std::fs::write(&f, "").unwrap();
        assert_eq!(read(&f), (Pin::default(), None));
        std::fs::write(&f, r#"{"email":"bob@x.org","proof":"sometimes"}"#).unwrap();
        let (pin, why) = read(&f);
        assert_eq!(pin.proof, ProofMode::Required);
        assert!(why.is_some());
        std::fs::write(
            &f,
            r#"{"email":"bob@x.org","added_at":"t","status":"active"}"#,
        )
        .unwrap();
        let pin = Pin {
            proof: ProofMode::Required,
            key: Some("sha256:ab".into()),
            pinned_at: Some("2026-12-01T10:00:00".into()),
        };
        let mut sync = Sync::batch();
        write(&f, &pin, 0o600, &mut sync).unwrap();
        sync.commit().unwrap();
        assert_eq!(read(&f), (pin, None));
        let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(doc["added_at"], "t", "other fields are kept");
    }

    #[test]
    fn a_hand_named_entry_is_pinned_in_place_and_an_unchanged_pin_is_not_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::in_test_dir(tmp.path());
        std::fs::create_dir_all(l.allowlist_dir()).unwrap();
        // Named as the original app named it (underscore not doubled).
        let legacy = l.allowlist_dir().join("john_doe_at_x_dot_org");
        std::fs::write(&legacy, "").unwrap();
        let p = pin_published(&l, "john_doe@x.org", Some(ProofMode::Required)).unwrap();
        assert_eq!(p.pin.proof, ProofMode::Required);
        assert_eq!(read(&legacy).0.proof, ProofMode::Required);
        let files: Vec<_> = std::fs::read_dir(l.allowlist_dir()).unwrap().collect();
        assert_eq!(files.len(), 1, "no second file for the same sender");
        let before = std::fs::metadata(&legacy).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        pin_published(&l, "john_doe@x.org", Some(ProofMode::Required)).unwrap();
        assert_eq!(
            std::fs::metadata(&legacy).unwrap().modified().unwrap(),
            before
        );
    }
}
