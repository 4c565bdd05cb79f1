//! Attacks on the web server of the real binary: requests that declare huge or endless bodies on
//! every refusal path and on accepted ones, a flood of idle connections under a low open-file
//! limit, another local user driving the API, a browser without a login where the uid cannot
//! be checked, and verdicts that do not name what was reviewed. Each asserts what a user would
//! notice: the answer, the connection closed, the daemon alive and nothing changed on disk.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{Resp, csrf_from_page, free_port, raw, serve};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const EVE: &str = "eve@evil.example";
const HUGE: &str = "Content-Length: 1000000000000";

/// Reads one answer (head and `Content-Length` body) from `s`; None if the connection ends
/// first.
fn read_one(s: &mut TcpStream) -> Option<Resp> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: std::collections::BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let n: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = buf[head_end..].to_vec();
    while body.len() < n {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => body.extend_from_slice(&chunk[..k]),
        }
    }
    body.truncate(n);
    Some(Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&body).to_string(),
    })
}

/// True when the server has closed the connection (end of file or a reset) within 5 s.
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => return false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    false
}

/// The daemon still runs and a fresh connection gets `/health`.
#[track_caller]
fn alive(d: &mut Daemon, port: u16, after: &str) {
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon died after {after}; log:\n{}",
        d.log_text()
    );
    let r = raw(
        port,
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "/health after {after}: {r:?}");
}

/// Sends `head` (ending in the blank line); with `endless`, then streams chunks from another
/// thread until the server stops reading. Returns the answer and whether it closed after it.
fn attack(port: u16, head: &str, endless: bool) -> (Option<Resp>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let writer = endless.then(|| {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
            // At most 256 MiB: enough to see the server stop reading, never endless here.
            for _ in 0..16 * 1024 {
                if w.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
        })
    });
    let answer = read_one(&mut s);
    let is_closed = closed(&mut s);
    let _ = s.shutdown(Shutdown::Both);
    if let Some(w) = writer {
        w.join().unwrap();
    }
    (answer, is_closed)
}

#[test]
fn huge_and_endless_bodies_are_refused_unread_on_every_path_and_the_daemon_lives() {
    let sb = Sandbox::new();
    let mut web = serve(&sb, &[]);
    let (port, host, csrf) = (web.port, web.host(), web.csrf.clone());
    let add = format!("/api/v1/allowlist/add/{EVE}");
    let many_headers: String = (0..80).map(|i| format!("X-Pad-{i}: {i}\r\n")).collect();
    // (what, request line and headers without the length, expected status)
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "a foreign Host",
            "GET /health HTTP/1.1\r\nHost: evil.example\r\n".into(),
            403,
        ),
        (
            "no CSRF token",
            format!("POST {add} HTTP/1.1\r\nHost: {host}\r\n"),
            403,
        ),
        (
            "a foreign Origin",
            format!(
                "POST {add} HTTP/1.1\r\nHost: {host}\r\nX-CSRF-Token: {csrf}\r\nOrigin: http://evil.example\r\n"
            ),
            403,
        ),
        (
            "an unsupported method",
            format!("PUT /api/status HTTP/1.1\r\nHost: {host}\r\n"),
            405,
        ),
        (
            "too many headers",
            format!("GET /health HTTP/1.1\r\nHost: {host}\r\n{many_headers}"),
            431,
        ),
        (
            "an accepted POST",
            format!(
                "POST /api/v1/allowlist HTTP/1.1\r\nHost: {host}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n"
            ),
            413,
        ),
        (
            "an accepted GET",
            format!("GET /health HTTP/1.1\r\nHost: {host}\r\n"),
            413,
        ),
    ];
    unchanged(&sb, "the attacks", || {
        for (what, start, status) in &cases {
            for endless in [false, true] {
                let length = if endless {
                    "Transfer-Encoding: chunked"
                } else {
                    HUGE
                };
                let label = format!("{what} with {length}");
                let (answer, is_closed) =
                    attack(port, &format!("{start}{length}\r\n\r\n"), endless);
                let answer = answer.unwrap_or_else(|| {
                    panic!("{label}: no answer; log:\n{}", web.daemon.log_text())
                });
                assert_eq!(answer.status, *status, "{label}: {answer:?}");
                answer.expect(*status);
                assert_eq!(
                    answer.headers.get("connection").map(String::as_str),
                    Some("close"),
                    "{label}: {answer:?}"
                );
                assert!(is_closed, "{label}: the connection stayed open");
                alive(&mut web.daemon, port, &label);
            }
        }
    });
    // A malformed head, and a chunk size that overflows, are refused the same way.
    for (what, req) in [
        (
            "a malformed header",
            format!("GET /health HTTP/1.1\r\nHost: {host}\r\nno colon here\r\n{HUGE}\r\n\r\n"),
        ),
        (
            "an overflowing chunk size",
            format!(
                "POST /api/v1/allowlist HTTP/1.1\r\nHost: {host}\r\nX-CSRF-Token: {csrf}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"
            ),
        ),
        (
            "two different lengths",
            format!(
                "GET /health HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            ),
        ),
    ] {
        let (answer, is_closed) = attack(port, &req, false);
        let answer = answer.unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(matches!(answer.status, 400 | 413), "{what}: {answer:?}");
        assert!(is_closed, "{what}: the connection stayed open");
        alive(&mut web.daemon, port, what);
    }
    // Good requests are still kept alive, and HEAD has no body.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let get = format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n");
    for i in 0..2 {
        s.write_all(get.as_bytes()).unwrap();
        let r = read_one(&mut s).unwrap_or_else(|| panic!("kept-alive answer {i} missing"));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.headers["connection"], "keep-alive", "{r:?}");
    }
    s.write_all(
        format!("HEAD /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.starts_with("HTTP/1.1 200") && rest.ends_with("\r\n\r\n"),
        "HEAD: {rest:?}"
    );
    assert!(!sb.allowlist_dir().join("eve_at_evil_dot_example").exists());
}

