//! Floods of jobs: the owner's jobs are decided before a backlog of strangers' jobs, a store
//! change re-evaluates only the jobs it can change, and nothing is lost on the way.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::gate::ok;
use crate::http::serve;
use crate::util::*;

const WAIT: Duration = Duration::from_secs(120);
const STRANGER: &str = "stranger@flood.example";
const BOB: &str = "bob@x.org";

/// `n` jobs from `from`, built beside the queue and renamed into `pending/` one by one, as the
/// queue client does. Returns their uids.
fn flood(sb: &Sandbox, n: usize, from: &str) -> Vec<String> {
    let staging = sb.dir.path().join("staging");
    fs::create_dir_all(&staging).unwrap();
    let code = simple_code();
    let mut uids = Vec::with_capacity(n);
    while uids.len() < n {
        let uid = new_uid();
        let dir = staging.join(&uid);
        if dir.exists() {
            continue;
        }
        write_job(
            &dir,
            &uid,
            from,
            OWNER,
            "Analysis",
            "Counts rows",
            &["flood"],
            &code,
        );
        uids.push(uid);
    }
    for uid in &uids {
        fs::rename(staging.join(uid), sb.job_dir("pending", uid)).unwrap();
    }
    uids
}

/// The decision log's outcomes in order, as (uid, outcome).
fn outcomes(sb: &Sandbox) -> Vec<(String, String)> {
    sb.decisions()
        .into_iter()
        .map(|e| {
            (
                e["uid"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Waits for the owner's job `uid` to be approved and for the `n` strangers' jobs to be
/// reviewed; returns how many of those were reviewed before it.
fn reviewed_before_approval(sb: &Sandbox, d: &Daemon, uid: &str, n: usize) -> usize {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some("approved")),
        "the allowlisted job was not approved; log:\n{}",
        d.log_text()
    );
    wait_waiting(sb, d, n);
    waiting_before(sb, uid)
}

/// How many jobs of the flood were logged as waiting before `uid`'s approval.
fn waiting_before(sb: &Sandbox, uid: &str) -> usize {
    let log = outcomes(sb);
    let at = log
        .iter()
        .position(|(u, o)| u == uid && o == "approved")
        .expect("the job is approved");
    log[..at].iter().filter(|(_, o)| o == "waiting").count()
}

fn wait_waiting(sb: &Sandbox, d: &Daemon, n: usize) {
    assert!(
        wait_for(WAIT, || outcomes(sb)
            .iter()
            .filter(|(_, o)| o == "waiting")
            .count()
            >= n),
        "not every job of the flood was reviewed; daemon log tail:\n{}",
        log_tails(sb, 1, 30)
    );
    let _ = d;
}

#[test]
fn a_trusted_senders_job_present_with_a_flood_is_decided_before_the_flood() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let n = 3000;
    let strangers = flood(&sb, n, STRANGER);
    // Written last, so neither name nor age puts it first: only who sent it does.
    let mine = sb.submit(BOB, &simple_code());
    let d = sb.start(&[]);
    let before = reviewed_before_approval(&sb, &d, &mine, n);
    assert!(
        before < n / 4,
        "{before} of the {n} strangers' jobs were reviewed before the owner's job"
    );
    for uid in strangers.iter().take(50) {
        assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
    }
}

#[test]
fn a_trusted_senders_job_arriving_during_a_flood_is_decided_before_the_flood() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let n = 3000;
    flood(&sb, n, STRANGER);
    let d = sb.start(&[]);
    // The flood's review has just begun: this one arrives behind all of it.
    let mine = sb.submit(BOB, &simple_code());
    let before = reviewed_before_approval(&sb, &d, &mine, n);
    assert!(
        before < n / 2,
        "{before} of the {n} strangers' jobs were reviewed before the owner's job that arrived \
         during the flood"
    );
}

#[test]
fn a_store_change_re_evaluates_only_the_jobs_it_names() {
    let sb = Sandbox::new();
    let strangers = flood(&sb, 40, STRANGER);
    let carol = sb.submit("carol@x.org", &simple_code());
    let d = sb.start(&[]);
    wait_waiting(&sb, &d, 41);
    ok(&sb.cli(&["allow", "add", "carol@x.org"]));
    assert!(
        wait_for(WAIT, || sb.status_of(&carol).as_deref() == Some("approved")),
        "carol's job was not approved once she was allowlisted; log:\n{}",
        d.log_text()
    );
    let log = d.log_text();
    assert!(
        log.contains("re-evaluating 1 of 41 pending job(s)"),
        "allowing carol re-evaluated more than her job:\n{log}"
    );
    // Trusting code nobody sent re-evaluates nothing.
    let other = sb.submit_with(
        "dave@x.org",
        OWNER,
        "Other",
        "Something else",
        &["x"],
        &[("run.sh", b"echo other\n")],
        "completed",
    );
    ok(&sb.cli(&["trust", "add", "--job", &other]));
    assert!(
        wait_for(WAIT, || d.log_text().contains("re-evaluating 0 of 40")),
        "trusting unrelated code re-evaluated waiting jobs:\n{}",
        d.log_text()
    );
    for uid in &strangers {
        assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
    }
}

/// Waits until the decision log has `approved` approvals and `waiting` jobs noted as waiting.
fn wait_all_decided(sb: &Sandbox, approved: usize, waiting: usize) {
    assert!(
        wait_for(WAIT, || {
            let log = outcomes(sb);
            log.iter().filter(|(_, o)| o == "approved").count() >= approved
                && log.iter().filter(|(_, o)| o == "waiting").count() >= waiting
        }),
        "not everything was decided; log tail:\n{}",
        log_tails(sb, 1, 30)
    );
}

#[test]
fn nothing_is_lost_in_a_flood() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    // More than one batch of each, some there at start and some arriving while it runs.
    let mut waiting = flood(&sb, 700, STRANGER);
    let mut approved = flood(&sb, 600, BOB);
    let d = sb.start(&[]);
    waiting.extend(flood(&sb, 700, STRANGER));
    approved.extend(flood(&sb, 600, BOB));
    wait_all_decided(&sb, approved.len(), waiting.len());
    let log = outcomes(&sb);
    for uid in &approved {
        assert_eq!(sb.status_of(uid).as_deref(), Some("approved"), "{uid}");
        assert_eq!(sb.metadata("approved", uid)["status"], "approved");
        assert_eq!(
            log.iter()
                .filter(|(u, o)| u == uid && o == "approved")
                .count(),
            1,
            "{uid} is approved once"
        );
    }
    for uid in &waiting {
        assert_eq!(sb.status_of(uid).as_deref(), Some("pending"), "{uid}");
        assert_eq!(
            log.iter()
                .filter(|(u, o)| u == uid && o == "waiting")
                .count(),
            1,
            "{uid} is noted as waiting once"
        );
    }
    let journal: Vec<PathBuf> = fs::read_dir(sb.state().join("moves"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(journal.is_empty(), "moves left in the journal: {journal:?}");
    drop(d);
}

/// Far more events than the daemon's channel holds come while its batches run: the burst's
/// arrivals, then the daemon's own moves and rewrites. They wait for the loop (one per path)
/// instead of being lost: every job is decided, and none of it costs a rescan of the queue
/// (the periodic one is an hour away).
#[test]
fn a_burst_larger_than_the_event_queue_is_decided_without_a_rescan() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let web = serve(&sb, &["--rescan-secs", "3600"]);
    let mut approved = flood(&sb, 2500, BOB);
    let waiting = flood(&sb, 2500, STRANGER);
    // Arriving while the first batches are decided.
    approved.extend(flood(&sb, 20, BOB));
    wait_all_decided(&sb, approved.len(), waiting.len());
    for uid in &approved {
        assert_eq!(sb.status_of(uid).as_deref(), Some("approved"), "{uid}");
    }
    // From /metrics, which reads no audit chain (thousands of approvals were just appended).
    let m = web.get("/metrics");
    assert_eq!(m.status, 200, "{}", m.text);
    let rescans: Vec<&str> = m
        .text
        .lines()
        .filter(|l| l.starts_with("syft_reviewer_watcher_rescans_total"))
        .collect();
    assert_eq!(
        rescans,
        ["syft_reviewer_watcher_rescans_total 0"],
        "the burst cost rescans; log tail:\n{}",
        log_tails(&sb, 1, 30)
    );
}

#[test]
fn a_single_run_decides_a_backlog_larger_than_a_batch() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let uids = flood(&sb, 1100, BOB);
    let out = sb.cli(&["run", "--once", "--no-web", "--settle-ms", "0"]);
    ok(&out);
    let left = uids
        .iter()
        .filter(|u| sb.status_of(u).as_deref() != Some("approved"))
        .count();
    assert_eq!(left, 0, "jobs left undecided by run --once");
}

