//! The web server of the real binary, over HTTP on a free port: every endpoint of the contract
//! (the API table of `README.md`) with its effect on disk, the refusals (each a JSON `{error, hint}` that
//! changes nothing on disk), the OpenAPI document against what the server does, and that slow
//! clients neither hold up decisions nor shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;
const BOB: &str = "bob@x.org";
const EVE: &str = "eve@evil.example";

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
fn read_answer(s: &mut TcpStream) -> Resp {
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

fn ok(out: &std::process::Output) -> String {
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
fn cli_signature(sb: &Sandbox, dir: &Path) -> String {
    ok(&sb.cli(&["signature", dir.to_str().unwrap()]))
        .trim()
        .to_string()
}

fn naive(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Writes a job whose `created_at` is `age` ago, as the queue client does (built elsewhere,
/// renamed in whole). Returns the uid.
fn submit_aged(
    sb: &Sandbox,
    from: &str,
    name: &str,
    age: chrono::Duration,
    status: &str,
) -> String {
    let uid = new_uid();
    let tmp = sb.dir.path().join(format!("build-{uid}"));
    write_job(
        &tmp,
        &uid,
        from,
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        &simple_code(),
    );
    let meta_path = tmp.join("metadata.json");
    let mut meta: Value = serde_json::from_str(&fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["created_at"] = naive(chrono::Local::now().naive_local() - age).into();
    meta["status"] = status.into();
    fs::write(&meta_path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    fs::rename(&tmp, sb.job_dir(status, &uid)).unwrap();
    uid
}

fn history_file(sb: &Sandbox, sig: &str) -> PathBuf {
    sb.app_data()
        .join("job_history")
        .join(format!("{sig}.json"))
}

fn trusted_file(sb: &Sandbox, sig: &str) -> PathBuf {
    sb.app_data()
        .join("trusted_code")
        .join(format!("{sig}.json"))
}

/// A completed job the daemon has recorded in the history; returns (uid, signature).
fn completed_in_history(sb: &Sandbox, web: &Web, name: &str) -> (String, String) {
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

fn wait_status(sb: &Sandbox, web: &Web, uid: &str, status: &str) {
    assert!(
        wait_for(WAIT, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ (it is in {:?}); log:\n{}",
        sb.status_of(uid),
        web.daemon.log_text()
    );
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A folder's entries (see `snapshot`).
/// A sandbox with a settled daemon: one job waiting from an unknown sender, one completed job
/// in the history; long rescans so the daemon itself writes nothing more.
struct Settled {
    sb: Sandbox,
    web: Web,
    pending: String,
    completed_sig: String,
}

fn settled() -> Settled {
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

// ------------------------------------------------------------------------------ allowlist

#[test]
fn allowlist_add_check_remove_and_replace() {
    let sb = Sandbox::new();
    let waiting = sb.submit("re_searcher@uni.example", &simple_code());
    sb.allow_by_hand("not-an-email");
    let web = serve(&sb, &[]);
    let dir = sb.allowlist_dir();

    let before = web.get("/api/v1/allowlist").expect(200);
    assert!(before["emails"].is_array(), "{before}");
    let invalid = before["invalid"].as_array().unwrap();
    assert!(
        invalid
            .iter()
            .any(|i| i["file"] == "not-an-email"
                && i["reason"].as_str().is_some_and(|r| !r.is_empty())),
        "{before}"
    );
    assert_eq!(
        web.get("/api/v1/allowlist/check/Re_Searcher@Uni.example")
            .expect(200),
        json!({"email": "re_searcher@uni.example", "allowlisted": false})
    );

    // Added: 201, one 0600 file named by the encoded email, and the waiting job is approved.
    let r = web.post("/api/v1/allowlist/add/Re_Searcher@Uni.example", None);
    assert_eq!(
        r.expect(201),
        json!({"email": "re_searcher@uni.example", "added": true})
    );
    let file = dir.join("re__searcher_at_uni_dot_example");
    assert!(
        file.is_file(),
        "{:?}",
        fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    wait_status(&sb, &web, &waiting, "approved");
    let perm = fs::read_to_string(dir.join("syft.pub.yaml")).unwrap();
    assert!(perm.contains("re_searcher@uni.example"), "{perm}");

    // Again: 200, nothing new.
    let r = web.post("/api/v1/allowlist/add/re_searcher@uni.example", None);
    assert_eq!(
        r.expect(200),
        json!({"email": "re_searcher@uni.example", "added": false})
    );
    let listed = web.get("/api/v1/allowlist").expect(200);
    assert!(
        listed["emails"]
            .as_array()
            .unwrap()
            .contains(&json!("re_searcher@uni.example")),
        "{listed}"
    );
    assert_eq!(
        web.get("/api/v1/allowlist/check/re_searcher@uni.example")
            .expect(200)["allowlisted"],
        true
    );
    // The CLI sees the same list.
    let cli: Value = serde_json::from_str(&ok(&sb.cli(&["allow", "list", "--json"]))).unwrap();
    let cli_emails = cli.get("emails").unwrap_or(&cli);
    assert_eq!(cli_emails, &listed["emails"], "CLI: {cli}");

    // me: the owner.
    assert_eq!(
        web.get("/api/v1/allowlist/me").expect(200),
        json!({"email": OWNER, "allowlisted": false})
    );
    web.post(&format!("/api/v1/allowlist/add/{OWNER}"), None)
        .expect(201);
    assert_eq!(
        web.get("/api/v1/allowlist/me").expect(200)["allowlisted"],
        true
    );

    // Removed: the file goes; a second removal is a 404 that changes nothing.
    let r = web.delete("/api/v1/allowlist/remove/re_searcher@uni.example");
    assert_eq!(
        r.expect(200),
        json!({"email": "re_searcher@uni.example", "removed": true})
    );
    assert!(!file.exists());
    assert_eq!(
        web.get("/api/v1/allowlist/check/re_searcher@uni.example")
            .expect(200)["allowlisted"],
        false
    );
    unchanged(&sb, "removing an absent email", || {
        web.delete("/api/v1/allowlist/remove/re_searcher@uni.example")
            .expect(404)
    });

    // Replace the whole list: exactly these files remain (the bad hand-made file is left).
    let r = web
        .post(
            "/api/v1/allowlist",
            Some(&json!({"emails": ["a@x.org", "B@Y.org", BOB]})),
        )
        .expect(200);
    let emails: BTreeSet<String> = r["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        emails,
        ["a@x.org", "b@y.org", BOB]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(r["added"], 3, "{r}");
    assert!(r["removed"].as_u64().unwrap() >= 1, "{r}");
    let files: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "syft.pub.yaml" && n != "not-an-email")
        .collect();
    assert_eq!(
        files,
        ["a_at_x_dot_org", "b_at_y_dot_org", "bob_at_x_dot_org"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    for f in &files {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // Replacing with the same list changes nothing.
    let r = web
        .post(
            "/api/v1/allowlist",
            Some(&json!({"emails": ["a@x.org", "b@y.org", BOB]})),
        )
        .expect(200);
    assert_eq!(
        (r["added"].clone(), r["removed"].clone()),
        (json!(0), json!(0))
    );
}

// ------------------------------------------------------------------------------ trusted code

#[test]
fn mark_and_unmark_trusted_code() {
    let sb = Sandbox::new();
    let web = serve(&sb, &[]);
    let (done, sig) = completed_in_history(&sb, &web, "Row count");
    // The same code, name, description and tags from an unknown sender waits...
    let pending = sb.submit_with(
        EVE,
        OWNER,
        "Row count",
        "Counts rows",
        &["stats"],
        &simple_code(),
        "pending",
    );
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&pending, "waiting")
        .is_empty()));
    assert_eq!(cli_signature(&sb, &sb.job_dir("pending", &pending)), sig);

    let h = web.get("/api/v1/trusted-code/history").expect(200);
    let rec = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["signature"] == sig.as_str())
        .unwrap_or_else(|| panic!("{sig} not in {h}"))
        .clone();
    assert_eq!(rec["trusted"], false);
    assert_eq!(rec["name"], "Row count");
    assert_eq!(rec["description"], "Counts rows");
    assert_eq!(rec["tags"], json!(["stats"]));
    assert!(
        rec["uids"].as_array().unwrap().contains(&json!(done)),
        "{rec}"
    );
    assert!(
        rec["requesters"]
            .as_array()
            .unwrap()
            .contains(&json!("carol@lab.example")),
        "{rec}"
    );
    for k in ["first_seen", "last_seen"] {
        assert!(rec[k].as_str().is_some_and(|s| s.len() >= 19), "{k}: {rec}");
    }
    let files = rec["code_files"].as_array().unwrap();
    let run = files.iter().find(|f| f["path"] == "run.sh").unwrap();
    assert_eq!(run["text"], "#!/bin/sh\npython3 main.py\n");
    assert_eq!(run["size"], 26);
    assert_eq!(
        web.get("/api/v1/trusted-code").expect(200),
        json!({"trusted": []})
    );

    // ...until its signature is marked: trusted_code/<sig>.json, and the job is approved.
    let r = web.post(
        &format!("/api/v1/trusted-code/mark/{}", sig.to_uppercase()),
        None,
    );
    assert_eq!(
        r.expect(200),
        json!({"signature": sig, "trusted": true, "added": true})
    );
    let stored: Value =
        serde_json::from_str(&fs::read_to_string(trusted_file(&sb, &sig)).unwrap()).unwrap();
    assert_eq!(stored["signature"], sig.as_str());
    wait_status(&sb, &web, &pending, "approved");
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&pending, "approved")
        .is_empty()));
    settle(&sb);
    let approved = sb.decisions_for(&pending, "approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["signature"], sig.as_str());

    let t = web.get("/api/v1/trusted-code").expect(200);
    let list = t["trusted"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{t}");
    assert_eq!(list[0]["signature"], sig.as_str());
    assert!(
        list[0]["marked_at"].as_str().is_some_and(|s| s.len() >= 19),
        "{t}"
    );
    assert_eq!(list[0]["name"], "Row count");
    let h = web.get("/api/v1/trusted-code/history").expect(200);
    assert!(
        h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signature"] == sig.as_str() && r["trusted"] == true)
    );
    let r = web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None);
    assert_eq!(
        r.expect(200),
        json!({"signature": sig, "trusted": true, "added": false})
    );
    assert_eq!(web.get("/api/status").json()["trusted_code"], 1);

    // Unmarked: the file goes, and the same code waits again.
    let r = web.delete(&format!("/api/v1/trusted-code/unmark/{sig}"));
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));
    assert!(!trusted_file(&sb, &sig).exists());
    assert!(
        history_file(&sb, &sig).is_file(),
        "unmarking keeps the history"
    );
    let again = sb.submit_with(
        EVE,
        OWNER,
        "Row count",
        "Counts rows",
        &["stats"],
        &simple_code(),
        "pending",
    );
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&again, "waiting")
        .is_empty()));
    assert_eq!(sb.status_of(&again).as_deref(), Some("pending"));
    unchanged(&sb, "unmarking twice", || {
        web.delete(&format!("/api/v1/trusted-code/unmark/{sig}"))
            .expect(404)
    });
}

#[test]
fn check_signature_by_uid_and_inline_matches_the_cli() {
    let sb = Sandbox::new();
    let files: Vec<(&str, &[u8])> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
        ("lib/util.py", b"X = 1\n"),
    ];
    let uid = sb.submit_with(
        EVE,
        OWNER,
        "Tagged",
        "Two tags",
        &["b", "a"],
        &files,
        "pending",
    );
    let web = serve(&sb, &[]);
    let sig = cli_signature(&sb, &sb.job_dir("pending", &uid));

    let r = web.post(
        "/api/v1/trusted-code/check-signature",
        Some(&json!({"uid": uid})),
    );
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));

    let inline = json!({
        "name": "Tagged", "description": "Two tags", "tags": ["b", "a"],
        "files": {
            "run.sh": "#!/bin/sh\npython3 main.py\n",
            "main.py": "print('rows:', 42)\n",
            "lib/util.py": "X = 1\n",
            // Permission files are never part of the signature.
            "syft.pub.yaml": "rules: []\n",
        }
    });
    let r = web.post("/api/v1/trusted-code/check-signature", Some(&inline));
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));
    // One byte more in one file: another signature.
    let mut changed = inline.clone();
    changed["files"]["main.py"] = "print('rows:', 43)\n".into();
    let r = web
        .post("/api/v1/trusted-code/check-signature", Some(&changed))
        .expect(200);
    assert_ne!(r["signature"], sig.as_str());

    // Once trusted, both forms say so.
    ok(&sb.cli(&["trust", "add", "--job", &uid]));
    assert!(trusted_file(&sb, &sig).is_file());
    wait_status(&sb, &web, &uid, "approved");
    for body in [json!({"uid": uid}), inline] {
        let r = web.post("/api/v1/trusted-code/check-signature", Some(&body));
        assert_eq!(r.expect(200), json!({"signature": sig, "trusted": true}));
    }
    // A completed job (any status folder) by uid.
    let done = sb.submit_with(
        EVE,
        OWNER,
        "Tagged",
        "Two tags",
        &["b", "a"],
        &files,
        "completed",
    );
    let r = web.post(
        "/api/v1/trusted-code/check-signature",
        Some(&json!({"uid": done})),
    );
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": true}));
    settle(&sb);

    // Bad bodies change nothing.
    for (body, code) in [
        (json!({"uid": "00000000-0000-4000-8000-000000000000"}), 404),
        (json!({"uid": uid, "name": "x"}), 400),
        (json!({}), 400),
        (json!({"name": "x", "files": {"../run.sh": "x"}}), 400),
        (json!({"name": "x", "files": {"/etc/passwd": "x"}}), 400),
        (json!({"name": "x", "unknown_field": 1}), 400),
    ] {
        unchanged(&sb, &format!("check-signature {body}"), || {
            web.post("/api/v1/trusted-code/check-signature", Some(&body))
                .expect(code)
        });
    }
}

