//! Interoperability with the real Python client: a requester submits a job with PyPI
//! `syft-code-queue==0.1.27` (with `syft-perm==0.2.0`), the reviewer approves it, and the client
//! reads the approval back with `get_job`.
//!
//! The client runs in the tests' virtualenv (`venv.rs`): provisioned from PyPI when needed, never
//! skipped.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;
use crate::venv::{describe, python as client_python};

const REQUESTER: &str = "researcher@example.org";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/submit_and_wait.py"
);
/// How long the Python side waits for the approval (seconds); generous for loaded machines.
const APPROVAL_TIMEOUT_S: u64 = 120;

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {cmd:?}\n{}",
        describe(&out)
    );
    out
}

/// Starts the daemon with its default settle window (as SyftBox runs it), not the fixture's
/// short one: the real client writes a job in place, file by file.
pub(crate) fn start_default(sb: &Sandbox) -> Daemon {
    let log = sb.dir.path().join("daemon-interop.log");
    let child = sb
        .cmd()
        .arg("run")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon { child, log };
    assert!(
        wait_for(Duration::from_secs(30), || d
            .log_text()
            .contains("watching")),
        "the daemon did not start:\n{}",
        d.log_text()
    );
    d
}

/// The real client's `submit_and_wait.py`, run as the requester whose SyftBox config is `config`.
pub(crate) fn submit_and_wait(config: &Path, home: &Path) -> Command {
    let mut c = Command::new(client_python());
    c.arg(SCRIPT)
        .env("SYFTBOX_CLIENT_CONFIG_PATH", config)
        .env("HOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .stdin(Stdio::null());
    c
}

fn yaml_rules(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()));
    v["rules"].as_array().cloned().unwrap_or_default()
}

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v["access"][key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn real_python_client_job_from_allowlisted_sender_is_approved_and_read_back() {
    let sb = Sandbox::new();

    // The requester's own client config: same SyftBox tree, the requester's email.
    let requester_dir = sb.dir.path().join("requester");
    fs::create_dir_all(&requester_dir).unwrap();
    fs::create_dir_all(sb.data_dir.join("datasites").join(REQUESTER)).unwrap();
    let requester_config = requester_dir.join("config.json");
    fs::write(
        &requester_config,
        serde_json::json!({
            "data_dir": sb.data_dir, "email": REQUESTER,
            "server_url": "https://syftbox.example", "client_url": "http://localhost:7938"
        })
        .to_string(),
    )
    .unwrap();

    // The code the requester sends, with a nested file.
    let code = requester_dir.join("analysis");
    fs::create_dir_all(code.join("lib")).unwrap();
    let files: [(&str, &[u8]); 3] = [
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        (
            "main.py",
            b"from lib.helpers import rows\nprint('rows:', rows())\n",
        ),
        ("lib/helpers.py", b"def rows():\n    return 42\n"),
    ];
    for (rel, content) in files {
        fs::write(code.join(rel), content).unwrap();
    }

    run(sb.cmd().args(["allow", "add", REQUESTER]), "allow add");
    let daemon = start_default(&sb);

    let out = submit_and_wait(&requester_config, &requester_dir)
        .args([
            OWNER,
            code.to_str().unwrap(),
            "Row count",
            "Counts the rows",
            "stats,aggregate",
        ])
        .arg(APPROVAL_TIMEOUT_S.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let context = || {
        format!(
            "python:\n{}\ndaemon log:\n{}",
            describe(&out),
            daemon.log_text()
        )
    };
    let field = |key: &str| {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(key))
            .next_back()
            .map(str::to_owned)
    };

    // The Python side: the job was written and get_job read "approved" back.
    let uid = field("uid=").unwrap_or_else(|| panic!("the client printed no uid\n{}", context()));
    assert_eq!(
        field("final=").as_deref(),
        Some("approved"),
        "{}",
        context()
    );
    assert!(out.status.success(), "{}", context());
    // The client finished its own bookkeeping (per-file permissions) before the job moved: it
    // warns when the folder vanishes under it.
    let all_output = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !all_output.contains("WARNING") && !all_output.contains("ERROR"),
        "the client reported a problem\n{}",
        context()
    );

    // The Rust side: the job is in approved/ and nowhere else.
    assert_eq!(
        sb.status_of(&uid).as_deref(),
        Some("approved"),
        "{}",
        context()
    );
    let dir = sb.job_dir("approved", &uid);
    let written = serde_json::from_str::<serde_json::Value>(
        field("meta=")
            .as_deref()
            .unwrap_or_else(|| panic!("no metadata printed\n{}", context())),
    )
    .unwrap();
    let meta = sb.metadata("approved", &uid);

    // Every field the client wrote is intact, in the client's order; only status and updated_at
    // changed.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&meta), keys(&written), "key order changed\n{meta:#}");
    for (k, v) in written.as_object().unwrap() {
        match k.as_str() {
            "status" => {
                assert_eq!(v, "pending");
                assert_eq!(meta[k], "approved");
            }
            "updated_at" => assert!(meta[k].as_str().is_some_and(|s| s >= v.as_str().unwrap())),
            _ => assert_eq!(&meta[k], v, "field {k} changed\n{meta:#}"),
        }
    }
    assert_eq!(meta["uid"], uid.as_str());
    assert_eq!(meta["requester_email"], REQUESTER);
    assert_eq!(meta["target_email"], OWNER);
    assert_eq!(meta["name"], "Row count");
    assert_eq!(meta["description"], "Counts the rows");
    assert_eq!(meta["tags"], serde_json::json!(["stats", "aggregate"]));

    // The approved code is the code that was sent.
    for (rel, content) in files {
        assert_eq!(
            fs::read(dir.join("code").join(rel)).unwrap(),
            content,
            "code/{rel}"
        );
    }

    // The client's per-file permission files came along and were locked: the requester can still
    // read the job but can no longer change what was approved.
    let perm_files = [
        (dir.join("syft.pub.yaml"), "metadata.json"),
        (dir.join("code/syft.pub.yaml"), "run.sh"),
        (dir.join("code/syft.pub.yaml"), "main.py"),
        (dir.join("code/lib/syft.pub.yaml"), "helpers.py"),
    ];
    for (file, pattern) in perm_files {
        let rules = yaml_rules(&file);
        let rule = rules
            .iter()
            .find(|r| r["pattern"] == pattern)
            .unwrap_or_else(|| panic!("{} has no rule for {pattern}: {rules:?}", file.display()));
        assert!(
            names(rule, "read").contains(&REQUESTER.to_string()),
            "{rule}"
        );
        for r in &rules {
            assert!(
                names(r, "write").is_empty() && names(r, "admin").is_empty(),
                "{} still grants write/admin: {r}",
                file.display()
            );
        }
    }

    // The CLI agrees.
    let jobs = run(
        sb.cmd().args(["jobs", "--status", "approved", "--json"]),
        "jobs",
    );
    assert!(
        String::from_utf8_lossy(&jobs.stdout).contains(&uid),
        "{}",
        describe(&jobs)
    );
}
