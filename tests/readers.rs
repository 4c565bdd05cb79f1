//! While the reviewer runs, the other readers of the queue answer from its index through its
//! local API: `syft-reviewer status` (its counts, and the jobs waiting and flagged, which only its
//! reviews know), MCP's `approvals.list` (its `GET /api/v1/jobs` page) and the jobs a bulk filter
//! selects (CLI, MCP and API). Each answer says where it came from; without the reviewer they
//! read the disk and say so.

use serde_json::{Value, json};

use crate::gate::{EVE, QUIET_WEB, WAIT, ok};
use crate::http::{Web, serve};
use crate::util::*;

const CAROL: &str = "carol@lab.example";

fn status_json(sb: &Sandbox) -> Value {
    serde_json::from_str(&ok(&sb.cli(&["status", "--json"]))).unwrap()
}

fn reject_all(sb: &Sandbox, filter: &[&str]) -> Value {
    let mut args = vec!["decide", "--all"];
    args.extend_from_slice(filter);
    args.extend_from_slice(&["reject", "--rationale", "not now", "--yes", "--json"]);
    serde_json::from_str(&ok(&sb.cli(&args))).unwrap()
}

/// Waits until the daemon has reviewed every pending job and counted them in its status (waiting
/// for the owner, and flagged).
fn until_reviewed(web: &Web, pending: usize, waiting: usize, flagged: usize) {
    let reviewed = wait_for(WAIT, || {
        let page = web.get("/api/v1/jobs?view=brief&limit=500").expect(200);
        let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
        let s = web.get("/api/status").expect(200);
        jobs.len() == pending
            && jobs.iter().all(|j| j["verdict"].is_string())
            && s["waiting"] == waiting
            && s["flagged"] == flagged
    });
    assert!(reviewed, "{}", web.get("/api/status").text);
}

#[test]
fn status_mcp_and_bulk_filters_answer_from_the_running_reviewers_index() {
    let sb = Sandbox::new();
    let eve: Vec<String> = (0..2).map(|_| sb.submit(EVE, &simple_code())).collect();
    let carol: Vec<String> = (0..3).map(|_| sb.submit(CAROL, &simple_code())).collect();
    // A symlink in the code: the daemon flags the job.
    spoil(&sb.job_dir("pending", &carol[0]), Spoil::Symlink);
    let web = serve(&sb, &QUIET_WEB);
    until_reviewed(&web, 5, 4, 1);
    assert_eq!(web.get("/api/status").expect(200)["jobs_source"], "index");

    // status: the daemon's counts, and what only its reviews know.
    let s = status_json(&sb);
    assert_eq!(
        (
            &s["jobs_source"],
            &s["jobs"]["pending"],
            &s["waiting"],
            &s["flagged"]
        ),
        (&json!("index"), &json!(5), &json!(4), &json!(1)),
        "{s}"
    );
    let text = ok(&sb.cli(&["status"]));
    assert!(
        text.contains("5 pending") && text.contains("from the running reviewer's index"),
        "{text}"
    );
    assert!(
        text.contains("waiting:   4 for your verdict, 1 flagged"),
        "{text}"
    );

    // MCP: the page is the API's, filters and all (the sender's `@` and a space escaped).
    let mut mcp = Mcp::start(&sb);
    let r = mcp.call(1, "approvals.list", json!({}));
    let page = &r["structuredContent"];
    assert_eq!(
        (&page["source"], &page["total"]),
        (&json!("index"), &json!(5)),
        "{r}"
    );
    assert!(page["jobs"][0]["reasons"].is_array(), "a full page: {r}");
    let r = mcp.call(
        2,
        "approvals.list",
        json!({"sender": "EVE@evil", "limit": 1}),
    );
    let page = &r["structuredContent"];
    assert_eq!(
        (&page["total"], page["jobs"].as_array().map(Vec::len)),
        (&json!(2), Some(1))
    );
    let r = mcp.call(3, "approvals.list", json!({"name": "no such name"}));
    assert_eq!(r["structuredContent"]["total"], 0, "{r}");

    // Bulk filters choose from the index, and each chosen job is still decided on its own.
    let r = mcp.call(
        4,
        "approvals.decide_many",
        json!({"verdict": "reject", "rationale": "flagged", "filter": {"flagged": true}}),
    );
    let out = &r["structuredContent"];
    assert_eq!(
        (&out["source"], &out["matched"], &out["decided"]),
        (&json!("index"), &json!(1), &json!(1)),
        "{r}"
    );
    assert_eq!(sb.status_of(&carol[0]).as_deref(), Some("rejected"));
    let out = reject_all(&sb, &["--sender", "eve@"]);
    assert_eq!(
        (&out["source"], &out["decided"]),
        (&json!("index"), &json!(2)),
        "{out}"
    );
    for uid in &eve {
        assert_eq!(sb.status_of(uid).as_deref(), Some("rejected"));
    }
    let api = web
        .post(
            "/api/v1/jobs/decide",
            Some(&json!({"verdict": "reject", "rationale": "x", "filter": {"name": "no such"}})),
        )
        .expect(200);
    assert_eq!(
        (&api["source"], &api["matched"]),
        (&json!("index"), &json!(0)),
        "{api}"
    );

    // Without the reviewer, each reads the disk and says so.
    let mut web = web;
    terminate(&mut web.daemon);
    let s = status_json(&sb);
    assert_eq!(
        (&s["jobs_source"], &s["jobs"]["pending"], &s["waiting"]),
        (&json!("disk"), &json!(2), &Value::Null),
        "{s}"
    );
    assert!(ok(&sb.cli(&["status"])).contains("counted on the disk"));
    let r = mcp.call(5, "approvals.list", json!({}));
    let page = &r["structuredContent"];
    assert_eq!(
        (&page["source"], &page["total"]),
        (&json!("disk"), &json!(2)),
        "{r}"
    );
    let out = reject_all(&sb, &["--sender", CAROL]);
    assert_eq!(
        (&out["source"], &out["decided"]),
        (&json!("disk"), &json!(2)),
        "{out}"
    );
    for uid in &carol[1..] {
        assert_eq!(sb.status_of(uid).as_deref(), Some("rejected"));
    }
}

/// The full page shows a job as its last page did while nothing changed, and any change at once:
/// an edit of its code in place (the same size, so only the times tell) and a copy of its uid in
/// another status folder.
#[test]
fn a_full_page_shows_every_change_of_a_job_it_showed_before() {
    let sb = Sandbox::new();
    let uid = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &QUIET_WEB);
    until_reviewed(&web, 1, 1, 0);
    let page = || web.get("/api/v1/jobs?limit=50").expect(200)["jobs"][0].clone();
    // Once the folder has been left alone a while, its summary is kept between pages.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let first = page();
    assert_eq!(page(), first);
    assert_eq!(first["warnings"], json!([]), "{first}");

    // The same number of bytes, one of them an invisible character.
    let main = sb.job_dir("pending", &uid).join("code/main.py");
    std::fs::write(&main, "print('rows:'\u{200b}2)\n").unwrap();
    assert_eq!(std::fs::metadata(&main).unwrap().len(), 19);
    let changed = page();
    assert_ne!(changed["signature"], first["signature"], "{changed}");
    assert!(
        changed["warnings"].to_string().contains("main.py"),
        "{changed}"
    );

    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(page(), changed);
    std::fs::create_dir_all(sb.job_dir("failed", &uid)).unwrap();
    let copied = page();
    assert_eq!(copied["verdict"], "flag", "{copied}");
}
