//! Proven senders with the real tools on the other side: keys made by PyPI `syft-crypto` sign
//! jobs with `syft-reviewer attest`, keys made by `syft-reviewer keys init` load in syft-crypto,
//! and attestations verify with Python's `cryptography` as much as with ours.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::*;
use crate::venv::{describe, python};

pub(crate) const ALICE: &str = "alice@example.org";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/proof_interop.py");

fn py(args: &[&str]) -> Output {
    Command::new(python())
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub(crate) fn ok_py(args: &[&str]) -> String {
    let out = py(args);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Alice's SyftBox config on the same (synced) tree as the owner's.
pub(crate) fn requester_config(sb: &Sandbox) -> PathBuf {
    config_of(sb, ALICE)
}

/// A requester's SyftBox config on the same (synced) tree as the owner's.
pub(crate) fn config_of(sb: &Sandbox, email: &str) -> PathBuf {
    let config = sb.dir.path().join(format!("{email}-config.json"));
    fs::write(
        &config,
        serde_json::json!({"data_dir": sb.data_dir, "email": email, "server_url": "https://syftbox.net"})
            .to_string(),
    )
    .unwrap();
    config
}

pub(crate) fn as_requester(config: &Path, args: &[&str]) -> Output {
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

// ------------------------------------------------------------------------- the owner's side

pub(crate) const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A job from `from` written outside the queue (its folder, named by its uid).
pub(crate) fn build_job(sb: &Sandbox, from: &str, code: &[u8]) -> (String, PathBuf) {
    build_job_with(sb, from, &[("run.sh", code)])
}

pub(crate) fn build_job_with(
    sb: &Sandbox,
    from: &str,
    files: &[(&str, &[u8])],
) -> (String, PathBuf) {
    let uid = new_uid();
    let dir = sb.dir.path().join("build").join(&uid);
    write_job(
        &dir,
        &uid,
        from,
        OWNER,
        "Count rows",
        "Counts rows",
        &["stats"],
        files,
    );
    (uid, dir)
}

/// Renames a built job into pending/ whole, as the queue client does.
pub(crate) fn enqueue(sb: &Sandbox, uid: &str, dir: &Path) {
    fs::rename(dir, sb.job_dir("pending", uid)).unwrap();
}

/// Edits a built job's metadata.json.
pub(crate) fn edit_metadata(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("metadata.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    fs::write(path, m.to_string()).unwrap();
}

/// A job from `from`, attested by `signer_config` if given, then renamed into pending/ whole.
fn job(sb: &Sandbox, from: &str, signer_config: Option<&Path>, code: &[u8]) -> String {
    let (uid, build) = build_job(sb, from, code);
    if let Some(cfg) = signer_config {
        let out = as_requester(cfg, &["attest", build.to_str().unwrap()]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    enqueue(sb, &uid, &build);
    uid
}

fn explain(sb: &Sandbox, uid: &str) -> String {
    let out = sb.cli(&["explain", uid]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn waits(sb: &Sandbox, uid: &str, outcome: &str, why: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, outcome).is_empty()),
        "job {uid} was not {outcome}: {:?}",
        sb.decisions()
    );
    assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
    let said = explain(sb, uid);
    assert!(said.contains(why), "expected {why:?} in:\n{said}");
}

pub(crate) fn approved(sb: &Sandbox, uid: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some("approved")),
        "job {uid} was not approved: {:?}",
        sb.decisions()
    );
}

/// Alice with published keys, trusted by the owner with her key pinned.
pub(crate) fn trusted_alice(sb: &Sandbox) -> PathBuf {
    let config = requester_config(sb);
    assert!(as_requester(&config, &["keys", "init"]).status.success());
    let out = sb.cli(&["allow", "add", ALICE]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("pinned alice@example.org's identity key sha256:"),
        "{said}"
    );
    assert!(said.contains("proof required"), "{said}");
    config
}

#[test]
fn the_template_entry_no_longer_approves_whoever_claims_it() {
    let sb = Sandbox::new();
    let _d = sb.start(&[]);
    let forged = job(
        &sb,
        "andrew@openmined.org",
        None,
        b"cat /data/private.csv\n",
    );
    waits(
        &sb,
        &forged,
        "waiting",
        "andrew@openmined.org must prove their jobs",
    );
}

#[test]
fn proven_jobs_are_approved_and_forgeries_wait_or_are_flagged() {
    let sb = Sandbox::new();
    let alice = trusted_alice(&sb);
    let _d = sb.start(&[]);

    let proven = job(&sb, ALICE, Some(&alice), b"echo hi\n");
    approved(&sb, &proven);
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&proven, "approved")
        .is_empty()));
    let line = &sb.decisions_for(&proven, "approved")[0];
    assert!(line.to_string().contains("proved the job"), "{line}");

    // Unsigned, claiming Alice.
    let unsigned = job(&sb, ALICE, None, b"cat /data/private.csv\n");
    waits(&sb, &unsigned, "waiting", "must prove their jobs");

    // Signed by the attacker's own key (published under the attacker's name), claiming Alice:
    // the attacker cannot write Alice's did.json, so the proof is checked against Alice's key.
    let mallory_cfg = sb.dir.path().join("mallory-config.json");
    fs::write(
        &mallory_cfg,
        serde_json::json!({"data_dir": sb.data_dir, "email": "mallory@example.org", "server_url": "https://syftbox.net"}).to_string(),
    )
    .unwrap();
    assert!(
        as_requester(&mallory_cfg, &["keys", "init"])
            .status
            .success()
    );
    let (uid, build) = build_job(&sb, "mallory@example.org", b"cat /data/private.csv\n");
    assert!(
        as_requester(&mallory_cfg, &["attest", build.to_str().unwrap()])
            .status
            .success()
    );
    edit_metadata(&build, |m| m["requester_email"] = ALICE.into());
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "proof does not match");

    // A proof copied from the approved job onto another one (replay).
    let (replay, build) = build_job(&sb, ALICE, b"echo hi\n");
    let proof: serde_json::Value = serde_json::from_slice(
        &fs::read(sb.job_dir("approved", &proven).join("metadata.json")).unwrap(),
    )
    .unwrap();
    edit_metadata(&build, |m| m["attestation"] = proof["attestation"].clone());
    enqueue(&sb, &replay, &build);
    waits(&sb, &replay, "flagged", "proof does not match");

    // Code changed after signing.
    let (uid, build) = build_job(&sb, ALICE, b"echo hi\n");
    assert!(
        as_requester(&alice, &["attest", build.to_str().unwrap()])
            .status
            .success()
    );
    fs::write(build.join("code/run.sh"), "cat /data/private.csv\n").unwrap();
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "proof does not match");

    // Malformed attestation.
    let (uid, build) = build_job(&sb, ALICE, b"echo hi\n");
    edit_metadata(&build, |m| {
        m["attestation"] = serde_json::json!({"v": 1, "alg": "Ed25519", "key": "x", "sig": "!!"})
    });
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "proof does not match");
}