/// Starts the daemon's web server on a free port with the open-file limit set to
/// `soft`/`hard` before it starts; returns it once `/health` answers.
fn start_limited(sb: &Sandbox, soft: u64, hard: u64) -> (Daemon, u16) {
    let port = free_port();
    let log = sb.dir.path().join(format!("limited-{soft}.log"));
    let mut cmd = sb.cmd();
    cmd.args(["run", "--settle-ms", "20", "--port", &port.to_string()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches nothing shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft, hard)
                .map_err(std::io::Error::from)
        });
    }
    let d = Daemon {
        child: cmd.spawn().unwrap(),
        log,
    };
    let up = wait_for(WAIT, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            s.write_all(
                format!(
                    "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .is_ok()
                && read_one(&mut s).is_some_and(|r| r.status == 200)
        })
    });
    assert!(up, "the web server never answered; log:\n{}", d.log_text());
    (d, port)
}

#[test]
fn a_flood_of_idle_connections_never_takes_the_listener_down() {
    let sb = Sandbox::new();
    let (mut d, port) = start_limited(&sb, 1024, 1024);
    // This process needs descriptors for all of them.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= 2048,
        "the open-file hard limit {hard} is too low for this test"
    );
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    // More idle connections than the daemon has descriptors.
    let mut idle = Vec::new();
    for _ in 0..1500 {
        if let Ok(s) = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(5),
        ) {
            idle.push(s);
        }
    }
    assert!(
        idle.len() > 1024,
        "only {} connections could be opened: the listener stopped accepting",
        idle.len()
    );
    // A fresh request is answered during the flood (an idle connection makes room)...
    alive(&mut d, port, "1500 idle connections");
    let log = d.log_text();
    assert!(
        log.contains("connections are open (the limit)"),
        "the log does not name the connection limit:\n{log}"
    );
    drop(idle);
    // ...and after it, repeatedly: the listener never died.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..20 {
        alive(&mut d, port, &format!("the flood ended ({i})"));
    }
    let log = d.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one_at_start() {
    let sb = Sandbox::new();
    let (mut d, port) = start_limited(&sb, 256, 4096);
    wait_for(WAIT, || d.log_text().contains("web UI at"));
    let log = d.log_text();
    assert!(
        log.contains("raised the open-file limit from 256 to 4096"),
        "{log}"
    );
    assert!(log.contains("up to 512 connections"), "{log}");
    alive(&mut d, port, "start");
}

// ------------------------------------------------------------------------------ other users

