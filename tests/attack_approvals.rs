//! Approvals that are not what the owner meant (issue items 6-8), performed against the real
//! binary: a pending job that reuses a completed job's uid, files the signature leaves out,
//! hard links, invisible text ("Trojan Source") and terminal escapes in job data.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

const BOB: &str = "bob@x.org";
const EVE: &str = "eve@evil.example";
const WAIT: Duration = Duration::from_secs(10);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn refused(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stderr)
}

/// Writes a job under `status/` with the given uid (as an attacker who picked it would).
#[allow(clippy::too_many_arguments)]
fn put_job(
    sb: &Sandbox,
    status: &str,
    uid: &str,
    from: &str,
    name: &str,
    files: &[(&str, &[u8])],
) -> std::path::PathBuf {
    let tmp = sb.dir.path().join(format!("build-{}", new_uid()));
    write_job(
        &tmp,
        uid,
        from,
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        files,
    );
    let dest = sb.job_dir(status, uid);
    fs::rename(&tmp, &dest).unwrap();
    dest
}

fn signature_of(sb: &Sandbox, dir: &Path) -> String {
    ok(&sb.cli(&["signature", dir.to_str().unwrap()]))
        .trim()
        .to_string()
}

fn explain(sb: &Sandbox, uid: &str, extra: &[&str]) -> Value {
    let mut args = vec!["explain", uid, "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&sb.cli(&args))).unwrap()
}

fn reasons(ex: &Value) -> String {
    ex["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Waits until the daemon has said something about every uid (so it has evaluated them).
fn wait_evaluated(d: &Daemon, uids: &[&str]) {
    let all = wait_for(WAIT, || {
        let log = d.log_text();
        uids.iter().all(|u| log.contains(u))
    });
    assert!(
        all,
        "the daemon never evaluated {uids:?}:\n{}",
        d.log_text()
    );
}

const GOOD: &[(&str, &[u8])] = &[
    ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
    ("main.py", b"print('weekly rows:', 42)\n"),
];
const EVIL: &[(&str, &[u8])] = &[
    ("run.sh", b"#!/bin/sh\necho PWNED; id\n"),
    ("main.py", b"print('weekly rows:', 42)\n"),
];

// ------------------------------------------------------------------------------ item 6

/// `completed/U` is visible to everyone; an attacker writes `pending/U` with other code. Every
/// command that takes the uid refuses it and names both copies; `--status` picks one, and the
/// pending copy is flagged and never approved, even as trusted code from an allowlisted sender.
#[test]
fn a_pending_copy_of_a_completed_uid_is_refused_named_and_never_approved() {
    let sb = Sandbox::new();
    let uid = new_uid();
    let done = put_job(&sb, "completed", &uid, BOB, "Weekly stats", GOOD);
    let shadow = put_job(&sb, "pending", &uid, EVE, "Weekly stats (rerun)", EVIL);
    let (good_sig, evil_sig) = (signature_of(&sb, &done), signature_of(&sb, &shadow));

    for args in [
        vec!["trust", "add", "--job", &uid],
        vec!["explain", &uid],
        vec!["rules", "check", &uid],
        vec!["decide", &uid, "approve"],
    ] {
        let err = refused(&sb.cli(&args));
        for copy in [
            format!("pending/{uid} (\"Weekly stats (rerun)\" from {EVE})"),
            format!("completed/{uid} (\"Weekly stats\" from {BOB})"),
            "--status".to_string(),
        ] {
            assert!(err.contains(&copy), "{args:?} must name {copy:?}:\n{err}");
        }
    }
    assert!(shadow.is_dir(), "a refused decide moved nothing");
    assert!(
        fs::read_dir(sb.app_data().join("trusted_code"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "a refused trust add trusted nothing"
    );

    // --status completed trusts the completed job's code, never the pending copy's.
    let out = ok(&sb.cli(&["trust", "add", "--job", &uid, "--status", "completed"]));
    assert!(out.contains(&good_sig), "{out}");
    assert!(!out.contains(&evil_sig), "{out}");
    let listed = ok(&sb.cli(&["trust", "list", "--json"]));
    assert!(
        listed.contains(&good_sig) && !listed.contains(&evil_sig),
        "{listed}"
    );

    // Make the pending copy look as approvable as it can: its code trusted (through an identical
    // job elsewhere) and its sender allowlisted.
    let twin = new_uid();
    put_job(&sb, "completed", &twin, EVE, "Weekly stats (rerun)", EVIL);
    ok(&sb.cli(&["trust", "add", "--job", &twin]));
    ok(&sb.cli(&["allow", "add", EVE]));

    let ex = explain(&sb, &uid, &["--status", "pending"]);
    assert_eq!(ex["would"], "flag", "{ex:#}");
    assert!(
        reasons(&ex).contains(&format!("also in completed/{uid}")),
        "{ex:#}"
    );

    let d = sb.start(&[]);
    let ctl = sb.submit(EVE, GOOD);
    assert!(
        wait_for(WAIT, || sb.status_of(&ctl).as_deref() == Some("approved")),
        "{}",
        d.log_text()
    );
    wait_evaluated(&d, &[&uid]);
    assert!(
        shadow.is_dir(),
        "the shadowing copy was moved:\n{}",
        d.log_text()
    );
    assert!(!sb.job_dir("approved", &uid).exists(), "{}", d.log_text());
    assert!(done.is_dir());
    assert!(
        d.log_text().contains(&format!("job {uid} is flagged")),
        "{}",
        d.log_text()
    );

    // The owner can still decide the pending copy, naming it.
    ok(&sb.cli(&[
        "decide",
        &uid,
        "reject",
        "--status",
        "pending",
        "--rationale",
        "reuses the uid of a completed job",
    ]));
    assert!(sb.job_dir("rejected", &uid).is_dir());
    assert!(done.is_dir(), "the completed copy is left alone");
}

/// A pending copy of an uid already in `approved/` used to be retried every 5 s with an ERROR
/// each time. Now it is flagged once and left alone until something changes.
#[test]
fn a_pending_copy_of_an_approved_uid_is_flagged_once_not_retried() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", EVE]));
    let uid = new_uid();
    put_job(&sb, "approved", &uid, BOB, "Weekly stats", GOOD);
    let shadow = put_job(&sb, "pending", &uid, EVE, "Weekly stats", EVIL);
    let d = sb.start(&[]);
    wait_evaluated(&d, &[&uid]);
    // Long enough for two of the old 5-second retries.
    std::thread::sleep(Duration::from_secs(11));
    let log = d.log_text();
    let about: Vec<&str> = log.lines().filter(|l| l.contains(&uid)).collect();
    // The approved copy was put there by hand, so it is reported once as unexplained; nothing
    // else about this uid is an error.
    let errors = about.iter().filter(|l| l.contains("ERROR")).count();
    let unexplained = about
        .iter()
        .filter(|l| l.contains("ERROR") && l.contains("no decision in the audit chain"))
        .count();
    assert!(
        errors == unexplained && unexplained <= 1,
        "errors repeated for the shadowing copy:\n{log}"
    );
    assert_eq!(
        about
            .iter()
            .filter(|l| l.contains(&format!("job {uid} is flagged")))
            .count(),
        1,
        "flagged exactly once:\n{log}"
    );
    assert!(shadow.is_dir());

    // Once the other copy is gone, the job is evaluated again (the rescan notices).
    fs::remove_dir_all(sb.job_dir("approved", &uid)).unwrap();
    drop(d);
    let d = sb.start(&["--rescan-secs", "1"]);
    assert!(
        wait_for(WAIT, || sb.status_of(&uid).as_deref() == Some("approved")),
        "{}",
        d.log_text()
    );
}

// ------------------------------------------------------------------------------ item 7

const STEPS: &[(&str, &[u8])] = &[
    (
        "run.sh",
        b"#!/bin/sh\nfor f in steps/*; do sh \"$f\"; done\n",
    ),
    ("steps/count.sh", b"echo rows: 42\n"),
];

/// A trusted job whose `run.sh` runs `steps/*`, sent again with an extra file that signature v1
/// leaves out: none of them is approved, and each reason names the file. A plain permission
/// file (what the queue client writes) still rides along.
#[test]
fn files_left_out_of_the_signature_stop_trusted_code() {
    let sb = Sandbox::new();
    let seen = new_uid();
    put_job(&sb, "completed", &seen, BOB, "Steps", STEPS);
    ok(&sb.cli(&["trust", "add", "--job", &seen]));

    let variants: &[(&str, &[u8])] = &[
        ("steps/_.syftperm", b"echo PWNED; id\n"),
        ("steps/syftperm.yaml", b"echo PWNED; id\n"),
        ("steps/syft.pub.yaml", b"rules: []\nx: $(echo PWNED; id)\n"),
        ("steps/syft.pub.yaml", b"#!/bin/sh\necho PWNED\n"),
        ("steps/.syftkeep", b"echo PWNED; id\n"),
    ];
    let mut bad = Vec::new();
    for (extra, content) in variants {
        let uid = new_uid();
        let dir = put_job(&sb, "pending", &uid, EVE, "Steps", STEPS);
        fs::write(dir.join("code").join(extra), content).unwrap();
        bad.push((uid, *extra));
    }
    let plain = new_uid();
    let dir = put_job(&sb, "pending", &plain, EVE, "Steps", STEPS);
    fs::write(
        dir.join("code/steps/syft.pub.yaml"),
        "rules:\n- pattern: count.sh\n  access:\n    read:\n    - eve@evil.example\n    write: []\n    admin: []\n",
    )
    .unwrap();
    fs::write(dir.join("code/steps/.syftkeep"), "").unwrap();

    let d = sb.start(&[]);
    assert!(
        wait_for(WAIT, || sb.status_of(&plain).as_deref() == Some("approved")),
        "trusted code with plain permission files is still approved:\n{}",
        d.log_text()
    );
    let uids: Vec<&str> = bad.iter().map(|(u, _)| u.as_str()).collect();
    wait_evaluated(&d, &uids);
    for (uid, extra) in &bad {
        assert_eq!(
            sb.status_of(uid).as_deref(),
            Some("pending"),
            "the job with code/{extra} was moved:\n{}",
            d.log_text()
        );
        let ex = explain(&sb, uid, &[]);
        assert_eq!(ex["would"], "flag", "{ex:#}");
        assert!(reasons(&ex).contains(&format!("code/{extra}")), "{ex:#}");
    }
}

/// `run.sh` runs with cwd `code/` and can reach the job folder above it: a file put next to
/// `code/` (where the signature does not look) would run under trusted code's name.
#[test]
fn files_beside_code_stop_trusted_code() {
    let sb = Sandbox::new();
    let seen = new_uid();
    put_job(&sb, "completed", &seen, BOB, "Steps", STEPS);
    ok(&sb.cli(&["trust", "add", "--job", &seen]));
    let uid = new_uid();
    let dir = put_job(&sb, "pending", &uid, EVE, "Steps", STEPS);
    fs::write(dir.join("payload.sh"), "echo PWNED; id\n").unwrap();
    fs::create_dir(dir.join("steps")).unwrap();
    let plain = new_uid();
    put_job(&sb, "pending", &plain, EVE, "Steps", STEPS);

    let d = sb.start(&[]);
    assert!(
        wait_for(WAIT, || sb.status_of(&plain).as_deref() == Some("approved")),
        "the same trusted code without extra files is approved:\n{}",
        d.log_text()
    );
    wait_evaluated(&d, &[uid.as_str()]);
    assert_eq!(
        sb.status_of(&uid).as_deref(),
        Some("pending"),
        "{}",
        d.log_text()
    );
    let ex = explain(&sb, &uid, &[]);
    assert_eq!(ex["would"], "flag", "{ex:#}");
    let why = reasons(&ex);
    assert!(
        why.contains("payload.sh") && why.contains("steps"),
        "{ex:#}"
    );
}

/// A hard-linked file under code/ can be changed after approval through its other name: such
/// a job is not approved automatically, not even from an allowlisted sender. Nor is one holding
/// a sync marker, which sync never delivers.
#[test]
fn hard_links_and_sync_markers_block_even_allowlisted_senders() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let outside = sb.dir.path().join("outside.csv");
    fs::write(&outside, "a,b\n1,2\n").unwrap();
    let linked = new_uid();
    let dir = put_job(&sb, "pending", &linked, BOB, "Linked", GOOD);
    fs::hard_link(&outside, dir.join("code/data.csv")).unwrap();
    let marked = new_uid();
    let dir = put_job(&sb, "pending", &marked, BOB, "Conflicted", GOOD);
    fs::write(dir.join("code/main.py.syftconflict.1"), "print('other')\n").unwrap();

    let d = sb.start(&[]);
    let ctl = sb.submit(BOB, GOOD);
    assert!(
        wait_for(WAIT, || sb.status_of(&ctl).as_deref() == Some("approved")),
        "{}",
        d.log_text()
    );
    wait_evaluated(&d, &[&linked, &marked]);
    for (uid, needle) in [
        (&linked, "code/data.csv has 2 hard links"),
        (&marked, "code/main.py.syftconflict.1 is a sync marker"),
    ] {
        assert_eq!(
            sb.status_of(uid).as_deref(),
            Some("pending"),
            "{}",
            d.log_text()
        );
        let ex = explain(&sb, uid, &[]);
        assert_eq!(ex["would"], "flag", "{ex:#}");
        assert!(reasons(&ex).contains(needle), "{ex:#}");
    }
}

// ------------------------------------------------------------------------------ item 8

const TROJAN: &str = "access_level = input()\n\
if access_level != 'none\u{202e} \u{2066}// Check if admin\u{2069} \u{2066}' and access_level != 'user':\n    print('You are an admin.')\n";

/// A "Trojan Source" job: the code view would show a harmless check. It is flagged with a
/// warning naming the character and where it is, whatever else would approve it, and the API's
/// job detail carries the warning for the UI's banner.
#[test]
fn trojan_source_is_flagged_with_the_character_and_its_place() {
    let sb = Sandbox::new();
    let files: &[(&str, &[u8])] = &[
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", TROJAN.as_bytes()),
    ];
    // Trusted-looking: the very same code is trusted (`trust add` refuses it now, so the record
    // is made by hand, as a file manager would) and the sender is allowlisted.
    ok(&sb.cli(&["allow", "add", BOB]));
    let uid = new_uid();
    let dir = put_job(&sb, "pending", &uid, BOB, "Access check", files);
    let sig = signature_of(&sb, &dir);
    trust_by_hand(&sb, &sig, "Access check");
    let refused_trust = refused(&sb.cli(&["trust", "add", "--job", &uid]));
    assert!(refused_trust.contains("U+202E"), "{refused_trust}");
    let named = new_uid();
    put_job(&sb, "pending", &named, BOB, "Access\u{200b}check", GOOD);

    let web = crate::http::serve(&sb, &[]);
    let ctl = sb.submit(BOB, GOOD);
    assert!(
        wait_for(WAIT, || sb.status_of(&ctl).as_deref() == Some("approved")),
        "{}",
        web.daemon.log_text()
    );
    wait_evaluated(&web.daemon, &[&uid, &named]);
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));
    assert_eq!(sb.status_of(&named).as_deref(), Some("pending"));

    let ex = explain(&sb, &uid, &[]);
    assert_eq!(ex["would"], "flag", "{ex:#}");
    let why = reasons(&ex);
    assert!(
        why.contains("code/main.py") && why.contains("U+202E") && why.contains("line 2"),
        "{ex:#}"
    );
    let ex = explain(&sb, &named, &[]);
    assert!(
        reasons(&ex).contains("name") && reasons(&ex).contains("U+200B"),
        "{ex:#}"
    );

    let job = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    assert_eq!(job["verdict"], "flag", "{job:#}");
    let warning = job["warnings"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["place"] == "code/main.py"))
        .unwrap_or_else(|| panic!("no warning for code/main.py: {job:#}"));
    assert_eq!(warning["hits"][0]["code_point"], "U+202E", "{job:#}");
    assert_eq!(warning["hits"][0]["line"], 2, "{job:#}");
    assert!(
        job["reasons"].to_string().contains("U+202E"),
        "the reasons say it too: {job:#}"
    );
    let list = web.get("/api/v1/jobs").expect(200);
    assert!(list.to_string().contains("U+200B"), "{list:#}");
}

