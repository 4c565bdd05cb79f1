//! The `page` scenario: what one `GET /api/v1/jobs?limit=50` costs with a flood of jobs from
//! unknown senders waiting in `pending/` (100,000; 2,000 with `--quick`), while they arrive and
//! once the daemon has reviewed them all: the first page and a far one, with and without a
//! sender filter (one sender in a hundred matches), and the daemon's memory.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::{Engine, start, sync_fs, wait_health};
use super::{JobKind, Percentiles, build_jobs, free_port, loadavg, small_job, staging};
use crate::util::Sandbox;

const FLOOD_SENDER: &str = "flood@junk.example";
const RARE_SENDER: &str = "rare.sender@junk.example";
/// Requests of each query measured once the flood is reviewed.
const AFTER_ROUNDS: usize = 30;

pub(crate) fn scenario(quick: bool) -> String {
    let n: usize = if quick { 2_000 } else { 100_000 };
    let rare = n / 100;
    eprintln!("== page: building {n} jobs from unknown senders ({rare} from a second one)");
    let sb = Sandbox::new();
    let flood = JobKind {
        from: FLOOD_SENDER,
        method: "none",
        ..small_job()
    };
    let rare_kind = JobKind {
        from: RARE_SENDER,
        ..flood.clone()
    };
    let common = build_jobs(&sb, n - rare, &flood);
    let rare_uids = build_jobs(&sb, rare, &rare_kind);
    // Spread among the others (in arrival order), so a filtered page walks the whole order.
    let every = (n / rare.max(1)).max(1);
    let mut rest = rare_uids.into_iter();
    let mut uids = Vec::with_capacity(n);
    for (i, u) in common.into_iter().enumerate() {
        if i % every == 0
            && let Some(r) = rest.next()
        {
            uids.push(r);
        }
        uids.push(u);
    }
    uids.extend(rest);
    sync_fs(&sb);
    let port = free_port();
    let load = loadavg();
    let proc = start(Engine::Reviewer { settle_ms: 200 }, &sb, Some(port));
    wait_health(port, Instant::now()).expect("the web server did not answer");
    let token = fs::read_to_string(sb.state().join("api-token"))
        .expect("api token")
        .trim()
        .to_string();
    let queries = [
        ("first page", "/api/v1/jobs?limit=50".to_string()),
        (
            "far page",
            format!("/api/v1/jobs?limit=50&offset={}", n.saturating_sub(50)),
        ),
        (
            "first page, index entries only",
            "/api/v1/jobs?limit=50&view=brief".to_string(),
        ),
        (
            "far page, index entries only",
            format!(
                "/api/v1/jobs?limit=50&view=brief&offset={}",
                n.saturating_sub(50)
            ),
        ),
        (
            "first page, sender filter",
            format!("/api/v1/jobs?limit=50&sender={RARE_SENDER}"),
        ),
        (
            "far page, sender filter",
            format!(
                "/api/v1/jobs?limit=50&sender={RARE_SENDER}&offset={}",
                rare.saturating_sub(50)
            ),
        ),
    ];

    // During: the jobs are renamed into pending/ by another thread while the queries run.
    let pending = sb.queue().join("pending");
    let from = staging(&sb);
    let writer = {
        let uids = uids.clone();
        thread::spawn(move || {
            let t0 = Instant::now();
            for u in &uids {
                fs::rename(from.join(u), pending.join(u)).unwrap();
            }
            t0.elapsed().as_secs_f64()
        })
    };
    let t0 = Instant::now();
    let mut during: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut reviewed_s = None;
    let budget = Duration::from_secs(if quick { 120 } else { 900 });
    while t0.elapsed() < budget {
        for (i, (_, q)) in queries.iter().enumerate() {
            if let Some((ms, _)) = get(port, &token, q) {
                during[i].push(ms);
            }
        }
        let waiting =
            get(port, &token, "/api/status").map_or(0, |(_, v)| v["waiting"].as_u64().unwrap_or(0));
        if waiting as usize >= n {
            reviewed_s = Some(t0.elapsed().as_secs_f64());
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let written_s = writer.join().expect("the writer failed");
    let (_, peak_during) = proc.mem_kb();

    // After: the same queries, at rest.
    let mut after: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut totals = vec![String::new(); queries.len()];
    let mut sources = vec![String::new(); queries.len()];
    for _ in 0..AFTER_ROUNDS {
        for (i, (_, q)) in queries.iter().enumerate() {
            if let Some((ms, v)) = get(port, &token, q) {
                after[i].push(ms);
                totals[i] = format!(
                    "{} total, {} shown",
                    v["total"],
                    v["jobs"].as_array().map_or(0, Vec::len)
                );
                sources[i] = v["source"].as_str().unwrap_or("?").to_string();
            }
        }
    }
    let status_ms = Percentiles::of(
        (0..AFTER_ROUNDS)
            .filter_map(|_| get(port, &token, "/api/status").map(|(ms, _)| ms))
            .collect(),
    );
    let metrics_ms = Percentiles::of(
        (0..AFTER_ROUNDS)
            .filter_map(|_| get_text(port, &token, "/metrics"))
            .collect(),
    );
    thread::sleep(Duration::from_secs(if quick { 2 } else { 10 }));
    let (rss_after, peak) = proc.mem_kb();
    proc.stop();

    let mut o = String::new();
    let _ = writeln!(
        o,
        "## Page latency with {n} waiting jobs\n\n{n} jobs from unknown senders (one in a hundred \
         from a second sender) renamed into `pending/` while syft-reviewer runs with its web \
         server (`--settle-ms 200`); each query timed from connecting to the last byte, with the \
         API token. Written in {written_s:.1} s; all reviewed (`waiting` = {n} in `/api/status`) \
         after {}. Load at start: {load}.\n",
        reviewed_s.map_or("(not within the budget)".to_string(), |s| format!(
            "{s:.1} s"
        ))
    );
    let _ = writeln!(
        o,
        "| query | during the flood, ms p50 / p95 / p99 / max | after, ms p50 / p95 / p99 / max | answer after | < 20 ms (p95) during / after |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    let under = |p: &Percentiles| if p.n > 0 && p.p95 < 20.0 { "yes" } else { "no" };
    for (i, (label, q)) in queries.iter().enumerate() {
        let (d, a) = (
            Percentiles::of(during[i].clone()),
            Percentiles::of(after[i].clone()),
        );
        let _ = writeln!(
            o,
            "| {label} (`{q}`) | {d} | {a} | {} from the {} | **{} / {}** |",
            totals[i],
            sources[i],
            under(&d),
            under(&a)
        );
    }
    let _ = writeln!(
        o,
        "| `/api/status` | | {status_ms} | | |\n| `/metrics` | | {metrics_ms} | | |\n"
    );
    let _ = writeln!(
        o,
        "Daemon memory: peak RSS {:.1} MB during the flood, {:.1} MB over the run; {:.1} MB \
         after it, at rest.\n",
        peak_during as f64 / 1024.0,
        peak as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    o
}

/// One GET with the API token: milliseconds to the whole answer, and its JSON.
fn get(port: u16, token: &str, path: &str) -> Option<(f64, serde_json::Value)> {
    let (ms, body) = request(port, token, path)?;
    Some((ms, serde_json::from_slice(&body).ok()?))
}

fn get_text(port: u16, token: &str, path: &str) -> Option<f64> {
    request(port, token, path).map(|(ms, _)| ms)
}

fn request(port: u16, token: &str, path: &str) -> Option<(f64, Vec<u8>)> {
    let t = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    c.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).ok()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    if !raw.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    Some((ms, raw[split + 4..].to_vec()))
}