/// A real second local account, removed on drop (also when the test fails).
struct TempUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TempUser {
    fn create() -> TempUser {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test creates a second local user with useradd and must run as root (CI does)"
        );
        let name = format!("sr{}", std::process::id());
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .output()
            .expect("useradd is needed to create a second local user");
        assert!(
            out.status.success(),
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // From here on the account is removed whatever happens.
        let mut user = TempUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        user.uid = id("-u");
        user.gid = id("-g");
        assert_ne!(user.uid, 0, "the new user {name} has uid 0");
        user
    }

    /// `curl` run as this user: the status and body of the answer.
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new("/usr/bin/curl")
            .args(["-s", "-i", "--max-time", "10"])
            .args(args)
            .uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .output()
            .expect("curl is needed to send requests as another user");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("curl {args:?} as {}: no answer: {out:?}", self.name));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn wait_waiting(sb: &Sandbox, d: &Daemon, uid: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "waiting").is_empty()),
        "job {uid} never waited for the owner; log:\n{}",
        d.log_text()
    );
    settle(sb);
}

fn signature(sb: &Sandbox, uid: &str) -> String {
    let dir = sb.job_dir("pending", uid);
    let out = sb.cli(&["signature", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn another_local_user_can_neither_read_nor_change_anything() {
    let user = TempUser::create();
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &[]);
    wait_waiting(&sb, &web.daemon, &job);
    let sig = signature(&sb, &job);
    let base = web.base();
    let csrf = format!("X-CSRF-Token: {}", web.csrf);
    unchanged(&sb, "requests from another local user", || {
        for path in [
            "/",
            "/app.js",
            "/metrics",
            "/api/v1/allowlist",
            "/api/v1/jobs",
            "/api/status",
        ] {
            let (status, body) = user.curl(&[&format!("{base}{path}")]);
            assert_eq!(status, 403, "GET {path} as {}: {body}", user.name);
            assert!(body.contains("uid"), "GET {path}: {body}");
        }
        // The page's CSRF token is out of reach; even with it (leaked) nothing changes.
        let (status, body) = user.curl(&[
            "-X",
            "POST",
            "-H",
            &csrf,
            &format!("{base}/api/v1/allowlist/add/mallory@evil.example"),
        ]);
        assert_eq!(status, 403, "{body}");
        let decide = json!({"verdict": "approve", "signature": sig}).to_string();
        let (status, body) = user.curl(&[
            "-X",
            "POST",
            "-H",
            &csrf,
            "-H",
            "Content-Type: application/json",
            "--data",
            &decide,
            &format!("{base}/api/v1/jobs/{job}/decide"),
        ]);
        assert_eq!(status, 403, "{body}");
    });
    assert_eq!(sb.status_of(&job).as_deref(), Some("pending"));
    // /health stays open: it says nothing but "ok".
    assert_eq!(user.curl(&[&format!("{base}/health")]).0, 200);
    // Whoever holds the API token (readable only by the owner) is trusted, as scripts are.
    let bearer = format!("Authorization: Bearer {}", web.token);
    assert_eq!(
        user.curl(&["-H", &bearer, &format!("{base}/api/v1/allowlist")])
            .0,
        200
    );
    // The owner needs nothing extra.
    web.get("/api/v1/allowlist").expect(200);
    web.post("/api/v1/allowlist/add/carol@lab.example", None)
        .expect(201);
    let out = sb.cli(&["ui"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{base}/")
    );
}

/// One request on a fresh connection, with exactly these extra headers.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(port, "GET", path, headers)
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    raw(
        port,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

#[test]
fn beyond_loopback_a_browser_needs_the_one_time_login_link() {
    let sb = Sandbox::new();
    let port = free_port();
    let d = sb.start(&["--port", &port.to_string(), "--bind", "0.0.0.0"]);
    assert!(
        wait_for(WAIT, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "no web server; log:\n{}",
        d.log_text()
    );
    assert_eq!(get(port, "/health", &[]).status, 200);
    // Without a session nothing is served, not even to the owner's own uid.
    for path in ["/", "/api/v1/allowlist", "/metrics"] {
        let r = get(port, path, &[]);
        let v = r.expect(403);
        assert!(
            v["hint"].as_str().unwrap().contains("syft-reviewer ui"),
            "{v}"
        );
    }
    assert_eq!(get(port, "/login?token=00", &[]).status, 403);

    let out = sb.cli(&["ui"]);
    assert!(out.status.success(), "{out:?}");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let prefix = format!("http://127.0.0.1:{port}/login?token=");
    assert!(link.starts_with(&prefix), "{link}");
    let login_dir = sb.state().join("login");
    assert_eq!(
        std::fs::metadata(&login_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let path = &link[format!("http://127.0.0.1:{port}").len()..];
    let r = get(port, path, &[]);
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.headers["location"], "/");
    let set = &r.headers["set-cookie"];
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    // The link is spent.
    assert_eq!(get(port, path, &[]).status, 403);
    assert_eq!(
        std::fs::read_dir(&login_dir).unwrap().count(),
        0,
        "the used token file is still there"
    );

    // The cookie opens the page and, with the page's CSRF token, the API.
    let page = get(port, "/", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = csrf_from_page(&page.text);
    get(port, "/api/v1/allowlist", &[("Cookie", &cookie)]).expect(200);
    let add = "/api/v1/allowlist/add/carol@lab.example";
    request(
        port,
        "POST",
        add,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
    )
    .expect(201);
    assert!(
        sb.allowlist_dir()
            .join("carol_at_lab_dot_example")
            .is_file()
    );
    unchanged(&sb, "requests without a valid session", || {
        let bob = "/api/v1/allowlist/add/bob@x.org";
        request(port, "POST", bob, &[("X-CSRF-Token", &csrf)]).expect(403);
        let forged = format!("{}=x{}", cookie.split('=').next().unwrap(), "0".repeat(63));
        request(
            port,
            "POST",
            bob,
            &[("Cookie", &forged), ("X-CSRF-Token", &csrf)],
        )
        .expect(403);
    });

    // An expired link is refused too.
    use sha2::Digest;
    let token = "ab".repeat(32);
    let name = format!("{:x}", sha2::Sha256::digest(token.as_bytes()));
    std::fs::write(login_dir.join(name), "1\n").unwrap();
    assert_eq!(get(port, &format!("/login?token={token}"), &[]).status, 403);

    // Scripts keep using the API token.
    let token = std::fs::read_to_string(sb.state().join("api-token")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    get(port, "/api/v1/allowlist", &[("Authorization", &bearer)]).expect(200);
}

// ------------------------------------------------------------------------------ verdicts

fn mcp_decide(sb: &Sandbox, args: Value) -> Value {
    let mut child = sb
        .cmd()
        .arg("mcp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "approvals.decide", "arguments": args}});
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{call}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))["result"]
        .clone()
}

#[test]
fn a_verdict_without_the_reviewed_signature_is_refused_by_the_api_and_mcp() {
    let sb = Sandbox::new();
    let job = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &[]);
    wait_waiting(&sb, &web.daemon, &job);
    let path = format!("/api/v1/jobs/{job}/decide");
    unchanged(&sb, "verdicts without the signature", || {
        for body in [
            json!({"verdict": "approve"}),
            json!({"verdict": "approve", "signature": ""}),
            json!({"verdict": "reject", "rationale": "no"}),
        ] {
            let v = web.post(&path, Some(&body)).expect(400);
            assert!(
                v["error"].as_str().unwrap().contains("signature"),
                "{body}: {v}"
            );
        }
        let v = web
            .post(
                &path,
                Some(&json!({"verdict": "approve", "signature": "ab".repeat(32)})),
            )
            .expect(409);
        assert!(v["error"].as_str().unwrap().contains("changed"), "{v}");
    });
    // The MCP call is audited (as every call is) but decides nothing.
    let r = mcp_decide(&sb, json!({"uid": job, "verdict": "approve"}));
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        r["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{r}"
    );
    settle(&sb);
    assert_eq!(sb.status_of(&job).as_deref(), Some("pending"));
    assert!(sb.decisions_for(&job, "approved").is_empty());
    // With what was reviewed it goes through.
    let sig = signature(&sb, &job);
    web.post(
        &path,
        Some(&json!({"verdict": "approve", "signature": sig})),
    )
    .expect(200);
    assert_eq!(sb.status_of(&job).as_deref(), Some("approved"));
}