#[test]
fn add_to_history_records_a_job_that_can_then_be_marked() {
    let sb = Sandbox::new();
    let uid = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &[]);
    // The daemon logs the job as waiting after its settle window: not part of what is checked.
    settle(&sb);
    let sig = cli_signature(&sb, &sb.job_dir("pending", &uid));
    assert!(!history_file(&sb, &sig).exists());
    // Not in the history yet: it cannot be marked.
    unchanged(&sb, "marking code not in the history", || {
        web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None)
            .expect(404)
    });

    let r = web
        .post(
            "/api/v1/trusted-code/add-to-history",
            Some(&json!({"uid": uid})),
        )
        .expect(200);
    let rec = &r["record"];
    assert_eq!(rec["signature"], sig.as_str());
    assert_eq!(rec["name"], "Analysis");
    assert!(rec["uids"].as_array().unwrap().contains(&json!(uid)), "{r}");
    assert!(
        rec["requesters"].as_array().unwrap().contains(&json!(EVE)),
        "{r}"
    );
    let paths: BTreeSet<&str> = rec["code_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["main.py", "run.sh"].into_iter().collect());
    let on_disk: Value =
        serde_json::from_str(&fs::read_to_string(history_file(&sb, &sig)).unwrap()).unwrap();
    assert_eq!(on_disk["signature"], sig.as_str());
    let h = web.get("/api/v1/trusted-code/history").expect(200);
    assert!(
        h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signature"] == sig.as_str() && r["trusted"] == false)
    );

    // Now it can be marked, and the job is approved.
    web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None)
        .expect(200);
    wait_status(&sb, &web, &uid, "approved");
    settle(&sb);

    unchanged(&sb, "add-to-history of an unknown job", || {
        web.post(
            "/api/v1/trusted-code/add-to-history",
            Some(&json!({"uid": "no-such-job"})),
        )
        .expect(404)
    });
    unchanged(&sb, "add-to-history without a uid", || {
        web.post("/api/v1/trusted-code/add-to-history", Some(&json!({})))
            .expect(400)
    });
}