#[test]
fn a_trusted_senders_job_found_by_a_scan_among_thousands_is_decided_before_any_of_them() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    // More than one ranking pass of strangers' jobs, all found by the same walk (no event
    // announces any of them), the owner's job in the middle: neither its place nor its age
    // puts it first.
    let n = 5000;
    let mut strangers = flood(&sb, n / 2, STRANGER);
    let mine = sb.submit(BOB, &simple_code());
    strangers.extend(flood(&sb, n / 2, STRANGER));
    let d = sb.start(&[]);
    assert!(
        wait_for(WAIT, || outcomes(&sb)
            .iter()
            .any(|(u, o)| *u == mine && o == "approved")),
        "the allowlisted job was not approved; log:\n{}",
        d.log_text()
    );
    assert!(
        wait_for(WAIT, || d.log_text().contains(&format!(
            "the start-up scan found {} pending job(s)",
            n + 1
        ))),
        "the jobs were not found by one scan:\n{}",
        d.log_text()
    );
    // Every job the scan found is ranked by its metadata before any is hashed: not one
    // stranger's job is reviewed before the owner's.
    assert_eq!(
        waiting_before(&sb, &mine),
        0,
        "strangers' jobs were reviewed before the owner's job"
    );
    assert!(
        strangers
            .iter()
            .all(|u| sb.status_of(u).as_deref() == Some("pending"))
    );
    drop(d);
}

