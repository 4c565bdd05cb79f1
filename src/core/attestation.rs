//! Job attestations (SPEC §9): the statement a requester signs with their SyftBox identity key,
//! signing it, and checking a proof against a public key. Pure: the keys and the job's facts come
//! from the caller.
//!
//! The statement binds the sender, the owner, the uid, the creation time and (through the v1
//! signature) every code byte, so a proof copied to another job, or code changed after signing,
//! no longer verifies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The statement's `type`.
pub const STATEMENT_TYPE: &str = "syft-reviewer.job-attestation";
/// The `alg` of every attestation this version makes and accepts.
pub const ALG: &str = "Ed25519";

/// The `attestation` field of a job's `metadata.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub v: u64,
    pub alg: String,
    /// The `id` of the DID document's verification method (`...#identity-key`).
    pub key: String,
    /// Ed25519 over the statement, base64url without padding.
    pub sig: String,
}

/// What a statement is made of: the job's fields as they are in its `metadata.json`.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Exactly as written in `metadata.json` (not reformatted).
    pub created_at: &'a str,
    pub requester_email: &'a str,
    /// The job's trusted-code signature v1.
    pub signature: &'a str,
    pub target_email: &'a str,
    pub uid: &'a str,
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another version or algorithm than this one knows.
    Unsupported(String),
    /// `sig` is not 64 bytes of base64url.
    Malformed(String),
    /// The proof names another key than the sender's identity key.
    OtherKey { named: String, published: String },
    /// The signature does not verify: made by another key, or over other facts.
    BadSignature,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsupported(what) => write!(f, "unsupported attestation: {what}"),
            Refusal::Malformed(what) => write!(f, "malformed attestation: {what}"),
            Refusal::OtherKey { named, published } => write!(
                f,
                "the attestation names key {named:?}, not the sender's identity key {published:?}"
            ),
            Refusal::BadSignature => f.write_str(
                "the attestation does not verify: it was made with another key, or for other code, \
                 another job or another owner",
            ),
        }
    }
}

/// What a job's proof says, before any pin is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Proof {
    /// No attestation.
    None,
    /// Made with the sender's published identity key, over this very job.
    Proven { key: String, fingerprint: String },
    /// An attestation that does not hold, and why.
    Invalid { reason: String },
}

/// How a trusted sender must prove a job is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofMode {
    /// Approved as this sender only with a valid attestation made with the pinned key.
    Required,
    /// Unsigned jobs approved as before, labelled "unverified sender".
    #[default]
    Optional,
}

impl ProofMode {
    pub fn parse(s: &str) -> Option<ProofMode> {
        match s {
            "required" => Some(ProofMode::Required),
            "optional" => Some(ProofMode::Optional),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProofMode::Required => "required",
            ProofMode::Optional => "optional",
        }
    }
}

/// A trusted sender's proof settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub proof: ProofMode,
    /// `sha256:<hex>` of the identity key trusted for this sender.
    pub key: Option<String>,
    pub pinned_at: Option<String>,
}

/// Where a job stands as from a trusted sender, once its proof meets the sender's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Standing {
    /// Proven with the pinned key.
    Proven { fingerprint: String },
    /// Proven, and nothing was pinned yet: this key is pinned now (trust on first use).
    ProvenFirst { fingerprint: String },
    /// Unsigned, and the sender's proofs are optional.
    Unverified,
    /// Unsigned, and the sender must prove their jobs.
    Unsigned,
    /// Proven with another key than the one pinned.
    KeyChanged {
        pinned: String,
        now: String,
        pinned_at: Option<String>,
    },
    /// An attestation that does not hold.
    Invalid { reason: String },
}

impl Standing {
    /// Whether the job may be approved as from this sender.
    pub fn approves(&self) -> bool {
        matches!(
            self,
            Standing::Proven { .. } | Standing::ProvenFirst { .. } | Standing::Unverified
        )
    }

