//! SyftBox identity keys as PyPI `syft-crypto` keeps them (SPEC §9), so either tool can use keys
//! the other made: the private key file `pvt.jwks.json` (in a folder derived from the client
//! config), and the public DID document `datasites/<email>/public/did.json`.
//!
//! Paths and formats match syft-crypto byte for byte: the key folder is
//! `<parent of data_dir>/.syftbox/<first 8 hex of sha256("<server_url>::<email>")>/`, with the
//! server URL printed as pydantic prints it and the email as pydantic's `EmailStr` keeps it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::durable;
use crate::error::{Error, Result};

/// syft-crypto's default server when the client config names none.
pub const DEFAULT_SERVER_URL: &str = "https://syftbox.openmined.org";
const KEY_FILE: &str = "pvt.jwks.json";
/// A DID document is small; anything larger is not one.
const DID_LIMIT: u64 = 64 * 1024;

/// A published identity key: the verification method's id and the raw Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    pub key_id: String,
    pub public: [u8; 32],
}

/// The server URL as pydantic's `AnyHttpUrl` prints it: scheme and host lower-cased, the
/// default port dropped, `/` for an empty path.
pub fn normalize_server_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let scheme = scheme.to_ascii_lowercase();
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(p) = default_port
        && authority.ends_with(p)
    {
        authority.truncate(authority.len() - p.len());
    }
    let tail = if tail.is_empty() || tail.starts_with(['?', '#']) {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    format!("{scheme}://{authority}{tail}")
}

/// The host of a server URL (the DID's domain).
fn host(url: &str) -> String {
    let n = normalize_server_url(url);
    let rest = n.split_once("://").map_or(n.as_str(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .to_string()
}

/// The email as pydantic's `EmailStr` keeps it: trimmed, the domain lower-cased.
pub fn config_email(email: &str) -> String {
    let e = email.trim();
    match e.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => e.to_string(),
    }
}

/// Where syft-crypto keeps the private keys of `email` on server `server_url`.
pub fn key_file(data_dir: &Path, server_url: &str, email: &str) -> PathBuf {
    let partition = format!(
        "{}::{}",
        normalize_server_url(server_url),
        config_email(email)
    );
    let hash = format!("{:x}", Sha256::digest(partition.as_bytes()));
    data_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .join(".syftbox")
        .join(&hash[..8])
        .join(KEY_FILE)
}

/// `datasites/<email>/public/did.json`.
pub fn did_path(data_dir: &Path, email: &str) -> PathBuf {
    data_dir
        .join("datasites")
        .join(email)
        .join("public")
        .join("did.json")
}

/// `did:web:<host>:<email, percent-encoded>` as syft-crypto makes it.
pub fn did_id(server_url: &str, email: &str) -> String {
    let encoded: String = email
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("did:web:{}:{encoded}", host(server_url))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64_32(s: &str, what: &str, path: &Path) -> Result<[u8; 32]> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| {
            Error::invalid(
                format!("{}: {what} is not 32 bytes of base64url", path.display()),
                "the file is damaged; restore it, or make new keys with `syft-reviewer keys init --force`",
            )
        })
}

/// The identity key published in a DID document.
pub fn read_published(did: &Path) -> Result<PublicIdentity> {
    let bytes = durable::read_capped(did, DID_LIMIT)?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            format!("{} is not a DID document ({e})", did.display()),
            "its owner republishes it with syft-crypto's bootstrap_user or `syft-reviewer keys init`",
        )
    })?;
    let method = doc["verificationMethod"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_str().is_some_and(|id| id.ends_with("#identity-key")))
        .ok_or_else(|| {
            Error::invalid(
                format!("{} has no #identity-key verification method", did.display()),
                "its owner republishes it with syft-crypto's bootstrap_user or `syft-reviewer keys init`",
            )
        })?;
    let jwk = &method["publicKeyJwk"];
    if method["type"] != "Ed25519VerificationKey2020"
        || jwk["kty"] != "OKP"
        || jwk["crv"] != "Ed25519"
    {
        return Err(Error::invalid(
            format!("{}: the identity key is not an Ed25519 key", did.display()),
            "only Ed25519VerificationKey2020 identity keys are supported",
        ));
    }
    Ok(PublicIdentity {
        key_id: method["id"].as_str().unwrap_or_default().to_string(),
        public: unb64_32(jwk["x"].as_str().unwrap_or(""), "the identity key", did)?,
    })
}

