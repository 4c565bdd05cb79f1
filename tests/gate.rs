//! The human gate against the real binary: the owner's verdicts from the CLI, the API and MCP with
//! their effect on disk, the refusals (which change nothing), expiry of jobs nobody decided, the
//! signed audit chain (verification, tampering, concurrent appenders, a torn last line, hand
//! edits) and the Prometheus metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{Web, serve};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(20);
const EVE: &str = "eve@evil.example";
const BOB: &str = "bob@x.org";
const NO_WEB: [&str; 3] = ["--no-web", "--rescan-secs", "3600"];
const QUIET_WEB: [&str; 2] = ["--rescan-secs", "3600"];

// ------------------------------------------------------------------------------ helpers

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Asserts the command exited with `code` and a one-line `error: ...` message; returns stderr.
#[track_caller]
fn fails(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit code {code}:\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    if code == 1 {
        assert!(
            stderr.trim_start().starts_with("error: "),
            "errors are one line starting with `error: `: {stderr}"
        );
    }
    stderr
}

fn signature_of(sb: &Sandbox, dir: &Path) -> String {
    let sig = ok(&sb.cli(&["signature", dir.to_str().unwrap()]))
        .trim()
        .to_string();
    assert_eq!(sig.len(), 64, "not a signature: {sig:?}");
    sig
}

fn naive_ago(age: chrono::Duration) -> String {
    syft_reviewer::queue::metadata::format_naive(
        &(syft_reviewer::queue::metadata::now_naive() - age),
    )
}

/// Writes a pending job as the queue client does, after `edit` changed its metadata.
fn submit_meta(sb: &Sandbox, from: &str, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let uid = new_uid();
    let tmp = sb.dir.path().join(format!("build-{uid}"));
    write_job(
        &tmp,
        &uid,
        from,
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        &simple_code(),
    );
    let path = tmp.join("metadata.json");
    let mut meta: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut meta);
    fs::write(&path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    fs::rename(&tmp, sb.job_dir("pending", &uid)).unwrap();
    uid
}

#[track_caller]
fn wait_waiting(sb: &Sandbox, d: &Daemon, uid: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "waiting").is_empty()),
        "job {uid} was never recorded as waiting; log:\n{}",
        d.log_text()
    );
}

#[track_caller]
fn wait_status(sb: &Sandbox, d: &Daemon, uid: &str, status: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ (it is in {:?}); log:\n{}",
        sb.status_of(uid),
        d.log_text()
    );
}

fn chain_path(sb: &Sandbox) -> PathBuf {
    sb.app_data().join("audit/chain.jsonl")
}

