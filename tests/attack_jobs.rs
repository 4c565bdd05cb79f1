//! Attacks by job data on the real binary: numbers and dates no client would write (the API
//! and the MCP server must keep answering), code too big to read (a 100 GB sparse file must not
//! hold up the next job or the API), and approvals the filesystem keeps refusing (backed off and
//! recorded once, not once per attempt).

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{Web, serve};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@example.org";
const MALLORY: &str = "mallory@example.net";

/// Builds a job from `from` outside the queue, lets `tweak` change its metadata and folder, then
/// renames it into pending/ whole, as the queue client does.
fn submit_tweaked(sb: &Sandbox, from: &str, tweak: impl FnOnce(&mut Value, &Path)) -> String {
    let uid = new_uid();
    let build = sb.dir.path().join(format!("build-{uid}"));
    write_job(
        &build,
        &uid,
        from,
        OWNER,
        "Analysis",
        "Counts rows",
        &["stats"],
        &simple_code(),
    );
    let path = build.join("metadata.json");
    let mut meta: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    tweak(&mut meta, &build);
    fs::write(&path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    fs::rename(&build, sb.job_dir("pending", &uid)).unwrap();
    uid
}

fn alive(web: &mut Web) -> bool {
    web.daemon.child.try_wait().unwrap().is_none()
}

/// Pending jobs whose numbers and dates no client would write: a timeout of 10^13 seconds, one
/// that is negative, a float, a string or null, and creation dates at the end of the calendar.
/// The daemon keeps running, `GET /api/v1/jobs` lists every one with a sane `expires_at`, an
/// absurd `max_age_hours` is a 400, and the MCP server lists them and keeps serving.
#[test]
fn absurd_numbers_and_dates_in_jobs_break_nothing() {
    let sb = Sandbox::new();
    let variants: Vec<(&str, Value, Value)> = vec![
        ("huge timeout", json!(10_000_000_000_000u64), Value::Null),
        ("u64::MAX timeout", json!(u64::MAX), Value::Null),
        ("negative timeout", json!(-5), Value::Null),
        ("float timeout", json!(86400.5), Value::Null),
        ("string timeout", json!("86400"), Value::Null),
        ("null timeout", Value::Null, Value::Null),
        ("last day", json!(86400), json!("+262142-12-31T23:59:59")),
        (
            "past the last day",
            json!(86400),
            json!("+262143-12-31T23:59:59"),
        ),
        (
            "year 9999",
            json!(10_000_000_000u64),
            json!("9999-12-31T23:59:59"),
        ),
        // Long expired: moved to timedout/ (checked below).
        ("first day", json!(86400), json!("-262143-01-01T00:00:00")),
    ];
    let mut uids = Vec::new();
    for (what, timeout, created) in &variants {
        let uid = submit_tweaked(&sb, MALLORY, |m, _| {
            m["timeout_seconds"] = timeout.clone();
            if !created.is_null() {
                m["created_at"] = created.clone();
                m["updated_at"] = created.clone();
            }
        });
        uids.push((uid, *what));
    }
    let mut web = serve(&sb, &[]);
    let mut listed = Value::Null;
    let answered = wait_for(WAIT, || {
        let r = web.get("/api/v1/jobs?limit=500");
        if r.status != 200 {
            return false;
        }
        listed = r.json();
        listed["total"] == uids.len() - 1
    });
    assert!(
        answered,
        "GET /api/v1/jobs did not list every job ({listed}); log:\n{}",
        web.daemon.log_text()
    );
    let (ancient, _) = uids.pop().unwrap();
    assert!(
        wait_for(WAIT, || sb.status_of(&ancient).as_deref()
            == Some("timedout")),
        "a job created in the first year there is was not expired:\n{}",
        web.daemon.log_text()
    );
    for (uid, what) in &uids {
        let job = listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["uid"] == uid.as_str())
            .unwrap_or_else(|| panic!("{what}: {uid} is not listed: {listed}"));
        match &job["expires_at"] {
            Value::Null => {}
            Value::String(s) => assert!(
                syft_reviewer::queue::metadata::parse_naive(s).is_some() || s.starts_with('+'),
                "{what}: expires_at {s:?} is not a date"
            ),
            other => panic!("{what}: expires_at is {other}"),
        }
        web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
        web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200);
    }
    let last_day = &uids.iter().find(|(_, w)| *w == "last day").unwrap().0;
    let job = web.get(&format!("/api/v1/jobs/{last_day}")).expect(200);
    assert_eq!(
        job["verdict"], "wait",
        "the last day there is is a date: {job}"
    );
    assert_eq!(job["expires_at"], Value::Null, "{job}");
    let huge = &uids[0].0;
    let job = web.get(&format!("/api/v1/jobs/{huge}")).expect(200);
    assert_eq!(
        job["expires_at"],
        Value::Null,
        "a timeout past the last date there is never expires: {job}"
    );
    for q in [
        "max_age_hours=3000000000000",
        "max_age_hours=18446744073709551615",
        "max_age_hours=99999999999999999999999",
    ] {
        web.get(&format!("/api/v1/jobs?{q}")).expect(400);
    }
    web.get("/api/v1/jobs?max_age_hours=876000").expect(200);
    assert!(
        alive(&mut web),
        "the daemon died:\n{}",
        web.daemon.log_text()
    );
    web.get("/health").expect(200);

    let mut mcp = Mcp::start(&sb);
    mcp.request(1, "initialize", json!({"protocolVersion": "2025-06-18"}));
    for id in 2..4 {
        let v = mcp.request(
            id,
            "tools/call",
            json!({"name": "approvals.list", "arguments": {"limit": 500}}),
        );
        assert_eq!(v["result"]["isError"], false, "{v}");
        assert_eq!(v["result"]["structuredContent"]["total"], uids.len(), "{v}");
    }
    mcp.request(4, "ping", json!({}));
    drop(mcp.stdin.take());
    let status = mcp.child.wait().unwrap();
    assert!(status.success(), "the MCP server ended with {status}");
    assert!(
        alive(&mut web),
        "the daemon died:\n{}",
        web.daemon.log_text()
    );
    assert!(
        !web.daemon.log_text().contains("panicked"),
        "{}",
        web.daemon.log_text()
    );
}

