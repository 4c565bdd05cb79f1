//! Benchmarks of syft-reviewer against a polling reviewer like the Python app it replaces.
//! Not timed tests: a harness that prints (and saves) the figures for BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --bench reviewer                      # the full run (about six minutes)
//! cargo bench --bench reviewer -- --quick           # small sizes: a smoke check in seconds
//! cargo bench --bench reviewer -- --only burst,idle # some scenarios: latency burst trusted idle flood bulk page
//! cargo bench --bench reviewer -- --no-baseline     # skip the baseline runs
//! ```
//!
//! `SYFT_BENCH_BIN=/path/to/syft-reviewer` benchmarks another build of the daemon (the CLI steps
//! that prepare the trees still use this tree's build). `SYFT_BENCH_QUICK=1` is the same as
//! `--quick`; so is running the harness without `--bench`
//! (as `cargo test --benches` does). Cargo builds the release binary
//! (`target/release/syft-reviewer`, the bench profile inherits the release one) before this
//! harness runs. Temporary SyftBox trees are created under `$TMPDIR` (default `/tmp`).
//!
//! Every scenario builds a temporary SyftBox tree, starts the real binary on it and measures it
//! from outside. Jobs are written as the queue client writes them (`tests/util.rs`'s
//! `write_job`): built in a staging folder on the same filesystem, made durable (`syncfs`, so the
//! daemons never pay for flushing the harness's own writes), then renamed into `pending/` whole.
//!
//! * A job's move is seen through inotify on `approved/` (a dedicated thread, timestamped as the
//!   event is read), never by polling.
//! * "Decided" is the time each engine itself records after the job's metadata was rewritten:
//!   the `time` of the job's line in `decisions.jsonl`, which syft-reviewer takes after the
//!   move, the permission lock, the re-evaluation, the metadata rewrite and their fsyncs.
//! * The baseline is this executable started as `reviewer baseline-daemon ...`: it polls
//!   `pending/` once a second (sleeping a second after each cycle, like the Python app), handles
//!   at most 50 jobs per poll, approves allowlisted senders or trusted code (hashed with the same
//!   signature code), and approves by rename + metadata rewrite, with no fsync. Being Rust, it
//!   is faster per job than the Python it stands for, so the ratios are conservative.

#[path = "reviewer/bulk.rs"]
mod bulk;
#[path = "reviewer/flood.rs"]
mod flood;
#[path = "reviewer/page.rs"]
mod page;
#[path = "../tests/util.rs"]
mod util;

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use chrono::TimeZone;
use nix::libc;
use sha2::{Digest, Sha256};
use syft_reviewer::core::signature;
use syft_reviewer::queue::metadata::{format_naive, now_naive, parse_naive};
use util::{OWNER, Sandbox};

const SENDER: &str = "trusted.sender@bench.example";
const STRANGER: &str = "stranger@elsewhere.example";
const TRUSTED_NAME: &str = "Trusted analysis";
const TRUSTED_DESCRIPTION: &str = "The same reviewed code every time";
const BASELINE_PER_POLL: usize = 50;
const BASELINE_POLL: Duration = Duration::from_secs(1);
const DEFAULT_SETTLE_MS: u64 = 200;

#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Arrival rate of the latency runs (jobs/s) and how long they last.
    rate: f64,
    latency_secs: f64,
    /// A rate the baseline can sustain (below its 50 jobs per poll).
    slow_rate: f64,
    burst: usize,
    trusted_burst: usize,
    trusted_files: usize,
    trusted_file_bytes: usize,
    baseline_burst: usize,
    idle_secs: u64,
    allow_entries: usize,
    history_records: usize,
    restarts: usize,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            rate: 100.0,
            latency_secs: 10.0,
            slow_rate: 40.0,
            burst: 10_000,
            trusted_burst: 10_000,
            trusted_files: 10,
            trusted_file_bytes: 10 * 1024,
            baseline_burst: 10_000,
            idle_secs: 60,
            allow_entries: 10_000,
            history_records: 100_000,
            restarts: 3,
        }
    }

    fn quick() -> Sizes {
        Sizes {
            latency_secs: 2.0,
            burst: 500,
            trusted_burst: 300,
            baseline_burst: 150,
            idle_secs: 5,
            allow_entries: 1_000,
            history_records: 5_000,
            restarts: 1,
            ..Sizes::full()
        }
    }
}

struct Opts {
    quick: bool,
    only: Option<Vec<String>>,
    baseline: bool,
}