    /// Why a job that does not stand waits, in the owner's words.
    pub fn reason(&self, sender: &str) -> Option<String> {
        match self {
            Standing::Unsigned => Some(format!(
                "{sender} must prove their jobs (proof: required) and this one is unsigned: \
                 anyone can claim to be {sender}"
            )),
            Standing::KeyChanged { pinned_at, .. } => Some(format!(
                "identity key changed since you trusted {sender}{}: re-pin with `syft-reviewer allow add {sender}` once you know why",
                pinned_at
                    .as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default()
            )),
            Standing::Invalid { reason } => Some(format!("proof does not match: {reason}")),
            _ => None,
        }
    }
}

/// How far a job's sender, or a trusted sender's entry, is proven, as the API and the UI show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofStatus {
    /// Proven with the pinned key (for an entry: the published key is the pinned one).
    Proven,
    /// No proof, and none is asked for: the claim is only a claim.
    Unverified,
    /// A proof that does not hold (for an entry: its file or the published key is unreadable).
    Invalid,
    /// Proven with, or publishing, another key than the one pinned.
    KeyChanged,
    /// No proof where one is required (for an entry: no key pinned yet).
    None,
}

/// A [`ProofStatus`] with the key it concerns and why, in the owner's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofView {
    pub status: ProofStatus,
    /// The key fingerprint the proof was made with (or the entry's pinned one).
    pub key: Option<String>,
    pub reason: Option<String>,
}

impl ProofView {
    pub fn of(standing: &Standing, sender: &str) -> ProofView {
        let (status, key) = match standing {
            Standing::Proven { fingerprint } => (ProofStatus::Proven, Some(fingerprint)),
            Standing::ProvenFirst { fingerprint } => (ProofStatus::Proven, Some(fingerprint)),
            Standing::Unverified => (ProofStatus::Unverified, None),
            Standing::Unsigned => (ProofStatus::None, None),
            Standing::KeyChanged { now, .. } => (ProofStatus::KeyChanged, Some(now)),
            Standing::Invalid { .. } => (ProofStatus::Invalid, None),
        };
        let reason = match standing {
            Standing::ProvenFirst { .. } => {
                Some("the first proven job: its key is pinned now".to_string())
            }
            Standing::Unverified => Some(
                "the job carries no proof: the sender address is whatever its writer put there"
                    .to_string(),
            ),
            other => other.reason(sender),
        };
        ProofView {
            status,
            key: key.cloned(),
            reason,
        }
    }

    /// A trusted sender's entry: its pin against the key the sender publishes now.
    pub fn of_entry(pin: &Pin, published: Result<String, String>) -> ProofView {
        let pinned_on = pin
            .pinned_at
            .as_deref()
            .map(|t| format!(" (pinned {t})"))
            .unwrap_or_default();
        let view = |status, key: Option<&String>, reason: String| ProofView {
            status,
            key: key.cloned(),
            reason: Some(reason),
        };
        match (&pin.key, published) {
            (Some(k), Ok(now)) if *k == now => view(
                ProofStatus::Proven,
                Some(k),
                format!(
                    "proof {}: jobs are proven with this key{pinned_on}",
                    pin.proof.as_str()
                ),
            ),
            (Some(k), Ok(now)) => view(
                ProofStatus::KeyChanged,
                Some(k),
                format!(
                    "the sender now publishes another key ({now}) than the one pinned{pinned_on}: re-pin with `allow add` once you know why"
                ),
            ),
            (Some(k), Err(why)) => view(
                ProofStatus::Invalid,
                Some(k),
                format!("the sender's published key cannot be read: {why}"),
            ),
            (None, _) if pin.proof == ProofMode::Required => view(
                ProofStatus::None,
                None,
                "proof required and no key pinned yet: unsigned jobs wait; the first proven job pins its key".into(),
            ),
            (None, _) => view(
                ProofStatus::Unverified,
                None,
                "proof optional: unsigned jobs are approved, labelled unverified".into(),
            ),
        }
    }
}