/// The identity signing key in a syft-crypto `pvt.jwks.json`.
pub fn read_private(path: &Path) -> Result<SigningKey> {
    let bytes = durable::read_capped(path, DID_LIMIT).map_err(|e| match e.io_kind() {
        Some(std::io::ErrorKind::NotFound) => Error::not_found(
            format!("identity key file {}", path.display()),
            "make one with `syft-reviewer keys init` (or syft-crypto's bootstrap_user), or pass --key FILE",
        ),
        _ => e,
    })?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            format!("{} is not a key file ({e})", path.display()),
            "it should be syft-crypto's pvt.jwks.json",
        )
    })?;
    let jwk = &doc["identity_key"];
    if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err(Error::invalid(
            format!("{} has no Ed25519 identity_key", path.display()),
            "it should be syft-crypto's pvt.jwks.json",
        ));
    }
    let d = unb64_32(jwk["d"].as_str().unwrap_or(""), "identity_key.d", path)?;
    let key = SigningKey::from_bytes(&d);
    if let Some(x) = jwk["x"].as_str()
        && unb64_32(x, "identity_key.x", path)? != key.verifying_key().to_bytes()
    {
        return Err(Error::invalid(
            format!(
                "{}: identity_key.x is not the public half of identity_key.d",
                path.display()
            ),
            "the file is damaged; restore it, or make new keys with `syft-reviewer keys init --force`",
        ));
    }
    Ok(key)
}

/// RFC 7638 thumbprint of an OKP key, as jwcrypto sets `kid`.
fn thumbprint(crv: &str, x: &str) -> String {
    let canonical = format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#);
    b64(&Sha256::digest(canonical.as_bytes()))
}

fn private_jwk(crv: &str, public: &[u8], secret: &[u8]) -> Value {
    let x = b64(public);
    json!({"kty": "OKP", "crv": crv, "x": x, "d": b64(secret), "kid": thumbprint(crv, &x)})
}

/// What `keys init` made.
#[derive(Debug, Clone)]
pub struct Created {
    pub key_file: PathBuf,
    pub did_file: PathBuf,
    pub identity: PublicIdentity,
}

/// Makes an identity key and a signed pre-key, writes `pvt.jwks.json` (0600) and `did.json`
/// exactly as syft-crypto's `bootstrap_user` does. Refuses to replace existing keys unless
/// `force`: a new key breaks every pin made on the old one.
pub fn init(data_dir: &Path, server_url: &str, email: &str, force: bool) -> Result<Created> {
    let email = config_email(email);
    let key_file = key_file(data_dir, server_url, &email);
    if key_file.exists() && !force {
        return Err(Error::invalid(
            format!("identity keys already exist at {}", key_file.display()),
            "`syft-reviewer keys show` prints them; --force replaces them (owners who pinned the old key must pin the new one)",
        ));
    }
    let identity = SigningKey::from_bytes(&crate::store::secret::random_bytes::<32>());
    let spk = x25519_dalek::StaticSecret::from(crate::store::secret::random_bytes::<32>());
    let spk_public = x25519_dalek::PublicKey::from(&spk);
    let spk_signature = identity.sign(spk_public.as_bytes());
    let public = identity.verifying_key().to_bytes();

    let keys = json!({
        "identity_key": private_jwk("Ed25519", &public, identity.as_bytes()),
        "signed_prekey": private_jwk("X25519", spk_public.as_bytes(), spk.as_bytes()),
    });
    let dir = key_file.parent().unwrap_or(Path::new("."));
    durable::ensure_private_dir(dir, 0o700)?;
    durable::write_atomic(&key_file, pretty(&keys).as_bytes(), 0o600)?;

    let id = did_id(server_url, &email);
    let identity_jwk = json!({"kty": "OKP", "kid": "identity-key", "crv": "Ed25519", "x": b64(&public), "use": "sig"});
    // Field order as syft-crypto writes it.
    let mut spk_jwk = json!({"kty": "OKP", "kid": "signed-prekey", "crv": "X25519", "x": b64(spk_public.as_bytes()), "use": "enc"});
    spk_jwk["signature"] = b64(&spk_signature.to_bytes()).into();
    let doc = json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2020/v1",
            "https://w3id.org/security/suites/x25519-2020/v1"
        ],
        "id": id,
        "verificationMethod": [{
            "id": format!("{id}#identity-key"),
            "type": "Ed25519VerificationKey2020",
            "controller": id,
            "publicKeyJwk": identity_jwk,
        }],
        "keyAgreement": [{
            "id": format!("{id}#signed-prekey"),
            "type": "X25519KeyAgreementKey2020",
            "controller": id,
            "publicKeyJwk": spk_jwk,
        }],
    });
    let did_file = did_path(data_dir, &email);
    let public_dir = did_file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(public_dir).map_err(|e| Error::io("create", public_dir, e))?;
    durable::write_atomic(&did_file, pretty(&doc).as_bytes(), 0o644)?;
    Ok(Created {
        key_file,
        did_file,
        identity: PublicIdentity {
            key_id: format!("{id}#identity-key"),
            public,
        },
    })
}

