//! Hooks and mail about decisions (`hooks.on_decision`, `notify.smtp`), against the real binary:
//! what a hook receives, that a hanging or failing hook or an unreachable mail server never
//! holds up a decision, and mail delivered to an SMTP server started by the test.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@trusted.example";
const EVE: &str = "eve@stranger.example";
const NO_WEB: [&str; 3] = ["--no-web", "--rescan-secs", "3600"];
const PW_VAR: &str = "SYFT_REVIEWER_TEST_SMTP_PASSWORD";

/// A tree with `config.yaml` written before the first start, and ALICE on the allowlist.
fn sandbox(config: &str) -> Sandbox {
    let sb = Sandbox::new();
    write_config(&sb, config);
    let out = sb.cli(&["allow", "add", ALICE]);
    assert!(out.status.success(), "{}", text(&out));
    sb
}

fn write_config(sb: &Sandbox, config: &str) {
    fs::create_dir_all(sb.app_data()).unwrap();
    fs::write(sb.app_data().join("config.yaml"), config).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts the daemon like `Sandbox::start`, with extra environment variables.
fn start_with_env(sb: &Sandbox, env: &[(&str, &str)]) -> Daemon {
    let log = sb.dir.path().join(format!("daemon-{}.log", new_uid()));
    let mut cmd = sb.cmd();
    cmd.arg("run")
        .args(["--settle-ms", "20"])
        .args(NO_WEB)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(log.with_extension("err")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let d = Daemon {
        child: cmd.spawn().unwrap(),
        log,
    };
    assert!(
        wait_for(Duration::from_secs(10), || d
            .log_text()
            .contains("watching")),
        "the daemon did not start:\n{}",
        d.log_text()
    );
    d
}

#[track_caller]
fn wait_status(sb: &Sandbox, d: &Daemon, uid: &str, status: &str, within: Duration) {
    assert!(
        wait_for(within, || sb.status_of(uid).as_deref() == Some(status)),
        "job {uid} did not reach {status}/ within {within:?} (it is in {:?}); log:\n{}",
        sb.status_of(uid),
        d.log_text()
    );
}

#[track_caller]
fn wait_log(d: &Daemon, within: Duration, what: &str, cond: impl Fn(&str) -> bool) {
    assert!(
        wait_for(within, || cond(&d.log_text())),
        "the log never showed {what}:\n{}",
        d.log_text()
    );
}

#[track_caller]
fn wait_waiting(sb: &Sandbox, d: &Daemon, uid: &str) {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "waiting").is_empty()),
        "job {uid} was never recorded as waiting; log:\n{}",
        d.log_text()
    );
}

/// What a [`recording_hook`] received, by `<uid>-<outcome>`, one JSON object per call.
fn hook_calls(dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = name.split('.').next().unwrap().to_string();
        let text = fs::read_to_string(e.path()).unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("hook input {text:?} is not JSON: {err}"));
        out.entry(key).or_default().push(v);
    }
    out
}

/// A hook that saves its stdin as `<dir>/<uid>-<outcome>.<pid>.json` (whole, by a rename).
fn recording_hook(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "t={d}/.tmp.$$; cat > \"$t\"; mv \"$t\" \"{d}/$SYFT_REVIEWER_UID-$SYFT_REVIEWER_OUTCOME.$$.json\""
    )
}

#[track_caller]
fn check_decision(v: &Value, uid: &str, outcome: &str, actor: &str, method: Option<&str>) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "uid",
            "name",
            "requester",
            "outcome",
            "method",
            "signature",
            "reasons",
            "actor",
            "time"
        ],
        "{v}"
    );
    assert_eq!(v["uid"], uid, "{v}");
    assert_eq!(v["outcome"], outcome, "{v}");
    assert_eq!(v["actor"], actor, "{v}");
    assert_eq!(v["method"].as_str(), method, "{v}");
    assert_eq!(v["name"], "Analysis", "{v}");
    assert_eq!(v["signature"].as_str().map(str::len), Some(64), "{v}");
    assert!(
        v["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    assert!(
        v["time"].as_str().is_some_and(|t| t.starts_with("20")),
        "{v}"
    );
}

// ------------------------------------------------------------------------------------ hooks

