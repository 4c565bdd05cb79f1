//! The web server under slow clients and at shutdown: neither decisions nor other requests nor
//! SIGTERM wait for a slow client.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{BOB, WAIT, ok, serve, wait_status};
use crate::util::*;

// ------------------------------------------------------------------------------ robustness

/// Sends SIGTERM and checks that the daemon exits cleanly within three seconds.
#[track_caller]
fn stops_within_three_seconds(d: &mut Daemon) {
    let (took, status) = sigterm(d);
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        d.log_text()
    );
    assert!(
        took < Duration::from_secs(3),
        "SIGTERM took {took:?}; log:\n{}",
        d.log_text()
    );
}

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
        // Counted from the daemon's index, which follows the move a moment after it is on disk.
        assert!(wait_for(
            WAIT,
            || web.get("/api/status").expect(200)["jobs"]["approved"] == 1
        ));
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
    stops_within_three_seconds(&mut web.daemon);
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
    stops_within_three_seconds(&mut web.daemon);
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
