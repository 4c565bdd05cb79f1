//! The daemon as a user sees it: what ends up where on disk, and how it starts and stops.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const BOB: &str = "bob@x.org";

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn allow(sb: &Sandbox, email: &str) {
    ok(&sb.cli(&["allow", "add", email]));
}

fn wait_status(sb: &Sandbox, d: &Daemon, uid: &str, status: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ (it is in {:?}); daemon log:\n{}",
        sb.status_of(uid),
        d.log_text()
    );
}

/// Approved as a user sees it: in approved/, metadata says so, and the decision is logged.
fn wait_approved(sb: &Sandbox, d: &Daemon, uid: &str) {
    wait_status(sb, d, uid, "approved");
    assert!(
        wait_for(WAIT, || {
            sb.status_of(uid).as_deref() == Some("approved")
                && sb.metadata("approved", uid)["status"] == "approved"
                && !sb.decisions_for(uid, "approved").is_empty()
        }),
        "job {uid} is in approved/ but its metadata or decision log entry is missing; log:\n{}",
        d.log_text()
    );
}

fn wait_decision(sb: &Sandbox, d: &Daemon, uid: &str, outcome: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, outcome).is_empty()),
        "no {outcome:?} decision for job {uid}; decisions: {:?}; daemon log:\n{}",
        sb.decisions(),
        d.log_text()
    );
}

fn wait_log(d: &Daemon, needle: &str) {
    assert!(
        wait_for(WAIT, || d.log_text().contains(needle)),
        "the daemon never logged {needle:?}; log:\n{}",
        d.log_text()
    );
}

/// Parses a permission file into JSON values, independently of the app's own types.
fn perm_rules(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()));
    v["rules"].as_array().cloned().unwrap_or_default()
}

fn users(rule: &serde_json::Value, access: &str) -> Vec<String> {
    rule["access"][access]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn perm_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(perm_files(&p));
        } else if p.file_name().unwrap() == "syft.pub.yaml" {
            out.push(p);
        }
    }
    out
}

#[test]
fn allowlisted_sender_is_approved_with_metadata_kept_and_permissions_locked() {
    let sb = Sandbox::new();
    allow(&sb, BOB);
    let files: Vec<(&str, &[u8])> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
        ("lib/util.py", b"X = 1\n"),
    ];
    let uid = sb.submit(BOB, &files);
    let before = sb.metadata("pending", &uid);
    let _d = sb.start(&[]);
    wait_approved(&sb, &_d, &uid);

    let after = sb.metadata("approved", &uid);
    let keys_before: Vec<&String> = before.as_object().unwrap().keys().collect();
    let keys_after: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(keys_after, keys_before, "key order must be kept");
    assert_eq!(after["status"], "approved");
    assert_ne!(after["updated_at"], before["updated_at"]);
    assert!(after["updated_at"].as_str().is_some_and(|s| s.len() >= 19));
    for (k, v) in before.as_object().unwrap() {
        if k != "status" && k != "updated_at" {
            assert_eq!(&after[k], v, "field {k} changed");
        }
    }
    // The raw file is still pretty-printed JSON like the client writes it.
    let raw = fs::read_to_string(sb.job_dir("approved", &uid).join("metadata.json")).unwrap();
    assert!(raw.starts_with("{\n  \"uid\""), "{raw}");

    // Code is intact.
    for (rel, content) in &files {
        assert_eq!(
            fs::read(sb.job_dir("approved", &uid).join("code").join(rel)).unwrap(),
            *content
        );
    }

    // Permission files: the requester may still read, but no longer write or administer.
    let perms = perm_files(&sb.job_dir("approved", &uid));
    assert_eq!(perms.len(), 2, "{perms:?}");
    let mut readable = 0;
    for p in &perms {
        for rule in perm_rules(p) {
            assert!(
                users(&rule, "write").is_empty() && users(&rule, "admin").is_empty(),
                "{} still grants write/admin: {rule}",
                p.display()
            );
            if users(&rule, "read").iter().any(|u| u == BOB) {
                readable += 1;
            }
        }
    }
    // metadata.json, run.sh and main.py each keep a read grant for bob.
    assert!(readable >= 3, "bob lost read access: {readable} rule(s)");

    let approved = sb.decisions_for(&uid, "approved");
    assert_eq!(approved.len(), 1, "{:?}", sb.decisions());
    assert_eq!(approved[0]["method"], "allowlist");
    assert!(approved[0]["reasons"][0].as_str().unwrap().contains(BOB));
}

