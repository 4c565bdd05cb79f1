//! What a new owner notices first: the counts and log lines of verdicts from every front end, an
//! invalid config.yaml at start, commands given a wrong folder or date, empty listings, errors
//! that must read as sentences, the `jobs` table, and the pid file after a clean stop.

use std::fs;
use std::process::{Command, Output};

use serde_json::json;

use crate::gate::{BOB, EVE, QUIET_WEB, WAIT, ok, signature_of, wait_status, wait_waiting};
use crate::http::serve;
use crate::util::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The one line a failed command prints, checked for its exit code.
#[track_caller]
fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    let err = stderr(o);
    let first = err.lines().next().unwrap_or("").to_string();
    assert!(first.starts_with("error: "), "{err}");
    first
}

#[test]
fn verdicts_from_the_api_mcp_and_cli_are_counted_and_logged_by_the_daemon() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let web = serve(&sb, &QUIET_WEB);
    let auto = sb.submit(BOB, &simple_code());
    let [by_api, by_mcp, by_cli, rejected] = [(); 4].map(|_| sb.submit(EVE, &simple_code()));
    wait_status(&sb, &web.daemon, &auto, "approved");
    for uid in [&by_api, &by_mcp, &by_cli, &rejected] {
        wait_waiting(&sb, &web.daemon, uid);
    }
    let sig = |uid: &str| signature_of(&sb, &sb.job_dir("pending", uid));

    web.post(
        &format!("/api/v1/jobs/{by_api}/decide"),
        Some(&json!({"verdict": "approve", "signature": sig(&by_api)})),
    )
    .expect(200);
    web.post(
        &format!("/api/v1/jobs/{rejected}/decide"),
        Some(&json!({"verdict": "reject", "rationale": "reads raw rows", "signature": sig(&rejected)})),
    )
    .expect(200);
    let mut mcp = Mcp::start(&sb);
    mcp.request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {},
               "clientInfo": {"name": "edges-test", "version": "0"}}),
    );
    let r = mcp.call(
        1,
        "approvals.decide",
        json!({"uid": by_mcp, "verdict": "approve", "signature": sig(&by_mcp)}),
    );
    assert_eq!(r["isError"], false, "{r}");
    ok(&sb.cli(&["decide", &by_cli, "approve"]));

    // One count: the status strip's figure is the sum of /metrics' approvals.
    let mut status = serde_json::Value::Null;
    assert!(
        wait_for(WAIT, || {
            status = web.get("/api/status").json();
            status["approved_since_start"] == 4
        }),
        "{status}\nlog:\n{}",
        web.daemon.log_text()
    );
    let metrics = web.get("/metrics").text;
    for (series, n) in [
        (r#"{outcome="approved",method="human"}"#, 3),
        (r#"{outcome="approved",method="allowlist"}"#, 1),
        (r#"{outcome="rejected",method="human"}"#, 1),
    ] {
        let line = format!("syft_reviewer_decisions_total{series} {n}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }

    // One line in the daemon's log for each verdict, wherever it was given.
    let log = web.daemon.log_text();
    for (uid, what) in [
        (
            &by_api,
            "approved job {} from eve@evil.example by the owner (web UI or API)",
        ),
        (
            &by_mcp,
            "approved job {} from eve@evil.example by the owner (MCP)",
        ),
        (
            &by_cli,
            "approved job {} from eve@evil.example by the owner (command line)",
        ),
        (
            &rejected,
            "rejected job {} from eve@evil.example by the owner (web UI or API)",
        ),
    ] {
        let line = what.replace("{}", uid);
        assert_eq!(
            log.lines().filter(|l| l.contains(&line)).count(),
            1,
            "expected one line {line:?} in the log:\n{log}"
        );
    }
    assert!(log.contains("rationale: reads raw rows"), "{log}");
}

#[test]
fn an_invalid_config_at_start_says_where_in_words_and_that_the_defaults_are_in_force() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.app_data()).unwrap();
    let config = sb.app_data().join("config.yaml");
    fs::write(&config, "jobs:\n  allowed_users:\n    - {a: 1}\n").unwrap();
    let web = serve(&sb, &QUIET_WEB);
    let said = "line 3, column 7 (`jobs.allowed_users`): expected a single value";
    let defaults = "the defaults are in force until it is fixed";
    let log = web.daemon.log_text();
    assert!(log.contains(said) && log.contains(defaults), "{log}");
    let api = web.get("/api/status").json();
    let from_api = api["config_error"].as_str().unwrap_or("").to_string();
    let cli = ok(&sb.cli(&["status"]));
    for text in [&log, &from_api, &cli] {
        assert!(text.contains(said), "{text}");
        assert!(!text.contains("stays in force"), "{text}");
        assert!(!text.contains("previous"), "{text}");
        // No parser terms.
        assert!(
            !text.contains("event") && !text.contains("scalar"),
            "{text}"
        );
    }
    assert!(from_api.contains(defaults), "{from_api}");

    // A valid config, then a broken one: now the config read before is in force.
    let code = simple_code();
    let hash = |c: &[u8]| {
        use sha2::Digest;
        format!("sha256:{:x}", sha2::Sha256::digest(c))
    };
    fs::write(
        &config,
        format!(
            "jobs:\n  enabled: true\n  required_filenames: [run.sh, main.py]\n  required_scripts:\n    run.sh: \"{}\"\n",
            hash(code[0].1)
        ),
    )
    .unwrap();
    assert!(
        wait_for(WAIT, || web
            .daemon
            .log_text()
            .contains("config.yaml loaded")),
        "{}",
        web.daemon.log_text()
    );
    fs::write(&config, "jobs:\n  enabled: maybe\n").unwrap();
    let mut status = serde_json::Value::Null;
    assert!(
        wait_for(WAIT, || {
            status = web.get("/api/status").json();
            status["config_error"].as_str().is_some_and(|e| {
                e.contains(
                    "line 2, column 12 (`jobs.enabled`): expected true or false, found `maybe`",
                ) && e.contains("the config read before it became invalid stays in force")
            })
        }),
        "{status}"
    );
    assert_eq!(status["rule_sets"], json!(["default"]), "{status}");
}

#[test]
fn a_missing_data_dir_and_a_date_that_is_not_one_fail_with_a_clear_line() {
    let sb = Sandbox::new();
    let missing = sb.dir.path().join("no-such-folder");
    for args in [
        &["jobs"][..],
        &["status"],
        &["allow", "list"],
        &["run", "--once"],
    ] {
        let mut c = sb.cmd();
        c.arg("--data-dir").arg(&missing).args(args);
        let line = fails(&c.output().unwrap(), 1);
        assert!(
            line.contains("no-such-folder") && line.contains("no such folder"),
            "{args:?}: {line}"
        );
    }
    assert!(
        !missing.exists(),
        "nothing may be created in a folder that was mistyped"
    );
    for bad in ["yesterday", "garbage", "2026-13-01", "22/11/2026", ""] {
        let line = fails(&sb.cli(&["audit", "export", "--since", bad]), 2);
        assert!(line.contains("2026-11-22"), "{bad:?}: {line}");
    }
    for good in ["2026-11-22", "2026-11-22T10:00", "2026-11-22T10:00:30"] {
        let out = sb.cli(&["audit", "export", "--since", good]);
        ok(&out);
        assert!(stderr(&out).contains("no audit entries since"), "{good}");
    }
}

#[test]
fn empty_listings_say_so_and_errors_read_as_sentences() {
    let sb = Sandbox::new();
    let out = sb.cli(&["audit", "show"]);
    assert_eq!(ok(&out), "");
    assert!(stderr(&out).contains("no entries yet"), "{}", stderr(&out));
    // The template allowlists one sender: remove it to see the empty list.
    for e in ok(&sb.cli(&["allow", "list"]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        ok(&sb.cli(&["allow", "remove", e]));
    }
    for (args, says) in [
        (&["allow", "list"][..], "nobody is in the allowlist yet"),
        (
            &["trust", "list"],
            "nothing trusted yet; mark code with `syft-reviewer trust add --job UID`",
        ),
        (
            &["trust", "list", "--history"],
            "no job seen completing yet",
        ),
        (&["peers", "list"], "no peers and no peer requests"),
        (&["jobs"], "no jobs in the queue"),
        (
            &["jobs", "--status", "failed"],
            "no failed jobs in the queue",
        ),
    ] {
        let out = ok(&sb.cli(args));
        assert!(out.contains(says), "{args:?}: {out}");
    }
    // JSON stays machine-readable: nothing but JSON, and nothing for no rows.
    assert_eq!(ok(&sb.cli(&["trust", "list", "--json"])), "");
    assert_eq!(ok(&sb.cli(&["jobs", "--json"])), "");

    let err = stderr(&sb.cli(&["trust", "add"]));
    assert!(err.contains("--job"), "{err}");
    for (args, says) in [
        (
            &["allow", "remove", "nobody@x.org"][..],
            "nobody@x.org is not in the allowlist",
        ),
        (
            &["peers", "revoke", "nobody@x.org"],
            "nobody@x.org is not an approved peer",
        ),
        (
            &["trust", "remove", "abc"],
            "abc is not a trusted signature",
        ),
    ] {
        let line = fails(&sb.cli(args), 1);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(!line.contains("not found"), "{args:?}: {line}");
    }
    let not_a_job = sb.dir.path().join("notes");
    fs::create_dir_all(&not_a_job).unwrap();
    let line = fails(&sb.cli(&["signature", not_a_job.to_str().unwrap()]), 1);
    assert!(line.contains("is not a job folder"), "{line}");
    assert!(!line.contains("metadata.json: No such file"), "{line}");
}

#[test]
fn jobs_columns_line_up_for_uids_of_any_length() {
    let sb = Sandbox::new();
    for (uid, from) in [
        ("a", "x@y.org"),
        (
            "job-with-a-rather-long-uid-0001",
            "someone.with.a.long.address@university.example",
        ),
        (&new_uid(), BOB),
    ] {
        let tmp = sb.dir.path().join(format!("build-{uid}"));
        write_job(
            &tmp,
            uid,
            from,
            OWNER,
            "Count rows",
            "",
            &[],
            &simple_code(),
        );
        fs::rename(&tmp, sb.job_dir("pending", uid)).unwrap();
    }
    let out = ok(&sb.cli(&["jobs"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let column = |l: &str, word: &str| l.find(word).unwrap_or_else(|| panic!("{word} in {l}"));
    let starts: Vec<(usize, usize)> = lines
        .iter()
        .map(|l| (column(l, "pending"), column(l, "Count rows")))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] == w[1]),
        "misaligned:\n{out}"
    );
}

#[test]
fn the_pid_file_is_removed_after_a_clean_stop() {
    let sb = Sandbox::new();
    let pid = sb.state().join("daemon.pid");
    for signal in ["TERM", "INT"] {
        let mut d = sb.start(&[]);
        assert_eq!(
            fs::read_to_string(&pid).unwrap().trim(),
            d.pid().to_string()
        );
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(d.pid().to_string())
            .status()
            .unwrap();
        let status = d.child.wait().unwrap();
        assert!(status.success(), "SIG{signal}: {status}\n{}", d.log_text());
        assert!(!pid.exists(), "daemon.pid is left after SIG{signal}");
    }
}

#[test]
fn the_readme_command_table_names_every_command() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .take_while(|l| !l.starts_with("Global flags"))
        .filter(|l| l.starts_with("| `"))
        .collect();
    let help = ok(&Sandbox::new().cli(&["--help"]));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    for c in commands {
        assert!(
            table
                .iter()
                .any(|row| row.contains(&format!("`{c} ")) || row.contains(&format!("`{c}`"))),
            "`{c}` is not in the README's command table"
        );
    }
    for (c, flag) in [("run", "--demo-dir"), ("audit", "--since")] {
        assert!(
            table
                .iter()
                .any(|row| row.contains(&format!("`{c} ")) && row.contains(flag)),
            "{c} {flag} is not in the README's command table"
        );
    }
}