/// A trusted-code record written directly into the store.
fn trust_by_hand(sb: &Sandbox, sig: &str, name: &str) {
    let dir = sb.app_data().join("trusted_code");
    fs::create_dir_all(&dir).unwrap();
    let rec = serde_json::json!({"signature": sig, "name": name, "requesters": [BOB],
        "marked_at": "2026-11-22T10:00:00"});
    fs::write(dir.join(format!("{sig}.json")), rec.to_string()).unwrap();
}

/// Bytes a terminal acts on: C0 controls other than newline, DEL, C1 controls (also as UTF-8).
fn assert_no_controls(what: &str, bytes: &[u8]) {
    let s = text(bytes);
    let bad: Vec<String> = s
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed raw controls {bad:?}:\n{s:?}"
    );
    assert!(
        !s.contains('\u{202e}'),
        "{what} printed a raw bidi override:\n{s:?}"
    );
}

/// Job names, emails and file names full of escape sequences (erase line, write the
/// clipboard, C1 CSI, a bidi override): no command prints them raw.
#[test]
fn cli_output_never_carries_terminal_controls_from_job_data() {
    let sb = Sandbox::new();
    let evil_name = "Stats\x1b[2K\r\x1b]52;c;cm0gLXJmIH4K\x07\u{9b}31m\u{202e}gnp.exe\x7f";
    let evil_from = "eve\x1b[8m@evil.example";
    let uid = new_uid();
    let dir = put_job(&sb, "pending", &uid, evil_from, evil_name, GOOD);
    fs::write(dir.join("code/ok\x1b[2J.py"), "print(1)\n").unwrap();
    // Its reason quotes the link target as it is.
    std::os::unix::fs::symlink("/tmp/\x1b]0;owned\x07", dir.join("code/data")).unwrap();
    trust_by_hand(&sb, &"a".repeat(64), evil_name);

    let runs: Vec<Vec<&str>> = vec![
        vec!["jobs"],
        vec!["jobs", "--json"],
        vec!["explain", &uid],
        vec!["explain", &uid, "--json"],
        vec!["rules", "check", &uid],
        vec!["trust", "list"],
        vec!["trust", "list", "--json"],
        vec!["trust", "list", "--history", "--json"],
        vec!["trust", "add", "--job", &uid],
        vec!["signature", dir.to_str().unwrap()],
        vec!["status"],
    ];
    for args in runs {
        let o = sb.cli(&args);
        assert_no_controls(&format!("{args:?} (stdout)"), &o.stdout);
        assert_no_controls(&format!("{args:?} (stderr)"), &o.stderr);
    }
    // Shown visibly, not dropped.
    let jobs = ok(&sb.cli(&["jobs"]));
    assert!(jobs.contains("⟨U+001B⟩[2K"), "{jobs}");
    assert!(
        jobs.contains("⟨U+009B⟩") && jobs.contains("⟨U+202E⟩"),
        "{jobs}"
    );
    // JSON output means the same values.
    let line = ok(&sb.cli(&["jobs", "--json", "--status", "pending"]));
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["name"], evil_name);
    // The daemon's log (which the owner tails) too.
    let d = sb.start(&[]);
    wait_evaluated(&d, &[&uid]);
    assert_no_controls("the daemon log", d.log_text().as_bytes());
}