impl Opts {
    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == scenario))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("baseline-daemon") {
        baseline::run(&args[1..]);
    }
    let mut opts = Opts {
        quick: std::env::var("SYFT_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0"),
        only: None,
        baseline: true,
    };
    // `cargo bench` passes --bench; `cargo test --benches` does not: a smoke check then.
    if !args.iter().any(|a| a == "--bench") {
        opts.quick = true;
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--no-baseline" => opts.baseline = false,
            "--only" => {
                let list = it
                    .next()
                    .expect("--only needs a list: latency,burst,trusted,idle,flood,bulk,page");
                opts.only = Some(list.split(',').map(str::to_owned).collect());
            }
            // cargo bench passes --bench; filters and other flags are not used.
            _ => {}
        }
    }
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let started = Instant::now();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# syft-reviewer benchmark run ({})\n",
        if opts.quick { "quick" } else { "full" }
    );
    report.push_str(&machine());
    let _ = writeln!(
        report,
        "- binary: `{}` (release profile), source `{}`, {}",
        reviewer_bin().display(),
        command_line("git", &["describe", "--always", "--dirty"]),
        command_line("rustc", &["--version"])
    );
    let _ = writeln!(report, "- load average at start: {}\n", loadavg());
    eprintln!("{report}");

    if opts.wants("latency") {
        section(&mut report, &latency_scenarios(&sizes, &opts));
    }
    if opts.wants("bulk") {
        section(&mut report, &bulk::scenario(&opts));
    }
    if opts.wants("page") {
        section(&mut report, &page::scenario(opts.quick));
    }
    let kinds: Vec<bool> = [false, true]
        .into_iter()
        .filter(|t| opts.wants(if *t { "trusted" } else { "burst" }))
        .collect();
    let reviewer_rows: Vec<(bool, Vec<BurstRow>)> = kinds
        .iter()
        .map(|&t| (t, reviewer_bursts(&sizes, t)))
        .collect();
    // The baseline takes a second per 50 jobs: its bursts (one tree each, at once) drain while
    // the idle scenario measures syft-reviewer at rest, in other trees and processes.
    let baseline_runs: Vec<(bool, Prepared)> = if opts.baseline {
        kinds
            .iter()
            .map(|&t| {
                eprintln!(
                    "== preparing the baseline's {} burst of {}",
                    burst_kind(&sizes, t).0.method,
                    sizes.baseline_burst
                );
                (
                    t,
                    prepare_burst(&burst_kind(&sizes, t).0, sizes.baseline_burst),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let idle_tree = opts.wants("idle").then(|| prepare_idle(&sizes));
    let overlap = !baseline_runs.is_empty() && idle_tree.is_some();
    let handles: Vec<_> = baseline_runs
        .into_iter()
        .map(|(t, prepared)| {
            let kind = burst_kind(&sizes, t).0;
            let budget = sizes.baseline_burst as f64 / BASELINE_PER_POLL as f64 * 1.5 + 60.0;
            eprintln!(
                "== {} burst: baseline x {} (load {})",
                kind.method,
                sizes.baseline_burst,
                loadavg()
            );
            thread::spawn(move || {
                (
                    t,
                    burst_run(
                        Engine::Baseline,
                        prepared,
                        &kind,
                        Duration::from_secs_f64(budget),
                    ),
                )
            })
        })
        .collect();
    let idle_text = idle_tree.map(|sb| {
        if overlap {
            // The baselines' renames land first.
            thread::sleep(Duration::from_secs(5));
        }
        idle_scenario(&sizes, &opts, sb, overlap)
    });
    let mut baseline_rows: HashMap<bool, BurstRow> = handles
        .into_iter()
        .map(|h| h.join().expect("a baseline burst failed"))
        .collect();
    for (t, mut rows) in reviewer_rows {
        if let Some(b) = baseline_rows.remove(&t) {
            rows.push(b);
        }
        section(&mut report, &burst_section(&sizes, t, &rows, overlap));
    }
    if let Some(text) = idle_text {
        section(&mut report, &text);
    }
    if opts.wants("flood") {
        section(
            &mut report,
            &flood::flood_section(opts.quick, opts.baseline),
        );
    }
    let _ = writeln!(
        report,
        "Load average at the end: {}. Whole run: {:.0} s.",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    println!("\n{report}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    let _ = fs::create_dir_all(&dir);
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let file = dir.join(format!(
        "reviewer-{stamp}{}.md",
        if opts.quick { "-quick" } else { "" }
    ));
    match fs::write(&file, &report) {
        Ok(()) => eprintln!("saved to {}", file.display()),
        Err(e) => eprintln!("could not save {}: {e}", file.display()),
    }
}

fn section(report: &mut String, text: &str) {
    eprintln!("{text}");
    report.push_str(text);
    report.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq)]
enum Engine {
    Reviewer { settle_ms: u64 },
    Baseline,
}

impl Engine {
    fn label(self) -> String {
        match self {
            Engine::Reviewer { settle_ms } => format!("syft-reviewer, --settle-ms {settle_ms}"),
            Engine::Baseline => "baseline (poll 1 s, 50 per poll)".into(),
        }
    }
}

/// The kinds of job the scenarios drop into the queue.
#[derive(Debug, Clone)]
struct JobKind {
    from: &'static str,
    name: &'static str,
    description: &'static str,
    files: Vec<(String, Vec<u8>)>,
    method: &'static str,
}

fn small_job() -> JobKind {
    JobKind {
        from: SENDER,
        name: "Analysis",
        description: "Counts rows",
        files: util::simple_code()
            .into_iter()
            .map(|(p, c)| (p.to_string(), c.to_vec()))
            .collect(),
        method: "allowlist",
    }
}

/// `files` files of `bytes` bytes each (run.sh and parts), the same for every job.
fn trusted_job(files: usize, bytes: usize) -> JobKind {
    let mut out = Vec::new();
    let mut run = b"#!/bin/sh\nset -e\nfor f in part_*.py; do python3 \"$f\"; done\n".to_vec();
    pad(&mut run, bytes, 0);
    out.push(("run.sh".to_string(), run));
    for i in 1..files {
        let mut body = format!("# part {i}\nprint('part {i}')\n").into_bytes();
        pad(&mut body, bytes, i as u64);
        out.push((format!("part_{i:02}.py"), body));
    }
    JobKind {
        from: STRANGER,
        name: TRUSTED_NAME,
        description: TRUSTED_DESCRIPTION,
        files: out,
        method: "trusted_code",
    }
}

/// Pads a script to `len` bytes with comment lines of deterministic pseudo-random text.
fn pad(buf: &mut Vec<u8>, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while buf.len() < len {
        let line_len = (len - buf.len()).min(64);
        if line_len < 3 {
            buf.resize(len, b'\n');
            break;
        }
        buf.extend_from_slice(b"# ");
        for _ in 0..line_len - 3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(b'a' + (x % 26) as u8);
        }
        buf.push(b'\n');
    }
}

/// Builds `n` jobs in a staging folder of the tree; returns their uids.
fn build_jobs(sb: &Sandbox, n: usize, kind: &JobKind) -> Vec<String> {
    let staging = staging(sb);
    fs::create_dir_all(&staging).unwrap();
    let files: Vec<(&str, &[u8])> = kind
        .files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let mut uids = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    while uids.len() < n {
        let uid = util::new_uid();
        if !seen.insert(uid.clone()) {
            continue;
        }
        util::write_job(
            &staging.join(&uid),
            &uid,
            kind.from,
            OWNER,
            kind.name,
            kind.description,
            &["bench"],
            &files,
        );
        uids.push(uid);
    }
    uids
}

fn staging(sb: &Sandbox) -> PathBuf {
    sb.dir.path().join("staging")
}

/// Flushes everything written so far on the tree's filesystem.
fn sync_fs(sb: &Sandbox) {
    let f = File::open(sb.dir.path()).unwrap();
    nix::unistd::syncfs(&f).unwrap();
}

/// A tree whose owner trusts `SENDER` (and, for the trusted-code runs, one job's exact code).
fn prepare(kind: &JobKind) -> Sandbox {
    let sb = Sandbox::new();
    let out = sb.cli(&["allow", "add", SENDER]);
    assert!(out.status.success(), "allow add failed: {out:?}");
    if kind.method == "trusted_code" {
        // The owner saw this code complete once and marked it trusted.
        let uid = util::new_uid();
        let files: Vec<(&str, &[u8])> = kind
            .files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        util::write_job(
            &sb.job_dir("completed", &uid),
            &uid,
            "earlier.requester@uni.example",
            OWNER,
            kind.name,
            kind.description,
            &["bench"],
            &files,
        );
        let out = sb.cli(&["trust", "add", "--job", &uid]);
        assert!(out.status.success(), "trust add --job failed: {out:?}");
    }
    sb
}

fn start(engine: Engine, sb: &Sandbox, web_port: Option<u16>) -> Proc {
    start_with(engine, sb, web_port, &[])
}

/// [`start`] with more arguments for `syft-reviewer run`.
fn start_with(engine: Engine, sb: &Sandbox, web_port: Option<u16>, extra: &[&str]) -> Proc {
    match engine {
        Engine::Reviewer { settle_ms } => {
            let mut c = Command::new(reviewer_bin());
            c.arg("--config").arg(&sb.config);
            c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
            c.env("HOME", sb.dir.path());
            c.arg("run").args(["--settle-ms", &settle_ms.to_string()]);
            match web_port {
                Some(p) => c.args(["--port", &p.to_string()]),
                None => c.arg("--no-web"),
            };
            c.args(extra);
            c.env("RUST_LOG", "info");
            Proc::spawn(c, sb.dir.path().join(format!("reviewer-{}.log", nanos())))
        }
        Engine::Baseline => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.arg("baseline-daemon")
                .arg(sb.queue())
                .arg(sb.app_data())
                .arg(OWNER)
                .arg(baseline_log(sb));
            Proc::spawn(c, sb.dir.path().join(format!("baseline-{}.log", nanos())))
        }
    }
}

/// The daemon under test: this tree's release build, or `$SYFT_BENCH_BIN` (to compare builds).
fn reviewer_bin() -> PathBuf {
    std::env::var_os("SYFT_BENCH_BIN").map_or_else(|| PathBuf::from(util::BIN), PathBuf::from)
}

fn baseline_log(sb: &Sandbox) -> PathBuf {
    sb.dir.path().join("baseline-decisions.jsonl")
}

fn decision_log(engine: Engine, sb: &Sandbox) -> PathBuf {
    match engine {
        Engine::Reviewer { .. } => sb.app_data().join("decisions.jsonl"),
        Engine::Baseline => baseline_log(sb),
    }
}

/// What one engine did with a set of jobs, as seen from outside.
struct Observed {
    /// Job -> when its move into approved/ was seen.
    moved: HashMap<String, Instant>,
    /// Job -> when the engine recorded it decided (after the metadata rewrite).
    decided: HashMap<String, (SystemTime, String)>,
    cpu_s: f64,
    overflow: bool,
    log: PathBuf,
}

/// Waits until every job is moved and recorded as decided (or `timeout` passes), then stops
/// the engine and checks the tree.
fn observe(
    engine: Engine,
    sb: &Sandbox,
    proc: Proc,
    watch: MoveWatch,
    uids: &[String],
    cpu0: f64,
    timeout: Duration,
) -> Observed {
    let n = uids.len();
    let proc_log = proc.log.clone();
    let end = Instant::now() + timeout;
    let mut tail = Count::new(decision_log(engine, sb), b"\"outcome\":\"approved\"");
    while Instant::now() < end && (watch.count() < n || tail.get() < n) {
        thread::sleep(Duration::from_millis(50));
    }
    let cpu_s = proc.cpu_secs() - cpu0;
    proc.stop();
    let log = keep_log(&proc_log);
    let (moved, overflow) = watch.finish();
    let decided = read_decisions(&decision_log(engine, sb));
    Observed {
        moved,
        decided,
        cpu_s,
        overflow,
        log,
    }
}

/// Copies a daemon's log out of its (temporary) tree into `target/bench-results/logs/`.
fn keep_log(log: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results/logs");
    let _ = fs::create_dir_all(&dir);
    let dest = dir.join(log.file_name().unwrap());
    // The log thread writes until the daemon's stderr closes.
    thread::sleep(Duration::from_millis(100));
    match fs::copy(log, &dest) {
        Ok(_) => dest,
        Err(_) => log.to_path_buf(),
    }
}

/// Every job in approved/ with status approved, decided by `method`, none left pending, no
/// move left in the journal. Returns what is wrong, if anything.
fn verify(sb: &Sandbox, uids: &[String], method: &str, obs: &Observed) -> Vec<String> {
    let mut bad = Vec::new();
    let mut not_approved = 0;
    let mut wrong_method = 0;
    let mut undecided = 0;
    for uid in uids {
        let meta = sb.job_dir("approved", uid).join("metadata.json");
        let ok = fs::read(&meta)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["status"] == "approved");
        if !ok {
            not_approved += 1;
        }
        match obs.decided.get(uid) {
            None => undecided += 1,
            Some((_, m)) if m != method => wrong_method += 1,
            Some(_) => {}
        }
    }
    if not_approved > 0 {
        bad.push(format!(
            "{not_approved} job(s) not in approved/ with status approved"
        ));
    }
    if undecided > 0 {
        bad.push(format!("{undecided} job(s) not in the decision log"));
    }
    if wrong_method > 0 {
        bad.push(format!("{wrong_method} job(s) approved by another method"));
    }
    let left = fs::read_dir(sb.queue().join("pending"))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    if left > 0 {
        bad.push(format!("{left} job(s) left in pending/"));
    }
    let intents = fs::read_dir(sb.state().join("moves"))
        .map(|d| d.count())
        .unwrap_or(0);
    if intents > 0 {
        bad.push(format!("{intents} move intent(s) left in the journal"));
    }
    if obs.moved.len() < uids.len() {
        bad.push(format!(
            "only {} of {} moves seen by inotify",
            obs.moved.len(),
            uids.len()
        ));
    }
    bad
}

// --- Latency

struct LatencyRow {
    label: String,
    load: String,
    rate: f64,
    n: usize,
    moved: Percentiles,
    decided: Percentiles,
    cpu_s: f64,
    problems: Vec<String>,
}

fn latency_scenarios(sizes: &Sizes, opts: &Opts) -> String {
    let mut rows = Vec::new();
    let mut runs = vec![
        (Engine::Reviewer { settle_ms: 0 }, sizes.rate),
        (
            Engine::Reviewer {
                settle_ms: DEFAULT_SETTLE_MS,
            },
            sizes.rate,
        ),
    ];
    if opts.baseline {
        runs.push((Engine::Baseline, sizes.rate));
        runs.push((Engine::Baseline, sizes.slow_rate));
    }
    for (engine, rate) in runs {
        eprintln!(
            "== latency: {} at {rate} jobs/s for {} s (load {})",
            engine.label(),
            sizes.latency_secs,
            loadavg()
        );
        let load = loadavg();
        let mut row = latency_run(engine, rate, sizes.latency_secs);
        row.load = load;
        rows.push(row);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## 1. Decision latency (paced arrivals)\n\n\
         Allowlisted 2-file jobs renamed into `pending/` at a steady rate. *Moved*: from the \
         rename into `pending/` to the move into `approved/` seen by inotify. *Decided*: to the \
         time the engine recorded the job decided, after its metadata rewrite (syft-reviewer: \
         also after the permission lock, the re-evaluation and the fsyncs).\n"
    );
    let _ = writeln!(
        s,
        "| engine | rate (jobs/s) | jobs | moved p50 / p95 / p99 / max (ms) | decided p50 / p95 / p99 / max (ms) | CPU s | check |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2} | {} |",
            r.label,
            r.rate,
            r.n,
            r.moved,
            r.decided,
            r.cpu_s,
            check(&r.problems)
        );
    }
    let _ = writeln!(s, "{}", loads_line(rows.iter().map(|r| r.load.as_str())));
    let reviewer0 = rows.iter().find(|r| r.label.ends_with("settle-ms 0"));
    if let Some(r) = reviewer0 {
        let _ = writeln!(
            s,
            "\nTarget p99 < 10 ms with `--settle-ms 0`: moved p99 {:.2} ms, decided p99 {:.2} ms: **{}**.",
            r.moved.p99,
            r.decided.p99,
            met(r.decided.p99 < 10.0)
        );
    }
    let base = rows
        .iter()
        .find(|r| r.label.starts_with("baseline") && r.rate == sizes.rate);
    if let (Some(b), Some(r)) = (base, reviewer0) {
        let rd = rows
            .iter()
            .find(|r| r.label.ends_with(&format!("settle-ms {DEFAULT_SETTLE_MS}")))
            .unwrap();
        let _ = writeln!(
            s,
            "Ratios at {} jobs/s (baseline / syft-reviewer, decided): p50 {} (settle 0) and {} \
             (settle {DEFAULT_SETTLE_MS}); p99 {} and {}.",
            sizes.rate,
            ratio(b.decided.p50, r.decided.p50),
            ratio(b.decided.p50, rd.decided.p50),
            ratio(b.decided.p99, r.decided.p99),
            ratio(b.decided.p99, rd.decided.p99),
        );
    }
    s
}