/// `audit show`: every entry of the chain, as JSON.
fn audit_show(sb: &Sandbox) -> Vec<Value> {
    ok(&sb.cli(&["audit", "show"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`audit show` line {l:?}: {e}")))
        .collect()
}

fn audit_where(sb: &Sandbox, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    audit_show(sb).into_iter().filter(|e| f(e)).collect()
}

#[track_caller]
fn wait_audit(sb: &Sandbox, d: &Daemon, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    let seen = wait_for(WAIT, || {
        found = audit_show(sb).into_iter().find(|e| f(e));
        found.is_some()
    });
    assert!(
        seen,
        "no audit entry for {what}; chain:\n{}\nlog:\n{}",
        fs::read_to_string(chain_path(sb)).unwrap_or_default(),
        d.log_text()
    );
    found.unwrap()
}

/// `audit verify` (with extra arguments): exit code and the JSON it prints.
fn verify_cli(sb: &Sandbox, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let out = sb.cli(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "`audit verify` did not print JSON ({e}): {stdout:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[track_caller]
fn assert_valid(sb: &Sandbox) -> u64 {
    let (code, v) = verify_cli(sb, &[]);
    assert_eq!(code, 0, "the chain must verify: {v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["first_break"], Value::Null, "{v}");
    v["entries"].as_u64().unwrap()
}

/// Parses a permission file into JSON values, independently of the app's own types.
fn perm_rules(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    let v: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()));
    v["rules"].as_array().cloned().unwrap_or_default()
}

fn users(rule: &Value, access: &str) -> Vec<String> {
    rule["access"][access]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `syft.pub.yaml` of an approved job grants no write/admin, and the requester can still
/// read what they sent.
#[track_caller]
fn assert_locked(dir: &Path, requester: &str) {
    for rel in ["syft.pub.yaml", "code/syft.pub.yaml"] {
        let path = dir.join(rel);
        let rules = perm_rules(&path);
        assert!(!rules.is_empty(), "{} lost its rules", path.display());
        for r in &rules {
            assert!(
                users(r, "write").is_empty() && users(r, "admin").is_empty(),
                "{} still grants write/admin: {r}",
                path.display()
            );
            assert!(
                users(r, "read").iter().any(|u| u == requester),
                "{} no longer lets the requester read: {r}",
                path.display()
            );
        }
    }
}

// --- effects of each verdict on disk

#[track_caller]
fn assert_approved(sb: &Sandbox, uid: &str, requester: &str) {
    assert_eq!(sb.status_of(uid).as_deref(), Some("approved"));
    let m = sb.metadata("approved", uid);
    assert_eq!(m["status"], "approved", "{m}");
    assert_eq!(m["error_message"], Value::Null, "{m}");
    assert_locked(&sb.job_dir("approved", uid), requester);
}

#[track_caller]
fn assert_rejected(sb: &Sandbox, uid: &str, message: &str) {
    assert_eq!(sb.status_of(uid).as_deref(), Some("rejected"));
    let m = sb.metadata("rejected", uid);
    assert_eq!(m["status"], "rejected", "{m}");
    assert!(
        m["completed_at"].as_str().is_some_and(|s| s.len() >= 19),
        "completed_at must be set: {m}"
    );
    assert_eq!(m["error_message"], message, "{m}");
}

/// One decision-log line for the job with this outcome, by a human, with the rationale.
#[track_caller]
fn assert_logged(sb: &Sandbox, uid: &str, outcome: &str, rationale: Option<&str>) {
    let d = sb.decisions_for(uid, outcome);
    assert_eq!(d.len(), 1, "decisions.jsonl for {uid}/{outcome}: {d:?}");
    assert_eq!(d[0]["method"], "human", "{}", d[0]);
    if let Some(r) = rationale {
        assert!(
            d[0]["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains(r))),
            "the rationale is not among the reasons: {}",
            d[0]
        );
    }
}

/// Exactly one audit `decision` entry for the job, by `actor`, with `outcome`.
#[track_caller]
fn assert_audited(sb: &Sandbox, uid: &str, actor: &str, outcome: &str, sig: Option<&str>) {
    let e = audit_where(sb, |e| e["event"] == "decision" && e["uid"] == uid);
    assert_eq!(e.len(), 1, "audit decision entries for {uid}: {e:?}");
    assert_eq!(e[0]["actor"], actor, "{}", e[0]);
    assert_eq!(e[0]["outcome"], outcome, "{}", e[0]);
    assert_eq!(e[0]["email"], EVE, "{}", e[0]);
    if let Some(sig) = sig {
        assert_eq!(e[0]["signature"], sig, "{}", e[0]);
    }
}

// --- the chain, read independently of the app's code (README: "The audit chain")

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 hex of the entry's canonical JSON (keys sorted, no whitespace, no `hash` and `sig`).
fn canonical_hash(entry: &Value) -> String {
    let mut m: BTreeMap<String, Value> = entry
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    m.remove("hash");
    m.remove("sig");
    format!("{:x}", Sha256::digest(serde_json::to_vec(&m).unwrap()))
}

fn public_key(sb: &Sandbox) -> VerifyingKey {
    let text = fs::read_to_string(sb.app_data().join("audit/public_key")).unwrap();
    let hexkey = text.trim().strip_prefix("ed25519:").unwrap_or(text.trim());
    VerifyingKey::from_bytes(&unhex(hexkey).try_into().unwrap()).unwrap()
}

/// Checks every line as the README describes the chain; returns the entries.
#[track_caller]
fn check_chain_by_hand(sb: &Sandbox) -> Vec<Value> {
    let data = fs::read_to_string(chain_path(sb)).unwrap();
    assert!(data.ends_with('\n'), "the chain must end with a newline");
    let key = public_key(sb);
    let mut prev = "0".repeat(64);
    let mut out = Vec::new();
    for (i, line) in data.lines().enumerate() {
        let e: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("line {i} is not JSON ({err}): {line:?}"));
        assert_eq!(e["seq"], i as u64, "line {i}: {line}");
        assert_eq!(e["prev"], prev.as_str(), "line {i} does not link: {line}");
        let hash = canonical_hash(&e);
        assert_eq!(e["hash"], hash.as_str(), "line {i}: hash mismatch: {line}");
        let sig: [u8; 64] = unhex(e["sig"].as_str().unwrap()).try_into().unwrap();
        key.verify(hash.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap_or_else(|err| panic!("line {i}: bad signature ({err}): {line}"));
        for field in ["time", "event", "actor", "outcome"] {
            assert!(e[field].is_string(), "line {i} has no {field}: {line}");
        }
        prev = hash;
        out.push(e);
    }
    out
}

// ------------------------------------------------------------------------------ 1. verdicts

#[test]
fn each_verdict_from_the_cli_moves_the_job_and_is_logged_and_audited() {
    let sb = Sandbox::new();
    let approve = sb.submit(EVE, &simple_code());
    let reject = sb.submit(EVE, &simple_code());
    let changes = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    for uid in [&approve, &reject, &changes] {
        wait_waiting(&sb, &d, uid);
    }
    let before = sb.metadata("pending", &approve);
    let sig = signature_of(&sb, &sb.job_dir("pending", &approve));

    let out = ok(&sb.cli(&["decide", &approve, "approve", "--signature", &sig]));
    assert!(out.contains(&approve) && out.contains("approved"), "{out}");
    assert_approved(&sb, &approve, EVE);
    let after = sb.metadata("approved", &approve);
    for (k, v) in before.as_object().unwrap() {
        if k != "status" && k != "updated_at" {
            assert_eq!(&after[k], v, "approval changed field {k}");
        }
    }

    let out = ok(&sb.cli(&[
        "decide",
        &reject,
        "reject",
        "--rationale",
        "uses the raw table",
    ]));
    assert!(out.contains(&reject) && out.contains("rejected"), "{out}");
    assert_rejected(&sb, &reject, "uses the raw table");

    let out = ok(&sb.cli(&[
        "decide",
        &changes,
        "request-changes",
        "--rationale",
        "aggregate to 10+ rows",
    ]));
    assert!(out.contains(&changes) && out.contains("rejected"), "{out}");
    assert_rejected(&sb, &changes, "changes requested: aggregate to 10+ rows");

    assert_logged(&sb, &approve, "approved", None);
    assert_logged(&sb, &reject, "rejected", Some("uses the raw table"));
    assert_logged(
        &sb,
        &changes,
        "changes_requested",
        Some("aggregate to 10+ rows"),
    );
    assert_audited(&sb, &approve, "cli", "approved", Some(&sig));
    assert_audited(&sb, &reject, "cli", "rejected", None);
    assert_audited(&sb, &changes, "cli", "changes_requested", None);
    assert_eq!(assert_valid(&sb), 3);
    check_chain_by_hand(&sb);

    // The running daemon leaves the decided jobs where the owner put them.
    settle(&sb);
    assert_eq!(sb.status_of(&approve).as_deref(), Some("approved"));
    assert_eq!(sb.status_of(&reject).as_deref(), Some("rejected"));
    assert_eq!(sb.status_of(&changes).as_deref(), Some("rejected"));
}

#[test]
fn each_verdict_from_the_api_moves_the_job_and_is_logged_and_audited() {
    let sb = Sandbox::new();
    let approve = sb.submit(EVE, &simple_code());
    let reject = sb.submit(EVE, &simple_code());
    let changes = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &QUIET_WEB);
    for uid in [&approve, &reject, &changes] {
        wait_waiting(&sb, &web.daemon, uid);
    }
    let sig = signature_of(&sb, &sb.job_dir("pending", &approve));
    let path = |uid: &str| format!("/api/v1/jobs/{uid}/decide");

    let v = web
        .post(
            &path(&approve),
            Some(&json!({"verdict": "approve", "rationale": "looks fine", "signature": sig})),
        )
        .expect(200);
    assert_eq!(v["uid"], approve.as_str(), "{v}");
    assert_eq!(v["verdict"], "approve", "{v}");
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["actor"], "web", "{v}");
    assert_eq!(v["signature"], sig.as_str(), "{v}");
    assert_approved(&sb, &approve, EVE);

    let v = web
        .post(
            &path(&reject),
            Some(
                &json!({"verdict": "reject", "rationale": "uses the raw table",
                "signature": signature_of(&sb, &sb.job_dir("pending", &reject))}),
            ),
        )
        .expect(200);
    assert_eq!(
        (&v["verdict"], &v["status"], &v["rationale"]),
        (
            &json!("reject"),
            &json!("rejected"),
            &json!("uses the raw table")
        ),
        "{v}"
    );
    assert_rejected(&sb, &reject, "uses the raw table");

    // Scripts use the API token instead of the page's CSRF token.
    let r = web.request(
        "POST",
        &path(&changes),
        &[
            ("Authorization", &format!("Bearer {}", web.token)),
            ("Content-Type", "application/json"),
        ],
        json!({"verdict": "request_changes", "rationale": "aggregate to 10+ rows",
            "signature": signature_of(&sb, &sb.job_dir("pending", &changes))})
        .to_string()
        .as_bytes(),
    );
    let v = r.expect(200);
    assert_eq!(
        (&v["verdict"], &v["status"]),
        (&json!("request_changes"), &json!("rejected")),
        "{v}"
    );
    assert_rejected(&sb, &changes, "changes requested: aggregate to 10+ rows");

    assert_logged(&sb, &approve, "approved", None);
    assert_logged(&sb, &reject, "rejected", Some("uses the raw table"));
    assert_logged(
        &sb,
        &changes,
        "changes_requested",
        Some("aggregate to 10+ rows"),
    );
    assert_audited(&sb, &approve, "web", "approved", Some(&sig));
    assert_audited(&sb, &reject, "web", "rejected", None);
    assert_audited(&sb, &changes, "web", "changes_requested", None);
    assert_eq!(assert_valid(&sb), 3);
    let v = web.get("/api/v1/audit/verify").expect(200);
    assert_eq!(
        (&v["valid"], &v["entries"], &v["first_break"]),
        (&json!(true), &json!(3), &Value::Null),
        "{v}"
    );

    // The decisions endpoint shows them, newest first.
    let v = web.get("/api/v1/decisions").expect(200);
    let outcomes: Vec<(&str, &str)> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "human")
        .map(|e| (e["uid"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (changes.as_str(), "changes_requested"),
            (reject.as_str(), "rejected"),
            (approve.as_str(), "approved")
        ]
    );
}

// ------------------------------------------------------------------------------ 2. refusals

#[test]
fn refused_verdicts_from_the_cli_say_why_and_change_nothing() {
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let other = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &job);
    wait_waiting(&sb, &d, &other);
    settle(&sb);

    let j = job.as_str();
    let cases: [&[&str]; 4] = [
        &["decide", j, "reject"],
        &["decide", j, "reject", "--rationale", "   "],
        &["decide", j, "request-changes"],
        &["decide", j, "request-changes", "--rationale", ""],
    ];
    for args in cases {
        let err = unchanged(&sb, &format!("{args:?}"), || fails(&sb.cli(args), 1));
        assert!(err.contains("rationale"), "{args:?}: {err}");
    }
    let err = unchanged(&sb, "an unknown uid", || {
        fails(
            &sb.cli(&["decide", "no-such-job", "reject", "--rationale", "x"]),
            1,
        )
    });
    assert!(
        err.contains("no-such-job") && err.contains("not found"),
        "{err}"
    );
    // An unknown verdict is a usage error (exit code 2), naming the accepted ones.
    let err = unchanged(&sb, "an unknown verdict", || {
        fails(&sb.cli(&["decide", &job, "maybe", "--rationale", "x"]), 2)
    });
    assert!(err.contains("maybe") && err.contains("approve"), "{err}");

    // A stale signature: the job changed after the owner looked at it.
    let seen = signature_of(&sb, &sb.job_dir("pending", &job));
    fs::write(
        sb.job_dir("pending", &job).join("code/main.py"),
        "print(open('/data/raw.csv').read())\n",
    )
    .unwrap();
    assert!(
        wait_for(WAIT, || sb.decisions_for(&job, "waiting").len() >= 2),
        "the daemon never re-evaluated the changed job; log:\n{}",
        d.log_text()
    );
    settle(&sb);
    let now = signature_of(&sb, &sb.job_dir("pending", &job));
    assert_ne!(seen, now);
    let err = unchanged(&sb, "a stale signature", || {
        fails(
            &sb.cli(&["decide", &job, "approve", "--signature", &seen]),
            1,
        )
    });
    assert!(err.contains("changed") && err.contains(&now), "{err}");
    // With what the job is now, the same verdict goes through.
    ok(&sb.cli(&["decide", &job, "approve", "--signature", &now]));
    assert_approved(&sb, &job, EVE);
    settle(&sb);

    // A job that is no longer pending.
    let cases: [&[&str]; 2] = [
        &["decide", j, "reject", "--rationale", "too late"],
        &["decide", j, "approve"],
    ];
    for args in cases {
        let err = unchanged(&sb, &format!("{args:?}"), || fails(&sb.cli(args), 1));
        assert!(
            err.contains("no longer pending") && err.contains("approved"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));
    // Only the one accepted verdict reached the chain.
    let decisions = audit_where(&sb, |e| e["event"] == "decision");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_valid(&sb);
}

#[test]
fn refused_verdicts_from_the_api_say_why_and_change_nothing() {
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &QUIET_WEB);
    wait_waiting(&sb, &web.daemon, &job);
    settle(&sb);
    let path = format!("/api/v1/jobs/{job}/decide");

    for body in [
        json!({"verdict": "reject"}),
        json!({"verdict": "reject", "rationale": "  "}),
        json!({"verdict": "request_changes"}),
        json!({"verdict": "request_changes", "rationale": ""}),
    ] {
        let v = unchanged(&sb, &body.to_string(), || {
            web.post(&path, Some(&body)).expect(400)
        });
        assert!(
            v["error"].as_str().unwrap().contains("rationale"),
            "{body}: {v}"
        );
    }
    let v = unchanged(&sb, "an unknown verdict", || {
        web.post(&path, Some(&json!({"verdict": "maybe", "rationale": "x"})))
            .expect(400)
    });
    assert!(v["error"].as_str().unwrap().contains("maybe"), "{v}");
    let v = unchanged(&sb, "an unknown uid", || {
        web.post(
            "/api/v1/jobs/no-such-job/decide",
            Some(&json!({"verdict": "reject", "rationale": "x"})),
        )
        .expect(404)
    });
    assert!(v["error"].as_str().unwrap().contains("no-such-job"), "{v}");
    for headers in [
        vec![("Content-Type", "application/json")],
        vec![
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", "0123456789abcdef0123456789abcdef"),
        ],
    ] {
        let r = unchanged(&sb, "a request without the CSRF token", || {
            web.request(
                "POST",
                &path,
                &headers,
                json!({"verdict": "approve"}).to_string().as_bytes(),
            )
        });
        let v = r.expect(403);
        assert!(v["error"].as_str().unwrap().contains("CSRF"), "{v}");
    }

    // A stale signature: a conflict with what the job is now.
    let seen = signature_of(&sb, &sb.job_dir("pending", &job));
    fs::write(
        sb.job_dir("pending", &job).join("code/main.py"),
        "print(open('/data/raw.csv').read())\n",
    )
    .unwrap();
    assert!(
        wait_for(WAIT, || sb.decisions_for(&job, "waiting").len() >= 2),
        "the daemon never re-evaluated the changed job; log:\n{}",
        web.daemon.log_text()
    );
    settle(&sb);
    let now = signature_of(&sb, &sb.job_dir("pending", &job));
    assert_ne!(seen, now);
    let v = unchanged(&sb, "a stale signature", || {
        web.post(
            &path,
            Some(&json!({"verdict": "approve", "signature": seen})),
        )
        .expect(409)
    });
    assert!(
        v["error"].as_str().unwrap().contains("changed")
            && v["hint"].as_str().unwrap().contains(&now),
        "{v}"
    );
    web.post(
        &path,
        Some(&json!({"verdict": "approve", "signature": now})),
    )
    .expect(200);
    assert_approved(&sb, &job, EVE);
    settle(&sb);

    // No longer pending.
    for body in [
        json!({"verdict": "approve"}),
        json!({"verdict": "reject", "rationale": "too late"}),
    ] {
        let v = unchanged(&sb, "a verdict on an approved job", || {
            web.post(&path, Some(&body)).expect(400)
        });
        assert!(
            v["error"].as_str().unwrap().contains("no longer pending"),
            "{v}"
        );
    }
    let decisions = audit_where(&sb, |e| e["event"] == "decision");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["actor"], "web");
}

// ------------------------------------------------------------------------------ 3. expiry

/// Waits for the job to be in `timedout/` with its expiry recorded, then checks all of it.
#[track_caller]
fn assert_expired(sb: &Sandbox, d: &Daemon, uid: &str) {
    wait_status(sb, d, uid, "timedout");
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "expired").is_empty()),
        "the expiry of {uid} never reached decisions.jsonl; log:\n{}",
        d.log_text()
    );
    wait_audit(sb, d, "an expiry", |e| e["uid"] == uid);
    let m = sb.metadata("timedout", uid);
    assert_eq!(m["status"], "timedout", "{m}");
    assert!(
        m["error_message"]
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains("expired")),
        "the error message must say the job expired: {m}"
    );
    assert!(m["completed_at"].is_string(), "{m}");
    let d = sb.decisions_for(uid, "expired");
    assert_eq!(d.len(), 1, "decisions.jsonl: {d:?}");
    let a = audit_where(sb, |e| e["event"] == "decision" && e["uid"] == uid);
    assert_eq!(a.len(), 1, "audit: {a:?}");
    assert_eq!(
        (&a[0]["actor"], &a[0]["outcome"]),
        (&json!("daemon"), &json!("expired")),
        "{}",
        a[0]
    );
}

