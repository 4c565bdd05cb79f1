//! The queue's index behind `GET /api/v1/jobs` and `syft-reviewer jobs`: the listing stays right
//! while jobs are moved by the CLI, by a job runner and by hand, and the CLI answers as the API
//! does, with the daemon running and, from the disk, without it.

use std::fs;

use serde_json::Value;

use crate::http::{BOB, EVE, WAIT, Web, ok, serve};
use crate::util::*;

/// (uid, name, requester) of every job of `status` as the API lists it, newest first, and where
/// the listing came from.
fn api_listing(web: &Web, status: &str) -> (Vec<(String, String, String)>, String) {
    let page = web
        .get(&format!(
            "/api/v1/jobs?status={status}&view=brief&limit=500"
        ))
        .expect(200);
    assert_eq!(
        page["total"].as_u64().map(|n| n as usize),
        page["jobs"].as_array().map(Vec::len),
        "{page}"
    );
    (
        rows(&page["jobs"]),
        page["source"].as_str().unwrap_or("").into(),
    )
}

fn rows(jobs: &Value) -> Vec<(String, String, String)> {
    let text = |j: &Value, k: &str| j[k].as_str().unwrap_or("").to_string();
    jobs.as_array()
        .into_iter()
        .flatten()
        .map(|j| (text(j, "uid"), text(j, "name"), text(j, "requester")))
        .collect()
}