#[test]
fn a_key_replaced_after_pinning_is_never_followed_silently() {
    let sb = Sandbox::new();
    let alice = trusted_alice(&sb);
    // Alice's did.json now publishes another key (a new device, or someone who took over her
    // account on the server): her proofs verify against it, but it is not the pinned one.
    assert!(
        as_requester(&alice, &["keys", "init", "--force"])
            .status
            .success()
    );
    let _d = sb.start(&[]);
    let uid = job(&sb, ALICE, Some(&alice), b"echo hi\n");
    waits(
        &sb,
        &uid,
        "waiting",
        "identity key changed since you trusted alice@example.org",
    );
    // The owner re-pins, and the job is approved.
    assert!(sb.cli(&["allow", "add", ALICE]).status.success());
    approved(&sb, &uid);
}

#[test]
fn a_proof_made_by_python_cryptography_is_accepted() {
    let sb = Sandbox::new();
    let config = requester_config(&sb);
    ok_py(&["bootstrap", config.to_str().unwrap()]);
    assert!(sb.cli(&["allow", "add", ALICE]).status.success());
    let (uid, build) = build_job(&sb, ALICE, b"echo hi\n");
    let sig = signature_of(&sb, &build);
    ok_py(&[
        "sign",
        config.to_str().unwrap(),
        build.to_str().unwrap(),
        &sig,
    ]);
    let _d = sb.start(&[]);
    enqueue(&sb, &uid, &build);
    approved(&sb, &uid);
}

#[test]
fn the_first_proven_job_pins_the_key_of_a_sender_who_had_none() {
    let sb = Sandbox::new();
    // Added before publishing a key: proof optional, nothing pinned.
    let out = sb.cli(&["allow", "add", ALICE, "--proof", "required"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("has published no identity key"));
    let alice = requester_config(&sb);
    assert!(as_requester(&alice, &["keys", "init"]).status.success());
    let _d = sb.start(&[]);
    let first = job(&sb, ALICE, Some(&alice), b"echo hi\n");
    approved(&sb, &first);
    let entry = sb.allowlist_dir().join("alice_at_example_dot_org");
    assert!(
        wait_for(WAIT, || fs::read_to_string(&entry)
            .unwrap_or_default()
            .contains("sha256:")),
        "the first proven job did not pin the key: {}",
        fs::read_to_string(&entry).unwrap_or_default()
    );
    // From now on another key is not followed.
    assert!(
        as_requester(&alice, &["keys", "init", "--force"])
            .status
            .success()
    );
    let second = job(&sb, ALICE, Some(&alice), b"echo hi again\n");
    waits(&sb, &second, "waiting", "identity key changed");
}
