//! Asking the running reviewer through its local API, as `syft-reviewer ui` finds it (the address
//! it recorded in the private state folder) and with the API token kept there, so the CLI reads
//! the daemon's index instead of walking the queue itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::durable;

/// Largest answer read (a page of brief entries is far smaller).
const MAX_ANSWER: u64 = 64 << 20;
const CONNECT: Duration = Duration::from_secs(2);
const ANSWER: Duration = Duration::from_secs(30);

/// What asking gave.
pub(crate) enum Asked {
    /// No reviewer's web server is running for this datasite.
    NotRunning,
    /// One is recorded and reachable but the request failed (why, in words).
    Failed(String),
    Answer(Value),
}

/// `GET path_and_query` on the running reviewer's API.
pub(crate) fn get(state: &Path, path_and_query: &str) -> Asked {
    let Some((addr, host)) = address(state) else {
        return Asked::NotRunning;
    };
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, CONNECT) else {
        return Asked::NotRunning;
    };
    let Some(token) = durable::read_capped(&state.join("api-token"), 4096)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
    else {
        return Asked::Failed("the API token cannot be read".into());
    };
    let _ = conn.set_read_timeout(Some(ANSWER));
    let _ = conn.set_write_timeout(Some(ANSWER));
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = conn.write_all(request.as_bytes()) {
        return Asked::Failed(format!("sending the request: {e}"));
    }
    let mut raw = Vec::new();
    if let Err(e) = conn.take(MAX_ANSWER).read_to_end(&mut raw) {
        return Asked::Failed(format!("reading the answer: {e}"));
    }
    parse(&raw)
}

/// The recorded address of the web server, and the Host header it accepts.
fn address(state: &Path) -> Option<(SocketAddr, String)> {
    let doc: Value =
        serde_json::from_slice(&durable::read_capped(&state.join("web.json"), 4096).ok()?).ok()?;
    let host = doc["url"]
        .as_str()?
        .strip_prefix("http://")?
        .split('/')
        .next()?
        .to_string();
    Some((host.parse().ok()?, host))
}

/// An HTTP/1.1 answer with a JSON body (Content-Length framing, as the server sends).
fn parse(raw: &[u8]) -> Asked {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Asked::Failed("the answer has no complete head".into());
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if let Some(n) = length {
        body = body.get(..n).unwrap_or(body);
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Asked::Failed(format!("the answer (HTTP {status}) is not JSON: {e}")),
    };
    if status != 200 {
        let err = value["error"].as_str().unwrap_or("no reason given");
        return Asked::Failed(format!("HTTP {status}: {err}"));
    }
    Asked::Answer(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_their_length_and_refusals_named() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 8\r\n\r\n{\"a\": 1}trailing";
        assert!(matches!(parse(ok), Asked::Answer(v) if v["a"] == 1));
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 17\r\n\r\n{\"error\": \"no!\"}";
        assert!(
            matches!(parse(refused), Asked::Failed(w) if w.contains("403") && w.contains("no!"))
        );
        assert!(matches!(parse(b"HTTP/1.1 200"), Asked::Failed(_)));
    }
}
