//! The human gate against the real binary: the functions its tests share (running the CLI,
//! submitting and waiting for jobs, reading the decision log and the audit chain, and checking
//! the chain by hand, independently of the app's code). The tests by feature: `gate_verdicts`
//! (the owner's verdicts from the CLI and the API with their effect on disk, and the refusals,
//! which change nothing), `gate_expiry` (jobs nobody decided), `gate_audit` (the signed audit
//! chain: verification, tampering, concurrent appenders, a torn last line, hand edits),
//! `gate_mcp` and `gate_metrics` (the Prometheus metrics).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ed25519_dalek::{Verifier, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::*;

// ------------------------------------------------------------------------------ helpers

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) const EVE: &str = "eve@evil.example";

pub(crate) const BOB: &str = "bob@x.org";

pub(crate) const NO_WEB: [&str; 3] = ["--no-web", "--rescan-secs", "3600"];

pub(crate) const QUIET_WEB: [&str; 2] = ["--rescan-secs", "3600"];

#[track_caller]
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub(crate) fn signature_of(sb: &Sandbox, dir: &Path) -> String {
    let sig = ok(&sb.cli(&["signature", dir.to_str().unwrap()]))
        .trim()
        .to_string();
    assert_eq!(sig.len(), 64, "not a signature: {sig:?}");
    sig
}

#[track_caller]
pub(crate) fn wait_waiting(sb: &Sandbox, d: &Daemon, uid: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "waiting").is_empty()),
        "job {uid} was never recorded as waiting; log:\n{}",
        d.log_text()
    );
}

#[track_caller]
pub(crate) fn wait_status(sb: &Sandbox, d: &Daemon, uid: &str, status: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ (it is in {:?}); log:\n{}",
        sb.status_of(uid),
        d.log_text()
    );
}

pub(crate) fn chain_path(sb: &Sandbox) -> PathBuf {
    sb.app_data().join("audit/chain.jsonl")
}

/// `audit show`: every entry of the chain, as JSON.
pub(crate) fn audit_show(sb: &Sandbox) -> Vec<Value> {
    ok(&sb.cli(&["audit", "show"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`audit show` line {l:?}: {e}")))
        .collect()
}

pub(crate) fn audit_where(sb: &Sandbox, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    audit_show(sb).into_iter().filter(|e| f(e)).collect()
}

#[track_caller]
pub(crate) fn wait_audit(
    sb: &Sandbox,
    d: &Daemon,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
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
pub(crate) fn verify_cli(sb: &Sandbox, extra: &[&str]) -> (i32, Value) {
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
pub(crate) fn assert_valid(sb: &Sandbox) -> u64 {
    let (code, v) = verify_cli(sb, &[]);
    assert_eq!(code, 0, "the chain must verify: {v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["first_break"], Value::Null, "{v}");
    v["entries"].as_u64().unwrap()
}

// --- effects of each verdict on disk

#[track_caller]
pub(crate) fn assert_rejected(sb: &Sandbox, uid: &str, message: &str) {
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
pub(crate) fn assert_logged(sb: &Sandbox, uid: &str, outcome: &str, rationale: Option<&str>) {
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
pub(crate) fn assert_audited(
    sb: &Sandbox,
    uid: &str,
    actor: &str,
    outcome: &str,
    sig: Option<&str>,
) {
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

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 hex of the entry's canonical JSON (keys sorted, no whitespace, no `hash` and `sig`).
pub(crate) fn canonical_hash(entry: &Value) -> String {
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

pub(crate) fn public_key(sb: &Sandbox) -> VerifyingKey {
    let text = fs::read_to_string(sb.app_data().join("audit/public_key")).unwrap();
    let hexkey = text.trim().strip_prefix("ed25519:").unwrap_or(text.trim());
    VerifyingKey::from_bytes(&unhex(hexkey).try_into().unwrap()).unwrap()
}

/// Checks every line as the README describes the chain; returns the entries.
#[track_caller]
pub(crate) fn check_chain_by_hand(sb: &Sandbox) -> Vec<Value> {
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

/// Two jobs from an unknown sender, both waiting, seen by a daemon without its web server.
pub(crate) fn two_waiting() -> (Sandbox, String, String, Daemon) {
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let other = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &job);
    wait_waiting(&sb, &d, &other);
    (sb, job, other, d)
}