fn latency_run(engine: Engine, rate: f64, secs: f64) -> LatencyRow {
    let kind = small_job();
    let sb = prepare(&kind);
    let n = (rate * secs).round() as usize;
    let uids = build_jobs(&sb, n, &kind);
    sync_fs(&sb);
    let watch = MoveWatch::new(&sb.queue().join("approved"));
    let proc = start(engine, &sb, None);
    thread::sleep(Duration::from_millis(500));
    let cpu0 = proc.cpu_secs();
    let pending = sb.queue().join("pending");
    let staging = staging(&sb);
    let mut landed: HashMap<String, (Instant, SystemTime)> = HashMap::with_capacity(n);
    let t0 = Instant::now();
    for (i, uid) in uids.iter().enumerate() {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let at = (Instant::now(), SystemTime::now());
        fs::rename(staging.join(uid), pending.join(uid)).unwrap();
        landed.insert(uid.clone(), at);
    }
    let budget = match engine {
        Engine::Baseline => n as f64 / BASELINE_PER_POLL as f64 * 1.5 + 30.0,
        Engine::Reviewer { .. } => 60.0,
    };
    let obs = observe(
        engine,
        &sb,
        proc,
        watch,
        &uids,
        cpu0,
        Duration::from_secs_f64(budget),
    );
    let mut moved = Vec::new();
    let mut decided = Vec::new();
    for uid in &uids {
        let (li, lw) = landed[uid];
        if let Some(t) = obs.moved.get(uid) {
            moved.push(t.saturating_duration_since(li).as_secs_f64() * 1e3);
        }
        if let Some((t, _)) = obs.decided.get(uid) {
            decided.push(
                t.duration_since(lw)
                    .map(|d| d.as_secs_f64() * 1e3)
                    .unwrap_or(0.0),
            );
        }
    }
    let mut problems = verify(&sb, &uids, kind.method, &obs);
    if obs.overflow {
        problems.push("the harness's inotify queue overflowed".into());
    }
    note_rescans(&obs.log, &mut problems);
    LatencyRow {
        label: engine.label(),
        load: String::new(),
        rate,
        n,
        moved: Percentiles::of(moved),
        decided: Percentiles::of(decided),
        cpu_s: obs.cpu_s,
        problems,
    }
}

