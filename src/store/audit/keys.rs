//! The hex text of keys and signatures, and signing and checking with them.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
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

/// A public key as published in `audit/public_key` (`ed25519:` and 64 hex digits).
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let t = text.trim();
    let t = t.strip_prefix("ed25519:").unwrap_or(t);
    VerifyingKey::from_bytes(&unhex::<32>(t)?).ok()
}

pub(super) fn sign_hex(key: &SigningKey, msg: &str) -> String {
    hex(&key.sign(msg.as_bytes()).to_bytes())
}

pub(super) fn verify_hex(key: &VerifyingKey, msg: &str, sig: &str) -> bool {
    unhex::<64>(sig)
        .map(|b| {
            key.verify(msg.as_bytes(), &Signature::from_bytes(&b))
                .is_ok()
        })
        .unwrap_or(false)
}