#[test]
fn trusted_code_from_an_unknown_sender_is_approved() {
    let sb = Sandbox::new();
    let code = simple_code();
    let done = sb.submit_with(
        "carol@y.org",
        OWNER,
        "Analysis",
        "Counts rows",
        &["stats"],
        &code,
        "completed",
    );
    let out = sb.cli(&[
        "signature",
        sb.job_dir("completed", &done).to_str().unwrap(),
    ]);
    ok(&out);
    let sig = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(sig.len(), 64);

    let d = sb.start(&[]);
    let record = sb
        .app_data()
        .join("job_history")
        .join(format!("{sig}.json"));
    assert!(
        wait_for(WAIT, || record.is_file()),
        "the completed job was not recorded in job_history; log:\n{}",
        d.log_text()
    );
    let rec: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(rec["signature"], sig.as_str());
    assert!(
        rec["uids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == done.as_str())
    );
    assert!(
        rec["requesters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "carol@y.org")
    );
    let main_py = rec["code_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "main.py")
        .unwrap();
    assert_eq!(main_py["text"], "print('rows:', 42)\n");

    // Before trusting, an identical job from a stranger waits.
    let early = sb.submit("dave@z.org", &code);
    wait_decision(&sb, &d, &early, "waiting");
    assert_eq!(sb.status_of(&early).as_deref(), Some("pending"));

    ok(&sb.cli(&["trust", "add", &sig]));
    assert!(
        sb.app_data()
            .join("trusted_code")
            .join(format!("{sig}.json"))
            .is_file()
    );

    // The waiting job is re-evaluated once trust changes, and a new one is approved.
    wait_approved(&sb, &d, &early);
    let uid = sb.submit("erin@w.org", &code);
    wait_approved(&sb, &d, &uid);
    assert_eq!(sb.metadata("approved", &uid)["status"], "approved");
    let e = sb.decisions_for(&uid, "approved");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["method"], "trusted_code");
    assert_eq!(e[0]["signature"], sig.as_str());
}

#[test]
fn a_one_byte_change_in_any_code_file_is_not_approved() {
    let sb = Sandbox::new();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n".to_vec()),
        ("main.py", b"import lib.util\nprint('rows:', 42)\n".to_vec()),
        ("lib/util.py", b"LIMIT = 10\n".to_vec()),
        ("lib/deep/q.sql", b"SELECT count(*) FROM t;\n".to_vec()),
    ];
    fn refs<'a>(v: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
        v.iter().map(|(p, c)| (*p, c.as_slice())).collect()
    }
    // Trust the original code through a job in the queue (not running yet).
    let original = sb.submit("carol@y.org", &refs(&files));
    ok(&sb.cli(&["trust", "add", "--job", &original]));

    let d = sb.start(&[]);
    wait_approved(&sb, &d, &original);

    let mut variants = Vec::new();
    for i in 0..files.len() {
        let mut changed = files.clone();
        let content = &mut changed[i].1;
        let pos = content.len() / 2;
        content[pos] ^= 0x01;
        let uid = sb.submit(&format!("stranger{i}@y.org"), &refs(&changed));
        variants.push((files[i].0, uid));
    }
    // A file added to the code counts too.
    let mut extra = files.clone();
    extra.push(("lib/extra.py", b"\n".to_vec()));
    variants.push(("(added file)", sb.submit("stranger9@y.org", &refs(&extra))));

    for (_, uid) in &variants {
        wait_decision(&sb, &d, uid, "waiting");
    }
    // The unchanged code from yet another stranger is still approved...
    let control = sb.submit("stranger10@y.org", &refs(&files));
    wait_approved(&sb, &d, &control);
    // ...and none of the changed ones is.
    for (file, uid) in &variants {
        assert_eq!(
            sb.status_of(uid).as_deref(),
            Some("pending"),
            "a change in {file} was approved"
        );
        assert!(sb.decisions_for(uid, "approved").is_empty());
    }
}