// --- Bursts

struct BurstRow {
    label: String,
    load: String,
    n: usize,
    submit_s: f64,
    moved_s: f64,
    decided_s: f64,
    cpu_s: f64,
    problems: Vec<String>,
}

impl BurstRow {
    fn rate(&self) -> f64 {
        self.n as f64 / self.decided_s
    }
}

/// The jobs of a burst and how many.
fn burst_kind(sizes: &Sizes, trusted: bool) -> (JobKind, usize) {
    if trusted {
        (
            trusted_job(sizes.trusted_files, sizes.trusted_file_bytes),
            sizes.trusted_burst,
        )
    } else {
        (small_job(), sizes.burst)
    }
}

/// syft-reviewer on a burst, with the default settle window and with none.
fn reviewer_bursts(sizes: &Sizes, trusted: bool) -> Vec<BurstRow> {
    let (kind, n) = burst_kind(sizes, trusted);
    let mut rows = Vec::new();
    for settle_ms in [DEFAULT_SETTLE_MS, 0] {
        let engine = Engine::Reviewer { settle_ms };
        eprintln!(
            "== {} burst: {} x {n} (load {})",
            kind.method,
            engine.label(),
            loadavg()
        );
        let prepared = prepare_burst(&kind, n);
        rows.push(burst_run(engine, prepared, &kind, Duration::from_secs(300)));
    }
    rows
}

