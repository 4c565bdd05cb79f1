//! Asking the running reviewer through its local API, as `syft-reviewer ui` finds it (the address
//! it recorded in the private state folder) and with the API token kept there, so the CLI and the
//! MCP server read the daemon's index instead of walking the queue themselves: the transport
//! ([`get`]) and the questions they ask (a page, every entry a listing selects).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use chrono::NaiveDateTime;

use crate::durable;
use crate::queue::metadata;
use crate::service::bulk;
use crate::service::jobs::Source;
use crate::service::select::{self, Chosen};

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

/// `GET path_and_query` on the running reviewer's API: `Ok(None)` when no reviewer runs,
/// `Err` (why, in words) when one runs but could not answer.
pub(crate) fn ask(state: &Path, path_and_query: &str) -> Result<Option<Value>, String> {
    match get(state, path_and_query) {
        Asked::NotRunning => Ok(None),
        Asked::Failed(why) => Err(why),
        Asked::Answer(v) => Ok(Some(v)),
    }
}

/// Every index entry (`view=brief`) that the listing `query` (e.g. `status=pending&sender=x`)
/// selects, page after page, handed to `each` one at a time so that only what the caller keeps
/// is held. `Ok(false)` when no reviewer runs (or its index is not built yet); `Err` (why) when
/// one runs but could not answer.
pub(crate) fn each_entry(
    state: &Path,
    query: &str,
    mut each: impl FnMut(&Value),
) -> Result<bool, String> {
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0usize;
    loop {
        let path = format!(
            "/api/v1/jobs?{query}&view=brief&offset={offset}&limit={}",
            crate::service::jobs::MAX_PAGE
        );
        let page = match get(state, &path) {
            Asked::NotRunning if offset == 0 => return Ok(false),
            Asked::NotRunning => return Err("it stopped answering".into()),
            Asked::Failed(why) => return Err(why),
            Asked::Answer(v) => v,
        };
        // A reviewer whose index is not built yet would read the whole folder for every page:
        // reading it once here is cheaper.
        if offset == 0 && page["source"] != "index" {
            return Ok(false);
        }
        let got = page["jobs"].as_array().map_or(&[][..], Vec::as_slice);
        let total = page["total"].as_u64().unwrap_or(0);
        // Jobs that moved between pages would shift the offsets: each is handed over once.
        for r in got {
            if seen.insert(r["uid"].as_str().unwrap_or("").to_string()) {
                each(r);
            }
        }
        offset = offset.saturating_add(got.len());
        if got.is_empty() || offset as u64 >= total {
            return Ok(true);
        }
    }
}

/// The pending jobs a bulk filter selects, from the running reviewer's index (its sender and
/// name filters; ages and `flagged` from each entry): `Ok(None)` when no reviewer runs.
pub(crate) fn chosen(state: &Path, f: &bulk::Filter) -> Result<Option<Chosen>, String> {
    let q = query(&[
        ("status", "pending"),
        ("sender", f.sender.as_deref().unwrap_or("")),
        ("name", f.name.as_deref().unwrap_or("")),
    ]);
    let (since, until) = select::window(f, metadata::now_naive());
    let mut jobs = Vec::new();
    let running = each_entry(state, &q, |r| {
        let created = r["created_at"].as_str().and_then(metadata::parse_naive);
        let aged = |bound: Option<NaiveDateTime>,
                    ok: fn(&NaiveDateTime, &NaiveDateTime) -> bool| {
            bound.is_none_or(|b| created.is_some_and(|c| ok(&c, &b)))
        };
        let keep = aged(since, |c, b| c >= b)
            && aged(until, |c, b| c <= b)
            && (!f.flagged || r["flagged"] == true);
        if keep && let Some(uid) = r["uid"].as_str() {
            let sender = r["requester"].as_str().unwrap_or("").to_lowercase();
            jobs.push((uid.to_string(), sender));
        }
    })?;
    Ok(running.then_some(Chosen {
        jobs,
        flagged_known: true,
        source: Source::Index,
    }))
}

/// A query string of `pairs` (values percent-encoded; empty values left out).
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.finish()
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

    #[test]
    fn query_values_are_escaped_and_empty_ones_left_out() {
        let q = query(&[("status", "pending"), ("sender", "a b&c=%+é"), ("name", "")]);
        assert_eq!(q, "status=pending&sender=a+b%26c%3D%25%2B%C3%A9");
    }
}
