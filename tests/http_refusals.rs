//! Bad requests over HTTP: each is refused with a JSON `{error, hint}` and changes nothing on
//! disk, oversize bodies included.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use serde_json::json;

use crate::http::{BOB, MIB, Resp, Settled, Web, ok, raw, read_answer, settled};
use crate::util::*;

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