// ------------------------------------------------------------------------------ jobs

#[test]
fn jobs_listing_pages_filters_and_orders_newest_first() {
    let sb = Sandbox::new();
    let h = chrono::Duration::hours;
    // Five waiting jobs, four hours apart (the newest first in the listing; none expired yet).
    let senders = [
        "a1@lab.example",
        "a2@lab.example",
        "b1@other.example",
        "b2@other.example",
        "c@lab.example",
    ];
    let uids: Vec<String> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            submit_aged(
                &sb,
                s,
                &format!("Job number {i}"),
                h(1 + 4 * i as i64),
                "pending",
            )
        })
        .collect();
    let done = submit_aged(&sb, "z@done.example", "Finished one", h(1), "completed");
    let web = serve(&sb, &[]);
    assert!(wait_for(WAIT, || uids
        .iter()
        .all(|u| !sb.decisions_for(u, "waiting").is_empty())));
    let uids_of = |v: &Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["uid"].as_str().unwrap().to_string())
            .collect()
    };

    let all = web.get("/api/v1/jobs").expect(200);
    assert_eq!(uids_of(&all), uids, "newest first: {all}");
    assert_eq!(
        (
            all["total"].clone(),
            all["offset"].clone(),
            all["limit"].clone()
        ),
        (json!(5), json!(0), json!(50))
    );
    let j = &all["jobs"][0];
    assert_eq!(j["status"], "pending");
    assert_eq!(j["name"], "Job number 0");
    assert_eq!(j["requester"], "a1@lab.example");
    assert_eq!(j["description"], "Counts rows");
    assert_eq!(j["tags"], json!(["stats"]));
    assert_eq!(j["timeout_seconds"], 86400);
    assert_eq!(j["verdict"], "wait");
    assert!(!j["reasons"].as_array().unwrap().is_empty(), "{j}");
    assert_eq!(
        j["signature"],
        cli_signature(&sb, &sb.job_dir("pending", &uids[0])).as_str()
    );
    let created = chrono::NaiveDateTime::parse_from_str(
        j["created_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    let expires = chrono::NaiveDateTime::parse_from_str(
        j["expires_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    assert_eq!(expires - created, chrono::Duration::seconds(86400));

    // Pages.
    let p = web
        .get("/api/v1/jobs?status=pending&offset=1&limit=2")
        .expect(200);
    assert_eq!(uids_of(&p), uids[1..3].to_vec());
    assert_eq!(
        (p["total"].clone(), p["offset"].clone(), p["limit"].clone()),
        (json!(5), json!(1), json!(2))
    );
    let p = web.get("/api/v1/jobs?offset=4&limit=2").expect(200);
    assert_eq!(uids_of(&p), uids[4..].to_vec());
    let p = web.get("/api/v1/jobs?offset=10").expect(200);
    assert!(uids_of(&p).is_empty());
    assert_eq!(p["total"], 5);

    // Filters (case-insensitive substrings), and their combination with paging.
    let f = web.get("/api/v1/jobs?sender=LAB.example").expect(200);
    assert_eq!(
        uids_of(&f),
        vec![uids[0].clone(), uids[1].clone(), uids[4].clone()]
    );
    assert_eq!(f["total"], 3);
    let f = web
        .get("/api/v1/jobs?sender=lab.example&limit=1&offset=1")
        .expect(200);
    assert_eq!(uids_of(&f), vec![uids[1].clone()]);
    let f = web.get("/api/v1/jobs?name=number%203").expect(200);
    assert_eq!(uids_of(&f), vec![uids[3].clone()]);
    let f = web.get("/api/v1/jobs?max_age_hours=6").expect(200);
    assert_eq!(uids_of(&f), uids[..2].to_vec());
    let f = web
        .get("/api/v1/jobs?max_age_hours=6&sender=a2")
        .expect(200);
    assert_eq!(uids_of(&f), vec![uids[1].clone()]);
    let f = web.get("/api/v1/jobs?sender=nobody").expect(200);
    assert_eq!((uids_of(&f).len(), f["total"].clone()), (0, json!(0)));

    // Other status folders.
    let c = web.get("/api/v1/jobs?status=completed").expect(200);
    assert_eq!(uids_of(&c), vec![done.clone()]);
    assert_eq!(c["jobs"][0]["status"], "completed");
    assert_eq!(
        web.get("/api/v1/jobs?status=rejected").expect(200)["total"],
        0
    );

    // Bad query values.
    for q in ["status=bogus", "limit=abc", "offset=-1", "max_age_hours=x"] {
        web.get(&format!("/api/v1/jobs?{q}")).expect(400);
    }
}

#[test]
fn job_detail_explain_and_decisions() {
    let sb = Sandbox::new();
    let files: Vec<(&str, &[u8])> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
        ("data.bin", b"\xff\xfe\x00binary"),
    ];
    let uid = sb.submit_with(
        EVE,
        OWNER,
        "Detail",
        "Shows files",
        &["x"],
        &files,
        "pending",
    );
    let web = serve(&sb, &[]);
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&uid, "waiting")
        .is_empty()));
    let dir = sb.job_dir("pending", &uid);

    let d = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    assert_eq!(d["uid"], uid.as_str());
    assert_eq!(d["status"], "pending");
    assert_eq!(d["name"], "Detail");
    assert_eq!(d["verdict"], "wait");
    assert_eq!(d["signature"], cli_signature(&sb, &dir).as_str());
    let got: BTreeMap<String, Value> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["data.bin", "main.py", "run.sh"]
    );
    for (rel, content) in &files {
        let f = &got[*rel];
        assert_eq!(f["size"], content.len(), "{f}");
        assert_eq!(f["truncated"], false, "{f}");
        let hash = ok(&sb.cli(&["hash", dir.join("code").join(rel).to_str().unwrap()]));
        let sha = f["sha256"].as_str().unwrap();
        assert!(
            hash.contains(sha.trim_start_matches("sha256:")),
            "{rel}: {sha} vs {hash}"
        );
        match std::str::from_utf8(content) {
            Ok(text) => assert_eq!(f["text"], text, "{f}"),
            Err(_) => assert!(
                f["text"].is_null(),
                "binary content is not shown as text: {f}"
            ),
        }
    }
    web.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000")
        .expect(404);

    // explain: the same as the CLI's dry run.
    let e = web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200);
    assert_eq!(e["uid"], uid.as_str());
    assert_eq!(e["would"], "wait");
    assert_eq!(e["requester"], EVE);
    assert_eq!(e["name"], "Detail");
    assert!(!e["reasons"].as_array().unwrap().is_empty(), "{e}");
    let cli: Value = serde_json::from_str(&ok(&sb.cli(&["explain", &uid, "--json"]))).unwrap();
    assert_eq!(e, cli, "the API and the CLI explain differently");
    web.get("/api/v1/jobs/no-such-job/explain").expect(404);
    // Explaining changes nothing.
    unchanged(&sb, "explain", || {
        web.get(&format!("/api/v1/jobs/{uid}/explain")).expect(200)
    });

    // Allowlisting the sender: explain says approve, and the daemon does it.
    web.post(&format!("/api/v1/allowlist/add/{EVE}"), None)
        .expect(201);
    wait_status(&sb, &web, &uid, "approved");
    let d = web.get(&format!("/api/v1/jobs/{uid}")).expect(200);
    assert_eq!(d["status"], "approved");
    let other = sb.submit(BOB, &simple_code());
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&other, "waiting")
        .is_empty()));
    settle(&sb);

    // decisions: newest first, as in decisions.jsonl.
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&uid, "approved")
        .is_empty()));
    let all = web.get("/api/v1/decisions").expect(200);
    let list = all["decisions"].as_array().unwrap();
    let mut on_disk = sb.decisions();
    on_disk.reverse();
    assert_eq!(list.len(), on_disk.len());
    for (api, disk) in list.iter().zip(&on_disk) {
        for k in [
            "time",
            "uid",
            "name",
            "requester",
            "outcome",
            "method",
            "signature",
            "reasons",
        ] {
            assert!(api.get(k).is_some(), "decision without {k}: {api}");
            assert_eq!(api[k], disk[k], "{k}");
        }
    }
    let approved = list
        .iter()
        .find(|d| d["uid"] == uid.as_str() && d["outcome"] == "approved")
        .unwrap();
    assert_eq!(approved["method"], "allowlist");
    let one = web.get("/api/v1/decisions?limit=1").expect(200);
    assert_eq!(one["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(one["decisions"][0], list[0]);
    web.get("/api/v1/decisions?limit=lots").expect(400);
}

// ------------------------------------------------------------------------------ refusals

#[test]
fn bad_requests_are_refused_with_json_and_change_nothing() {
    let Settled {
        sb,
        web,
        pending,
        completed_sig,
    } = settled();
    let unknown_sig = "ab".repeat(32);
    let csrf = web.csrf.clone();
    let with_csrf = [("X-CSRF-Token", csrf.as_str())];
    let no: &[u8] = b"";
    let cases: Vec<(&str, String, &[u8], u16)> = vec![
        // Malformed emails.
        ("POST", "/api/v1/allowlist/add/not-an-email".into(), no, 400),
        ("POST", "/api/v1/allowlist/add/a*b@x.org".into(), no, 400),
        (
            "POST",
            "/api/v1/allowlist/add/..%2F..%2Fx@y.org".into(),
            no,
            400,
        ),
        (
            "DELETE",
            "/api/v1/allowlist/remove/not-an-email".into(),
            no,
            400,
        ),
        ("GET", "/api/v1/allowlist/check/no-at-sign".into(), no, 400),
        (
            "POST",
            "/api/v1/allowlist".into(),
            br#"{"emails": ["ok@x.org", "bad email"]}"#,
            400,
        ),
        // Signatures: unknown, malformed.
        (
            "POST",
            format!("/api/v1/trusted-code/mark/{unknown_sig}"),
            no,
            404,
        ),
        (
            "DELETE",
            format!("/api/v1/trusted-code/unmark/{unknown_sig}"),
            no,
            404,
        ),
        (
            "DELETE",
            format!("/api/v1/trusted-code/unmark/{completed_sig}"),
            no,
            404,
        ),
        ("POST", "/api/v1/trusted-code/mark/xyz".into(), no, 400),
        (
            "POST",
            format!("/api/v1/trusted-code/mark/{}", "g".repeat(64)),
            no,
            400,
        ),
        (
            "POST",
            "/api/v1/trusted-code/mark/..%2F..%2Fsecret".into(),
            no,
            400,
        ),
        ("DELETE", "/api/v1/trusted-code/unmark/xyz".into(), no, 400),
        (
            "DELETE",
            "/api/v1/trusted-code/unmark/..%2Fjob_history%2Fx".into(),
            no,
            400,
        ),
        // Malformed JSON bodies.
        ("POST", "/api/v1/allowlist".into(), b"{not json", 400),
        ("POST", "/api/v1/allowlist".into(), no, 400),
        (
            "POST",
            "/api/v1/allowlist".into(),
            br#"{"emails": "a@x.org"}"#,
            400,
        ),
        (
            "POST",
            "/api/v1/trusted-code/check-signature".into(),
            b"[1, 2",
            400,
        ),
        (
            "POST",
            "/api/v1/trusted-code/add-to-history".into(),
            b"\xff\xfe",
            400,
        ),
        // Wrong methods.
        ("PUT", "/api/status".into(), no, 405),
        ("PATCH", "/api/v1/allowlist".into(), no, 405),
        ("DELETE", "/api/v1/allowlist".into(), no, 405),
        ("POST", "/api/status".into(), no, 405),
        (
            "GET",
            "/api/v1/trusted-code/check-signature".into(),
            no,
            405,
        ),
        (
            "GET",
            format!("/api/v1/trusted-code/mark/{completed_sig}"),
            no,
            405,
        ),
        (
            "DELETE",
            format!("/api/v1/trusted-code/mark/{completed_sig}"),
            no,
            405,
        ),
        ("POST", format!("/api/v1/jobs/{pending}"), no, 405),
        ("POST", "/health".into(), no, 405),
        ("DELETE", "/".into(), no, 405),
        // Unknown endpoints.
        ("GET", "/api/v1/nope".into(), no, 404),
        ("GET", "/api/v2/status".into(), no, 404),
        ("POST", "/api/v1/allowlist/add".into(), no, 404),
        ("GET", "/nope".into(), no, 404),
        ("GET", "/../etc/passwd".into(), no, 404),
        // Unknown jobs, bad queries.
        ("GET", "/api/v1/jobs/no-such-job".into(), no, 404),
        ("GET", "/api/v1/jobs?limit=x".into(), no, 400),
    ];
    for (method, path, body, code) in cases {
        let headers = with_csrf;
        let r = unchanged(&sb, &format!("{method} {path}"), || {
            web.request(method, &path, &headers, body)
        });
        assert_eq!(r.status, code, "{method} {path}: {r:?}");
        r.expect(code);
        if code == 404 && path.contains("/api/v1/nope") {
            assert!(
                r.json()["error"]
                    .as_str()
                    .unwrap()
                    .contains("no such endpoint"),
                "{r:?}"
            );
        }
    }

    // CSRF: POST and DELETE need the page's token (or the API token).
    let add = "/api/v1/allowlist/add/new@x.org";
    let rm = format!("/api/v1/allowlist/remove/{BOB}");
    ok(&sb.cli(&["allow", "add", BOB]));
    settle(&sb);
    type Headers<'a> = Vec<(&'a str, String)>;
    let refused: Vec<(&str, &str, Headers)> = vec![
        ("POST", add, vec![]),
        ("DELETE", &rm, vec![]),
        ("POST", add, vec![("X-CSRF-Token", "0".repeat(csrf.len()))]),
        ("POST", add, vec![("X-CSRF-Token", format!("{csrf}x"))]),
        ("POST", add, vec![("X-CSRF-Token", String::new())]),
        (
            "DELETE",
            &rm,
            vec![("X-CSRF-Token", csrf[..csrf.len() - 1].to_string())],
        ),
        (
            "POST",
            add,
            vec![("Authorization", format!("Bearer {csrf}x"))],
        ),
        (
            "POST",
            add,
            vec![("Authorization", format!("Basic {}", web.token))],
        ),
        ("POST", add, vec![("X-CSRF-Token", web.token.clone())]),
        (
            "POST",
            add,
            vec![("Authorization", format!("Bearer {csrf}"))],
        ),
        // A cross-site page, even one that somehow knew the token.
        (
            "POST",
            add,
            vec![
                ("X-CSRF-Token", csrf.clone()),
                ("Origin", "http://evil.example".into()),
            ],
        ),
        (
            "POST",
            add,
            vec![("X-CSRF-Token", csrf.clone()), ("Origin", "null".into())],
        ),
        (
            "DELETE",
            &rm,
            vec![
                ("Authorization", format!("Bearer {}", web.token)),
                ("Origin", "https://evil.example".into()),
            ],
        ),
        (
            "POST",
            add,
            vec![
                ("X-CSRF-Token", csrf.clone()),
                ("Origin", format!("http://127.0.0.1:{}", web.port + 1)),
            ],
        ),
        (
            "POST",
            add,
            vec![
                ("X-CSRF-Token", csrf.clone()),
                ("Origin", format!("http://evil.example:{}", web.port)),
            ],
        ),
    ];
    for (method, path, headers) in &refused {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = unchanged(&sb, &format!("{method} {path} {headers:?}"), || {
            web.request(method, path, &h, b"")
        });
        r.expect(403);
    }

    // Foreign Host headers (DNS rebinding), on a GET and on a POST with a valid token.
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{}", web.port),
        format!("127.0.0.1:{}", web.port + 1),
        "127.0.0.1".to_string(),
        format!("localhost.evil.example:{}", web.port),
    ] {
        for (method, path, hdr) in [
            ("GET", "/api/status", String::new()),
            ("POST", add, format!("X-CSRF-Token: {csrf}\r\n")),
        ] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{hdr}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let r = unchanged(&sb, &format!("{method} with Host: {host}"), || {
                raw(web.port, req.as_bytes())
            });
            r.expect(403);
        }
    }
    // HTTP/1.0 without any Host header.
    let r = unchanged(&sb, "no Host", || {
        raw(web.port, b"GET /api/status HTTP/1.0\r\n\r\n")
    });
    assert_eq!(r.status, 400, "{r:?}");

    // Bodies over 1 MiB: 413, with or without a Content-Length, before or after reading.
    let padded = |n: usize| -> Vec<u8> {
        let mut b = br#"{"emails": ["big@x.org"]"#.to_vec();
        b.resize(n - 1, b' ');
        b.push(b'}');
        b
    };
    for n in [MIB + 1, 4 * MIB] {
        let r = unchanged(&sb, "an oversize body", || {
            oversize(&web, "POST", "/api/v1/allowlist", &padded(n), false)
        });
        r.expect(413);
    }
    let r = unchanged(&sb, "an oversize chunked body", || {
        oversize(&web, "POST", "/api/v1/allowlist", &padded(MIB + 10), true)
    });
    r.expect(413);
    // Exactly 1 MiB is accepted.
    let mut exact = br#"{"name": "big", "files": {"run.sh": ""#.to_vec();
    exact.resize(MIB - 3, b'a');
    exact.extend_from_slice(b"\"}}");
    assert_eq!(exact.len(), MIB);
    let r = web.request(
        "POST",
        "/api/v1/trusted-code/check-signature",
        &with_csrf,
        &exact,
    );
    assert_eq!(r.expect(200)["trusted"], false);

    // The API token works without the CSRF header; same-origin pages are fine.
    let bearer = format!("Bearer {}", web.token);
    let r = web.request("POST", add, &[("Authorization", bearer.as_str())], b"");
    assert_eq!(r.expect(201)["added"], true);
    assert!(sb.allowlist_dir().join("new_at_x_dot_org").is_file());
    let r = web.request(
        "DELETE",
        add.replace("add", "remove").as_str(),
        &[("Authorization", bearer.as_str())],
        b"",
    );
    r.expect(200);
    let origin = format!("http://127.0.0.1:{}", web.port);
    let r = web.request(
        "POST",
        add,
        &[("X-CSRF-Token", csrf.as_str()), ("Origin", origin.as_str())],
        b"",
    );
    r.expect(201);
    let origin = format!("http://localhost:{}", web.port);
    let r = web.request(
        "DELETE",
        &rm,
        &[("X-CSRF-Token", csrf.as_str()), ("Origin", origin.as_str())],
        b"",
    );
    r.expect(200);

    // After all that the server still works, and the waiting job is still waiting.
    assert_eq!(web.get("/health").expect(200), json!({"status": "ok"}));
    assert_eq!(sb.status_of(&pending).as_deref(), Some("pending"));
}