/// JSON as Python's `json.dump(indent=2)` writes it (no trailing newline).
fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by syft-crypto 0.1.2's bootstrap_user for alice@example.org on https://syftbox.net.
    const PVT: &str = r#"{
  "identity_key": {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "yGDtMHkHmkLduvn1ePd5sJFshNm5RjBhmio8SMnV4cs",
    "d": "KOSeRAsxAsp1h1QJdwHCGcNKRPMDub4a8FpLxxi6Z0Y",
    "kid": "GYI9PnWwxePxDhffJ4bKw7dvJqmzx8G-JnPuo-yXo5U"
  },
  "signed_prekey": {
    "kty": "OKP",
    "crv": "X25519",
    "x": "DlPPPHITpYcUlkGnHtc3SekAUgRTFnDM1ySRVJXz2RY",
    "d": "uNH-tlVuKf0UCygueEYXRvtmTjt-OxW_6lhn8_1XeUs",
    "kid": "B2S8y6fVOi6HiObV99iudoOYn2Y4YdXLBwQJsdjCA1M"
  }
}"#;

    #[test]
    fn paths_match_syft_crypto() {
        let data = Path::new("/tmp/sc/SyftBox");
        assert_eq!(
            key_file(data, "https://syftbox.net", "alice@example.org"),
            Path::new("/tmp/sc/.syftbox/456788da/pvt.jwks.json")
        );
        assert_eq!(
            did_id("https://syftbox.net", "alice@example.org"),
            "did:web:syftbox.net:alice%40example.org"
        );
        for (given, printed) in [
            ("https://syftbox.net", "https://syftbox.net/"),
            ("https://SyftBox.NET:443", "https://syftbox.net/"),
            ("http://localhost:8080", "http://localhost:8080/"),
            ("https://x.org/api", "https://x.org/api"),
            ("http://x.org:80/a?b=1", "http://x.org/a?b=1"),
            ("https://dev.syftbox.net ", "https://dev.syftbox.net/"),
        ] {
            assert_eq!(normalize_server_url(given), printed, "{given}");
        }
        assert_eq!(host("http://localhost:8080"), "localhost");
        assert_eq!(config_email(" Alice@Example.ORG"), "Alice@example.org");
    }

    #[test]
    fn reads_syft_crypto_keys_and_writes_the_same_formats() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join(KEY_FILE);
        std::fs::write(&f, PVT).unwrap();
        let key = read_private(&f).unwrap();
        assert_eq!(
            b64(&key.verifying_key().to_bytes()),
            "yGDtMHkHmkLduvn1ePd5sJFshNm5RjBhmio8SMnV4cs"
        );
        assert_eq!(
            thumbprint("Ed25519", "yGDtMHkHmkLduvn1ePd5sJFshNm5RjBhmio8SMnV4cs"),
            "GYI9PnWwxePxDhffJ4bKw7dvJqmzx8G-JnPuo-yXo5U"
        );
        assert_eq!(
            thumbprint("X25519", "DlPPPHITpYcUlkGnHtc3SekAUgRTFnDM1ySRVJXz2RY"),
            "B2S8y6fVOi6HiObV99iudoOYn2Y4YdXLBwQJsdjCA1M"
        );
        let data = tmp.path().join("SyftBox");
        let made = init(&data, "https://syftbox.net", "alice@example.org", false).unwrap();
        assert!(init(&data, "https://syftbox.net", "alice@example.org", false).is_err());
        let back = read_private(&made.key_file).unwrap();
        assert_eq!(back.verifying_key().to_bytes(), made.identity.public);
        assert_eq!(read_published(&made.did_file).unwrap(), made.identity);
        let doc: Value = serde_json::from_slice(&std::fs::read(&made.did_file).unwrap()).unwrap();
        let keys: Vec<&String> = doc["verificationMethod"][0]["publicKeyJwk"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["kty", "kid", "crv", "x", "use"]);
    }
}
