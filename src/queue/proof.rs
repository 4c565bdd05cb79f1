//! Proofs of who sent a job (SPEC §9): checking a job's attestation against the sender's
//! published identity key, and making one for a job folder (`syft-reviewer attest`).
//!
//! Checking reads only the sender's `did.json` as synced to this machine, within a size cap; a
//! missing or damaged one is a reason, never an error that stops a review.

use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

use crate::core::attestation::{self, Attestation, Claim, Proof};
use crate::core::email;
use crate::durable::Sync;
use crate::error::{Error, Result};
use crate::queue::Inspection;
use crate::queue::metadata::Metadata;
use crate::store::identity::{self, PublicIdentity};

/// The field of `metadata.json` that carries the proof.
pub const FIELD: &str = "attestation";

fn invalid(reason: impl Into<String>) -> Proof {
    Proof::Invalid {
        reason: reason.into(),
    }
}

/// The facts a statement is made of, from the job's own files.
fn claim<'a>(m: &'a Metadata, signature: &'a str) -> std::result::Result<Claim<'a>, String> {
    let created_at = m
        .doc
        .get("created_at")
        .and_then(Value::as_str)
        .ok_or("the job has no created_at to sign")?;
    Ok(Claim {
        created_at,
        requester_email: &m.meta.requester_email,
        signature,
        target_email: &m.meta.target_email,
        uid: &m.meta.uid,
    })
}

/// Checks the job's attestation against its sender's `did.json` under `data_dir`.
pub fn check(ins: &Inspection, data_dir: &Path) -> Proof {
    let Some(m) = &ins.meta else {
        return Proof::None;
    };
    let Some(raw) = m.doc.get(FIELD).filter(|v| !v.is_null()) else {
        return Proof::None;
    };
    let att: Attestation = match serde_json::from_value(raw.clone()) {
        Ok(a) => a,
        Err(e) => return invalid(format!("the attestation is malformed ({e})")),
    };
    let Some(signature) = &ins.signature else {
        return invalid("the job's code was not read in full, so its proof cannot be checked");
    };
    let sender = m.meta.requester_email.to_lowercase();
    // The sender's name becomes a path: only a valid email (no `/`, no `..`) may.
    if !email::is_valid(&sender) {
        return invalid(format!("the sender {sender:?} is not a valid email"));
    }
    let published = match identity::read_published(&identity::did_path(data_dir, &sender)) {
        Ok(p) => p,
        Err(e) => return invalid(format!("the sender's identity key cannot be read: {e}")),
    };
    let c = match claim(m, signature) {
        Ok(c) => c,
        Err(why) => return invalid(why),
    };
    match attestation::verify(&att, &c, &published.key_id, &published.public) {
        Ok(()) => Proof::Proven {
            key: published.key_id,
            fingerprint: attestation::fingerprint(&published.public),
        },
        Err(why) => invalid(why.to_string()),
    }
}

/// What `attest` did.
#[derive(Debug, Clone, Serialize)]
pub struct Attested {
    pub uid: String,
    pub signature: String,
    pub key: String,
    pub fingerprint: String,
}

/// Signs a job folder as its sender and writes the proof into its `metadata.json`. `signer` is
/// the key's owner; `published` their key as in their `did.json` (which must be this key).
pub fn attest(
    ins: &Inspection,
    key: &SigningKey,
    signer: &str,
    published: &PublicIdentity,
) -> Result<Attested> {
    if let Some(why) = &ins.ignored {
        return Err(Error::invalid(
            format!("{} is not a job folder", ins.dir.display()),
            why.clone(),
        ));
    }
    let Some(m) = &ins.meta else {
        return Err(Error::invalid(
            format!("{} has no readable metadata.json", ins.dir.display()),
            ins.problems.join("; "),
        ));
    };
    if m.meta.requester_email.to_lowercase() != signer.to_lowercase() {
        return Err(Error::invalid(
            format!(
                "the job is sent as {:?}, but the key belongs to {signer}",
                m.meta.requester_email
            ),
            "only the sender can prove a job: sign it with the sender's own SyftBox identity",
        ));
    }
    if published.public != key.verifying_key().to_bytes() {
        return Err(Error::invalid(
            "the key does not match the identity key published in your did.json",
            "publish this key (syft-crypto's bootstrap_user, or `syft-reviewer keys init --force`) or sign with the key it names (--key FILE)",
        ));
    }
    let Some(signature) = &ins.signature else {
        return Err(Error::invalid(
            format!("job {} has no signature to sign", m.meta.uid),
            ins.problems.join("; "),
        ));
    };
    let c = claim(m, signature)
        .map_err(|why| Error::invalid(why, "the queue client always writes created_at"))?;
    let att = attestation::sign(key, &published.key_id, &c);
    let mut m = m.clone();
    m.doc.insert(
        FIELD.into(),
        serde_json::to_value(&att).unwrap_or(Value::Null),
    );
    let mut sync = Sync::batch();
    m.write(&ins.dir, &mut sync)?;
    sync.commit()?;
    Ok(Attested {
        uid: m.meta.uid.clone(),
        signature: signature.clone(),
        key: published.key_id.clone(),
        fingerprint: attestation::fingerprint(&published.public),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const OWNER: &str = "owner@example.org";
    const ALICE: &str = "alice@example.org";

    fn job(data: &Path, uid: &str, from: &str) -> std::path::PathBuf {
        let dir = data.join("pending").join(uid);
        fs::create_dir_all(dir.join("code")).unwrap();
        fs::write(dir.join("code/run.sh"), "echo hi\n").unwrap();
        let meta = serde_json::json!({
            "uid": uid, "name": "Count", "requester_email": from, "target_email": OWNER,
            "description": "", "tags": [], "status": "pending",
            "created_at": "2026-12-01T10:00:00.000001",
        });
        fs::write(dir.join("metadata.json"), meta.to_string()).unwrap();
        dir
    }

    #[test]
    fn a_proof_holds_for_its_job_only() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("SyftBox");
        let made = identity::init(&data, "https://syftbox.net", ALICE, false).unwrap();
        let key = identity::read_private(&made.key_file).unwrap();
        let dir = job(tmp.path(), "u1", ALICE);
        let ins = crate::queue::inspect(&dir, OWNER);
        assert_eq!(check(&ins, &data), Proof::None);
        let done = attest(&ins, &key, ALICE, &made.identity).unwrap();
        let ins = crate::queue::inspect(&dir, OWNER);
        assert_eq!(
            check(&ins, &data),
            Proof::Proven {
                key: done.key.clone(),
                fingerprint: done.fingerprint.clone()
            }
        );
        // Code changed after signing.
        fs::write(dir.join("code/run.sh"), "cat /data/private.csv\n").unwrap();
        let changed = crate::queue::inspect(&dir, OWNER);
        assert!(matches!(check(&changed, &data), Proof::Invalid { .. }));
        // Replayed onto another job.
        let other = job(tmp.path(), "u2", ALICE);
        let mut m = Metadata::read(&other).unwrap();
        let proof = Metadata::read(&dir).unwrap().doc[FIELD].clone();
        m.doc.insert(FIELD.into(), proof);
        fs::write(other.join("metadata.json"), m.to_json()).unwrap();
        let replay = crate::queue::inspect(&other, OWNER);
        assert!(matches!(check(&replay, &data), Proof::Invalid { .. }));
        // Someone else's job cannot be signed with this key.
        let bob = job(tmp.path(), "u3", "bob@example.org");
        let ins = crate::queue::inspect(&bob, OWNER);
        assert!(attest(&ins, &key, ALICE, &made.identity).is_err());
    }
}
