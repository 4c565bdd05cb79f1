//! Proven senders end to end: a requester with syft-crypto keys submits with the real
//! `syft_code_queue.submit_job`, proves the job with `syft-reviewer attest`, and reads the approval
//! back with `get_job`; `submit --sign` does both in one step.

use std::fs;
use std::time::Duration;

use crate::proof::{ALICE, approved, as_requester, ok_py, requester_config, waits};
use crate::python_interop::{start_default, submit_and_wait};
use crate::util::*;
use crate::venv::describe;

#[test]
fn a_job_from_the_real_client_proven_with_attest_is_approved_and_read_back() {
    let sb = Sandbox::new();
    let config = requester_config(&sb);
    // The requester's keys, made by syft-crypto's own bootstrap_user.
    ok_py(&["bootstrap", config.to_str().unwrap()]);
    fs::create_dir_all(sb.data_dir.join("datasites").join(ALICE)).unwrap();
    let out = sb.cli(&["allow", "add", ALICE]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("proof required"));

    let code = sb.dir.path().join("alice-code");
    fs::create_dir_all(&code).unwrap();
    fs::write(code.join("run.sh"), "#!/bin/sh\npython3 main.py\n").unwrap();
    fs::write(code.join("main.py"), "print('rows:', 42)\n").unwrap();

    let daemon = start_default(&sb);
    let out = submit_and_wait(&config, sb.dir.path())
        .args([
            OWNER,
            code.to_str().unwrap(),
            "Row count",
            "Counts",
            "stats",
        ])
        .arg("120")
        .env("SYFT_REVIEWER_ATTEST", BIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let context = || format!("{}\ndaemon log:\n{}", describe(&out), daemon.log_text());
    assert!(out.status.success(), "{}", context());
    assert!(stdout.contains("attested=attested job"), "{}", context());
    assert!(stdout.contains("final=approved"), "{}", context());
    let uid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("uid="))
        .unwrap()
        .to_string();

    // Approved as a proven sender, the key in the decision and the audit chain.
    assert_eq!(sb.status_of(&uid).as_deref(), Some("approved"));
    let line = sb.decisions_for(&uid, "approved");
    assert!(
        line.first()
            .is_some_and(|l| l.to_string().contains("proved the job is theirs")),
        "{line:?}"
    );
    let meta = sb.metadata("approved", &uid);
    assert_eq!(meta["attestation"]["alg"], "Ed25519", "{meta:#}");
}

