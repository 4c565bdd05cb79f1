//! Bulk verdicts against the real binary: a filter from the CLI (the count, `--yes` above ten
//! jobs, no approval by filter), an explicit list through the API and MCP (refusals for a job
//! that changed since it was listed and for one already decided), and in every case one decision
//! log line and one audit entry per job, with a chain that verifies.

use std::fs;
use std::process::Output;

use serde_json::{Value, json};

use crate::gate::{
    BOB, EVE, NO_WEB, QUIET_WEB, assert_audited, assert_logged, assert_rejected, assert_valid,
    check_chain_by_hand, ok, signature_of, wait_waiting,
};
use crate::http::serve;
use crate::util::*;

#[track_caller]
fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn refusal<'a>(v: &'a Value, uid: &str) -> &'a str {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uid"] == uid)
        .unwrap_or_else(|| panic!("no result for {uid}: {v}"))["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{uid} was not refused: {v}"))
}

#[test]
fn a_filter_rejects_a_senders_jobs_from_the_cli_each_audited_and_more_than_ten_need_yes() {
    let sb = Sandbox::new();
    let eve: Vec<String> = (0..12).map(|_| sb.submit(EVE, &simple_code())).collect();
    let bob: Vec<String> = (0..2).map(|_| sb.submit(BOB, &simple_code())).collect();
    let d = sb.start(&NO_WEB);
    for uid in eve.iter().chain(&bob) {
        wait_waiting(&sb, &d, uid);
    }
    settle(&sb);
    let spam = [
        "decide",
        "--all",
        "--sender",
        EVE,
        "reject",
        "--rationale",
        "spam",
    ];

    // Twelve jobs: refused without --yes (the tests have no terminal to ask), nothing changes.
    let err = unchanged(&sb, "bulk without --yes", || fails(&sb.cli(&spam)));
    assert!(
        err.contains("12 pending jobs from eve@evil.example") && err.contains("--yes"),
        "{err}"
    );
    // Approving by a filter is refused, saying how to approve many jobs.
    let err = unchanged(&sb, "approval by filter", || {
        fails(&sb.cli(&["decide", "--all", "--sender", EVE, "approve", "--yes"]))
    });
    assert!(
        err.contains("cannot be approved by a filter") && err.contains("signature"),
        "{err}"
    );
    // A rationale is required, as for one job.
    let err = unchanged(&sb, "no rationale", || {
        fails(&sb.cli(&["decide", "--all", "--sender", EVE, "reject", "--yes"]))
    });
    assert!(err.contains("rationale"), "{err}");

    let mut yes = spam.to_vec();
    yes.push("--yes");
    let out = ok(&sb.cli(&yes));
    assert!(
        out.contains("12 of 12 matching jobs are now rejected"),
        "{out}"
    );
    for uid in &eve {
        assert_rejected(&sb, uid, "spam");
        assert_logged(&sb, uid, "rejected", Some("spam"));
        assert_audited(&sb, uid, "cli", "rejected", None);
    }
    for uid in &bob {
        assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
    }
    // Ten or fewer need no confirmation; the filter is the listing's (part of the sender).
    let out = ok(&sb.cli(&[
        "decide",
        "--all",
        "--sender",
        "BOB@X",
        "request-changes",
        "--rationale",
        "aggregate first",
    ]));
    assert!(out.contains("2 of 2 matching jobs"), "{out}");
    for uid in &bob {
        assert_rejected(&sb, uid, "changes requested: aggregate first");
    }
    assert_eq!(assert_valid(&sb), 14);
    check_chain_by_hand(&sb);
    let out = ok(&sb.cli(&["decide", "--all", "reject", "--rationale", "x"]));
    assert!(out.contains("no pending job matches"), "{out}");
}

#[test]
fn a_list_through_the_api_refuses_changed_and_decided_jobs_and_decides_the_rest() {
    let sb = Sandbox::new();
    let jobs: Vec<String> = (0..4).map(|_| sb.submit(EVE, &simple_code())).collect();
    let web = serve(&sb, &QUIET_WEB);
    for uid in &jobs {
        wait_waiting(&sb, &web.daemon, uid);
    }
    settle(&sb);
    // Like every verdict route: refused without the page's CSRF token (or the API token).
    let body = json!({"verdict": "reject", "rationale": "x", "filter": {}}).to_string();
    let r = unchanged(&sb, "a bulk verdict without a CSRF token", || {
        web.request(
            "POST",
            "/api/v1/jobs/decide",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    });
    assert_eq!(r.status, 403, "{r:?}");

    let sig = |uid: &str| signature_of(&sb, &sb.job_dir("pending", uid));
    let picks: Vec<Value> = jobs
        .iter()
        .map(|u| json!({"uid": u, "signature": sig(u)}))
        .collect();
    let [good, also_good, changed, decided] = [&jobs[0], &jobs[1], &jobs[2], &jobs[3]];
    // After the owner saw the list: one job's code changes, one is decided elsewhere.
    fs::write(
        sb.job_dir("pending", changed).join("code/main.py"),
        "print(open('/data/raw.csv').read())\n",
    )
    .unwrap();
    ok(&sb.cli(&["decide", decided, "reject", "--rationale", "no"]));

    // Approving by a filter is refused outright.
    let r = web.post(
        "/api/v1/jobs/decide",
        Some(&json!({"verdict": "approve", "filter": {"sender": EVE}})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text.contains("cannot be approved by a filter"), "{r:?}");

    let mut listed = picks.clone();
    listed.push(json!({"uid": "no-such-job", "signature": "0".repeat(64)}));
    let v = web
        .post(
            "/api/v1/jobs/decide",
            Some(&json!({"verdict": "approve", "jobs": listed})),
        )
        .expect(200);
    assert_eq!(
        (&v["matched"], &v["decided"], &v["refused"]),
        (&json!(5), &json!(2), &json!(3)),
        "{v}"
    );
    assert!(
        refusal(&v, changed).contains("changed since you looked at it"),
        "{v}"
    );
    assert!(refusal(&v, decided).contains("no longer pending"), "{v}");
    assert!(refusal(&v, "no-such-job").contains("not found"), "{v}");
    for uid in [good, also_good] {
        assert_eq!(sb.status_of(uid).as_deref(), Some("approved"));
        assert_logged(&sb, uid, "approved", None);
        assert_audited(
            &sb,
            uid,
            "web",
            "approved",
            Some(&sig_of_approved(&sb, uid)),
        );
    }
    assert_eq!(sb.status_of(changed).as_deref(), Some("pending"));
    assert_eq!(sb.status_of(decided).as_deref(), Some("rejected"));
    // The reject of `decided` and the two approvals.
    assert_eq!(assert_valid(&sb), 3);
    check_chain_by_hand(&sb);

    // The same through MCP: the changed job, listed with its new signature, is rejected.
    let mut mcp = Mcp::start(&sb);
    let r = mcp.call(
        1,
        "approvals.decide_many",
        json!({"verdict": "reject", "rationale": "reads raw data",
               "jobs": [{"uid": changed, "signature": sig(changed)}]}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["decided"], 1, "{r}");
    assert_rejected(&sb, changed, "reads raw data");
    assert_audited(&sb, changed, "mcp", "rejected", None);
    check_chain_by_hand(&sb);
}

fn sig_of_approved(sb: &Sandbox, uid: &str) -> String {
    signature_of(sb, &sb.job_dir("approved", uid))
}