#[test]
fn undecided_jobs_expire_while_the_daemon_runs_and_at_start() {
    let sb = Sandbox::new();
    let long = submit_meta(&sb, EVE, "Long", |m| m["timeout_seconds"] = 86_400.into());
    let long_before = snapshot(&sb.job_dir("pending", &long));
    let mut d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &long);

    // Expires while the daemon runs, from its own created_at + timeout_seconds.
    let short = submit_meta(&sb, EVE, "Short", |m| m["timeout_seconds"] = 2.into());
    assert_expired(&sb, &d, &short);
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon must still be the same process"
    );
    assert_eq!(
        sb.decisions_for(&short, "waiting").len(),
        1,
        "it was waiting before it expired"
    );
    let m = sb.metadata("timedout", &short);
    assert!(
        m["error_message"].as_str().unwrap().contains('2'),
        "the message should give the timeout: {m}"
    );

    // Expired while the daemon was stopped: handled when it starts.
    let (_, status) = terminate(&mut d);
    assert!(status.success(), "{status:?}");
    let stale = submit_meta(&sb, EVE, "Stale", |m| {
        m["created_at"] = naive_ago(chrono::Duration::hours(2)).into();
        m["timeout_seconds"] = 60.into();
    });
    let d = sb.start(&NO_WEB);
    assert_expired(&sb, &d, &stale);

    // The job with a long timeout is left exactly as it was.
    settle(&sb);
    assert_eq!(sb.status_of(&long).as_deref(), Some("pending"));
    assert_eq!(snapshot(&sb.job_dir("pending", &long)), long_before);
    assert!(sb.decisions_for(&long, "expired").is_empty());
    assert_eq!(assert_valid(&sb), 2);
}