#[test]
fn submit_sign_writes_a_proven_job_and_refuses_a_sender_without_a_key() {
    let sb = Sandbox::new();
    let alice = requester_config(&sb);
    assert!(as_requester(&alice, &["keys", "init"]).status.success());
    assert!(sb.cli(&["allow", "add", ALICE]).status.success());
    let entry = |sb: &Sandbox| -> serde_json::Value {
        let out = sb.cli(&["allow", "list", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["entries"][0].clone()
    };
    let e = entry(&sb);
    assert_eq!(e["email"], ALICE, "{e}");
    assert_eq!(e["mode"], "required", "{e}");
    assert_eq!(e["proof"]["status"], "proven", "{e}");
    assert!(
        e["proof"]["key"].as_str().unwrap().starts_with("sha256:"),
        "{e}"
    );
    let code = sb.dir.path().join("code");
    fs::create_dir_all(&code).unwrap();
    fs::write(code.join("run.sh"), "echo hi\n").unwrap();
    let _d = sb.start(&[]);

    // Alice submits from her own client config, to the owner.
    let code_arg = code.to_str().unwrap();
    let out = as_requester(
        &alice,
        &["submit", code_arg, "--from", ALICE, "--to", OWNER, "--sign"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signed with"));
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    approved(&sb, &uid);

    // Unsigned, the same sender waits: the signature is what made the difference.
    let out = as_requester(
        &alice,
        &["submit", code_arg, "--from", ALICE, "--to", OWNER],
    );
    let unsigned = String::from_utf8_lossy(&out.stdout).trim().to_string();
    waits(&sb, &unsigned, "waiting", "must prove their jobs");

    // A sender with no key: a clear error, and nothing enters the queue.
    let before = fs::read_dir(sb.queue().join("pending")).unwrap().count();
    let out = sb.cli(&["submit", code_arg, "--from", "bob@example.org", "--sign"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key") && err.contains("keys init"),
        "{}",
        describe(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_dir(sb.queue().join("pending")).unwrap().count(),
        before,
        "a failed signing left something in pending/"
    );

    // Alice publishes another key: her entry says so before any job shows it.
    assert!(
        as_requester(&alice, &["keys", "init", "--force"])
            .status
            .success()
    );
    let e = entry(&sb);
    assert_eq!(e["proof"]["status"], "key_changed", "{e}");
    assert!(
        e["proof"]["reason"].as_str().unwrap().contains("re-pin"),
        "{e}"
    );
}

/// `peers_only` with a peer who published no key when approved: unsigned jobs claiming them wait
/// under the default `require_proof`, pass (labelled unverified) with `require_proof: false`, and
/// their first proven job pins their key.
#[test]
fn peers_only_rules_require_a_proven_peer_unless_the_owner_says_otherwise() {
    let sb = Sandbox::new();
    let rules = |require: &str| {
        format!(
            "jobs:\n  enabled: true\n  rules:\n    - name: peers\n      peers_only: true\n{require}      required_filenames: [run.sh]\n"
        )
    };
    fs::create_dir_all(sb.app_data()).unwrap();
    fs::write(sb.app_data().join("config.yaml"), rules("")).unwrap();
    let out = sb.cli(&["peers", "approve", ALICE]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("has published no identity key"),
        "{}",
        describe(&out)
    );
    let d = sb.start(&[]);
    let code: [(&str, &[u8]); 1] = [("run.sh", b"echo hi\n")];
    let unsigned = sb.submit(ALICE, &code);
    waits(
        &sb,
        &unsigned,
        "waiting",
        "carries no proof (require_proof)",
    );

    // The owner gives up proofs for this rule set: the same kind of job passes, labelled.
    fs::write(
        sb.app_data().join("config.yaml"),
        rules("      require_proof: false\n"),
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || sb
            .status_of(&unsigned)
            .as_deref()
            == Some("approved")),
        "{}",
        d.log_text()
    );
    assert!(wait_for(Duration::from_secs(15), || !sb
        .decisions_for(&unsigned, "approved")
        .is_empty()));
    let line = sb.decisions_for(&unsigned, "approved")[0].to_string();
    assert!(line.contains("unverified sender"), "{line}");

    // A proven job pins the key the peer published since.
    let alice = requester_config(&sb);
    assert!(as_requester(&alice, &["keys", "init"]).status.success());
    let code_dir = sb.dir.path().join("code");
    fs::create_dir_all(&code_dir).unwrap();
    fs::write(code_dir.join("run.sh"), "echo proven\n").unwrap();
    let out = as_requester(
        &alice,
        &[
            "submit",
            code_dir.to_str().unwrap(),
            "--from",
            ALICE,
            "--to",
            OWNER,
            "--sign",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let proven = String::from_utf8_lossy(&out.stdout).trim().to_string();
    approved(&sb, &proven);
    let entry = sb
        .app_data()
        .join("peers/approved/alice_at_example_dot_org");
    assert!(
        wait_for(Duration::from_secs(15), || fs::read_to_string(&entry)
            .unwrap_or_default()
            .contains("sha256:")),
        "the first proven job did not pin the peer's key: {}",
        fs::read_to_string(&entry).unwrap_or_default()
    );
}

/// Each part of the statement a proof binds, changed after signing, and a damaged key document:
/// every such job is flagged with the reason, never approved.
#[test]
fn metadata_changed_after_signing_and_damaged_keys_are_flagged() {
    use crate::proof::{build_job, edit_metadata, enqueue, trusted_alice};
    let sb = Sandbox::new();
    let alice = trusted_alice(&sb);
    let _d = sb.start(&[]);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("name", |m| m["name"] = "Count rows (v2)".into()),
        ("tags", |m| {
            m["tags"] = serde_json::json!(["stats", "export"])
        }),
        ("description", |m| m["description"] = "Exports rows".into()),
        ("created_at", |m| {
            m["created_at"] = "2026-12-01T00:00:00.000001".into()
        }),
        ("uid", |_| {}),
    ];
    for (what, edit) in edits {
        let (uid, build) = build_job(&sb, ALICE, b"echo hi\n");
        let out = as_requester(&alice, &["attest", build.to_str().unwrap()]);
        assert!(out.status.success(), "{}", describe(&out));
        edit_metadata(&build, edit);
        // "uid": the signed folder is moved in under another uid (metadata says the new one).
        let uid = if what == "uid" {
            let other = new_uid();
            edit_metadata(&build, |m| m["uid"] = other.clone().into());
            other
        } else {
            uid
        };
        enqueue(&sb, &uid, &build);
        waits(&sb, &uid, "flagged", "proof does not match");
    }

    // A proof made for another owner, readdressed to this one.
    let (uid, build) = build_job(&sb, ALICE, b"echo hi\n");
    edit_metadata(&build, |m| {
        m["target_email"] = "other.owner@example.org".into()
    });
    let out = as_requester(&alice, &["attest", build.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    edit_metadata(&build, |m| m["target_email"] = OWNER.into());
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "proof does not match");

    // The sender's did.json damaged: not JSON, then a JWK whose key is not 32 bytes.
    let did = sb
        .data_dir
        .join("datasites")
        .join(ALICE)
        .join("public/did.json");
    let good = fs::read_to_string(&did).unwrap();
    let (uid, build) = build_job(&sb, ALICE, b"echo signed before\n");
    assert!(
        as_requester(&alice, &["attest", build.to_str().unwrap()])
            .status
            .success()
    );
    fs::write(&did, "{not json").unwrap();
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "identity key cannot be read");
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["verificationMethod"][0]["publicKeyJwk"]["x"] = "AAAA".into();
    fs::write(&did, doc.to_string()).unwrap();
    let (uid, build) = build_job(&sb, ALICE, b"echo signed later\n");
    fs::write(&did, &good).unwrap();
    assert!(
        as_requester(&alice, &["attest", build.to_str().unwrap()])
            .status
            .success()
    );
    fs::write(&did, doc.to_string()).unwrap();
    enqueue(&sb, &uid, &build);
    waits(&sb, &uid, "flagged", "identity key cannot be read");
}