fn burst_section(sizes: &Sizes, trusted: bool, rows: &[BurstRow], overlap: bool) -> String {
    let n = burst_kind(sizes, trusted).1;
    let mut s = String::new();
    if trusted {
        let _ = writeln!(
            s,
            "## 3. Trusted-code burst\n\n{n} jobs from an unknown sender whose code ({} files of \
             {} bytes) the owner marked trusted (`trust add --job` on a completed copy), renamed \
             into `pending/` as fast as possible. Every job is hashed.\n",
            sizes.trusted_files, sizes.trusted_file_bytes
        );
    } else {
        let _ = writeln!(
            s,
            "## 2. Burst of allowlisted jobs\n\n{n} pre-built allowlisted 2-file jobs renamed \
             into `pending/` as fast as possible; the clock starts at the first rename and stops \
             at the last job's decision record (all moved, rewritten and, for syft-reviewer, \
             fsynced).\n"
        );
    }
    let _ = writeln!(
        s,
        "| engine | jobs | renaming in (s) | last move (s) | all decided (s) | jobs/s | CPU s | check |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {} |",
            r.label,
            r.n,
            r.submit_s,
            r.moved_s,
            r.decided_s,
            r.rate(),
            r.cpu_s,
            check(&r.problems)
        );
    }
    let _ = writeln!(s, "{}", loads_line(rows.iter().map(|r| r.load.as_str())));
    let reviewer = &rows[0];
    let base = rows.iter().find(|r| r.label.starts_with("baseline"));
    if !trusted {
        let _ = writeln!(
            s,
            "\nTarget >= 5,000 jobs/s on 2 cores (default settle): {:.0} jobs/s: **{}**.",
            reviewer.rate(),
            met(reviewer.rate() >= 5000.0)
        );
    }
    if let Some(b) = base {
        let _ = writeln!(
            s,
            "Throughput ratio (syft-reviewer, default settle / baseline): {}.",
            ratio(reviewer.rate(), b.rate())
        );
        if overlap {
            let _ = writeln!(
                s,
                "(The baseline's two bursts ran at the same time, in their own trees, while \
                 section 4 measured syft-reviewer at rest; the baseline waits on its poll timer, \
                 not on the CPU: see its CPU seconds.)"
            );
        }
    }
    s
}

struct Prepared {
    sb: Sandbox,
    uids: Vec<String>,
}

fn prepare_burst(kind: &JobKind, n: usize) -> Prepared {
    let sb = prepare(kind);
    let uids = build_jobs(&sb, n, kind);
    sync_fs(&sb);
    Prepared { sb, uids }
}

fn burst_run(engine: Engine, p: Prepared, kind: &JobKind, budget: Duration) -> BurstRow {
    let Prepared { sb, uids } = p;
    let load = loadavg();
    let watch = MoveWatch::new(&sb.queue().join("approved"));
    let proc = start(engine, &sb, None);
    thread::sleep(Duration::from_millis(500));
    let cpu0 = proc.cpu_secs();
    let pending = sb.queue().join("pending");
    let staging = staging(&sb);
    let t0 = (Instant::now(), SystemTime::now());
    for uid in &uids {
        fs::rename(staging.join(uid), pending.join(uid)).unwrap();
    }
    let submit_s = t0.0.elapsed().as_secs_f64();
    let obs = observe(engine, &sb, proc, watch, &uids, cpu0, budget);
    let moved_s = obs
        .moved
        .values()
        .map(|t| t.saturating_duration_since(t0.0).as_secs_f64())
        .fold(0.0, f64::max);
    let decided_s = obs
        .decided
        .values()
        .map(|(t, _)| {
            t.duration_since(t0.1)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        })
        .fold(0.0, f64::max);
    let mut problems = verify(&sb, &uids, kind.method, &obs);
    if obs.overflow {
        problems.push("the harness's inotify queue overflowed".into());
    }
    note_rescans(&obs.log, &mut problems);
    eprintln!(
        "   {} jobs: {decided_s:.2} s, {:.0} jobs/s, CPU {:.2} s {}",
        uids.len(),
        uids.len() as f64 / decided_s,
        obs.cpu_s,
        check(&problems)
    );
    BurstRow {
        label: engine.label(),
        load,
        n: uids.len(),
        submit_s,
        moved_s,
        decided_s,
        cpu_s: obs.cpu_s,
        problems,
    }
}

/// Watcher overflows are not failures (the daemon rescans), but worth knowing about.
fn note_rescans(log: &Path, notes: &mut Vec<String>) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lost = text.matches("lost events").count();
    if lost > 0 {
        notes.push(format!("note: {lost} watcher overflow rescan(s)"));
    }
}

// --- Idle, memory, start-up

/// A tree with large stores and an empty queue.
fn prepare_idle(sizes: &Sizes) -> Sandbox {
    eprintln!(
        "== preparing the idle tree: {} allowlist entries, {} history records",
        sizes.allow_entries, sizes.history_records
    );
    let sb = prepare(&small_job());
    let t = Instant::now();
    populate_stores(&sb, sizes.allow_entries, sizes.history_records);
    sync_fs(&sb);
    eprintln!("   stores written in {:.1} s", t.elapsed().as_secs_f64());
    sb
}