/// The page marks each invisible character in the job's name and code as a visible
/// `⟨U+XXXX⟩`, and shows a banner saying where they are (real Chromium, as in `browser.rs`).
#[test]
fn the_page_marks_invisible_characters_and_warns_on_the_job() {
    let sb = Sandbox::new();
    let uid = new_uid();
    let files: &[(&str, &[u8])] = &[
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", TROJAN.as_bytes()),
    ];
    put_job(&sb, "pending", &uid, BOB, "Access\u{202e}check", files);
    let web = crate::http::serve(&sb, &[]);
    let b = crate::browser::Browser::start();
    b.goto(&format!("{}/", web.base()));
    let card = format!("#panel-pending article.job[data-uid=\"{uid}\"]");
    let job = b.wait_find(&card);
    let banner = b.wait_find(&format!("{card} .hidden-warning"));
    let said = b.text(&banner);
    assert!(
        said.contains("Invisible characters")
            && said.contains("code/main.py")
            && said.contains("U+202E"),
        "{said}"
    );
    let mark = b.wait_find(&format!("{card} .job-name .hidden-char"));
    assert_eq!(b.text(&mark), "⟨U+202E⟩");
    b.click(&b.wait_find(&format!("{card} button.toggle-code")));
    assert!(
        wait_for(WAIT, || b.text(&job).contains("⟨U+2066⟩")),
        "the code view does not mark the isolates: {}",
        b.text(&job)
    );
    let shown = b.script(
        "const pre = document.querySelector(arguments[0] + ' pre.code');\n\
         return pre ? [pre.querySelectorAll('.hidden-char').length, /[\\u202a-\\u202e\\u2066-\\u2069]/.test(pre.textContent)] : null;",
        serde_json::json!([card]),
    );
    assert_eq!(
        shown,
        serde_json::json!([4, false]),
        "marks in the code view, no raw controls"
    );
}

