//! Expiry of jobs nobody decided, while the daemon runs and at its start.

use serde_json::{Value, json};

use crate::gate::{
    EVE, NO_WEB, WAIT, assert_valid, audit_where, wait_audit, wait_status, wait_waiting,
};
use crate::util::*;

fn naive_ago(age: chrono::Duration) -> String {
    syft_reviewer::queue::metadata::format_naive(
        &(syft_reviewer::queue::metadata::now_naive() - age),
    )
}

/// Writes a pending job as the queue client does, after `edit` changed its metadata.
fn submit_meta(sb: &Sandbox, from: &str, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    submit_edited(sb, from, name, "pending", edit)
}

// ------------------------------------------------------------------------------ expiry

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
