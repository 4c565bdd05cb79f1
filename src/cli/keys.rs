//! The requester's side of proven senders: `keys init`, `keys show` and `attest JOB_DIR`. Keys
//! are syft-crypto's (same files, same formats), found from the requester's SyftBox config.

use std::path::{Path, PathBuf};

use crate::core::attestation;
use crate::error::{Error, Result};
use crate::queue::metadata::Metadata;
use crate::queue::proof;
use crate::store::identity;
use crate::syftbox::Identity;

fn config_field(id: &Identity, field: &str) -> Option<String> {
    id.source
        .as_deref()
        .and_then(|p| crate::durable::read_capped(p, 1 << 20).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v[field].as_str().map(str::to_owned))
}

/// The config's `server_url`, as syft-crypto reads it (its default when absent).
fn server_url(id: &Identity) -> String {
    config_field(id, "server_url").unwrap_or_else(|| identity::DEFAULT_SERVER_URL.to_string())
}

/// The email as the config spells it (syft-crypto derives the key folder from that spelling),
/// unless `--email` chose another identity.
fn config_email(id: &Identity) -> String {
    config_field(id, "email")
        .filter(|e| e.trim().to_lowercase() == id.email)
        .unwrap_or_else(|| id.email.clone())
}

pub(super) fn key_path(id: &Identity, key: Option<&Path>) -> PathBuf {
    let email = config_email(id);
    key.map(Path::to_path_buf)
        .unwrap_or_else(|| identity::key_file(&id.data_dir, &server_url(id), &email))
}

/// `keys init`: makes the identity key and `did.json` as syft-crypto's `bootstrap_user` does.
pub(crate) fn init(id: &Identity, force: bool) -> Result<()> {
    let email = config_email(id);
    let made = identity::init(&id.data_dir, &server_url(id), &email, force)?;
    println!("created {}", made.key_file.display());
    println!("published {}", made.did_file.display());
    println!("key: {}", made.identity.key_id);
    println!(
        "fingerprint: {}",
        attestation::fingerprint(&made.identity.public)
    );
    Ok(())
}

/// `keys show`: the DID and fingerprint of the published key, and whether the private key here
/// is its other half.
pub(crate) fn show(id: &Identity, key: Option<&Path>) -> Result<()> {
    let did = identity::did_path(&id.data_dir, &id.email);
    let published = identity::read_published(&did)?;
    println!("key: {}", published.key_id);
    println!(
        "fingerprint: {}",
        attestation::fingerprint(&published.public)
    );
    println!("published in: {}", did.display());
    let path = key_path(id, key);
    match identity::read_private(&path) {
        Ok(k) if k.verifying_key().to_bytes() == published.public => {
            println!("private key: {} (matches)", path.display())
        }
        Ok(_) => eprintln!(
            "warning: the private key in {} is not the published one: jobs signed with it will not verify",
            path.display()
        ),
        Err(e) => eprintln!("warning: {e}"),
    }
    Ok(())
}

fn read_job(job: &Path) -> Result<Metadata> {
    Metadata::read(job).map_err(|e| {
        Error::invalid(
            format!("{} is not a job folder: {e}", job.display()),
            "give the folder of one job (it holds metadata.json and code/)",
        )
    })
}

/// A requester's identity key, checked against the key their `did.json` publishes.
pub(crate) struct Signer {
    email: String,
    key: ed25519_dalek::SigningKey,
    published: identity::PublicIdentity,
}

impl Signer {
    /// The key of `id` (`--key FILE`, else the one the SyftBox config implies).
    pub(crate) fn load(id: &Identity, key: Option<&Path>) -> Result<Signer> {
        let signing = identity::read_private(&key_path(id, key))?;
        let did = identity::did_path(&id.data_dir, &id.email);
        let published = identity::read_published(&did).map_err(|e| {
            Error::invalid(
                format!("no published identity key for {}: {e}", id.email),
                "publish one with `syft-reviewer keys init` (or syft-crypto's bootstrap_user) and let SyftBox sync it",
            )
        })?;
        Ok(Signer {
            email: id.email.clone(),
            key: signing,
            published,
        })
    }

    /// Proves the job in `job` is the signer's: writes the attestation into its metadata.
    pub(crate) fn sign(&self, job: &Path) -> Result<proof::Attested> {
        let meta = read_job(job)?;
        // The job is addressed to its owner; inspect it as that owner would.
        let ins = crate::queue::inspect(job, &meta.meta.target_email.to_lowercase());
        proof::attest(&ins, &self.key, &self.email, &self.published)
    }
}

/// `attest JOB_DIR`: proves the job is the requester's by signing it with their identity key.
pub(crate) fn attest(id: &Identity, job: &Path, key: Option<&Path>) -> Result<()> {
    read_job(job)?;
    let done = Signer::load(id, key)?.sign(job)?;
    print_attested(&done);
    Ok(())
}

pub(crate) fn print_attested(done: &proof::Attested) {
    println!(
        "attested job {} (signature {}) with {} ({})",
        done.uid, done.signature, done.key, done.fingerprint
    );
}
