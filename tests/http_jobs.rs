//! Jobs over HTTP: listing with pages, filters and order, a job's detail, its explanation and
//! the decisions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::http::{BOB, EVE, WAIT, cli_signature, ok, serve, wait_status};
use crate::util::*;

fn naive(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Writes a job whose `created_at` is `age` ago, as the queue client does (built elsewhere,
/// renamed in whole). Returns the uid.
fn submit_aged(
    sb: &Sandbox,
    from: &str,
    name: &str,
    age: chrono::Duration,
    status: &str,
) -> String {
    submit_edited(sb, from, name, status, |meta| {
        meta["created_at"] = naive(chrono::Local::now().naive_local() - age).into();
        meta["status"] = status.into();
    })
}

// ------------------------------------------------------------------------------ jobs

#[test]
fn jobs_listing_pages_filters_and_orders_newest_first() {
    let sb = Sandbox::new();
    let h = chrono::Duration::hours;
    // Five waiting jobs, four hours apart (the newest first in the listing; none expired yet).
    let senders = [
        "a1@lab.example",
        "a2@lab.example",
        "b1@other.example",
        "b2@other.example",
        "c@lab.example",
    ];
    let uids: Vec<String> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            submit_aged(
                &sb,
                s,
                &format!("Job number {i}"),
                h(1 + 4 * i as i64),
                "pending",
            )
        })
        .collect();
    let done = submit_aged(&sb, "z@done.example", "Finished one", h(1), "completed");
    let web = serve(&sb, &[]);
    assert!(wait_for(WAIT, || uids
        .iter()
        .all(|u| !sb.decisions_for(u, "waiting").is_empty())));
    let uids_of = |v: &Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["uid"].as_str().unwrap().to_string())
            .collect()
    };

    let all = web.get("/api/v1/jobs").expect(200);
    assert_eq!(uids_of(&all), uids, "newest first: {all}");
    assert_eq!(
        (
            all["total"].clone(),
            all["offset"].clone(),
            all["limit"].clone()
        ),
        (json!(5), json!(0), json!(50))
    );
    let j = &all["jobs"][0];
    assert_eq!(j["status"], "pending");
    assert_eq!(j["name"], "Job number 0");
    assert_eq!(j["requester"], "a1@lab.example");
    assert_eq!(j["description"], "Counts rows");
    assert_eq!(j["tags"], json!(["stats"]));
    assert_eq!(j["timeout_seconds"], 86400);
    assert_eq!(j["verdict"], "wait");
    assert!(!j["reasons"].as_array().unwrap().is_empty(), "{j}");
    assert_eq!(
        j["signature"],
        cli_signature(&sb, &sb.job_dir("pending", &uids[0])).as_str()
    );
    let created = chrono::NaiveDateTime::parse_from_str(
        j["created_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    let expires = chrono::NaiveDateTime::parse_from_str(
        j["expires_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    assert_eq!(expires - created, chrono::Duration::seconds(86400));

    // Pages.
    let p = web
        .get("/api/v1/jobs?status=pending&offset=1&limit=2")
        .expect(200);
    assert_eq!(uids_of(&p), uids[1..3].to_vec());
    assert_eq!(
        (p["total"].clone(), p["offset"].clone(), p["limit"].clone()),
        (json!(5), json!(1), json!(2))
    );
    let p = web.get("/api/v1/jobs?offset=4&limit=2").expect(200);
    assert_eq!(uids_of(&p), uids[4..].to_vec());
    let p = web.get("/api/v1/jobs?offset=10").expect(200);
    assert!(uids_of(&p).is_empty());
    assert_eq!(p["total"], 5);

    // Filters (case-insensitive substrings), and their combination with paging.
    let f = web.get("/api/v1/jobs?sender=LAB.example").expect(200);
    assert_eq!(
        uids_of(&f),
        vec![uids[0].clone(), uids[1].clone(), uids[4].clone()]
    );
    assert_eq!(f["total"], 3);
    let f = web
        .get("/api/v1/jobs?sender=lab.example&limit=1&offset=1")
        .expect(200);
    assert_eq!(uids_of(&f), vec![uids[1].clone()]);
    let f = web.get("/api/v1/jobs?name=number%203").expect(200);
    assert_eq!(uids_of(&f), vec![uids[3].clone()]);
    let f = web.get("/api/v1/jobs?max_age_hours=6").expect(200);
    assert_eq!(uids_of(&f), uids[..2].to_vec());
    let f = web
        .get("/api/v1/jobs?max_age_hours=6&sender=a2")
        .expect(200);
    assert_eq!(uids_of(&f), vec![uids[1].clone()]);
    let f = web.get("/api/v1/jobs?sender=nobody").expect(200);
    assert_eq!((uids_of(&f).len(), f["total"].clone()), (0, json!(0)));

    // Other status folders.
    let c = web.get("/api/v1/jobs?status=completed").expect(200);
    assert_eq!(uids_of(&c), vec![done.clone()]);
    assert_eq!(c["jobs"][0]["status"], "completed");
    assert_eq!(
        web.get("/api/v1/jobs?status=rejected").expect(200)["total"],
        0
    );

    // Bad query values.
    for q in ["status=bogus", "limit=abc", "offset=-1", "max_age_hours=x"] {
        web.get(&format!("/api/v1/jobs?{q}")).expect(400);
    }
}

#[test]
fn job_detail_explain_and_decisions() {
    let sb = Sandbox::new();
    let files: Vec<(&str, &[u8])> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
        ("data.bin", b"\xff\xfe\x00binary"),
    ];
    let uid = sb.submit_with(
        EVE,
        OWNER,
        "Detail",
        "Shows files",
        &["x"],
        &files,
        "pending",
    );
    let web = serve(&sb, &[]);
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&uid, "waiting")
        .is_empty()));
    let dir = sb.job_dir("pending", &uid);

    let d = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    assert_eq!(d["uid"], uid.as_str());
    assert_eq!(d["status"], "pending");
    assert_eq!(d["name"], "Detail");
    assert_eq!(d["verdict"], "wait");
    assert_eq!(d["signature"], cli_signature(&sb, &dir).as_str());
    let got: BTreeMap<String, Value> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["data.bin", "main.py", "run.sh"]
    );
    for (rel, content) in &files {
        let f = &got[*rel];
        assert_eq!(f["size"], content.len(), "{f}");
        assert_eq!(f["truncated"], false, "{f}");
        let hash = ok(&sb.cli(&["hash", dir.join("code").join(rel).to_str().unwrap()]));
        let sha = f["sha256"].as_str().unwrap();
        assert!(
            hash.contains(sha.trim_start_matches("sha256:")),
            "{rel}: {sha} vs {hash}"
        );
        match std::str::from_utf8(content) {
            Ok(text) => assert_eq!(f["text"], text, "{f}"),
            Err(_) => assert!(
                f["text"].is_null(),
                "binary content is not shown as text: {f}"
            ),
        }
    }
    web.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000")
        .expect(404);

    // explain: the same as the CLI's dry run.
    let e = web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200);
    assert_eq!(e["uid"], uid.as_str());
    assert_eq!(e["would"], "wait");
    assert_eq!(e["requester"], EVE);
    assert_eq!(e["name"], "Detail");
    assert!(!e["reasons"].as_array().unwrap().is_empty(), "{e}");
    let cli: Value = serde_json::from_str(&ok(&sb.cli(&["explain", &uid, "--json"]))).unwrap();
    assert_eq!(e, cli, "the API and the CLI explain differently");
    web.get("/api/v1/jobs/no-such-job/explain").expect(404);
    // Explaining changes nothing.
    unchanged(&sb, "explain", || {
        web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200)
    });

    // Allowlisting the sender: explain says approve, and the daemon does it.
    web.post(&format!("/api/v1/allowlist/add/{EVE}"), None)
        .expect(201);
    wait_status(&sb, &web, &uid, "approved");
    let d = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    assert_eq!(d["status"], "approved");
    let other = sb.submit(BOB, &simple_code());
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&other, "waiting")
        .is_empty()));
    settle(&sb);

    // decisions: newest first, as in decisions.jsonl.
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&uid, "approved")
        .is_empty()));
    let all = web.get("/api/v1/decisions").expect(200);
    let list = all["decisions"].as_array().unwrap();
    let mut on_disk = sb.decisions();
    on_disk.reverse();
    assert_eq!(list.len(), on_disk.len());
    for (api, disk) in list.iter().zip(&on_disk) {
        for k in [
            "time",
            "uid",
            "name",
            "requester",
            "outcome",
            "method",
            "signature",
            "reasons",
        ] {
            assert!(api.get(k).is_some(), "decision without {k}: {api}");
            assert_eq!(api[k], disk[k], "{k}");
        }
    }
    let approved = list
        .iter()
        .find(|d| d["uid"] == uid.as_str() && d["outcome"] == "approved")
        .unwrap();
    assert_eq!(approved["method"], "allowlist");
    let one = web.get("/api/v1/decisions?limit=1").expect(200);
    assert_eq!(one["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(one["decisions"][0], list[0]);
    web.get("/api/v1/decisions?limit=lots").expect(400);
}