/// A job with a 100 GB sparse file (and one with a 900 MiB one, under the size cap), then a job
/// from an allowlisted sender: the big jobs are flagged, saying why, without being read; the
/// allowlisted job is approved at once; the API and `/health` answer throughout.
#[test]
fn a_huge_sparse_file_is_flagged_unread_and_holds_up_nothing() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", ALICE]).status.success());
    let mut web = serve(&sb, &[]);
    let sparse = |len: u64| {
        move |_: &mut Value, dir: &Path| {
            let f = fs::File::create(dir.join("code/data.bin")).unwrap();
            f.set_len(len).unwrap();
        }
    };
    let huge = submit_tweaked(&sb, ALICE, sparse(100 << 30));
    let holey = submit_tweaked(&sb, ALICE, sparse(900 << 20));
    let next = sb.submit(ALICE, &simple_code());
    assert!(
        wait_for(WAIT, || sb.status_of(&next).as_deref() == Some("approved")),
        "the allowlisted job sent after the big ones was not approved (it is in {:?}); log:\n{}",
        sb.status_of(&next),
        web.daemon.log_text()
    );
    let flagged = |uid: &str| {
        let mut v = Value::Null;
        let seen = wait_for(WAIT, || {
            v = web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200);
            v["would"] == "flag"
        });
        assert!(seen, "{uid} is not flagged: {v}");
        v["reasons"].to_string()
    };
    let why = flagged(&huge);
    assert!(
        why.contains("cap") && why.contains("not read"),
        "the reason must say the code is too big and was not read: {why}"
    );
    let why = flagged(&holey);
    assert!(
        why.contains("sparse file") && why.contains("not read"),
        "the reason must say the file is sparse and was not read: {why}"
    );
    assert_eq!(sb.status_of(&huge).as_deref(), Some("pending"));
    assert_eq!(sb.status_of(&holey).as_deref(), Some("pending"));
    // The listing follows the approval once its move is complete (the folder's rename is seen
    // first): wait for it, then ask again and again.
    let mut list = Value::Null;
    let caught_up = wait_for(WAIT, || {
        list = web.get("/api/v1/jobs").expect(200);
        list["total"] == 2
    });
    assert!(
        caught_up,
        "the approved job is still listed as pending: {list}"
    );
    for _ in 0..3 {
        let list = web.get("/api/v1/jobs").expect(200);
        assert_eq!(list["total"], 2, "{list}");
        for j in list["jobs"].as_array().unwrap() {
            assert_eq!(j["verdict"], "flag", "{j}");
            assert_eq!(
                j["signature"],
                Value::Null,
                "no signature over unread code: {j}"
            );
        }
        web.get("/health").expect(200);
    }
    assert!(alive(&mut web), "{}", web.daemon.log_text());
}