// ------------------------------------------------------------------------------ 4. the chain

/// Restores the chain files saved in `saved`, then applies `tamper` to the chain's lines.
fn with_lines(sb: &Sandbox, saved: &Saved, tamper: impl FnOnce(&mut Vec<String>)) {
    saved.restore();
    let text = fs::read_to_string(chain_path(sb)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    tamper(&mut lines);
    fs::write(chain_path(sb), lines.join("\n") + "\n").unwrap();
}

struct Saved {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Saved {
    fn take(sb: &Sandbox) -> Saved {
        let dir = sb.app_data().join("audit");
        Saved {
            files: ["chain.jsonl", "checkpoint.json", "public_key"]
                .iter()
                .map(|f| (dir.join(f), fs::read(dir.join(f)).unwrap()))
                .collect(),
        }
    }
    fn restore(&self) {
        for (p, b) in &self.files {
            fs::write(p, b).unwrap();
        }
    }
}

/// `audit verify` (CLI, exit 1) and `GET /api/v1/audit/verify` both report the break.
#[track_caller]
fn assert_broken(sb: &Sandbox, web: &Web, what: &str, line: u64, words: &[&str]) {
    let (code, v) = verify_cli(sb, &[]);
    assert_eq!(code, 1, "{what}: `audit verify` must exit 1: {v}");
    assert_eq!(v["valid"], false, "{what}: {v}");
    assert_eq!(v["first_break"], line, "{what}: {v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        words.iter().any(|w| reason.contains(w)),
        "{what}: the reason should name the problem ({words:?}): {reason}"
    );
    let api = web.get("/api/v1/audit/verify").expect(200);
    assert_eq!(api, v, "{what}: the API and the CLI disagree");
}

#[test]
fn audit_verify_catches_each_kind_of_tampering_from_the_cli_and_the_api() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let jobs: Vec<String> = (0..3).map(|_| sb.submit(EVE, &simple_code())).collect();
    let web = serve(&sb, &QUIET_WEB);
    let auto = sb.submit(BOB, &simple_code());
    wait_status(&sb, &web.daemon, &auto, "approved");
    wait_audit(&sb, &web.daemon, "the daemon's approval", |e| {
        e["uid"] == auto.as_str()
    });
    for uid in &jobs {
        wait_waiting(&sb, &web.daemon, uid);
    }
    ok(&sb.cli(&["decide", &jobs[0], "reject", "--rationale", "no"]));
    web.post(
        &format!("/api/v1/jobs/{}/decide", jobs[1]),
        Some(
            &json!({"verdict": "request_changes", "rationale": "fewer columns",
            "signature": signature_of(&sb, &sb.job_dir("pending", &jobs[1]))}),
        ),
    )
    .expect(200);
    web.post(
        &format!("/api/v1/jobs/{}/decide", jobs[2]),
        Some(&json!({"verdict": "approve",
            "signature": signature_of(&sb, &sb.job_dir("pending", &jobs[2]))})),
    )
    .expect(200);
    ok(&sb.cli(&["allow", "add", "carol@lab.example"]));
    settle(&sb);

    // Intact: valid, every entry linked and signed as the README says.
    let entries = check_chain_by_hand(&sb);
    let n = entries.len() as u64;
    assert_eq!(n, 6, "{entries:?}");
    assert_eq!(assert_valid(&sb), n);
    let api = web.get("/api/v1/audit/verify").expect(200);
    assert_eq!((&api["valid"], &api["entries"]), (&json!(true), &json!(n)));
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["cli", "daemon", "cli", "web", "web", "cli"]);
    // As a third party holding the real public key.
    let key_file = sb.dir.path().join("real_public_key");
    fs::copy(sb.app_data().join("audit/public_key"), &key_file).unwrap();
    let key_arg = key_file.to_str().unwrap();
    let (code, v) = verify_cli(&sb, &["--public-key", key_arg]);
    assert_eq!(
        (code, &v["valid"], &v["entries"]),
        (0, &json!(true), &json!(n)),
        "{v}"
    );

    let saved = Saved::take(&sb);

    // An edited field.
    with_lines(&sb, &saved, |l| {
        let mut e: Value = serde_json::from_str(&l[2]).unwrap();
        e["outcome"] = "approved".into();
        l[2] = e.to_string();
    });
    assert_broken(&sb, &web, "an edited outcome", 2, &["edited"]);
    with_lines(&sb, &saved, |l| {
        let mut e: Value = serde_json::from_str(&l[4]).unwrap();
        e["actor"] = "daemon".into();
        l[4] = e.to_string();
    });
    assert_broken(&sb, &web, "an edited actor", 4, &["edited"]);

    // A deleted entry.
    with_lines(&sb, &saved, |l| {
        l.remove(1);
    });
    assert_broken(&sb, &web, "a deleted entry", 1, &["deleted"]);

    // Two entries swapped.
    with_lines(&sb, &saved, |l| l.swap(2, 3));
    assert_broken(&sb, &web, "swapped entries", 2, &["reordered"]);

    // The tail cut off.
    with_lines(&sb, &saved, |l| l.truncate(3));
    assert_broken(&sb, &web, "a truncated tail", 3, &["truncated"]);

    // An entry appended by someone without the key (its hash and link are right).
    with_lines(&sb, &saved, |l| {
        let last: Value = serde_json::from_str(l.last().unwrap()).unwrap();
        let mut forged = json!({
            "seq": n, "time": last["time"], "event": "allowlist.add", "actor": "cli",
            "email": "mallory@evil.example", "outcome": "changed", "reasons": [],
            "prev": last["hash"], "hash": "", "sig": "00".repeat(64),
        });
        forged["hash"] = canonical_hash(&forged).into();
        l.push(forged.to_string());
    });
    assert_broken(&sb, &web, "a forged entry", n, &["not signed"]);

    // The whole chain re-signed with another key, which is published instead.
    let other = SigningKey::from_bytes(&[7u8; 32]);
    with_lines(&sb, &saved, |l| {
        for line in l.iter_mut() {
            let mut e: Value = serde_json::from_str(line).unwrap();
            let hash = canonical_hash(&e);
            e["sig"] = hex(&other.sign(hash.as_bytes()).to_bytes()).into();
            *line = e.to_string();
        }
    });
    let audit = sb.app_data().join("audit");
    fs::write(
        audit.join("public_key"),
        format!("ed25519:{}\n", hex(&other.verifying_key().to_bytes())),
    )
    .unwrap();
    let cp: Value =
        serde_json::from_slice(&fs::read(audit.join("checkpoint.json")).unwrap()).unwrap();
    let msg = format!(
        "syft-reviewer checkpoint {} {}",
        cp["size"],
        cp["hash"].as_str().unwrap()
    );
    fs::write(
        audit.join("checkpoint.json"),
        json!({"size": cp["size"], "hash": cp["hash"], "sig": hex(&other.sign(msg.as_bytes()).to_bytes())})
            .to_string(),
    )
    .unwrap();
    assert_broken(
        &sb,
        &web,
        "a re-signed chain",
        0,
        &["re-signed", "not this datasite's key"],
    );
    // Whoever holds the real public key sees it too.
    let (code, v) = verify_cli(&sb, &["--public-key", key_arg]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        (&v["valid"], &v["first_break"]),
        (&json!(false), &json!(0)),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("not signed"), "{v}");

    // Put back as it was, the chain verifies again.
    saved.restore();
    assert_eq!(assert_valid(&sb), n);
    assert_eq!(web.get("/api/v1/audit/verify").expect(200)["valid"], true);

    // `audit export --since` keeps the entries from that time on.
    let times: Vec<String> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap().to_string())
        .collect();
    let export = |since: &str| -> Vec<Value> {
        ok(&sb.cli(&["audit", "export", "--since", since]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let since = &times[3];
    let expected: Vec<&Value> = entries
        .iter()
        .filter(|e| e["time"].as_str().unwrap() >= since.as_str())
        .collect();
    assert!(
        expected.len() < entries.len() && !expected.is_empty(),
        "times: {times:?}"
    );
    assert_eq!(export(since).iter().collect::<Vec<_>>(), expected);
    assert_eq!(export(&times[0][..10]).len(), entries.len());
    assert!(export("2999-01-01").is_empty());
    assert_eq!(
        ok(&sb.cli(&["audit", "export"])).lines().count(),
        entries.len()
    );
}

#[test]
fn concurrent_appenders_never_interleave_and_the_chain_verifies() {
    const JOBS: usize = 30;
    const WRITERS: usize = 4;
    const EACH: usize = 6;
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let d = sb.start(&NO_WEB);
    let uids: Vec<String> = std::thread::scope(|s| {
        let burst = s.spawn(|| {
            (0..JOBS)
                .map(|_| sb.submit(BOB, &simple_code()))
                .collect::<Vec<String>>()
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let sb = &sb;
                s.spawn(move || {
                    for i in 0..EACH {
                        let mail = format!("p{w}x{i}@lab.example");
                        ok(&sb.cli(&["allow", "add", &mail]));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        burst.join().unwrap()
    });
    for uid in &uids {
        wait_status(&sb, &d, uid, "approved");
    }
    // A hand edit made after everything else: once it is audited, the daemon has seen every
    // allowlist change the CLI made, and none of them may have been taken for a hand edit.
    sb.allow_by_hand("sentinel_at_lab_dot_example");
    wait_audit(&sb, &d, "the hand-made sentinel", |e| {
        e["email"] == "sentinel@lab.example" && e["actor"] == "filesystem"
    });
    assert!(
        wait_for(WAIT, || {
            let chain = audit_show(&sb);
            uids.iter()
                .all(|u| chain.iter().any(|e| e["uid"] == u.as_str()))
        }),
        "some approvals never reached the chain; log:\n{}",
        d.log_text()
    );
    settle(&sb);

    let entries = check_chain_by_hand(&sb);
    assert_eq!(assert_valid(&sb), entries.len() as u64);
    let adds: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "allowlist.add" && e["actor"] == "cli")
        .collect();
    assert_eq!(adds.len(), 1 + WRITERS * EACH, "{adds:?}");
    let emails: BTreeSet<&str> = adds.iter().map(|e| e["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 1 + WRITERS * EACH, "{emails:?}");
    for uid in &uids {
        let d: Vec<&Value> = entries
            .iter()
            .filter(|e| e["event"] == "decision" && e["uid"] == uid.as_str())
            .collect();
        assert_eq!(d.len(), 1, "{uid}: {d:?}");
        assert_eq!(
            (&d[0]["actor"], &d[0]["outcome"]),
            (&json!("daemon"), &json!("approved"))
        );
    }
    let by_hand: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor"] == "filesystem")
        .collect();
    assert_eq!(
        by_hand.len(),
        1,
        "CLI edits taken for hand edits: {by_hand:?}"
    );
}

#[test]
fn a_torn_last_line_is_ignored_then_cut_off_at_the_next_append() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    ok(&sb.cli(&["allow", "add", "carol@lab.example"]));
    let job = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &job);
    settle(&sb);
    let n = assert_valid(&sb);
    assert_eq!(n, 2);
    let intact = fs::read(chain_path(&sb)).unwrap();

    // A crash in the middle of an append leaves a partial line without its newline.
    let torn = format!(r#"{{"seq":{n},"time":"2026-11-22T10:1"#);
    fs::OpenOptions::new()
        .append(true)
        .open(chain_path(&sb))
        .unwrap()
        .write_all(torn.as_bytes())
        .unwrap();
    let (code, v) = verify_cli(&sb, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (&v["valid"], &v["entries"]),
        (&json!(true), &json!(n)),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("torn"), "{v}");
    // Reading the chain is not writing it.
    assert_eq!(
        fs::read(chain_path(&sb)).unwrap(),
        [intact.as_slice(), torn.as_bytes()].concat()
    );

    // The next append (a decision) cuts the torn line off and links to the last real entry.
    ok(&sb.cli(&["decide", &job, "reject", "--rationale", "no"]));
    let entries = check_chain_by_hand(&sb);
    assert_eq!(assert_valid(&sb), n + 1);
    assert_eq!(entries.len() as u64, n + 1);
    let text = fs::read(chain_path(&sb)).unwrap();
    assert!(
        text.starts_with(&intact),
        "the intact entries must be kept as they were"
    );
    let rest = std::str::from_utf8(&text[intact.len()..]).unwrap();
    assert!(
        rest.ends_with('\n') && rest.lines().count() == 1 && !rest.contains(&torn),
        "the torn bytes must be gone, replaced by one entry: {rest:?}"
    );
    let last = entries.last().unwrap();
    assert_eq!(
        (&last["event"], &last["uid"], &last["seq"]),
        (&json!("decision"), &json!(job), &json!(n))
    );
}

// ------------------------------------------------------------------------------ 5. hand edits

#[test]
fn hand_edits_to_the_allowlist_are_audited_and_cli_edits_only_once() {
    let sb = Sandbox::new();
    let d = sb.start(&NO_WEB);
    let carol = "carol@lab.example";
    let entries_for = |mail: &str| audit_where(&sb, |e| e["email"] == mail);

    sb.allow_by_hand("carol_at_lab_dot_example");
    let e = wait_audit(&sb, &d, "a hand-made allowlist file", |e| {
        e["email"] == carol && e["event"] == "allowlist.add"
    });
    assert_eq!(e["actor"], "filesystem", "{e}");
    fs::remove_file(sb.allowlist_dir().join("carol_at_lab_dot_example")).unwrap();
    let e = wait_audit(&sb, &d, "a hand-deleted allowlist file", |e| {
        e["email"] == carol && e["event"] == "allowlist.remove"
    });
    assert_eq!(e["actor"], "filesystem", "{e}");

    ok(&sb.cli(&["allow", "add", "dave@lab.example"]));
    ok(&sb.cli(&["allow", "add", "frank@lab.example"]));
    ok(&sb.cli(&["allow", "remove", "frank@lab.example"]));
    // Once this hand edit is audited, the daemon has seen the CLI's changes too.
    sb.allow_by_hand("erin_at_lab_dot_example");
    wait_audit(&sb, &d, "the second hand-made file", |e| {
        e["email"] == "erin@lab.example"
    });
    settle(&sb);

    let dave = entries_for("dave@lab.example");
    assert_eq!(dave.len(), 1, "{dave:?}");
    assert_eq!(
        (&dave[0]["event"], &dave[0]["actor"]),
        (&json!("allowlist.add"), &json!("cli"))
    );
    let frank: Vec<(String, String)> = entries_for("frank@lab.example")
        .iter()
        .map(|e| (e["event"].to_string(), e["actor"].to_string()))
        .collect();
    assert_eq!(
        frank,
        [
            ("\"allowlist.add\"".into(), "\"cli\"".into()),
            ("\"allowlist.remove\"".into(), "\"cli\"".into())
        ]
    );
    let carol_entries: Vec<(String, String)> = entries_for(carol)
        .iter()
        .map(|e| (e["event"].to_string(), e["actor"].to_string()))
        .collect();
    assert_eq!(
        carol_entries,
        [
            ("\"allowlist.add\"".into(), "\"filesystem\"".into()),
            ("\"allowlist.remove\"".into(), "\"filesystem\"".into())
        ]
    );
    let erin = entries_for("erin@lab.example");
    assert_eq!(erin.len(), 1, "{erin:?}");
    assert_eq!(erin[0]["actor"], "filesystem");
    assert_valid(&sb);
}

// ------------------------------------------------------------------------------ 6. MCP

#[test]
fn mcp_server_lists_explains_and_decides_over_stdio_and_audits_every_call() {
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let other = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &job);
    wait_waiting(&sb, &d, &other);
    let mut mcp = Mcp::start(&sb);

    let v = mcp.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {},
               "clientInfo": {"name": "gate-test", "version": "0"}}),
    );
    let r = &v["result"];
    assert_eq!(r["protocolVersion"], "2025-03-26", "{v}");
    assert_eq!(r["serverInfo"]["name"], "syft-reviewer", "{v}");
    assert!(r["capabilities"]["tools"].is_object(), "{v}");

    // A notification gets no answer: the next line answers the next request.
    mcp.send_raw(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
    let v = mcp.request(2, "tools/list", json!({}));
    let tools = v["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["approvals.list", "approvals.explain", "approvals.decide"]
    );
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{t}"
        );
    }
    let decide_schema = &tools[2]["inputSchema"];
    assert_eq!(
        decide_schema["required"],
        json!(["uid", "verdict", "signature"])
    );
    assert_eq!(
        decide_schema["properties"]["verdict"]["enum"],
        json!(["approve", "reject", "request_changes"])
    );
    assert_eq!(tools[1]["inputSchema"]["required"], json!(["uid"]));

    let r = mcp.call(3, "approvals.list", json!({}));
    assert_eq!(r["isError"], false, "{r}");
    let listed: BTreeSet<&str> = r["structuredContent"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([job.as_str(), other.as_str()]),
        "{r}"
    );

    let r = mcp.call(4, "approvals.explain", json!({"uid": job}));
    assert_eq!(r["isError"], false, "{r}");
    let x = &r["structuredContent"];
    assert_eq!(
        (&x["uid"], &x["would"]),
        (&json!(job), &json!("wait")),
        "{r}"
    );
    assert!(!x["reasons"].as_array().unwrap().is_empty(), "{r}");

    // No rationale: refused, as a tool error, and nothing moved.
    let r = mcp.call(
        5,
        "approvals.decide",
        json!({"uid": other, "verdict": "reject"}),
    );
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        r["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("rationale"),
        "{r}"
    );
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));

    let r = mcp.call(
        6,
        "approvals.decide",
        json!({"uid": job, "verdict": "reject", "rationale": "joins on the raw table",
            "signature": signature_of(&sb, &sb.job_dir("pending", &job))}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(
        (
            &r["structuredContent"]["status"],
            &r["structuredContent"]["actor"]
        ),
        (&json!("rejected"), &json!("mcp")),
        "{r}"
    );
    assert_rejected(&sb, &job, "joins on the raw table");
    assert_logged(&sb, &job, "rejected", Some("joins on the raw table"));

    let v = mcp.request(7, "no/such/method", json!({}));
    assert_eq!(v["error"]["code"], -32601, "{v}");
    mcp.send_raw("{this is not json");
    let v = mcp.recv();
    assert_eq!(
        (&v["error"]["code"], &v["id"]),
        (&json!(-32700), &Value::Null),
        "{v}"
    );
    // Still serving after the errors.
    let v = mcp.request(8, "ping", json!({}));
    assert!(v["result"].is_object(), "{v}");

    // Closing stdin ends the server cleanly.
    drop(mcp.stdin.take());
    let mut status = None;
    assert!(wait_for(WAIT, || {
        status = mcp.child.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success(), "{status:?}");

    // Every tool call is in the chain with actor mcp; the decision too.
    let calls = audit_where(&sb, |e| e["event"] == "mcp.call");
    assert_eq!(calls.len(), 4, "{calls:?}");
    for (c, tool) in calls.iter().zip([
        "approvals.list",
        "approvals.explain",
        "approvals.decide",
        "approvals.decide",
    ]) {
        assert_eq!(c["actor"], "mcp", "{c}");
        assert!(
            c["reasons"][0].as_str().unwrap().starts_with(tool),
            "{tool}: {c}"
        );
    }
    assert_eq!(calls[0]["outcome"], "ok");
    assert!(
        calls[2]["outcome"].as_str().unwrap().starts_with("error"),
        "{}",
        calls[2]
    );
    assert_eq!(calls[2]["uid"], other.as_str());
    assert_eq!(
        (&calls[3]["outcome"], &calls[3]["uid"]),
        (&json!("ok"), &json!(job))
    );
    assert_audited(&sb, &job, "mcp", "rejected", None);
    assert!(
        audit_where(&sb, |e| e["event"] == "decision"
            && e["uid"] == other.as_str())
        .is_empty()
    );
    assert_valid(&sb);
}

// ------------------------------------------------------------------------------ 7. metrics

/// The value of one sample (`name{labels}` exactly as written) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {v:?} is not a number ({e})"))
        })
}

#[test]
fn metrics_count_automatic_and_human_decisions_latency_and_the_audit_result() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let web = serve(&sb, &QUIET_WEB);
    let auto = sb.submit(BOB, &simple_code());
    let waiting = sb.submit(EVE, &simple_code());
    wait_status(&sb, &web.daemon, &auto, "approved");
    wait_waiting(&sb, &web.daemon, &waiting);

    let metrics = || {
        let r = web.get("/metrics");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.headers["content-type"].starts_with("text/plain"), "{r:?}");
        r.text
    };
    let allowlist = r#"syft_reviewer_decisions_total{outcome="approved",method="allowlist"}"#;
    let mut text = String::new();
    assert!(
        wait_for(WAIT, || {
            text = metrics();
            sample(&text, allowlist) == Some(1.0)
                && sample(&text, "syft_reviewer_waiting_jobs{flagged=\"false\"}") == Some(1.0)
        }),
        "{text}"
    );
    assert_eq!(
        sample(&text, "syft_reviewer_pending_jobs"),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE syft_reviewer_decisions_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE syft_reviewer_pending_jobs gauge"),
        "{text}"
    );

    // The latency histogram: cumulative buckets, +Inf equal to the count, a sum.
    let h = "syft_reviewer_decision_latency_seconds";
    assert!(text.contains(&format!("# TYPE {h} histogram")), "{text}");
    let count = sample(&text, &format!("{h}_count")).expect("a _count");
    assert!(count >= 1.0, "{text}");
    assert_eq!(
        sample(&text, &format!("{h}_bucket{{le=\"+Inf\"}}")),
        Some(count)
    );
    assert!(
        sample(&text, &format!("{h}_sum")).is_some_and(|s| s >= 0.0),
        "{text}"
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() >= 2, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "not cumulative: {text}"
    );

    for counter in [
        "syft_reviewer_watcher_rescans_total",
        "syft_reviewer_watcher_errors_total",
        "syft_reviewer_watcher_events_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {counter} counter")),
            "{counter}: {text}"
        );
        assert!(
            sample(&text, counter).is_some_and(|v| v >= 0.0),
            "{counter}: {text}"
        );
    }
    assert_eq!(
        sample(&text, "syft_reviewer_audit_chain_valid"),
        Some(1.0),
        "{text}"
    );

    // A human decision through the API is counted with method "human".
    web.post(
        &format!("/api/v1/jobs/{waiting}/decide"),
        Some(&json!({"verdict": "reject", "rationale": "no",
            "signature": signature_of(&sb, &sb.job_dir("pending", &waiting))})),
    )
    .expect(200);
    let human = r#"syft_reviewer_decisions_total{outcome="rejected",method="human"}"#;
    assert!(
        wait_for(WAIT, || {
            text = metrics();
            sample(&text, human) == Some(1.0)
        }),
        "{text}"
    );
    assert_eq!(
        sample(&text, "syft_reviewer_pending_jobs"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, allowlist), Some(1.0), "{text}");
}
