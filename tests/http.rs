//! The web server of the real binary over HTTP on a free port: the harness the other test
//! modules share (start the daemon with its web server, send requests, raw HTTP), the fixtures
//! the HTTP tests share, and the pages with their security headers and the status report.
//! The endpoints by feature are in `http_stores`, `http_jobs`, `http_refusals` (each refusal a
//! JSON `{error, hint}` that changes nothing on disk), `http_contract` (the OpenAPI document
//! against the API table of `README.md` and the server) and `http_robustness` (slow clients
//! neither hold up decisions nor shutdown).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An answer: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts the status, and that an error answer is JSON `{error, hint}` with both filled in.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        let v = self.json();
        if status >= 400 {
            assert!(
                v["error"].as_str().is_some_and(|s| !s.is_empty())
                    && v["hint"].as_str().is_some_and(|s| !s.is_empty()),
                "an error must be JSON {{error, hint}}: {self:?}"
            );
            assert!(
                self.headers
                    .get("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "an error must be served as JSON: {self:?}"
            );
        }
        v
    }
}

/// The daemon with its web server, and the secrets a client needs.
pub struct Web {
    pub daemon: Daemon,
    pub port: u16,
    pub csrf: String,
    pub token: String,
    agent: ureq::Agent,
}

/// Starts the daemon with the web server on a free port; returns once `/health` answers.
pub fn serve(sb: &Sandbox, extra: &[&str]) -> Web {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut last_log = String::new();
    // The port could be taken between choosing and binding it: try a few.
    for _ in 0..3 {
        let port = free_port();
        let p = port.to_string();
        let mut args = vec!["--port", p.as_str()];
        args.extend_from_slice(extra);
        let daemon = sb.start(&args);
        let mut web = Web {
            daemon,
            port,
            csrf: String::new(),
            token: String::new(),
            agent: agent.clone(),
        };
        let up = wait_for(WAIT, || {
            web.try_request("GET", "/health", &[], b"")
                .is_ok_and(|r| r.status == 200)
        });
        if !up {
            last_log = web.daemon.log_text();
            continue;
        }
        let page = web.get("/");
        assert_eq!(page.status, 200, "{page:?}");
        web.csrf = csrf_from_page(&page.text);
        web.token = fs::read_to_string(sb.state().join("api-token"))
            .expect("the server creates the api-token file in the private state folder")
            .trim()
            .to_string();
        return web;
    }
    panic!("the web server never answered /health; daemon log:\n{last_log}");
}

/// The token in `<meta name="csrf-token" content="...">`.
pub fn csrf_from_page(html: &str) -> String {
    let at = html
        .find("name=\"csrf-token\"")
        .unwrap_or_else(|| panic!("no csrf-token meta tag in the page:\n{html}"));
    let tag_start = html[..at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let c = tag
        .find("content=\"")
        .expect("the csrf meta tag has a content")
        + 9;
    let token = &tag[c..c + tag[c..].find('"').unwrap()];
    assert!(
        token.len() >= 16 && !token.contains('{'),
        "the server did not fill in the CSRF token: {tag}"
    );
    token.to_string()
}

impl Web {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, ureq::Error> {
        let mut b =
            ureq::http::Request::builder()
                .method(method)
                .uri(format!("{}{}", self.base(), path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = self.agent.run(b.body(body.to_vec()).unwrap())?;
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 * MIB as u64)
            .read_to_string()?;
        Ok(Resp {
            status: r.status().as_u16(),
            headers,
            text,
        })
    }

    /// Any request, with exactly the given extra headers.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: {e}; daemon log:\n{}",
                    self.daemon.log_text()
                )
            })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], b"")
    }

    /// A state-changing request as the page sends it (with the CSRF token).
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.request(
            method,
            path,
            &[
                ("X-CSRF-Token", &self.csrf),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    pub fn post(&self, path: &str, body: Option<&Value>) -> Resp {
        self.send("POST", path, body)
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None)
    }
}

// ------------------------------------------------------------------------------ raw HTTP

/// Sends bytes as they are and reads one answer (the request should ask to close the
/// connection or be HTTP/1.0).
pub fn raw(port: u16, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    read_answer(&mut s)
}

/// Reads one HTTP answer: head, then `Content-Length` bytes (or to the end).
pub(crate) fn read_answer(s: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).expect("reading the answer");
        assert!(
            n > 0,
            "the connection closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    match headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => {
            while body.len() < n {
                let got = s.read(&mut chunk).expect("reading the body");
                assert!(got > 0, "the body ended early");
                body.extend_from_slice(&chunk[..got]);
            }
            body.truncate(n);
        }
        None => {
            let _ = s.read_to_end(&mut body);
        }
    }
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&body).to_string(),
    }
}

// ------------------------------------------------------------------------------ fixtures

pub(crate) const MIB: usize = 1 << 20;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) const BOB: &str = "bob@x.org";

pub(crate) const EVE: &str = "eve@evil.example";

pub(crate) fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The CLI's `signature JOB_DIR`.
pub(crate) fn cli_signature(sb: &Sandbox, dir: &Path) -> String {
    ok(&sb.cli(&["signature", dir.to_str().unwrap()]))
        .trim()
        .to_string()
}

pub(crate) fn history_file(sb: &Sandbox, sig: &str) -> PathBuf {
    sb.app_data()
        .join("job_history")
        .join(format!("{sig}.json"))
}