/// Meets a job's proof with the sender's pin. Pure: the daemon pins a first key itself.
pub fn standing(pin: &Pin, proof: &Proof) -> Standing {
    match (proof, &pin.key) {
        (Proof::Invalid { reason }, _) => Standing::Invalid {
            reason: reason.clone(),
        },
        (Proof::Proven { fingerprint, .. }, Some(pinned)) if pinned == fingerprint => {
            Standing::Proven {
                fingerprint: fingerprint.clone(),
            }
        }
        (Proof::Proven { fingerprint, .. }, Some(pinned)) => Standing::KeyChanged {
            pinned: pinned.clone(),
            now: fingerprint.clone(),
            pinned_at: pin.pinned_at.clone(),
        },
        (Proof::Proven { fingerprint, .. }, None) => Standing::ProvenFirst {
            fingerprint: fingerprint.clone(),
        },
        (Proof::None, _) if pin.proof == ProofMode::Required => Standing::Unsigned,
        (Proof::None, _) => Standing::Unverified,
    }
}

/// The canonical JSON that is signed: keys sorted, no white space, non-ASCII not escaped; the
/// emails lower-cased.
pub fn statement(c: &Claim<'_>) -> String {
    let value = serde_json::json!({
        "created_at": c.created_at,
        "requester_email": c.requester_email.to_lowercase(),
        "signature": c.signature,
        "target_email": c.target_email.to_lowercase(),
        "type": STATEMENT_TYPE,
        "uid": c.uid,
        "v": 1,
    });
    let bytes = crate::core::canonical::value_to_vec(value).unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Signs a claim with the requester's identity key; `key_id` is the DID verification method.
pub fn sign(key: &SigningKey, key_id: &str, c: &Claim<'_>) -> Attestation {
    sign_text(key, key_id, &statement(c))
}

/// Signs a statement's text (a job's, or a reviewer's verdict).
pub fn sign_text(key: &SigningKey, key_id: &str, statement: &str) -> Attestation {
    let sig = key.sign(statement.as_bytes());
    Attestation {
        v: 1,
        alg: ALG.into(),
        key: key_id.into(),
        sig: URL_SAFE_NO_PAD.encode(sig.to_bytes()),
    }
}

/// Checks a proof against the sender's published identity key (`key_id` and its 32 raw bytes).
pub fn verify(
    att: &Attestation,
    c: &Claim<'_>,
    key_id: &str,
    public: &[u8; 32],
) -> Result<(), Refusal> {
    verify_text(att, &statement(c), key_id, public)
}

/// Checks a proof over a statement's text against a published identity key.
pub fn verify_text(
    att: &Attestation,
    statement: &str,
    key_id: &str,
    public: &[u8; 32],
) -> Result<(), Refusal> {
    if att.v != 1 {
        return Err(Refusal::Unsupported(format!("version {}", att.v)));
    }
    if att.alg != ALG {
        return Err(Refusal::Unsupported(format!("algorithm {:?}", att.alg)));
    }
    if att.key != key_id {
        return Err(Refusal::OtherKey {
            named: att.key.clone(),
            published: key_id.into(),
        });
    }
    let raw = URL_SAFE_NO_PAD
        .decode(att.sig.trim_end_matches('='))
        .map_err(|e| Refusal::Malformed(format!("sig is not base64url ({e})")))?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|v: Vec<u8>| Refusal::Malformed(format!("sig is {} bytes, not 64", v.len())))?;
    let key = VerifyingKey::from_bytes(public).map_err(|_| Refusal::BadSignature)?;
    // Strict: no malleable signatures, no weak keys.
    key.verify_strict(statement.as_bytes(), &Signature::from_bytes(&raw))
        .map_err(|_| Refusal::BadSignature)
}