/// Sends a large body on a raw connection (from another thread, ignoring write errors: the
/// server may answer and close before reading it all) and reads the answer.
fn oversize(web: &Web, method: &str, path: &str, body: &[u8], chunked: bool) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", web.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let length = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-CSRF-Token: {}\r\nContent-Type: application/json\r\n{length}\r\nConnection: close\r\n\r\n",
        web.host(),
        web.csrf
    );
    let mut payload = head.into_bytes();
    if chunked {
        for c in body.chunks(64 * 1024) {
            payload.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            payload.extend_from_slice(c);
            payload.extend_from_slice(b"\r\n");
        }
        payload.extend_from_slice(b"0\r\n\r\n");
    } else {
        payload.extend_from_slice(body);
    }
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&payload);
    });
    let r = read_answer(&mut s);
    let _ = s.shutdown(Shutdown::Both);
    writer.join().unwrap();
    r
}

// ------------------------------------------------------------------------------ the document

/// `(METHOD, /path)` rows of the API table in `README.md`.
fn contract_routes() -> BTreeSet<(String, String)> {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let method = *cells.get(1)?;
            if !["GET", "POST", "DELETE"].contains(&method) {
                return None;
            }
            let path = cells.get(2)?.split('?').next()?.to_string();
            Some((method.to_string(), path))
        })
        .collect()
}