#[test]
fn a_hook_gets_each_decision_as_json_on_stdin() {
    let calls = tempfile::tempdir().unwrap();
    let sb = sandbox(&format!(
        "hooks:\n  on_decision: '{}'\n  timeout_seconds: 10\n",
        recording_hook(calls.path())
    ));
    let mut d = sb.start(&NO_WEB);

    // An automatic approval.
    let auto = sb.submit(ALICE, &simple_code());
    wait_status(&sb, &d, &auto, "approved", WAIT);
    let key = format!("{auto}-approved");
    assert!(
        wait_for(WAIT, || hook_calls(calls.path()).contains_key(&key)),
        "no hook call for the approval: {:?}; log:\n{}",
        hook_calls(calls.path()),
        d.log_text()
    );
    let call = &hook_calls(calls.path())[&key];
    assert_eq!(call.len(), 1, "{call:?}");
    check_decision(&call[0], &auto, "approved", "daemon", Some("allowlist"));
    assert_eq!(call[0]["requester"], ALICE);

    // A job that waits for the owner is announced once, even across a restart.
    let waiting = sb.submit(EVE, &simple_code());
    wait_waiting(&sb, &d, &waiting);
    let key = format!("{waiting}-waiting");
    assert!(
        wait_for(WAIT, || hook_calls(calls.path()).contains_key(&key)),
        "no hook call for the waiting job; log:\n{}",
        d.log_text()
    );
    check_decision(
        &hook_calls(calls.path())[&key][0],
        &waiting,
        "waiting",
        "daemon",
        None,
    );
    let (_, status) = terminate(&mut d);
    assert!(status.success(), "{status:?}");
    let d = sb.start(&NO_WEB);
    assert!(
        wait_for(WAIT, || sb.decisions_for(&waiting, "waiting").len() == 2),
        "the restarted daemon did not look at the job again; log:\n{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hook_calls(calls.path())[&key].len(), 1, "announced twice");

    // The owner's verdict from the CLI runs the hook in the CLI's own process.
    let out = sb.cli(&[
        "decide",
        &waiting,
        "reject",
        "--rationale",
        "uses the raw table",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let key = format!("{waiting}-rejected");
    let calls_now = hook_calls(calls.path());
    let call = calls_now
        .get(&key)
        .unwrap_or_else(|| panic!("the CLI did not run the hook before exiting: {calls_now:?}"));
    check_decision(&call[0], &waiting, "rejected", "cli", Some("human"));
    assert!(
        call[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("uses the raw table")),
        "{}",
        call[0]
    );
    assert_eq!(sb.status_of(&waiting).as_deref(), Some("rejected"));
}

#[test]
fn a_verdict_from_the_web_ui_is_answered_before_its_slow_hook_runs() {
    let calls = tempfile::tempdir().unwrap();
    let sb = sandbox(&format!(
        "hooks:\n  on_decision: 'sleep 2; {}'\n",
        recording_hook(calls.path()).replace('\'', "'\\''")
    ));
    let uid = sb.submit(EVE, &simple_code());
    let web = crate::http::serve(&sb, &NO_WEB[1..]);
    wait_waiting(&sb, &web.daemon, &uid);
    let start = Instant::now();
    let r = web.post(
        &format!("/api/v1/jobs/{uid}/decide"),
        Some(
            &serde_json::json!({"verdict": "reject", "rationale": "too broad",
            "signature": cli_signature(&sb, &sb.job_dir("pending", &uid))}),
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "the API waited for the hook: {:?}",
        start.elapsed()
    );
    assert_eq!(sb.status_of(&uid).as_deref(), Some("rejected"));
    let key = format!("{uid}-rejected");
    assert!(
        wait_for(WAIT, || hook_calls(calls.path()).contains_key(&key)),
        "the daemon never ran the hook for the web verdict; log:\n{}",
        web.daemon.log_text()
    );
    check_decision(
        &hook_calls(calls.path())[&key][0],
        &uid,
        "rejected",
        "web",
        Some("human"),
    );
}

#[test]
fn a_cron_run_with_once_runs_its_hooks_before_exiting() {
    let calls = tempfile::tempdir().unwrap();
    let sb = sandbox(&format!(
        "hooks:\n  on_decision: '{}'\n",
        recording_hook(calls.path())
    ));
    let auto = sb.submit(ALICE, &simple_code());
    let waiting = sb.submit(EVE, &simple_code());
    let out = sb.cli(&["run", "--once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sb.status_of(&auto).as_deref(), Some("approved"));
    let got = hook_calls(calls.path());
    check_decision(
        &got[&format!("{auto}-approved")][0],
        &auto,
        "approved",
        "daemon",
        Some("allowlist"),
    );
    check_decision(
        &got[&format!("{waiting}-waiting")][0],
        &waiting,
        "waiting",
        "daemon",
        None,
    );
    // The next run does not announce the same waiting job again.
    let out = sb.cli(&["run", "--once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        hook_calls(calls.path())[&format!("{waiting}-waiting")].len(),
        1
    );
}

#[test]
fn a_hanging_hook_never_delays_decisions_and_is_killed_at_its_timeout() {
    let marker = tempfile::tempdir().unwrap();
    let late = marker.path().join("survived");
    // The hook's background child would leave a marker if the process group were not killed.
    let sb = sandbox(&format!(
        "hooks:\n  on_decision: 'echo hook-is-stuck >&2; (sleep 9; touch {}) & sleep 60'\n  timeout_seconds: 5\n",
        late.display()
    ));
    let mut d = sb.start(&NO_WEB);
    let start = Instant::now();
    let jobs: Vec<String> = (0..3).map(|_| sb.submit(ALICE, &simple_code())).collect();
    for uid in &jobs {
        wait_status(&sb, &d, uid, "approved", Duration::from_secs(10));
    }
    // Run one after another, these hooks take 15 s; the decisions do not wait for them.
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "decisions waited for the hooks: {took:?}; log:\n{}",
        d.log_text()
    );
    wait_log(&d, WAIT, "the hook's timeout", |l| {
        l.contains("hooks.on_decision failed for job")
            && l.contains("timed out after 5 s and was killed")
            && l.contains("hook-is-stuck")
    });
    // Later decisions are still prompt while hooks are queued behind the stuck one.
    let more = sb.submit(ALICE, &simple_code());
    wait_status(&sb, &d, &more, "approved", Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !late.exists(),
        "the hook's background child outlived its timeout"
    );
    // Stopping kills the hook in flight and drops the queued ones.
    let (took, status) = terminate(&mut d);
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4), "stopping took {took:?}");
}

#[test]
fn a_failing_hook_is_logged_and_changes_nothing() {
    let sb = sandbox(
        "hooks:\n  on_decision: 'cat > /dev/null; echo \"hook says no\" >&2; exit 1'\n  timeout_seconds: 5\n",
    );
    let d = sb.start(&NO_WEB);
    let uid = sb.submit(ALICE, &simple_code());
    wait_status(&sb, &d, &uid, "approved", Duration::from_secs(5));
    wait_log(&d, WAIT, "the hook's failure", |l| {
        l.contains(&format!(
            "hooks.on_decision failed for job {uid} (approved)"
        )) && l.contains("exit status: 1")
            && l.contains("hook says no")
            && l.contains("the decision stands")
    });
    assert_eq!(sb.decisions_for(&uid, "approved").len(), 1);

    // From the CLI the hook runs in the CLI's process, within its timeout: the verdict stands.
    write_config(
        &sb,
        "hooks:\n  on_decision: 'echo stuck-in-cli >&2; sleep 60'\n  timeout_seconds: 1\n",
    );
    let waiting = sb.submit(EVE, &simple_code());
    wait_waiting(&sb, &d, &waiting);
    let start = Instant::now();
    let out = sb.cli(&["decide", &waiting, "reject", "--rationale", "no"]);
    let took = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(took < Duration::from_secs(5), "the CLI took {took:?}");
    assert_eq!(sb.status_of(&waiting).as_deref(), Some("rejected"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hooks.on_decision failed") && err.contains("stuck-in-cli"),
        "{err}"
    );
}

// ------------------------------------------------------------------------------------- mail

#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    rcpts: Vec<String>,
    data: String,
    auth: Option<(String, String)>,
}

impl Mail {
    /// A header's value, folded lines joined.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.replace("=\r\n", ""))
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Seen {
    mails: Vec<Mail>,
    commands: Vec<String>,
    /// Connections whose client started a TLS handshake (first byte 0x16).
    tls_hellos: usize,
    connections: usize,
}

/// A minimal ESMTP server on 127.0.0.1: EHLO/HELO, AUTH PLAIN/LOGIN (any password accepted and
/// recorded), MAIL, RCPT, DATA, RSET, NOOP, QUIT, and optionally an advertised STARTTLS (after
/// which it records the client's TLS hello and hangs up: it speaks no TLS).
struct SmtpServer {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl SmtpServer {
    fn start(starttls: bool) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || serve(stream, &s, starttls));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SmtpServer { port, seen, stop }
    }

    fn mails(&self) -> Vec<Mail> {
        self.seen.lock().unwrap().mails.clone()
    }

    fn wait_mail(&self, d: Option<&Daemon>, what: &str, f: impl Fn(&Mail) -> bool) -> Mail {
        let mut found = None;
        wait_for(WAIT, || {
            found = self.mails().into_iter().find(|m| f(m));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no mail {what}; got {:#?}; log:\n{}",
                self.mails(),
                d.map(Daemon::log_text).unwrap_or_default()
            )
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                return Some(line.trim_end_matches(['\r', '\n']).to_string());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn say(&mut self, s: &str) {
        let _ = self.stream.write_all(s.as_bytes());
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Seen>, starttls: bool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    seen.lock().unwrap().connections += 1;
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    c.say("220 test.local ESMTP ready\r\n");
    if !c.fill() {
        return;
    }
    if c.buf.first() == Some(&0x16) {
        seen.lock().unwrap().tls_hellos += 1;
        return;
    }
    let mut auth: Option<(String, String)> = None;
    let mut mail: Option<Mail> = None;
    while let Some(line) = c.line() {
        seen.lock().unwrap().commands.push(line.clone());
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let tls = if starttls { "250-STARTTLS\r\n" } else { "" };
            c.say(&format!(
                "250-test.local\r\n250-AUTH PLAIN LOGIN\r\n{tls}250 8BITMIME\r\n"
            ));
        } else if upper.starts_with("HELO") {
            c.say("250 test.local\r\n");
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = line.split_whitespace().nth(2).map(str::to_owned);
            let b64 = match initial {
                Some(b) => b,
                None => {
                    c.say("334 \r\n");
                    c.line().unwrap_or_default()
                }
            };
            let raw = unbase64(&b64);
            let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
            if parts.len() == 3 {
                auth = Some((
                    String::from_utf8_lossy(parts[1]).into_owned(),
                    String::from_utf8_lossy(parts[2]).into_owned(),
                ));
            }
            c.say("235 2.7.0 Authentication successful\r\n");
        } else if upper.starts_with("AUTH LOGIN") {
            c.say("334 VXNlcm5hbWU6\r\n");
            let user = unbase64(&c.line().unwrap_or_default());
            c.say("334 UGFzc3dvcmQ6\r\n");
            let pass = unbase64(&c.line().unwrap_or_default());
            auth = Some((
                String::from_utf8_lossy(&user).into_owned(),
                String::from_utf8_lossy(&pass).into_owned(),
            ));
            c.say("235 2.7.0 Authentication successful\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            mail = Some(Mail {
                from: address(&line),
                auth: auth.clone(),
                ..Mail::default()
            });
            c.say("250 2.1.0 Ok\r\n");
        } else if upper.starts_with("RCPT TO:") {
            if let Some(m) = mail.as_mut() {
                m.rcpts.push(address(&line));
            }
            c.say("250 2.1.5 Ok\r\n");
        } else if upper == "DATA" {
            c.say("354 End data with <CR><LF>.<CR><LF>\r\n");
            let mut data = String::new();
            while let Some(l) = c.line() {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            if let Some(mut m) = mail.take() {
                m.data = data;
                seen.lock().unwrap().mails.push(m);
            }
            c.say("250 2.0.0 Ok: queued\r\n");
        } else if upper == "STARTTLS" {
            c.say("220 2.0.0 Ready to start TLS\r\n");
            if c.buf.is_empty() {
                c.fill();
            }
            if c.buf.first() == Some(&0x16) {
                seen.lock().unwrap().tls_hellos += 1;
            }
            return;
        } else if upper == "QUIT" {
            c.say("221 2.0.0 Bye\r\n");
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            c.say("250 2.0.0 Ok\r\n");
        } else {
            c.say("502 5.5.2 Command not recognized\r\n");
        }
    }
}

/// `MAIL FROM:<a@b> SIZE=1` -> `a@b`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

fn unbase64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.trim().bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == b) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn smtp_config(port: u16, security: &str, extra: &str) -> String {
    format!(
        "notify:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    security: {security}\n    from: reviewer@example.org\n{extra}"
    )
}

#[test]
fn waiting_jobs_and_decisions_are_mailed_with_credentials() {
    let server = SmtpServer::start(false);
    let sb = sandbox(&smtp_config(
        server.port,
        "none",
        &format!("    username: mailer\n    password_env: {PW_VAR}\n"),
    ));
    let env = [(PW_VAR, "s3cret pass")];
    let mut d = start_with_env(&sb, &env);

    // A job waiting for the owner: one mail, to the owner, with what to do.
    let waiting = sb.submit(EVE, &simple_code());
    let m = server.wait_mail(Some(&d), "for the waiting job", |m| {
        m.data.contains(&waiting)
    });
    assert_eq!(
        m.header("Subject").as_deref(),
        Some(format!("[syft-reviewer] job \"Analysis\" from {EVE}: waiting for you").as_str()),
        "{}",
        m.data
    );
    assert_eq!(m.rcpts, [OWNER]);
    assert_eq!(m.from, "reviewer@example.org");
    assert!(m.header("To").unwrap().contains(OWNER), "{}", m.data);
    assert_eq!(
        m.auth,
        Some(("mailer".to_string(), "s3cret pass".to_string())),
        "the credentials were not sent"
    );
    let body = m.body();
    assert!(body.contains(&format!("uid:       {waiting}")), "{body}");
    assert!(
        body.contains(&format!(
            "syft-reviewer decide {waiting} approve --signature"
        )),
        "{body}"
    );

    // An automatic approval.
    let auto = sb.submit(ALICE, &simple_code());
    wait_status(&sb, &d, &auto, "approved", WAIT);
    let m = server.wait_mail(Some(&d), "for the approval", |m| m.data.contains(&auto));
    assert_eq!(
        m.header("Subject").as_deref(),
        Some(format!("[syft-reviewer] job \"Analysis\" from {ALICE}: approved").as_str())
    );
    assert!(
        m.body().contains("by:        daemon (allowlist)"),
        "{}",
        m.body()
    );
    wait_log(&d, WAIT, "the delivery", |l| {
        l.contains(&format!("mailed {OWNER} about job {auto}"))
    });

    // Once per job: a restart does not mail the waiting job again.
    let (_, status) = terminate(&mut d);
    assert!(status.success(), "{status:?}");
    let d = start_with_env(&sb, &env);
    assert!(wait_for(WAIT, || sb
        .decisions_for(&waiting, "waiting")
        .len()
        == 2));
    std::thread::sleep(Duration::from_millis(800));
    let about_waiting = |s: &SmtpServer| {
        s.mails()
            .iter()
            .filter(|m| m.data.contains(&waiting))
            .count()
    };
    assert_eq!(about_waiting(&server), 1, "mailed twice");

    // The owner's verdict from the CLI is mailed from the CLI, to `to` when it is set.
    let mut cfg = smtp_config(
        server.port,
        "none",
        &format!("    username: mailer\n    password_env: {PW_VAR}\n"),
    );
    cfg.push_str("    to: inbox@owner.example\n");
    write_config(&sb, &cfg);
    let out = sb
        .cmd()
        .args([
            "decide",
            &waiting,
            "request-changes",
            "--rationale",
            "aggregate first",
        ])
        .env(PW_VAR, "s3cret pass")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let m = server.wait_mail(Some(&d), "for the CLI verdict", |m| {
        m.data.contains(&waiting) && m.data.contains("changes requested")
    });
    assert_eq!(m.rcpts, ["inbox@owner.example"]);
    assert_eq!(
        m.header("Subject").as_deref(),
        Some(format!("[syft-reviewer] job \"Analysis\" from {EVE}: changes requested").as_str())
    );
    assert!(m.body().contains("aggregate first"), "{}", m.body());
    assert!(m.body().contains("by:        cli (human)"), "{}", m.body());
}

#[test]
fn an_unreachable_smtp_server_never_blocks_decisions_and_is_retried() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sb = sandbox(&smtp_config(port, "none", ""));
    let d = sb.start(&NO_WEB);
    let start = Instant::now();
    let jobs: Vec<String> = (0..3).map(|_| sb.submit(ALICE, &simple_code())).collect();
    for uid in &jobs {
        wait_status(&sb, &d, uid, "approved", Duration::from_secs(10));
    }
    // Were they waiting for the mail, three approvals would take 9 s of retries.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "decisions waited for the mail: {:?}",
        start.elapsed()
    );
    let at = format!("SMTP server 127.0.0.1:{port}");
    let first = &jobs[0];
    wait_log(&d, WAIT, "the retries and the final failure", |l| {
        l.contains(&format!(
            "could not send mail about job {first} through {at} (attempt 1 of 3)"
        )) && l.contains(&format!(
            "could not send mail about job {first} through {at} (attempt 2 of 3)"
        )) && l.contains(&format!(
            "could not send mail about job {first} to {OWNER} through {at}"
        )) && l.contains("gave up after 3 attempt(s)")
    });
    let log = d.log_text();
    assert!(
        log.to_lowercase().contains("connection refused"),
        "the error should be named: {log}"
    );
    // The daemon keeps deciding while mail is being retried.
    let late = sb.submit(ALICE, &simple_code());
    wait_status(&sb, &d, &late, "approved", Duration::from_secs(2));
}

/// Runs `decide ... reject` from the CLI (which sends its mail itself) and returns its output.
fn reject_from_cli(sb: &Sandbox) -> (String, Output) {
    let uid = sb.submit(EVE, &simple_code());
    let out = sb.cli(&["decide", &uid, "reject", "--rationale", "no"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sb.status_of(&uid).as_deref(), Some("rejected"));
    (uid, out)
}

#[test]
fn starttls_and_implicit_tls_never_fall_back_to_plain_text() {
    // STARTTLS offered: the client upgrades before anything else (and this server cannot).
    let server = SmtpServer::start(true);
    let sb = sandbox(&smtp_config(
        server.port,
        "starttls",
        &format!("    username: mailer\n    password_env: {PW_VAR}\n"),
    ));
    let out = sb
        .cmd()
        .args([
            "decide",
            &sb.submit(EVE, &simple_code()),
            "reject",
            "--rationale",
            "no",
        ])
        .env(PW_VAR, "pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let seen = server.seen.lock().unwrap();
    assert!(
        seen.commands.iter().any(|c| c == "STARTTLS"),
        "{:?}",
        seen.commands
    );
    assert!(seen.tls_hellos >= 1, "no TLS handshake after STARTTLS");
    assert!(
        !seen
            .commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "credentials or mail went out in plain text: {:?}",
        seen.commands
    );
    assert!(seen.mails.is_empty());
    drop(seen);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not send mail about job"), "{err}");

    // STARTTLS required but not offered: nothing is sent in plain text.
    let plain = SmtpServer::start(false);
    write_config(&sb, &smtp_config(plain.port, "starttls", ""));
    reject_from_cli(&sb);
    let seen = plain.seen.lock().unwrap();
    assert!(seen.connections >= 1);
    assert!(
        !seen.commands.iter().any(|c| c.starts_with("MAIL")),
        "{:?}",
        seen.commands
    );
    drop(seen);

    // Implicit TLS: the client's first bytes are a TLS handshake.
    let tls = SmtpServer::start(false);
    write_config(&sb, &smtp_config(tls.port, "tls", ""));
    reject_from_cli(&sb);
    let seen = tls.seen.lock().unwrap();
    assert!(seen.tls_hellos >= 1, "{seen:?}");
    assert!(seen.commands.is_empty(), "{:?}", seen.commands);
}

/// The CLI's `signature JOB_DIR`, which a verdict through the API must name.
fn cli_signature(sb: &Sandbox, dir: &Path) -> String {
    let out = sb.cli(&["signature", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