/// The API and the MCP tools that take a uid refuse a shadowed one (409, both copies named)
/// unless a status says which copy is meant; add-to-history then records the completed code.
#[test]
fn api_and_mcp_refuse_a_shadowed_uid_without_a_status() {
    let sb = Sandbox::new();
    let uid = new_uid();
    let done = put_job(&sb, "completed", &uid, BOB, "Weekly stats", GOOD);
    let shadow = put_job(&sb, "pending", &uid, EVE, "Weekly stats (rerun)", EVIL);
    let good_sig = signature_of(&sb, &done);
    let web = crate::http::serve(&sb, &[]);
    let copies = [
        format!("pending/{uid} (\\\"Weekly stats (rerun)\\\" from {EVE})"),
        format!("completed/{uid} (\\\"Weekly stats\\\" from {BOB})"),
    ];
    let named = |r: &crate::http::Resp| {
        for c in &copies {
            assert!(r.text.contains(c), "{c} not named: {r:?}");
        }
    };
    for path in [
        format!("/api/v1/jobs/{uid}"),
        format!("/api/v1/jobs/{uid}/explain"),
    ] {
        let r = web.get(&path);
        r.expect(409);
        named(&r);
    }
    let body = serde_json::json!({"uid": uid});
    for path in [
        "/api/v1/trusted-code/add-to-history",
        "/api/v1/trusted-code/check-signature",
    ] {
        let r = web.post(path, Some(&body));
        r.expect(409);
        named(&r);
    }
    let r = web.post(
        &format!("/api/v1/jobs/{uid}/decide"),
        Some(&serde_json::json!({"verdict": "approve", "signature": signature_of(&sb, &shadow)})),
    );
    r.expect(409);
    named(&r);
    assert!(shadow.is_dir());

    let job = web
        .get(&format!("/api/v1/jobs/{uid}?status=completed"))
        .expect(200);
    assert_eq!(job["name"], "Weekly stats", "{job:#}");
    let ex = web
        .get(&format!("/api/v1/jobs/{uid}/explain?status=pending"))
        .expect(200);
    assert_eq!(ex["would"], "flag", "{ex:#}");
    let rec = web
        .post(
            "/api/v1/trusted-code/add-to-history",
            Some(&serde_json::json!({"uid": uid, "status": "completed"})),
        )
        .expect(200);
    assert_eq!(rec["record"]["signature"], good_sig.as_str(), "{rec:#}");

    // MCP: the same refusal, and the status argument.
    let mut child = sb
        .cmd()
        .arg("mcp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for (id, args) in [
            (1, serde_json::json!({"uid": uid})),
            (2, serde_json::json!({"uid": uid, "status": "completed"})),
        ] {
            let req = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "approvals.explain", "arguments": args}});
            writeln!(stdin, "{req}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let answers: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0]["result"]["isError"], true, "{:#}", answers[0]);
    assert!(
        answers[0]["result"]["structuredContent"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("completed/{uid}"))
                && e.contains(&format!("pending/{uid}"))),
        "{:#}",
        answers[0]
    );
    assert_eq!(answers[1]["result"]["isError"], false, "{:#}", answers[1]);
    assert_eq!(
        answers[1]["result"]["structuredContent"]["name"], "Weekly stats",
        "{:#}",
        answers[1]
    );
}