/// A completed job the daemon has recorded in the history; returns (uid, signature).
pub(crate) fn completed_in_history(sb: &Sandbox, web: &Web, name: &str) -> (String, String) {
    let uid = sb.submit_with(
        "carol@lab.example",
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        &simple_code(),
        "completed",
    );
    let sig = cli_signature(sb, &sb.job_dir("completed", &uid));
    assert!(
        wait_for(WAIT, || history_file(sb, &sig).is_file()),
        "the completed job never reached the history; log:\n{}",
        web.daemon.log_text()
    );
    (uid, sig)
}

pub(crate) fn wait_status(sb: &Sandbox, web: &Web, uid: &str, status: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ (it is in {:?}); log:\n{}",
        sb.status_of(uid),
        web.daemon.log_text()
    );
}

pub(crate) fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A sandbox with a settled daemon: one job waiting from an unknown sender, one completed job
/// in the history; long rescans so the daemon itself writes nothing more.
pub(crate) struct Settled {
    pub(crate) sb: Sandbox,
    pub(crate) web: Web,
    pub(crate) pending: String,
    pub(crate) completed_sig: String,
}

pub(crate) fn settled() -> Settled {
    let sb = Sandbox::new();
    let pending = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &["--rescan-secs", "3600"]);
    let (_, completed_sig) = completed_in_history(&sb, &web, "Earlier analysis");
    assert!(
        wait_for(WAIT, || !sb.decisions_for(&pending, "waiting").is_empty()),
        "no waiting decision for {pending}; log:\n{}",
        web.daemon.log_text()
    );
    // Let the daemon finish anything it started (permission files, history index...).
    settle(&sb);
    Settled {
        sb,
        web,
        pending,
        completed_sig,
    }
}

// ------------------------------------------------------------------------------ the pages

#[test]
fn health_pages_and_security_headers() {
    let sb = Sandbox::new();
    let web = serve(&sb, &[]);
    assert_eq!(web.get("/health").expect(200), json!({"status": "ok"}));
    for (path, ctype) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/health", "application/json"),
        ("/api/openapi.json", "application/json"),
        ("/api/status", "application/json"),
    ] {
        let r = web.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.headers["content-type"].starts_with(ctype),
            "{path}: {:?}",
            r.headers
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(r.headers["cache-control"], "no-store", "{path}");
        assert!(
            r.headers["content-security-policy"].contains("default-src 'self'"),
            "{path}"
        );
    }
    let page = web.get("/").text;
    assert!(
        page.contains("app.js") && page.contains("app.css"),
        "{page}"
    );
    // The CSRF token is the same on every load, and the API token is a private 0600 file.
    assert_eq!(csrf_from_page(&web.get("/").text), web.csrf);
    assert_ne!(web.csrf, web.token);
    assert_eq!(mode(&sb.state().join("api-token")), 0o600);
    let doc = web.get("/api/openapi.json").expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    // Also answers to localhost and [::1] with our port.
    for host in [
        format!("localhost:{}", web.port),
        format!("[::1]:{}", web.port),
    ] {
        let r = raw(
            web.port,
            format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.expect(200), json!({"status": "ok"}), "Host: {host}");
    }
}

#[test]
fn status_reports_owner_counts_and_watcher() {
    let sb = Sandbox::new();
    sb.submit(EVE, &simple_code());
    sb.submit_with(EVE, OWNER, "Old", "d", &[], &simple_code(), "failed");
    sb.allow_by_hand("not-an-email");
    let web = serve(&sb, &[]);
    assert!(wait_for(WAIT, || web.get("/api/status").json()["waiting"] == 1));
    let s = web.get("/api/status").expect(200);
    assert_eq!(s["owner"], OWNER);
    assert_eq!(Path::new(s["datasite"].as_str().unwrap()), sb.datasite());
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_seconds"].is_u64());
    let jobs = s["jobs"].as_object().unwrap();
    assert_eq!(
        jobs.keys().cloned().collect::<BTreeSet<_>>(),
        STATUSES.iter().map(|s| s.to_string()).collect()
    );
    for st in STATUSES {
        let want = fs::read_dir(sb.queue().join(st))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(jobs[st], want, "{st}: {s}");
    }
    assert_eq!(
        (jobs["pending"].clone(), jobs["failed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(s["flagged"], 0);
    assert_eq!(s["approved_since_start"], 0);
    let listed = web.get("/api/v1/allowlist").expect(200);
    assert_eq!(
        s["allowlisted_senders"],
        listed["emails"].as_array().unwrap().len()
    );
    assert_eq!(s["trusted_code"], 0);
    let w = &s["watcher"];
    assert_eq!(w["healthy"], true, "{s}");
    assert!(w["rescans"].is_u64() && w["events"].is_u64(), "{s}");
    assert!(w["last_error"].is_null(), "{s}");
    assert!(
        w["last_event"].is_null() || w["last_event"].is_string(),
        "{s}"
    );
    let ignored = s["ignored_store_files"].as_array().unwrap();
    assert!(
        ignored
            .iter()
            .any(|f| f.as_str().unwrap().contains("not-an-email")),
        "{s}"
    );

    // An approval is counted.
    ok(&sb.cli(&["allow", "add", BOB]));
    let uid = sb.submit(BOB, &simple_code());
    wait_status(&sb, &web, &uid, "approved");
    assert!(wait_for(
        WAIT,
        || web.get("/api/status").json()["approved_since_start"] == 1
    ));
    assert_eq!(web.get("/api/status").json()["jobs"]["approved"], 1);
}