#[test]
fn unknown_sender_is_left_pending_across_rescans() {
    let sb = Sandbox::new();
    let d = sb.start(&["--rescan-secs", "1"]);
    let uid = sb.submit("eve@evil.example", &simple_code());
    wait_decision(&sb, &d, &uid, "waiting");
    let snap = snapshot(&sb.job_dir("pending", &uid));
    // Let a few periodic rescans pass.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));
    assert_eq!(
        snapshot(&sb.job_dir("pending", &uid)),
        snap,
        "a waiting job must not be touched"
    );
    let waiting = sb.decisions_for(&uid, "waiting");
    assert_eq!(
        waiting.len(),
        1,
        "rescans must not repeat the decision: {waiting:?}"
    );
    let reasons: Vec<&str> = waiting[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not in the allowlist")),
        "{reasons:?}"
    );
    assert!(d.log_text().contains(&uid));
}

#[test]
fn hand_made_allowlist_file_takes_effect_at_once_and_deleting_it_stops_approvals() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let first = sb.submit(BOB, &simple_code());
    wait_decision(&sb, &d, &first, "waiting");

    sb.allow_by_hand("bob_at_x_dot_org");
    wait_approved(&sb, &d, &first);

    let perm = sb.allowlist_dir().join("syft.pub.yaml");
    let bob_rule = || {
        perm_rules(&perm)
            .into_iter()
            .find(|r| r["pattern"] == "bob_at_x_dot_org")
    };
    assert!(
        wait_for(WAIT, || perm.is_file() && bob_rule().is_some()),
        "no rule for bob in {}",
        perm.display()
    );
    let rule = bob_rule().unwrap();
    assert_eq!(users(&rule, "read"), vec![BOB.to_string()]);
    assert!(users(&rule, "write").is_empty() && users(&rule, "admin").is_empty());
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(sb.allowlist_dir().join("bob_at_x_dot_org"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the hand-made entry should be made private"
    );

    fs::remove_file(sb.allowlist_dir().join("bob_at_x_dot_org")).unwrap();
    assert!(
        wait_for(WAIT, || bob_rule().is_none()),
        "the rule for bob stayed after his file was deleted; log:\n{}",
        d.log_text()
    );
    let later = sb.submit(BOB, &simple_code());
    wait_decision(&sb, &d, &later, "waiting");
    assert_eq!(sb.status_of(&later).as_deref(), Some("pending"));
}

#[test]
fn jobs_present_before_start_are_decided_at_start() {
    let sb = Sandbox::new();
    allow(&sb, BOB);
    let good = sb.submit(BOB, &simple_code());
    let good2 = sb.submit(BOB, &simple_code());
    let other = sb.submit("eve@evil.example", &simple_code());
    let d = sb.start(&[]);
    wait_approved(&sb, &d, &good);
    wait_approved(&sb, &d, &good2);
    wait_decision(&sb, &d, &other, "waiting");
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));
}

#[test]
fn sigterm_exits_cleanly_within_three_seconds() {
    let sb = Sandbox::new();
    let mut d = sb.start(&[]);
    let (took, status) = terminate(&mut d);
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        d.log_text()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(d.log_text().contains("stopped"));
}

