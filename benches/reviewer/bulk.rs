//! Clearing a flood: a backlog of jobs from an unknown sender waits in the queue (the daemon has
//! recorded each one as waiting), then the owner rejects all of them at once, with the daemon
//! running: by the CLI (`decide --all --sender ... reject --yes`), through the API by filter
//! (`POST /api/v1/jobs/decide`), and through the API by lists of uid + signature (4,000 a
//! request, the most one takes). Each run is checked afterwards: every job in `rejected/`, one
//! `rejected` decision log line and one audit entry per job, and `audit verify` passes.

use super::*;

const FLOOD_FROM: &str = "flood@spam.example";
/// The most jobs one API request may list (`service::bulk::MAX_LIST`).
const LIST_CHUNK: usize = 4_000;

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Cli,
    ApiFilter,
    ApiList,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Cli => "CLI `decide --all --sender S reject --yes`",
            Via::ApiFilter => "API, by filter (one request)",
            Via::ApiList => "API, by list of uid + signature (4,000 per request)",
        }
    }
}

struct Row {
    via: Via,
    n: usize,
    secs: f64,
    requests: usize,
    peak_kb: u64,
    daemon_kb: (u64, u64),
    problems: Vec<String>,
}

fn flood_kind() -> JobKind {
    JobKind {
        from: FLOOD_FROM,
        method: "human",
        ..small_job()
    }
}

pub(super) fn scenario(opts: &Opts) -> String {
    let n = if opts.quick { 500 } else { 10_000 };
    let rows: Vec<Row> = [Via::Cli, Via::ApiFilter, Via::ApiList]
        .into_iter()
        .map(|via| run(via, n))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#### Bulk rejection of a flood ({n} waiting jobs from one unknown sender)\n\n\
         The daemon runs (default settle) and has recorded every job as waiting; then all of them \
         are rejected with one rationale. Each job is reviewed again under the queue lock, moved \
         with the journal and its post-move check, and gets its own decision log line and audit \
         entry; work goes in batches of 500 (one journal file, one log append, one chain append \
         each). Peak RSS is the CLI process's own; for the API, the daemon's RSS before and after \
         the request(s).\n"
    );
    let _ = writeln!(
        s,
        "| how | jobs | wall time | jobs/s | requests | peak RSS | daemon RSS before -> after | check |\n|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let peak = if r.via == Via::Cli {
            format!("{:.1} MB", r.peak_kb as f64 / 1024.0)
        } else {
            "-".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} s | {:.0} | {} | {peak} | {:.1} -> {:.1} MB | {} |",
            r.via.label(),
            r.n,
            r.secs,
            r.n as f64 / r.secs,
            r.requests,
            r.daemon_kb.0 as f64 / 1024.0,
            r.daemon_kb.1 as f64 / 1024.0,
            outcome(&r.problems)
        );
    }
    s
}