fn idle_scenario(sizes: &Sizes, opts: &Opts, sb: Sandbox, overlap: bool) -> String {
    let load = loadavg();
    eprintln!("== idle, start-up and memory (load {load})");
    let reviewer = Engine::Reviewer {
        settle_ms: DEFAULT_SETTLE_MS,
    };
    // Start-up without the web UI: the first start on these stores, then restarts.
    let mut startups = Vec::new();
    let mut no_web_mem = (0, 0);
    for i in 0..=sizes.restarts {
        let p = start(reviewer, &sb, None);
        startups.push(p.startup_ms());
        if i == 0 {
            thread::sleep(Duration::from_secs(1));
            no_web_mem = p.mem_kb();
        }
        p.stop();
    }
    // With the web UI (the default deployment): start-up to /health, then the idle window.
    let port = free_port();
    let web = start(reviewer, &sb, Some(port));
    let health_ms = wait_health(port, web.spawned).map_or(f64::NAN, |t| t * 1e3);
    let web_watching_ms = web.startup_ms();
    let base = opts.baseline.then(|| start(Engine::Baseline, &sb, None));
    thread::sleep(Duration::from_secs(1));
    let (r0, rs0) = (web.cpu_secs(), web.oncpu_ns());
    let b0 = base.as_ref().map(|b| (b.cpu_secs(), b.oncpu_ns()));
    eprintln!("   idle window: {} s", sizes.idle_secs);
    thread::sleep(Duration::from_secs(sizes.idle_secs));
    let (r1, rs1) = (web.cpu_secs(), web.oncpu_ns());
    let web_mem = web.mem_kb();
    let b1 = base
        .as_ref()
        .map(|b| (b.cpu_secs(), b.oncpu_ns(), b.mem_kb()));
    let lines = fs::read_to_string(&web.log)
        .unwrap_or_default()
        .lines()
        .count();
    web.stop();
    if let Some(b) = base {
        b.stop();
    }
    // The same window without the periodic rescan (which re-reads every store on purpose, as a
    // safety net for missed events): what the event loop itself costs at rest.
    let quiet = start_with(
        reviewer,
        &sb,
        Some(free_port()),
        &["--rescan-secs", &(sizes.idle_secs * 100).to_string()],
    );
    thread::sleep(Duration::from_secs(1));
    let (q0, qs0) = (quiet.cpu_secs(), quiet.oncpu_ns());
    eprintln!("   idle window without rescans: {} s", sizes.idle_secs);
    thread::sleep(Duration::from_secs(sizes.idle_secs));
    let (q1, qs1) = (quiet.cpu_secs(), quiet.oncpu_ns());
    quiet.stop();
    let rescans = sizes.idle_secs / 30;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "## 4. Idle, memory and start-up\n\n\
         Stores: {} allowlist entries and {} job history records (generated files), an empty \
         queue. Page cache warm (the stores were just written). Start-up is from spawn to the \
         `watching` log line (and, with the web UI, to the first `200` from `/health`).\n",
        sizes.allow_entries, sizes.history_records
    );
    let first = startups[0];
    let mut restarts = startups[1..].to_vec();
    restarts.sort_by(f64::total_cmp);
    let restart_med = restarts.get(restarts.len() / 2).copied().unwrap_or(first);
    let restart_max = restarts.last().copied().unwrap_or(first);
    let _ = writeln!(s, "| measure | syft-reviewer | baseline | target |");
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(
        s,
        "| start-up, first start on these stores (`--no-web`) | {first:.0} ms | | < 1 s: **{}** |",
        met(first < 1000.0)
    );
    let _ = writeln!(
        s,
        "| start-up, restart (`--no-web`; median / max of {}) | {restart_med:.0} / {restart_max:.0} ms | | < 1 s: **{}** |",
        restarts.len(),
        met(restart_max < 1000.0)
    );
    let _ = writeln!(
        s,
        "| start-up with the web UI: `watching` / `/health` 200 | {web_watching_ms:.0} / {health_ms:.0} ms | | < 1 s: **{}** |",
        met(health_ms.max(web_watching_ms) < 1000.0)
    );
    let (bcpu, bns, bmem) = match (b0, b1) {
        (Some((c0, n0)), Some((c1, n1, m))) => (
            format!("{:.2} s", c1 - c0),
            format!("{:.1} ms", (n1 - n0) as f64 / 1e6),
            Some(m),
        ),
        _ => ("-".into(), "-".into(), None),
    };
    // "Effectively zero": under 0.1 % of one core on average, judged without the rescans, which
    // the target sets apart; their cost is shown beside it.
    let idle_budget = sizes.idle_secs as f64 * 0.001;
    let quiet_ns = (qs1 - qs0) as f64 / 1e9;
    let _ = writeln!(
        s,
        "| CPU in {} s idle, utime+stime (10 ms ticks), {rescans} periodic rescan(s) included | {:.2} s | {bcpu} | |",
        sizes.idle_secs,
        r1 - r0,
    );
    let _ = writeln!(
        s,
        "| CPU in {} s idle, on-CPU time of all threads (schedstat), rescans included | {:.1} ms | {bns} | |",
        sizes.idle_secs,
        (rs1 - rs0) as f64 / 1e6
    );
    let _ = writeln!(
        s,
        "| CPU in {} s idle without the rescan (`--rescan-secs {}`): ticks / schedstat | {:.2} s / {:.1} ms | | effectively 0 (< 0.1 % of a core, {:.0} ms) besides the rescan every 30 s: **{}** |",
        sizes.idle_secs,
        sizes.idle_secs * 100,
        q1 - q0,
        quiet_ns * 1e3,
        idle_budget * 1e3,
        met(q1 - q0 <= idle_budget && quiet_ns <= idle_budget)
    );
    if rescans > 0 {
        let _ = writeln!(
            s,
            "| one periodic rescan (re-reads every store), from the difference | about {:.0} ms | | |",
            (((rs1 - rs0) as f64 / 1e9 - quiet_ns) / rescans as f64 * 1e3).max(0.0)
        );
    }
    let _ = writeln!(
        s,
        "| RSS / peak RSS (VmRSS / VmHWM), `--no-web` | {:.1} / {:.1} MB | | < 30 MB: **{}** |",
        no_web_mem.0 as f64 / 1024.0,
        no_web_mem.1 as f64 / 1024.0,
        met((no_web_mem.1 as f64) / 1024.0 < 30.0)
    );
    let _ = writeln!(
        s,
        "| RSS / peak RSS with the web UI, after the idle window | {:.1} / {:.1} MB | {} | < 30 MB: **{}** |",
        web_mem.0 as f64 / 1024.0,
        web_mem.1 as f64 / 1024.0,
        bmem.map_or("-".into(), |(r, h)| format!(
            "{:.1} / {:.1} MB",
            r as f64 / 1024.0,
            h as f64 / 1024.0
        )),
        met((web_mem.1 as f64) / 1024.0 < 30.0)
    );
    let _ = writeln!(
        s,
        "\nThe reviewer logged {lines} line(s) during its run with the web UI (start-up, \
         periodic status). Load average at the start: {load}."
    );
    if overlap {
        let _ = writeln!(
            s,
            "These figures are per process (`/proc/PID`), measured while the baseline's bursts \
             of section 2 and 3 drained in other trees."
        );
    }
    s
}