/// The same for `syft-reviewer jobs --status S --json`.
fn cli_listing(sb: &Sandbox, status: &str) -> Vec<(String, String, String)> {
    let out = ok(&sb.cli(&["jobs", "--status", status, "--json"]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.iter().for_each(|l| assert_eq!(l["status"], status));
    rows(&Value::Array(lines))
}

/// Waits until the API lists exactly `uids` (in any order) under `status`, from the index.
fn until_listed(web: &Web, status: &str, uids: &[&str]) {
    let mut want: Vec<&str> = uids.to_vec();
    want.sort();
    let mut last = (Vec::new(), String::new());
    let listed = wait_for(WAIT, || {
        last = api_listing(web, status);
        let mut got: Vec<&str> = last.0.iter().map(|r| r.0.as_str()).collect();
        got.sort();
        got == want && last.1 == "index"
    });
    assert!(listed, "{status}: want {want:?}, the API lists {last:?}");
}

/// Every status lists the same jobs through the CLI as through the API.
fn cli_agrees(sb: &Sandbox, web: &Web) {
    for s in STATUSES {
        assert_eq!(cli_listing(sb, s), api_listing(web, s).0, "status {s}");
    }
}

#[test]
fn listing_follows_moves_by_the_cli_the_runner_and_by_hand() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let a = sb.submit(EVE, &simple_code());
    let b = sb.submit("mallory@evil.example", &simple_code());
    let c = sb.submit(EVE, &simple_code());
    // No safety-net rescan during the test: what follows is seen through events alone.
    let web = serve(&sb, &["--rescan-secs", "3600"]);
    until_listed(&web, "pending", &[&a, &b, &c]);
    // The daemon's review is in the index: each waits for the owner, with its signature.
    let waiting =
        wait_for(WAIT, || {
            let page = web
                .get("/api/v1/jobs?status=pending&view=brief")
                .expect(200);
            page["jobs"].as_array().unwrap().iter().all(|j| {
                j["verdict"] == "wait" && j["flagged"] == false && j["signature"].is_string()
            })
        });
    assert!(waiting, "verdicts never reached the index");
    cli_agrees(&sb, &web);

    // A verdict through the CLI (another process) moves a job to rejected/.
    ok(&sb.cli(&["decide", &a, "reject", "--rationale", "not this"]));
    until_listed(&web, "pending", &[&b, &c]);
    until_listed(&web, "rejected", &[&a]);

    // The daemon approves an allowlisted sender's job; a runner takes it through running/ to
    // completed/.
    let r = sb.submit(BOB, &simple_code());
    until_listed(&web, "approved", &[&r]);
    fs::rename(sb.job_dir("approved", &r), sb.job_dir("running", &r)).unwrap();
    until_listed(&web, "running", &[&r]);
    until_listed(&web, "approved", &[]);
    fs::rename(sb.job_dir("running", &r), sb.job_dir("completed", &r)).unwrap();
    until_listed(&web, "completed", &[&r]);
    until_listed(&web, "running", &[]);
    cli_agrees(&sb, &web);

    // By hand: a folder deleted, one renamed into another status, a uid copied into a second
    // folder, a name edited.
    fs::remove_dir_all(sb.job_dir("pending", &b)).unwrap();
    fs::rename(sb.job_dir("pending", &c), sb.job_dir("failed", &c)).unwrap();
    until_listed(&web, "pending", &[]);
    until_listed(&web, "failed", &[&c]);
    let copy = sb.dir.path().join("copy");
    fs::create_dir_all(&copy).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(sb.job_dir("rejected", &a))
        .arg(copy.join(&a))
        .status()
        .unwrap();
    assert!(status.success());
    fs::rename(copy.join(&a), sb.job_dir("pending", &a)).unwrap();
    until_listed(&web, "pending", &[&a]);
    until_listed(&web, "rejected", &[&a]);
    let meta = sb.job_dir("pending", &a).join("metadata.json");
    let mut m: Value = serde_json::from_str(&fs::read_to_string(&meta).unwrap()).unwrap();
    m["name"] = "Renamed by hand".into();
    fs::write(&meta, m.to_string()).unwrap();
    let renamed = wait_for(WAIT, || {
        api_listing(&web, "pending").0 == vec![(a.clone(), "Renamed by hand".into(), EVE.into())]
    });
    assert!(renamed, "{:?}", api_listing(&web, "pending"));
    // The copy in pending/ is flagged: the same uid is in rejected/ too.
    let flagged = wait_for(WAIT, || {
        web.get("/api/v1/jobs?status=pending&view=brief")
            .expect(200)["jobs"][0]["flagged"]
            == true
    });
    assert!(flagged, "the second copy is not flagged in the index");
    cli_agrees(&sb, &web);

    // The counts of /api/status are the index's.
    let status = web.get("/api/status").expect(200);
    for (s, n) in [
        ("pending", 1),
        ("rejected", 1),
        ("completed", 1),
        ("failed", 1),
    ] {
        assert_eq!(status["jobs"][s], n, "{s}: {status}");
    }
    let metrics = web.get("/metrics");
    assert!(
        metrics.text.contains("syft_reviewer_pending_jobs 1\n"),
        "{}",
        metrics.text
    );

    // Without the daemon the CLI reads the disk, and gives the same answer.
    let before: Vec<_> = STATUSES.iter().map(|s| api_listing(&web, s).0).collect();
    let mut web = web;
    terminate(&mut web.daemon);
    let after: Vec<_> = STATUSES.iter().map(|s| cli_listing(&sb, s)).collect();
    assert_eq!(after, before);
}

#[test]
fn listing_filters_and_pages_from_the_index_as_from_the_disk() {
    let sb = Sandbox::new();
    let mut uids = Vec::new();
    for i in 0..12 {
        let from = if i % 3 == 0 { EVE } else { "carol@lab.example" };
        uids.push(submit_edited(
            &sb,
            from,
            &format!("Job {i}"),
            "pending",
            |m| {
                // Minutes apart and recent, so none expires during the test.
                let at = chrono::Local::now().naive_local() - chrono::Duration::minutes(20 - i);
                m["created_at"] = syft_reviewer::queue::metadata::format_naive(&at).into();
            },
        ));
    }
    let queries = [
        "status=pending&offset=0&limit=5",
        "status=pending&offset=10&limit=5",
        "status=pending&sender=EVE@&limit=2&offset=1",
        "status=pending&name=job%201&limit=50",
        "status=pending&max_age_hours=876000&sender=carol",
    ];
    let page = |web: &Web, q: &str| {
        let p = web.get(&format!("/api/v1/jobs?{q}&view=brief")).expect(200);
        (p["total"].clone(), rows(&p["jobs"]), p["source"].clone())
    };
    let web = serve(&sb, &[]);
    until_listed(
        &web,
        "pending",
        &uids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let newest_first: Vec<String> = uids.iter().rev().cloned().collect();
    let first = page(&web, queries[0]);
    assert_eq!(first.0, 12);
    assert_eq!(
        first.1.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        newest_first[..5].to_vec()
    );
    let eve = page(&web, queries[2]);
    assert_eq!(eve.0, 4, "jobs 0, 3, 6 and 9 are Eve's");
    assert_eq!(
        eve.1.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![uids[6].clone(), uids[3].clone()]
    );
    // "job 1" matches Job 1, Job 10 and Job 11.
    assert_eq!(page(&web, queries[3]).0, 3);
    let from_index: Vec<_> = queries.iter().map(|q| page(&web, q)).collect();
    assert!(from_index.iter().all(|p| p.2 == "index"));
    // The full view selects the same jobs.
    for q in queries {
        let full = web.get(&format!("/api/v1/jobs?{q}")).expect(200);
        let brief = web.get(&format!("/api/v1/jobs?{q}&view=brief")).expect(200);
        assert_eq!(full["total"], brief["total"], "{q}");
        assert_eq!(rows(&full["jobs"]), rows(&brief["jobs"]), "{q}");
    }
    assert_eq!(web.get("/api/v1/jobs?view=wide").status, 400);
    let all = cli_listing(&sb, "pending");
    let mut web = web;
    terminate(&mut web.daemon);
    // The disk gives the same listing as the index did.
    assert_eq!(cli_listing(&sb, "pending"), all);
}
