//! The owner's verdicts from the CLI and the API, with their effect on disk, the decision log
//! and the audit chain; and the refused verdicts, which say why and change nothing.

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::gate::{
    EVE, NO_WEB, QUIET_WEB, WAIT, assert_audited, assert_logged, assert_rejected, assert_valid,
    audit_where, check_chain_by_hand, ok, signature_of, two_waiting, wait_waiting,
};
use crate::http::serve;
use crate::util::*;

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

#[track_caller]
fn assert_approved(sb: &Sandbox, uid: &str, requester: &str) {
    assert_eq!(sb.status_of(uid).as_deref(), Some("approved"));
    let m = sb.metadata("approved", uid);
    assert_eq!(m["status"], "approved", "{m}");
    assert_eq!(m["error_message"], Value::Null, "{m}");
    assert_locked(&sb.job_dir("approved", uid), requester);
}

/// The verdicts approve, reject ("uses the raw table") and request changes ("aggregate to 10+
/// rows") that `actor` gave these jobs are in the decision log and the audit chain, and the chain
/// verifies with exactly these three entries.
#[track_caller]
fn assert_recorded(sb: &Sandbox, jobs: [&str; 3], actor: &str, sig: &str) {
    let [approve, reject, changes] = jobs;
    assert_logged(sb, approve, "approved", None);
    assert_logged(sb, reject, "rejected", Some("uses the raw table"));
    assert_logged(
        sb,
        changes,
        "changes_requested",
        Some("aggregate to 10+ rows"),
    );
    assert_audited(sb, approve, actor, "approved", Some(sig));
    assert_audited(sb, reject, actor, "rejected", None);
    assert_audited(sb, changes, actor, "changes_requested", None);
    assert_eq!(assert_valid(sb), 3);
}

// ------------------------------------------------------------------------------ verdicts

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

    assert_recorded(&sb, [&approve, &reject, &changes], "cli", &sig);
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

    assert_recorded(&sb, [&approve, &reject, &changes], "web", &sig);
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

// ------------------------------------------------------------------------------ refusals

/// Changes the code of the waiting job `job` after the owner read it, and waits for the daemon
/// to evaluate it again; returns the signature the owner read.
#[track_caller]
fn change_after_reading(sb: &Sandbox, d: &Daemon, job: &str) -> String {
    let seen = signature_of(sb, &sb.job_dir("pending", job));
    fs::write(
        sb.job_dir("pending", job).join("code/main.py"),
        "print(open('/data/raw.csv').read())\n",
    )
    .unwrap();
    assert!(
        wait_for(WAIT, || sb.decisions_for(job, "waiting").len() >= 2),
        "the daemon never re-evaluated the changed job; log:\n{}",
        d.log_text()
    );
    seen
}

#[test]
fn refused_verdicts_from_the_cli_say_why_and_change_nothing() {
    let (sb, job, other, d) = two_waiting();
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
    let seen = change_after_reading(&sb, &d, &job);
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
    let seen = change_after_reading(&sb, &web.daemon, &job);
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
            web.post(&path, Some(&body)).expect(409)
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