fn audit_entries(sb: &Sandbox, uid: &str, outcome: &str) -> usize {
    let out = sb.cli(&["audit", "show"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["uid"] == uid && e["outcome"] == outcome)
        .count()
}

fn lines_about(log: &str, uid: &str, level: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(uid) && l.contains(level))
        .count()
}

/// Approvals the filesystem keeps refusing, two ways: `approved/` cannot be written (the move
/// fails), and a job's own folder cannot be written (the move succeeds, locking its permissions
/// fails, it is sent back). Over several seconds each failure is recorded in the audit chain
/// once and logged at ERROR once, not at every attempt; once writes work again the jobs are
/// approved.
#[test]
fn refused_approvals_back_off_and_are_recorded_once() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", ALICE]).status.success());
    let mut d = sb.start(&["--settle-ms", "0"]);
    let approved_guard = ReadOnly::set(&sb.queue().join("approved"));
    let refused = sb.submit(ALICE, &simple_code());
    assert!(
        wait_for(WAIT, || d
            .log_text()
            .contains(&format!("could not approve job {refused}"))),
        "no error logged for {refused}:\n{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_secs(6));
    let log = d.log_text();
    assert_eq!(
        lines_about(&log, &refused, "ERROR"),
        1,
        "one ERROR for a failure that persists:\n{log}"
    );
    assert_eq!(audit_entries(&sb, &refused, "approval_failed"), 1, "{log}");
    assert_eq!(sb.status_of(&refused).as_deref(), Some("pending"));
    drop(approved_guard);
    assert!(
        wait_for(WAIT, || sb.status_of(&refused).as_deref()
            == Some("approved")),
        "not approved once approved/ was writable again:\n{}",
        d.log_text()
    );

    // The job's code/lib/ holds a permission file granting writes, which the approval must
    // rewrite: with code/lib/ read-only, every approval fails after the move and sends it back.
    let mut lib_guard = None;
    let stuck = submit_tweaked(&sb, ALICE, |_, dir| {
        let lib = dir.join("code/lib");
        fs::create_dir_all(&lib).unwrap();
        fs::write(lib.join("util.py"), "X = 1\n").unwrap();
        fs::write(
            lib.join("syft.pub.yaml"),
            format!("rules:\n- pattern: '**'\n  access:\n    write:\n    - {ALICE}\n"),
        )
        .unwrap();
        lib_guard = Some(ReadOnly::set(&lib));
    });
    let mut lib_guard = lib_guard.unwrap();
    // Built elsewhere, the folder now sits in pending/, and moves on to approved/ in the end.
    lib_guard.moved_to(sb.job_dir("pending", &stuck).join("code/lib"));
    lib_guard.moved_to(sb.job_dir("approved", &stuck).join("code/lib"));
    assert!(
        wait_for(WAIT, || audit_entries(&sb, &stuck, "sent_back") >= 1),
        "{stuck} was never sent back:\n{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_secs(6));
    let log = d.log_text();
    let sent_back = audit_entries(&sb, &stuck, "sent_back");
    assert_eq!(
        sent_back, 1,
        "the same failure recorded {sent_back} times in the audit chain:\n{log}"
    );
    assert!(
        lines_about(&log, &stuck, "WARN") <= 2,
        "the same failure logged at every attempt:\n{log}"
    );
    assert_eq!(sb.status_of(&stuck).as_deref(), Some("pending"));
    drop(lib_guard);
    assert!(
        wait_for(Duration::from_secs(90), || sb.status_of(&stuck).as_deref()
            == Some("approved")),
        "not approved once its folder was writable again:\n{}",
        d.log_text()
    );
    let (_, status) = terminate(&mut d);
    assert!(status.success());
    let v = sb.cli(&["audit", "verify"]);
    assert!(v.status.success(), "{v:?}");
}

/// A job of 80 files of 256 KiB each: its detail answers with the texts cut at 16 MiB in all
/// (the files past that come without text, marked truncated), not 20 MiB of JSON.
#[test]
fn a_job_of_many_large_files_is_shown_in_a_bounded_answer() {
    let sb = Sandbox::new();
    let uid = submit_tweaked(&sb, MALLORY, |_, dir| {
        let chunk = "x = 1\n".repeat(256 * 1024 / 6);
        for i in 0..80 {
            fs::write(dir.join(format!("code/part{i:02}.py")), &chunk).unwrap();
        }
    });
    let web = serve(&sb, &[]);
    let job = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 82, "{}", job["reasons"]);
    let shown: usize = files
        .iter()
        .map(|f| f["text"].as_str().map_or(0, str::len))
        .sum();
    assert!(shown <= 16 << 20, "{shown} bytes of text in one answer");
    assert!(
        files
            .iter()
            .any(|f| f["text"].is_null() && f["truncated"] == true),
        "the files past the budget are marked as cut"
    );
    assert!(files.iter().all(|f| f["sha256"].is_string()));
}