#[test]
fn openapi_document_matches_the_contract_and_the_server() {
    let Settled {
        sb, web, pending, ..
    } = settled();
    let doc = web.get("/api/openapi.json").expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let m = method.to_uppercase();
            if !["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"].contains(&m.as_str()) {
                continue;
            }
            assert!(op["responses"].is_object(), "{m} {path} has no responses");
            documented.insert((m.clone(), path.clone()));
            // Sample values for the parameters.
            let url = path
                .replace("{email}", "walk@example.org")
                .replace("{signature}", &"cd".repeat(32))
                .replace("{uid}", &pending);
            assert!(
                !url.contains('{'),
                "no sample value for a parameter of {path}"
            );
            let body: &[u8] = if m == "POST" { b"{}" } else { b"" };
            let send = || {
                web.request(
                    &m,
                    &url,
                    &[
                        ("X-CSRF-Token", &web.csrf),
                        ("Content-Type", "application/json"),
                    ],
                    body,
                )
            };
            // Reading changes nothing.
            let r = if m == "GET" {
                unchanged(&sb, &format!("{m} {url}"), send)
            } else {
                let r = send();
                settle(&sb);
                r
            };
            let body: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            assert!(
                r.status != 405 && !(r.status == 404 && error.starts_with("no such")),
                "the document lists {m} {path} but the server does not serve it: {r:?}"
            );
            assert!(r.status < 500, "{m} {url}: {r:?}");
        }
    }
    // Everything in the contract is documented, and nothing else (besides the pages).
    let contract = contract_routes();
    assert!(
        contract.len() >= 18,
        "could not read the contract table: {contract:?}"
    );
    let missing: Vec<_> = contract.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "in the README table but not in openapi.json: {missing:?}"
    );
    let extra: Vec<_> = documented
        .difference(&contract)
        .filter(|(_, p)| !["/", "/index.html", "/app.js", "/app.css"].contains(&p.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "in openapi.json but not in the README table: {extra:?}"
    );
    // Every operation has a unique operationId or a summary, as tools expect.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                op.get("operationId").is_some() || op.get("summary").is_some(),
                "{method} {path} has neither an operationId nor a summary"
            );
        }
    }
}

