//! The command line as a user types it: output, exit codes, and what it leaves on disk.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::util::*;

const BOB: &str = "bob@x.org";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Exit code 1 with a single `error:` line on stderr; returns that line.
fn fails(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/signature")
        .join(name)
}

#[test]
fn hash_prints_the_prefixed_sha256() {
    let sb = Sandbox::new();
    let f = sb.dir.path().join("hello.txt");
    fs::write(&f, "hello\n").unwrap();
    let empty = sb.dir.path().join("empty");
    fs::write(&empty, "").unwrap();
    let out = ok(&sb.cli(&["hash", f.to_str().unwrap(), empty.to_str().unwrap()]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let first = lines[0].split_whitespace().next().unwrap();
    assert_eq!(
        first,
        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    assert!(
        lines[1]
            .starts_with("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let hex = first.strip_prefix("sha256:").unwrap();
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let missing = sb.dir.path().join("nope.txt");
    let line = fails(&sb.cli(&["hash", missing.to_str().unwrap()]));
    assert!(line.contains("nope.txt"), "{line}");
}

#[test]
fn signature_matches_the_spec_vectors() {
    let sb = Sandbox::new();
    for (job, want) in [
        (
            "job1",
            "7eae1d2503de7ecf65a6e2f49d7f6ca7a19b298a6f00cae1d789ef434bdf4906",
        ),
        (
            "job2",
            "4adb3198f7eb86b13e2c55e9b760ac8c9f4d7c0c3216f68a55131f09e0f212e5",
        ),
    ] {
        let o = sb.cli(&["signature", vector(job).to_str().unwrap()]);
        assert_eq!(ok(&o), format!("{want}\n"), "{job}");
        assert_eq!(stderr(&o), "", "{job}");
    }
    let line = fails(&sb.cli(&["signature", sb.dir.path().join("nothing").to_str().unwrap()]));
    assert!(line.contains("metadata.json"), "{line}");
}

#[test]
fn explain_says_what_would_happen_and_why() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let good = sb.submit(BOB, &simple_code());
    let other = sb.submit("eve@evil.example", &simple_code());

    let text = ok(&sb.cli(&["explain", &good]));
    let would = |text: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with("would:"))
            .unwrap_or_else(|| panic!("no would: line in\n{text}"));
        line["would:".len()..].trim().to_string()
    };
    assert_eq!(would(&text), "approve", "{text}");
    assert!(text.contains("bob@x.org is in the allowlist"), "{text}");
    assert!(text.contains(&good));

    let text = ok(&sb.cli(&["explain", &other]));
    assert_eq!(would(&text), "wait", "{text}");
    assert!(
        text.contains("eve@evil.example is not in the allowlist"),
        "{text}"
    );
    assert!(text.contains("not marked trusted"), "{text}");

    let j: serde_json::Value =
        serde_json::from_str(&ok(&sb.cli(&["explain", "--json", &good]))).unwrap();
    assert_eq!(j["would"], "approve");
    assert_eq!(j["uid"], good.as_str());
    assert_eq!(j["requester"], BOB);
    assert_eq!(j["signature"].as_str().unwrap().len(), 64);
    assert!(
        j["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("allowlist"))
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&sb.cli(&["explain", &other, "--json"]))).unwrap();
    assert_eq!(j["would"], "wait");

    // A job folder path works too, and explaining changes nothing.
    let dir = sb.job_dir("pending", &good);
    let j: serde_json::Value =
        serde_json::from_str(&ok(&sb.cli(&["explain", "--json", dir.to_str().unwrap()]))).unwrap();
    assert_eq!(j["would"], "approve");
    assert_eq!(sb.status_of(&good).as_deref(), Some("pending"));
    assert!(sb.decisions().is_empty());

    let line = fails(&sb.cli(&["explain", "no-such-job"]));
    assert!(line.contains("no-such-job"), "{line}");
}

#[test]
fn allow_add_remove_list() {
    let sb = Sandbox::new();
    let o = sb.cli(&["allow", "add", "Bob@X.org", "john_doe@y.org"]);
    let out = ok(&o);
    assert!(out.contains("added bob@x.org"), "{out}");
    assert!(
        stderr(&o).contains("declared by whoever wrote the job"),
        "the sender caveat is shown"
    );
    let dir = sb.allowlist_dir();
    let bob = dir.join("bob_at_x_dot_org");
    let john = dir.join("john__doe_at_y_dot_org");
    assert!(bob.is_file() && john.is_file());
    assert_eq!(
        fs::metadata(&bob).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&john).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let body: serde_json::Value = serde_json::from_slice(&fs::read(&bob).unwrap()).unwrap();
    assert_eq!(body["email"], BOB);
    assert_eq!(body["status"], "active");
    let perm = fs::read_to_string(dir.join("syft.pub.yaml")).unwrap();
    assert!(
        perm.contains("bob_at_x_dot_org") && perm.contains("john__doe_at_y_dot_org"),
        "{perm}"
    );

    // Adding again is not an error.
    assert!(ok(&sb.cli(&["allow", "add", BOB])).contains("already"));

    let list = ok(&sb.cli(&["allow", "list"]));
    // One sender per line, first, then their proof mode and standing.
    let listed: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(list.contains("proof optional  unverified"), "{list}");
    assert!(
        listed.contains(&BOB) && listed.contains(&"john_doe@y.org"),
        "{list}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&sb.cli(&["allow", "list", "--json"]))).unwrap();
    assert!(j["emails"].as_array().unwrap().iter().any(|e| e == BOB));

    // A hand-made file that is not an email is reported, never used.
    fs::write(dir.join("not-an-email"), "").unwrap();
    let o = sb.cli(&["allow", "list"]);
    assert!(!ok(&o).contains("not-an-email"));
    assert!(stderr(&o).contains("not-an-email"), "{}", stderr(&o));

    assert!(ok(&sb.cli(&["allow", "remove", BOB])).contains("removed bob@x.org"));
    assert!(!bob.exists());
    assert!(
        !ok(&sb.cli(&["allow", "list"]))
            .lines()
            .any(|l| l.starts_with(BOB))
    );
    let line = fails(&sb.cli(&["allow", "remove", BOB]));
    assert!(line.contains(BOB), "{line}");

    for bad in ["not-an-email", "a@b", "x/../y@z.org", "*@x.org"] {
        let line = fails(&sb.cli(&["allow", "add", bad]));
        assert!(line.contains("invalid email"), "{bad}: {line}");
    }
    assert!(!dir.join("x").exists());
}

#[test]
fn trust_add_remove_list() {
    let sb = Sandbox::new();
    let uid = sb.submit("carol@y.org", &simple_code());
    let sig = ok(&sb.cli(&["signature", sb.job_dir("pending", &uid).to_str().unwrap()]))
        .trim()
        .to_string();

    // A signature nobody has seen cannot be trusted.
    let o = sb.cli(&["trust", "add", &sig]);
    let line = fails(&o);
    assert!(
        line.contains("--job"),
        "the error should hint at --job: {line}"
    );
    let line = fails(&sb.cli(&["trust", "add", "not-a-signature"]));
    assert!(line.contains("not a job signature"), "{line}");
    assert!(ok(&sb.cli(&["trust", "list"])).starts_with("nothing trusted yet"));

    let out = ok(&sb.cli(&["trust", "add", "--job", &uid]));
    assert!(out.contains(&sig), "{out}");
    assert!(
        sb.app_data()
            .join("trusted_code")
            .join(format!("{sig}.json"))
            .is_file()
    );
    assert!(
        sb.app_data()
            .join("job_history")
            .join(format!("{sig}.json"))
            .is_file()
    );
    assert!(ok(&sb.cli(&["trust", "add", &sig])).contains("already"));

    let list = ok(&sb.cli(&["trust", "list"]));
    assert!(
        list.contains(&sig) && list.contains("Analysis") && list.contains("carol@y.org"),
        "{list}"
    );
    let rows: Vec<serde_json::Value> = ok(&sb.cli(&["trust", "list", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["signature"], sig.as_str());
    assert!(rows[0]["marked_at"].is_string());
    assert!(ok(&sb.cli(&["trust", "list", "--history"])).contains(&sig));

    // explain now approves it by its code.
    let j: serde_json::Value =
        serde_json::from_str(&ok(&sb.cli(&["explain", "--json", &uid]))).unwrap();
    assert_eq!(j["would"], "approve");

    assert!(ok(&sb.cli(&["trust", "remove", &sig])).contains(&sig));
    assert!(
        !sb.app_data()
            .join("trusted_code")
            .join(format!("{sig}.json"))
            .exists()
    );
    fails(&sb.cli(&["trust", "remove", &sig]));
    // The history keeps it, so it can be trusted again by signature.
    ok(&sb.cli(&["trust", "add", &sig]));
    assert!(ok(&sb.cli(&["trust", "list"])).contains(&sig));
}

#[test]
fn jobs_lists_by_status() {
    let sb = Sandbox::new();
    let p1 = sb.submit(BOB, &simple_code());
    let p2 = sb.submit("eve@evil.example", &simple_code());
    let done = sb.submit_with(BOB, OWNER, "Old", "", &[], &simple_code(), "approved");
    let pending = ok(&sb.cli(&["jobs", "--status", "pending"]));
    assert_eq!(pending.lines().count(), 2, "{pending}");
    assert!(
        pending.contains(&p1) && pending.contains(&p2) && !pending.contains(&done),
        "{pending}"
    );
    assert!(pending.contains("eve@evil.example"));
    let all = ok(&sb.cli(&["jobs"]));
    assert!(all.contains(&done) && all.contains(&p1));
    let rows: Vec<serde_json::Value> = ok(&sb.cli(&["jobs", "--json", "--status", "approved"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["uid"], done.as_str());
    assert_eq!(rows[0]["status"], "approved");
    assert_eq!(rows[0]["name"], "Old");
    let o = sb.cli(&["jobs", "--status", "bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pending"),
        "the error lists valid statuses"
    );
}

#[test]
fn status_json_describes_the_setup() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    sb.submit(BOB, &simple_code());
    sb.submit("eve@evil.example", &simple_code());
    let j: serde_json::Value = serde_json::from_str(&ok(&sb.cli(&["status", "--json"]))).unwrap();
    assert_eq!(j["owner"], OWNER);
    assert_eq!(j["jobs"]["pending"], 2);
    assert_eq!(j["jobs"]["approved"], 0);
    assert_eq!(j["daemon_running"], false);
    assert_eq!(PathBuf::from(j["queue"].as_str().unwrap()), sb.queue());
    assert_eq!(PathBuf::from(j["state"].as_str().unwrap()), sb.state());
    // bob plus the template's default entry.
    assert_eq!(j["allowlisted_senders"], 2);
    assert_eq!(j["trusted_code"], 0);

    let _d = sb.start(&[]);
    let mut last = serde_json::Value::Null;
    let ready = wait_for(std::time::Duration::from_secs(10), || {
        last = serde_json::from_str(&ok(&sb.cli(&["status", "--json"]))).unwrap();
        last["daemon_running"] == true
            && last["jobs"]["approved"] == 1
            && last["jobs"]["pending"] == 1
            && last["recent_decisions"]
                .as_array()
                .is_some_and(|r| r.len() == 2)
    });
    assert!(ready, "{last:#}\nlog:\n{}", _d.log_text());
    let j: serde_json::Value = serde_json::from_str(&ok(&sb.cli(&["status", "--json"]))).unwrap();
    let recent = j["recent_decisions"].as_array().unwrap();
    assert!(
        recent.iter().any(|e| e["outcome"] == "approved"),
        "{recent:?}"
    );
    let text = ok(&sb.cli(&["status"]));
    assert!(text.contains("running"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &["jobs", "--bogus"][..],
        &["allow", "list", "--nope"],
        &["no-such-command"],
        &["hash"],
        &["allow", "add"],
        &["trust", "add"],
        &["run", "--rescan-secs", "0"],
    ] {
        let o = sb.cli(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("error:"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn every_command_has_help() {
    let sb = Sandbox::new();
    let commands: &[&[&str]] = &[
        &[],
        &["run"],
        &["hash"],
        &["signature"],
        &["explain"],
        &["allow"],
        &["allow", "add"],
        &["allow", "remove"],
        &["allow", "list"],
        &["trust"],
        &["trust", "add"],
        &["trust", "remove"],
        &["trust", "list"],
        &["jobs"],
        &["status"],
        &["submit"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = sb.cli(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage"), "{args:?}: {}", stdout(&o));
    }
    let o = sb.cli(&["--version"]);
    assert!(o.status.success() && stdout(&o).contains(env!("CARGO_PKG_VERSION")));
    // The sender caveat is stated where the owner configures sender trust.
    assert!(stdout(&sb.cli(&["--help"])).contains("anyone can claim"));
}

#[test]
fn no_config_at_all_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["allow", "list"])
        .env_remove("SYFTBOX_CLIENT_CONFIG_PATH")
        .env("HOME", home.path())
        .current_dir(home.path())
        .output()
        .unwrap();
    let line = fails(&o);
    assert!(line.contains("--config"), "{line}");
    assert!(
        line.contains(".syftbox/config.json"),
        "it should say where it looked: {line}"
    );
    assert_eq!(
        fs::read_dir(home.path()).unwrap().count(),
        0,
        "nothing is created"
    );

    // An explicit --config that does not exist is an error too, naming the file.
    let missing = home.path().join("missing/config.json");
    let o = Command::new(BIN)
        .args(["allow", "list", "--config", missing.to_str().unwrap()])
        .env_remove("SYFTBOX_CLIENT_CONFIG_PATH")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let line = fails(&o);
    assert!(line.contains("missing/config.json"), "{line}");
}

#[test]
fn submit_writes_a_job_the_daemon_approves() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let code = sb.dir.path().join("mycode");
    fs::create_dir_all(&code).unwrap();
    fs::write(code.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let uid = ok(&sb.cli(&[
        "submit",
        code.to_str().unwrap(),
        "--from",
        BOB,
        "--tag",
        "t",
    ]))
    .trim()
    .to_string();
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));
    let m = sb.metadata("pending", &uid);
    assert_eq!(m["requester_email"], BOB);
    assert_eq!(m["target_email"], OWNER);
    ok(&sb.cli(&["run", "--once"]));
    assert_eq!(sb.status_of(&uid).as_deref(), Some("approved"));
}