#[test]
fn sigterm_exits_cleanly_while_jobs_are_arriving() {
    let sb = Arc::new(Sandbox::new());
    allow(&sb, BOB);
    let mut d = sb.start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let submitter = {
        let (sb, stop, count) = (sb.clone(), stop.clone(), count.clone());
        std::thread::spawn(move || {
            let mut uids = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                uids.push(sb.submit(BOB, &simple_code()));
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
            uids
        })
    };
    assert!(wait_for(WAIT, || count.load(Ordering::SeqCst) >= 30));
    // Some were approved already: the daemon is busy when the signal arrives.
    assert!(
        wait_for(WAIT, || !sb.decisions().is_empty()),
        "log:\n{}",
        d.log_text()
    );
    let (took, status) = terminate(&mut d);
    stop.store(true, Ordering::SeqCst);
    let uids = submitter.join().unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        d.log_text()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Every job is in exactly one folder, with metadata that matches it.
    for uid in &uids {
        let s = sb.status_of(uid).expect("job vanished");
        assert!(s == "pending" || s == "approved", "{uid} in {s}");
        assert_eq!(sb.metadata(&s, uid)["status"], s.as_str());
    }
    // A restart finishes the rest.
    let d2 = sb.start(&[]);
    for uid in &uids {
        wait_approved(&sb, &d2, uid);
    }
}

#[test]
fn a_second_daemon_on_the_same_datasite_exits_with_code_1() {
    let sb = Sandbox::new();
    let mut first = sb.start(&[]);
    let mut second = sb
        .cmd()
        .args(["run", "--settle-ms", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_for(WAIT, || second.try_wait().unwrap().is_some());
    if !exited {
        let _ = second.kill();
    }
    let out = second.wait_with_output().unwrap();
    assert!(exited, "the second daemon kept running");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    assert!(
        stderr.contains(&first.pid().to_string()),
        "the message should name the pid: {stderr}"
    );
    // The first one is unaffected.
    assert!(first.child.try_wait().unwrap().is_none());
    let uid = {
        allow(&sb, BOB);
        sb.submit(BOB, &simple_code())
    };
    wait_approved(&sb, &first, &uid);
    let (_, status) = terminate(&mut first);
    assert!(status.success());
}

#[test]
fn run_once_decides_pending_jobs_and_exits_0() {
    let sb = Sandbox::new();
    allow(&sb, BOB);
    let good = sb.submit(BOB, &simple_code());
    let other = sb.submit("eve@evil.example", &simple_code());
    let out = sb.cli(&["run", "--once"]);
    ok(&out);
    assert_eq!(sb.status_of(&good).as_deref(), Some("approved"));
    assert_eq!(sb.metadata("approved", &good)["status"], "approved");
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));
    assert_eq!(sb.decisions_for(&other, "waiting").len(), 1);
    assert_eq!(sb.decisions_for(&good, "approved").len(), 1);
}

#[test]
fn jobs_for_another_owner_or_with_a_mismatched_uid_are_left_untouched() {
    let sb = Sandbox::new();
    allow(&sb, BOB);
    let d = sb.start(&[]);
    let elsewhere = sb.submit_with(
        BOB,
        "someone@else.org",
        "Analysis",
        "",
        &[],
        &simple_code(),
        "pending",
    );

    let folder = new_uid();
    let tmp = sb.dir.path().join("build-mismatch");
    write_job(
        &tmp,
        &new_uid(),
        BOB,
        OWNER,
        "Analysis",
        "",
        &[],
        &simple_code(),
    );
    fs::rename(&tmp, sb.job_dir("pending", &folder)).unwrap();

    let snaps = [
        (
            elsewhere.clone(),
            snapshot(&sb.job_dir("pending", &elsewhere)),
        ),
        (folder.clone(), snapshot(&sb.job_dir("pending", &folder))),
    ];
    wait_log(&d, &format!("ignoring pending/{elsewhere}"));
    wait_log(&d, &format!("ignoring pending/{folder}"));
    // A good job submitted afterwards is approved, so the daemon has looked at everything.
    let good = sb.submit(BOB, &simple_code());
    wait_approved(&sb, &d, &good);
    for (uid, snap) in &snaps {
        assert_eq!(sb.status_of(uid).as_deref(), Some("pending"));
        assert_eq!(
            &snapshot(&sb.job_dir("pending", uid)),
            snap,
            "job {uid} was modified"
        );
        assert!(sb.decisions().iter().all(|e| e["uid"] != uid.as_str()));
    }
    let log = d.log_text();
    assert!(log.contains("someone@else.org"), "{log}");
    assert!(log.contains("differs from the folder name"), "{log}");
}