/// The Pending tab's page while the reviewer has not read a flood yet: the page reads a few of
/// those jobs itself, none that arrived in the last seconds, and shows the others from the
/// queue's index as being reviewed (so a page costs what the index costs, not a review of
/// each), with no signature; they cannot be approved as shown.
#[test]
fn a_page_in_a_flood_reads_only_a_few_jobs_the_reviewer_has_not_read() {
    let sb = Sandbox::new();
    // A settle window longer than the test: the reviewer reads none of the flood meanwhile.
    let web = serve(&sb, &["--settle-ms", "600000"]);
    let uids = flood(&sb, 30, STRANGER);
    let indexed = wait_for(WAIT, || {
        let p = web.get("/api/v1/jobs?view=brief&limit=50").expect(200);
        p["total"] == 30 && p["source"] == "index"
    });
    assert!(indexed, "the index never listed the flood");
    // Jobs that just arrived are not read by the page; once they are older, 8 of them are.
    let mut page = serde_json::Value::Null;
    let eight = wait_for(WAIT, || {
        page = web.get("/api/v1/jobs?limit=50").expect(200);
        let read = page["jobs"].as_array().map_or(0, |j| {
            j.iter().filter(|j| j["signature"].is_string()).count()
        });
        assert!(
            read <= 8,
            "the page read more than 8 unreviewed jobs: {page}"
        );
        read == 8
    });
    assert!(eight, "the page never read 8 of the flood: {page}");
    let jobs = page["jobs"].as_array().expect("a page of jobs");
    assert_eq!(jobs.len(), 30, "{page}");
    let (read, shown): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        jobs.iter().partition(|j| j["signature"].is_string());
    assert!(
        read.iter()
            .all(|j| j["verdict"] == "wait" && j.get("being_reviewed").is_none())
    );
    // Newest first: the page read the newest.
    let newest: Vec<&str> = uids.iter().rev().take(8).map(String::as_str).collect();
    assert!(
        read.iter()
            .all(|j| newest.contains(&j["uid"].as_str().unwrap()))
    );
    for j in &shown {
        assert_eq!(j["being_reviewed"], true, "{j}");
        assert!(j["verdict"].is_null(), "{j}");
        assert_eq!(j["requester"], STRANGER);
        assert_eq!(j["name"], "Analysis");
    }
    let uid = shown[0]["uid"].as_str().unwrap();
    let r = web.send(
        "POST",
        &format!("/api/v1/jobs/{uid}/decide"),
        Some(&serde_json::json!({"verdict": "approve", "signature": null, "status": "pending"})),
    );
    assert!(r.status >= 400, "approving an unread job as shown: {r:?}");
    assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
}