// ------------------------------------------------------------------------------ robustness

/// Sends SIGTERM and waits (at most 10 s) for the exit; returns how long it took and the exit
/// status, failing the test if it never exits (the daemon is then killed on drop).
fn sigterm(d: &mut Daemon) -> (Duration, std::process::ExitStatus) {
    let start = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            return (start.elapsed(), status);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the daemon did not exit within 10 s of SIGTERM; log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn slow_clients_hold_up_neither_decisions_nor_other_requests() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let mut web = serve(&sb, &[]);
    let host = web.host();
    // More stalled connections than the server has workers: some never finish their headers,
    // some announce a body and send only part of it.
    let mut stalled = Vec::new();
    for i in 0..12 {
        let mut s = TcpStream::connect(("127.0.0.1", web.port)).unwrap();
        let partial = if i % 2 == 0 {
            format!("POST /api/v1/allowlist HTTP/1.1\r\nHost: {host}\r\nX-CSRF-")
        } else {
            format!(
                "POST /api/v1/allowlist HTTP/1.1\r\nHost: {host}\r\nX-CSRF-Token: {}\r\nContent-Length: 100000\r\n\r\n{{\"emails\": [",
                web.csrf
            )
        };
        s.write_all(partial.as_bytes()).unwrap();
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));

    // The daemon still approves promptly...
    let start = Instant::now();
    let uid = sb.submit(BOB, &simple_code());
    wait_status(&sb, &web, &uid, "approved");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "approval took {:?}",
        start.elapsed()
    );

    // ...and the API still answers, reads and writes.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(web.get("/health").expect(200), json!({"status": "ok"}));
        assert_eq!(web.get("/api/status").expect(200)["jobs"]["approved"], 1);
        web.get("/api/v1/jobs?status=approved").expect(200);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "requests took {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    web.post("/api/v1/allowlist/add/quick@x.org", None)
        .expect(201);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a POST took {:?}",
        t.elapsed()
    );

    // And SIGTERM still stops it quickly while the slow clients hang on.
    let (took, status) = sigterm(&mut web.daemon);
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        web.daemon.log_text()
    );
    assert!(
        took < Duration::from_secs(3),
        "SIGTERM took {took:?}; log:\n{}",
        web.daemon.log_text()
    );
    drop(stalled);
}

#[test]
fn sigterm_exits_within_three_seconds_with_the_web_server_running() {
    let sb = Sandbox::new();
    let mut web = serve(&sb, &[]);
    // A kept-alive connection from earlier requests, and one idle connection.
    web.get("/api/status").expect(200);
    web.get("/api/v1/jobs").expect(200);
    let idle = TcpStream::connect(("127.0.0.1", web.port)).unwrap();
    let (took, status) = sigterm(&mut web.daemon);
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        web.daemon.log_text()
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}; log:\n{}",
        web.daemon.log_text()
    );
    assert!(
        web.daemon.log_text().contains("stopped"),
        "{}",
        web.daemon.log_text()
    );
    // The port is released.
    assert!(
        TcpListener::bind(("127.0.0.1", web.port)).is_ok(),
        "the port is still taken"
    );
    drop(idle);
}