/// Listing the jobs again does not read their code again: once a job's files have been hashed
/// (and left alone for a few seconds), `GET /api/v1/jobs` takes their digests from the cache, so
/// the listing costs no reading however large the code is.
#[test]
fn listing_jobs_again_does_not_read_unchanged_code() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let sb = Sandbox::new();
    let uid = submit_tweaked(&sb, MALLORY, |_, dir| {
        fs::write(dir.join("code/data.csv"), "a,b\n1,2\n".repeat(4096)).unwrap();
    });
    let web = serve(&sb, &[]);
    // Files changed in the last two seconds are read every time (their times may not move on
    // the next write); after that, one listing hashes them for good.
    std::thread::sleep(Duration::from_secs(3));
    web.get("/api/v1/jobs").expect(200);
    let ino = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    ino.add_watch(
        &sb.job_dir("pending", &uid).join("code"),
        AddWatchFlags::IN_ACCESS,
    )
    .unwrap();
    for _ in 0..3 {
        let list = web.get("/api/v1/jobs").expect(200);
        assert_eq!(list["total"], 1, "{list}");
        assert!(list["jobs"][0]["signature"].is_string(), "{list}");
    }
    // Listing the folder is expected; reading a file in it is not.
    let reads: Vec<_> = ino
        .read_events()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.mask.contains(AddWatchFlags::IN_ISDIR))
        .map(|e| e.name)
        .collect();
    assert!(
        reads.is_empty(),
        "the listing read the unchanged code files again: {reads:?}"
    );
}