/// Writes allowlist entries and history records directly, as files.
fn populate_stores(sb: &Sandbox, allow: usize, history: usize) {
    let adir = sb.allowlist_dir();
    for i in 0..allow {
        let email = format!("member{i:05}@org{}.example", i % 97);
        let name = syft_reviewer::core::email::encode(&email).unwrap();
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(adir.join(name))
            .unwrap();
    }
    let hdir = sb.app_data().join("job_history");
    fs::create_dir_all(&hdir).unwrap();
    let when = format_naive(&now_naive());
    for i in 0..history {
        let sig = format!("{:x}", Sha256::digest(format!("history {i}")));
        let text = format!("#!/bin/sh\npython3 main.py --part {i}\n");
        let file_sha = format!("{:x}", Sha256::digest(&text));
        let rec = serde_json::json!({
            "signature": sig,
            "name": format!("Analysis {i}"),
            "description": "Counts rows per group",
            "tags": ["stats"],
            "requesters": [format!("researcher{}@uni.example", i % 1000)],
            "uids": [util::new_uid()],
            "first_seen": when,
            "last_seen": when,
            "code_files": [{"path": "run.sh", "sha256": file_sha, "size": text.len(), "text": text}],
        });
        fs::write(
            hdir.join(format!("{sig}.json")),
            serde_json::to_vec_pretty(&rec).unwrap(),
        )
        .unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Seconds from `since` to the first 200 from `/health` (polled every millisecond).
fn wait_health(port: u16, since: Instant) -> Option<f64> {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            if c.write_all(req.as_bytes()).is_ok() {
                let mut head = [0u8; 12];
                if c.read_exact(&mut head).is_ok() && head.ends_with(b"200") {
                    return Some(since.elapsed().as_secs_f64());
                }
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Measuring tools

#[derive(Debug, Clone, Copy, Default)]
struct Percentiles {
    n: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            n: v.len(),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: v[v.len() - 1],
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 0 {
            return write!(f, "-");
        }
        let ms = |x: f64| {
            if x < 100.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.0}")
            }
        };
        write!(
            f,
            "{} / {} / {} / {}",
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.0}x", a / b)
    } else {
        "-".into()
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

fn check(problems: &[String]) -> String {
    let errors: Vec<&String> = problems
        .iter()
        .filter(|p| !p.starts_with("note:"))
        .collect();
    let notes: Vec<&String> = problems.iter().filter(|p| p.starts_with("note:")).collect();
    let mut s = if errors.is_empty() {
        "all approved, metadata approved, journal empty".to_string()
    } else {
        format!(
            "FAILED: {}",
            errors
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    for n in notes {
        s.push_str("; ");
        s.push_str(n);
    }
    s
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A daemon started by the harness, its stderr copied to a log file; killed when dropped.
struct Proc {
    child: Child,
    spawned: Instant,
    ready: Instant,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` and waits for its `watching` log line.
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("start the daemon");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let path = log.clone();
        thread::spawn(move || {
            let mut out = std::io::BufWriter::new(File::create(path).unwrap());
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("watching")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(Instant::now());
                }
                let _ = writeln!(out, "{line}");
            }
        });
        let ready = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(t) => t,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "the daemon did not start; its log:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Proc {
            child,
            spawned,
            ready,
            log,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn startup_ms(&self) -> f64 {
        (self.ready - self.spawned).as_secs_f64() * 1e3
    }

    /// utime + stime of the whole process, in seconds.
    fn cpu_secs(&self) -> f64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // After the command: state is field 3, utime 14, stime 15.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        (ticks(11) + ticks(12)) as f64 / hz
    }

    /// Nanoseconds on CPU summed over the live threads (schedstat), finer than ticks.
    fn oncpu_ns(&self) -> u64 {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// (VmRSS, VmHWM) in kB.
    fn mem_kb(&self) -> (u64, u64) {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then SIGKILL if it is still running after 20 s.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        eprintln!("   (daemon {pid} ignored SIGTERM; killed)");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Records when each folder is moved into a directory, with inotify, on its own thread.
struct MoveWatch {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicBool>,
    handle: thread::JoinHandle<()>,
}

impl MoveWatch {
    fn new(dir: &Path) -> MoveWatch {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1 failed");
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MOVED_TO) };
        assert!(wd >= 0, "inotify_add_watch {} failed", dir.display());
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let overflow = Arc::new(AtomicBool::new(false));
        let handle = {
            let (seen, count, stop, overflow) =
                (seen.clone(), count.clone(), stop.clone(), overflow.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ready = unsafe { libc::poll(&mut pfd, 1, 20) };
                    if ready <= 0 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        continue;
                    }
                    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                    let now = Instant::now();
                    if n <= 0 {
                        continue;
                    }
                    let mut batch = Vec::new();
                    let mut i = 0usize;
                    let n = n as usize;
                    while i + 16 <= n {
                        let u32_at =
                            |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
                        let mask = u32_at(i + 4);
                        let len = u32_at(i + 12) as usize;
                        if mask & libc::IN_Q_OVERFLOW != 0 {
                            overflow.store(true, Ordering::SeqCst);
                        }
                        if len > 0 && mask & libc::IN_MOVED_TO != 0 {
                            let raw = &buf[i + 16..i + 16 + len];
                            let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
                            batch.push(String::from_utf8_lossy(&raw[..end]).into_owned());
                        }
                        i += 16 + len;
                    }
                    let mut seen = seen.lock().unwrap();
                    for name in batch {
                        if seen.insert(name, now).is_none() {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                unsafe { libc::close(fd) };
            })
        };
        MoveWatch {
            seen,
            count,
            stop,
            overflow,
            handle,
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn finish(self) -> (HashMap<String, Instant>, bool) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        (seen, self.overflow.load(Ordering::SeqCst))
    }
}

/// Counts the lines of a decision log that contain `needle`, reading only what was appended.
pub(crate) struct Count {
    path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
    needle: &'static [u8],
    n: usize,
}

impl Count {
    fn new(path: PathBuf, needle: &'static [u8]) -> Count {
        Count {
            path,
            pos: 0,
            partial: Vec::new(),
            needle,
            n: 0,
        }
    }

    fn get(&mut self) -> usize {
        if let Ok(mut f) = File::open(&self.path)
            && f.seek(SeekFrom::Start(self.pos)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(k) = f.read_to_end(&mut buf) {
                self.pos += k as u64;
                self.partial.extend_from_slice(&buf);
                let mut start = 0;
                while let Some(nl) = self.partial[start..].iter().position(|&b| b == b'\n') {
                    if memmem(&self.partial[start..start + nl], self.needle) {
                        self.n += 1;
                    }
                    start += nl + 1;
                }
                self.partial.drain(..start);
            }
        }
        self.n
    }

    /// Waits until `want` lines are counted or `budget` passes; returns when it got there.
    fn until(&mut self, want: usize, budget: Duration) -> Option<Instant> {
        let end = Instant::now() + budget;
        while Instant::now() < end {
            if self.get() >= want {
                return Some(Instant::now());
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// uid -> (when it was recorded approved, method), from a decisions.jsonl-style log.
fn read_decisions(path: &Path) -> HashMap<String, (SystemTime, String)> {
    let mut out = HashMap::new();
    let Ok(f) = File::open(path) else {
        return out;
    };
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["outcome"] != "approved" {
            continue;
        }
        let (Some(uid), Some(time)) = (v["uid"].as_str(), v["time"].as_str()) else {
            continue;
        };
        let Some(at) = parse_naive(time).and_then(|t| {
            chrono::Local
                .from_local_datetime(&t)
                .earliest()
                .map(SystemTime::from)
        }) else {
            continue;
        };
        let method = v["method"].as_str().unwrap_or("").to_string();
        out.insert(uid.to_string(), (at, method));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The machine

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".into(), |(_, v)| v.trim().to_string());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kb: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let tmp = std::env::temp_dir();
    let fs_desc = filesystem_of(&tmp);
    let mut s = String::new();
    let _ = writeln!(s, "- cores: {cores} (nproc); CPU: {model}");
    let _ = writeln!(
        s,
        "- kernel: {}; memory: {:.1} GB",
        kernel.trim(),
        mem_kb as f64 / 1048576.0
    );
    let _ = writeln!(s, "- temporary trees in {}: {fs_desc}", tmp.display());
    s
}

/// The mount that holds `path`: "device type (options)".
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let mnt = Path::new(f[1]);
        if path.starts_with(mnt) && best.as_ref().is_none_or(|(l, _)| f[1].len() >= *l) {
            best = Some((f[1].len(), format!("{} {} ({})", f[0], f[2], f[3])));
        }
    }
    best.map_or("unknown".into(), |(_, d)| d)
}

/// The first line a command prints, or "?".
fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8(o.stdout)
                .ok()?
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

/// The report line giving the load average at the start of each run of a table.
fn loads_line<'a>(loads: impl Iterator<Item = &'a str>) -> String {
    let loads: Vec<&str> = loads.collect();
    format!(
        "\nLoad average (1, 5, 15 min) at the start of each run: {}.",
        loads.join("; ")
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The baseline

mod baseline {
    use super::*;

    struct Stores {
        allow: HashSet<String>,
        trusted: HashSet<String>,
    }

    /// Reads the allowlist (one file per encoded email) and the trusted signatures.
    fn load(app_data: &Path) -> Stores {
        let names = |dir: PathBuf| -> Vec<String> {
            fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        Stores {
            allow: names(app_data.join("allowlist"))
                .iter()
                .filter_map(|n| syft_reviewer::core::email::decode(n).ok())
                .collect(),
            trusted: names(app_data.join("trusted_code"))
                .iter()
                .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
                .collect(),
        }
    }

    /// `baseline-daemon QUEUE APP_DATA OWNER DECISION_LOG`: runs until killed.
    pub fn run(args: &[String]) -> ! {
        let [queue, app_data, owner, log_path] = args else {
            eprintln!("usage: reviewer baseline-daemon QUEUE APP_DATA OWNER DECISION_LOG");
            std::process::exit(2);
        };
        let (queue, app_data) = (PathBuf::from(queue), PathBuf::from(app_data));
        let pending = queue.join("pending");
        let approved = queue.join("approved");
        let mut stores = load(&app_data);
        let mut loaded = Instant::now();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        eprintln!(
            "baseline watching {} (poll every {} s, at most {BASELINE_PER_POLL} jobs per poll, {} allowlisted)",
            pending.display(),
            BASELINE_POLL.as_secs(),
            stores.allow.len()
        );
        loop {
            // The Python app took allowlist changes into account within 30 s.
            if loaded.elapsed() >= Duration::from_secs(30) {
                stores = load(&app_data);
                loaded = Instant::now();
            }
            let mut uids: Vec<String> = fs::read_dir(&pending)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| !n.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default();
            uids.sort();
            let mut out = String::new();
            for uid in uids.iter().take(BASELINE_PER_POLL) {
                if let Some(method) =
                    approve(&pending.join(uid), &approved.join(uid), owner, &stores)
                {
                    let line = serde_json::json!({
                        "time": format_naive(&now_naive()),
                        "uid": uid,
                        "outcome": "approved",
                        "method": method,
                    });
                    let _ = writeln!(out, "{line}");
                }
            }
            if !out.is_empty() {
                let _ = log.write_all(out.as_bytes());
            }
            thread::sleep(BASELINE_POLL);
        }
    }

    /// Approves one job if its sender is allowlisted or its code trusted: rename, then rewrite
    /// the metadata (no fsync, no journal, no re-check), like the queue client's approve.
    fn approve(dir: &Path, dest: &Path, owner: &str, stores: &Stores) -> Option<&'static str> {
        let bytes = fs::read(dir.join("metadata.json")).ok()?;
        let mut meta: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if meta["target_email"].as_str()?.to_lowercase() != owner || meta["status"] != "pending" {
            return None;
        }
        let from = meta["requester_email"].as_str()?.to_lowercase();
        let method = if stores.allow.contains(&from) {
            "allowlist"
        } else {
            let scan = signature::scan_code(&dir.join("code")).ok()?;
            let tags: Vec<String> = meta["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let sig = signature::signature_v1(
                meta["name"].as_str().unwrap_or(""),
                meta["description"].as_str().unwrap_or(""),
                &tags,
                &scan.files,
            );
            if !stores.trusted.contains(&sig) {
                return None;
            }
            "trusted_code"
        };
        fs::rename(dir, dest).ok()?;
        meta["status"] = "approved".into();
        meta["updated_at"] = format_naive(&now_naive()).into();
        fs::write(
            dest.join("metadata.json"),
            serde_json::to_vec_pretty(&meta).ok()?,
        )
        .ok()?;
        Some(method)
    }
}