fn run(via: Via, n: usize) -> Row {
    eprintln!("== bulk rejection of {n} jobs: {}", via.label());
    let kind = flood_kind();
    let sb = Sandbox::new();
    let uids = build_jobs(&sb, n, &kind);
    sync_fs(&sb);
    let port = (via != Via::Cli).then(free_port);
    let proc = start(
        Engine::Reviewer {
            settle_ms: DEFAULT_SETTLE_MS,
        },
        &sb,
        port,
    );
    if let Some(p) = port {
        wait_health(p, Instant::now()).expect("the web server never answered");
    }
    let pending = sb.queue().join("pending");
    let staging = staging(&sb);
    for uid in &uids {
        fs::rename(staging.join(uid), pending.join(uid)).unwrap();
    }
    let log = decision_log(
        Engine::Reviewer {
            settle_ms: DEFAULT_SETTLE_MS,
        },
        &sb,
    );
    let end = Instant::now() + Duration::from_secs(600);
    while outcomes(&log, "waiting") < n && Instant::now() < end {
        thread::sleep(Duration::from_millis(200));
    }
    let mut problems = Vec::new();
    if outcomes(&log, "waiting") < n {
        problems.push("not every job was recorded as waiting in time".into());
    }
    // Every job has the same code: the signature the owner would list, taken before timing.
    let sig = job_signature(&sb, &uids[0]);
    let before = proc.mem_kb().0;
    let t0 = Instant::now();
    let (requests, peak_kb) = match via {
        Via::Cli => (1, cli_reject(&sb, &mut problems)),
        Via::ApiFilter => {
            let body = serde_json::json!({"verdict": "reject", "rationale": "flood",
                "filter": {"sender": FLOOD_FROM}});
            post(&sb, port.unwrap(), &body, &mut problems);
            (1, 0)
        }
        Via::ApiList => {
            let mut requests = 0;
            for chunk in uids.chunks(LIST_CHUNK) {
                let jobs: Vec<_> = chunk
                    .iter()
                    .map(|u| serde_json::json!({"uid": u, "signature": sig}))
                    .collect();
                let body =
                    serde_json::json!({"verdict": "reject", "rationale": "flood", "jobs": jobs});
                post(&sb, port.unwrap(), &body, &mut problems);
                requests += 1;
            }
            (requests, 0)
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let after = proc.mem_kb().0;
    proc.stop();
    check_rejected(&sb, &uids, &log, &mut problems);
    eprintln!(
        "   {n} jobs: {secs:.2} s, {:.0} jobs/s {}",
        n as f64 / secs,
        outcome(&problems)
    );
    Row {
        via,
        n,
        secs,
        requests,
        peak_kb,
        daemon_kb: (before, after),
        problems,
    }
}

/// Runs the CLI's bulk rejection; returns its peak RSS in kB (sampled every 5 ms).
fn cli_reject(sb: &Sandbox, problems: &mut Vec<String>) -> u64 {
    let mut c = Command::new(reviewer_bin());
    c.arg("--config").arg(&sb.config);
    c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
    c.env("HOME", sb.dir.path());
    c.args(["decide", "--all", "--sender", FLOOD_FROM, "reject"]);
    c.args(["--rationale", "flood", "--yes"]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run decide --all");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        problems.push(format!("decide --all failed: {}", err.trim()));
    }
    peak
}

fn post(sb: &Sandbox, port: u16, body: &serde_json::Value, problems: &mut Vec<String>) {
    let token = fs::read_to_string(sb.state().join("api-token")).unwrap_or_default();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let sent = agent
        .post(format!("http://127.0.0.1:{port}/api/v1/jobs/decide"))
        .header("Authorization", format!("Bearer {}", token.trim()))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes());
    match sent {
        Ok(mut r) if r.status() == 200 => {
            let text = r
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_string()
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if v["refused"] != 0 {
                problems.push(format!("{} refused", v["refused"]));
            }
        }
        Ok(r) => problems.push(format!("POST /api/v1/jobs/decide answered {}", r.status())),
        Err(e) => problems.push(format!("POST /api/v1/jobs/decide: {e}")),
    }
}

/// What the checks after a run found.
fn outcome(problems: &[String]) -> String {
    if problems.is_empty() {
        "all rejected, one log line and one audit entry each, chain verifies".into()
    } else {
        format!("FAILED: {}", problems.join("; "))
    }
}

fn job_signature(sb: &Sandbox, uid: &str) -> String {
    let dir = sb.job_dir("pending", uid);
    let out = sb.cli(&["signature", dir.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Lines of the decision log with this outcome.
fn outcomes(log: &Path, outcome: &str) -> usize {
    let Ok(f) = File::open(log) else {
        return 0;
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["outcome"] == outcome)
        })
        .count()
}

fn check_rejected(sb: &Sandbox, uids: &[String], log: &Path, problems: &mut Vec<String>) {
    let rejected = sb.queue().join("rejected");
    let missing = uids.iter().filter(|u| !rejected.join(u).is_dir()).count();
    if missing > 0 {
        problems.push(format!("{missing} jobs not in rejected/"));
    }
    let logged = outcomes(log, "rejected");
    if logged != uids.len() {
        problems.push(format!("{logged} rejected lines in the decision log"));
    }
    let chain = sb.app_data().join("audit/chain.jsonl");
    let entries = fs::read_to_string(&chain)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"rejected\""))
        .count();
    if entries != uids.len() {
        problems.push(format!("{entries} rejected entries in the audit chain"));
    }
    let out = sb.cli(&["audit", "verify"]);
    if !out.status.success() {
        problems.push("audit verify failed".into());
    }
}
