//! The OpenAPI description is the contract: PyPI's `schemathesis`, an independent API fuzzer,
//! runs every check it has against the real binary (on a datasite with jobs in it) and must find
//! nothing. A bounded number of examples and a fixed seed keep it to about a minute and
//! reproducible.

use std::process::{Command, Stdio};

use crate::http::serve;
use crate::util::*;
use crate::venv::{describe, python};

/// Examples per operation and phase: enough to reach every parameter's edge cases.
const EXAMPLES: &str = "30";
const SEED: &str = "1";

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn schemathesis_finds_nothing() {
    let python = python();
    let sb = Sandbox::new();
    // Jobs to look at and decide: waiting ones from strangers, a decided one.
    for _ in 0..3 {
        sb.submit("stranger@example.net", &simple_code());
    }
    let done = sb.submit("stranger@example.net", &simple_code());
    std::fs::rename(sb.job_dir("pending", &done), sb.job_dir("completed", &done)).unwrap();
    let web = serve(&sb, &[]);
    let url = format!("http://127.0.0.1:{}/api/openapi.json", web.port);
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .current_dir(work.path())
        .args(["-m", "schemathesis.cli", "run", &url, "--checks", "all"])
        // Other local users are refused by the kernel's socket owner, not by a credential, so
        // a request without the token is served to the owner: "ignored auth" cannot apply.
        .args(["--exclude-checks", "ignored_auth"])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {}", web.token)])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {} -m schemathesis.cli: {e}",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "schemathesis found problems with the API or its description:\n{}\n--- daemon log ---\n{}",
        describe(&out),
        tail(&web.daemon.log_text(), 40)
    );
    // It really ran: every operation was tested.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Tested: "), "{}", describe(&out));
}

#[test]
fn every_405_says_what_is_allowed_and_options_is_answered() {
    let sb = Sandbox::new();
    let web = serve(&sb, &[]);
    let bearer = format!("Bearer {}", web.token);
    let auth = [("Authorization", bearer.as_str())];
    for (method, path, allow) in [
        ("TRACE", "/metrics", "GET, HEAD, OPTIONS"),
        ("PUT", "/", "GET, HEAD, OPTIONS"),
        ("DELETE", "/api/v1/jobs", "GET, HEAD, OPTIONS"),
        ("PATCH", "/api/v1/allowlist", "GET, POST, HEAD, OPTIONS"),
        (
            "GET",
            "/api/v1/allowlist/remove/a@example.org",
            "DELETE, OPTIONS",
        ),
    ] {
        let r = web.request(method, path, &auth, b"");
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(
            r.headers.get("allow").map(String::as_str),
            Some(allow),
            "{method} {path}: {r:?}"
        );
    }
    let r = web.request("OPTIONS", "/api/v1/jobs/some-uid/decide", &[], b"");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.headers.get("allow").map(String::as_str),
        Some("POST, OPTIONS")
    );
    // Nothing is allowed on what is not there.
    let r = web.request("TRACE", "/nowhere", &auth, b"");
    assert_eq!(r.status, 404, "{r:?}");
}
