//! Proven senders with the real tools on the other side: keys made by PyPI `syft-crypto` sign
//! jobs with `syft-reviewer attest`, keys made by `syft-reviewer keys init` load in syft-crypto,
//! and attestations verify with Python's `cryptography` as much as with ours.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::*;
use crate::venv::{describe, python};

const ALICE: &str = "alice@example.org";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/proof_interop.py");

fn py(args: &[&str]) -> Output {
    Command::new(python())
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok_py(args: &[&str]) -> String {
    let out = py(args);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A requester's SyftBox config on the same (synced) tree as the owner's.
fn requester_config(sb: &Sandbox) -> PathBuf {
    let config = sb.dir.path().join("alice-config.json");
    fs::write(
        &config,
        serde_json::json!({"data_dir": sb.data_dir, "email": ALICE, "server_url": "https://syftbox.net"})
            .to_string(),
    )
    .unwrap();
    config
}

fn as_requester(config: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--config").arg(config).args(args);
    c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
    c.output().unwrap()
}

fn signature_of(sb: &Sandbox, dir: &Path) -> String {
    let out = sb.cli(&["signature", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn syft_crypto_keys_sign_jobs_that_an_independent_ed25519_verifies() {
    let sb = Sandbox::new();
    let config = requester_config(&sb);
    ok_py(&["bootstrap", config.to_str().unwrap()]);
    let uid = sb.submit(ALICE, &simple_code());
    let job = sb.job_dir("pending", &uid);
    let out = as_requester(&config, &["attest", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("attested job {uid}")), "{said}");
    let sig = signature_of(&sb, &job);
    assert!(ok_py(&["verify", job.to_str().unwrap(), &sig]).contains("verified"));
    // The proof binds the code: changed after signing, the independent check refuses it.
    fs::write(job.join("code/run.sh"), "cat /data/private.csv\n").unwrap();
    let changed = signature_of(&sb, &job);
    let out = py(&["verify", job.to_str().unwrap(), &changed]);
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn keys_made_here_are_syft_crypto_keys() {
    let sb = Sandbox::new();
    let config = requester_config(&sb);
    let out = as_requester(&config, &["keys", "init"]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("fingerprint: sha256:"), "{said}");
    // syft-crypto finds and loads them where it keeps its own.
    let loaded = ok_py(&["load", config.to_str().unwrap()]);
    assert!(loaded.starts_with("public="), "{loaded}");
    // A second init refuses to replace them.
    let again = as_requester(&config, &["keys", "init"]);
    assert!(!again.status.success(), "{}", describe(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let show = as_requester(&config, &["keys", "show"]);
    assert!(show.status.success(), "{}", describe(&show));
    assert!(String::from_utf8_lossy(&show.stdout).contains("(matches)"));
}

#[test]
fn attest_refuses_what_is_not_the_requesters_to_prove() {
    let sb = Sandbox::new();
    let config = requester_config(&sb);
    // No key yet: says how to make one.
    let uid = sb.submit(ALICE, &simple_code());
    let job = sb.job_dir("pending", &uid);
    let out = as_requester(&config, &["attest", job.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keys init"),
        "{}",
        describe(&out)
    );
    assert!(as_requester(&config, &["keys", "init"]).status.success());
    // Someone else's job.
    let bobs = sb.submit("bob@example.org", &simple_code());
    let out = as_requester(
        &config,
        &["attest", sb.job_dir("pending", &bobs).to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the key belongs to alice@example.org"),
        "{}",
        describe(&out)
    );
    // A key that is not the published one.
    let other = sb.dir.path().join("other.jwks.json");
    let made = sb.dir.path().join("elsewhere/SyftBox");
    fs::create_dir_all(&made).unwrap();
    let cfg2 = sb.dir.path().join("other-config.json");
    fs::write(
        &cfg2,
        serde_json::json!({"data_dir": made, "email": ALICE, "server_url": "https://syftbox.net"})
            .to_string(),
    )
    .unwrap();
    assert!(as_requester(&cfg2, &["keys", "init"]).status.success());
    let key2 = fs::read_dir(sb.dir.path().join("elsewhere/.syftbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("pvt.jwks.json");
    fs::copy(key2, &other).unwrap();
    let out = as_requester(
        &config,
        &[
            "attest",
            job.to_str().unwrap(),
            "--key",
            other.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match the identity key published"),
        "{}",
        describe(&out)
    );
    // Not a job folder.
    let out = as_requester(&config, &["attest", sb.dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a job folder"));
}