/// The key's fingerprint as pinned and shown: `sha256:<hex of SHA-256 of the 32 raw bytes>`.
pub fn fingerprint(public: &[u8; 32]) -> String {
    format!("sha256:{:x}", Sha256::digest(public))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim<'a>(sig: &'a str, uid: &'a str) -> Claim<'a> {
        Claim {
            created_at: "2026-12-01T10:00:00.123456",
            requester_email: "Alice@Example.org",
            signature: sig,
            target_email: "owner@example.org",
            uid,
        }
    }

    #[test]
    fn the_statement_is_the_canonical_json_of_the_spec() {
        assert_eq!(
            statement(&claim("ab", "u1")),
            r#"{"created_at":"2026-12-01T10:00:00.123456","requester_email":"alice@example.org","signature":"ab","target_email":"owner@example.org","type":"syft-reviewer.job-attestation","uid":"u1","v":1}"#
        );
        let c = Claim {
            requester_email: "ü@example.org",
            ..claim("ab", "u1")
        };
        assert!(
            statement(&c).contains("\"ü@example.org\""),
            "non-ASCII is not escaped"
        );
    }

    #[test]
    fn a_proof_verifies_only_for_its_own_facts_and_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let id = "did:web:syftbox.net:alice%40example.org#identity-key";
        let sig = "cd".repeat(32);
        let c = claim(&sig, "u1");
        let att = sign(&key, id, &c);
        assert_eq!(verify(&att, &c, id, &public), Ok(()));
        // Another job, other code, another owner, another time.
        for other in [
            Claim { uid: "u2", ..c },
            Claim {
                signature: "ef",
                ..c
            },
            Claim {
                target_email: "eve@example.org",
                ..c
            },
            Claim {
                created_at: "2026-12-01T10:00:00",
                ..c
            },
        ] {
            assert_eq!(
                verify(&att, &other, id, &public),
                Err(Refusal::BadSignature)
            );
        }
        // Another key.
        let eve = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert_eq!(verify(&att, &c, id, &eve), Err(Refusal::BadSignature));
        assert!(matches!(
            verify(&att, &c, "did:web:x#identity-key", &public),
            Err(Refusal::OtherKey { .. })
        ));
        // Garbage.
        for (v, alg, sig) in [
            (2, ALG, att.sig.as_str()),
            (1, "RS256", &att.sig),
            (1, ALG, "!!"),
            (1, ALG, "AAAA"),
        ] {
            let bad = Attestation {
                v,
                alg: alg.into(),
                key: id.into(),
                sig: sig.into(),
            };
            assert!(verify(&bad, &c, id, &public).is_err());
        }
    }

    #[test]
    fn a_proof_meets_the_pin() {
        let proven = |f: &str| Proof::Proven {
            key: "k".into(),
            fingerprint: f.into(),
        };
        let pin = |mode, key: Option<&str>| Pin {
            proof: mode,
            key: key.map(Into::into),
            pinned_at: None,
        };
        use ProofMode::*;
        assert!(matches!(
            standing(&pin(Required, Some("a")), &proven("a")),
            Standing::Proven { .. }
        ));
        assert!(matches!(
            standing(&pin(Required, Some("a")), &proven("b")),
            Standing::KeyChanged { .. }
        ));
        assert!(matches!(
            standing(&pin(Optional, Some("a")), &proven("b")),
            Standing::KeyChanged { .. }
        ));
        assert!(matches!(
            standing(&pin(Required, None), &proven("b")),
            Standing::ProvenFirst { .. }
        ));
        assert_eq!(
            standing(&pin(Required, Some("a")), &Proof::None),
            Standing::Unsigned
        );
        assert_eq!(
            standing(&pin(Optional, None), &Proof::None),
            Standing::Unverified
        );
        let bad = Proof::Invalid { reason: "x".into() };
        assert!(matches!(
            standing(&pin(Optional, None), &bad),
            Standing::Invalid { .. }
        ));
        for s in [Standing::Unsigned, Standing::Invalid { reason: "x".into() }] {
            assert!(!s.approves() && s.reason("a@b.co").is_some());
        }
    }

    #[test]
    fn fingerprints_are_sha256_of_the_raw_key() {
        assert_eq!(
            fingerprint(&[0; 32]),
            "sha256:66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
    }
}
