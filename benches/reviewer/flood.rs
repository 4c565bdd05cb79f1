//! Section 5: floods. Bursts of 1,000 / 10,000 / 100,000 jobs, allowlisted (approved) and from
//! an unknown sender (they wait), with the daemon's peak and idle memory and its durable
//! throughput; and how long a job from an allowlisted sender takes to be approved when it
//! arrives in such a flood, present at start or arriving during it.
//!
//! `SYFT_BENCH_BEFORE=/path/to/syft-reviewer` runs every row with that build too, in the same
//! run and on the same trees' twins, for a before/after comparison. The baseline polls 50 jobs
//! a second, so it is run at 1,000 jobs only (100,000 would take it over half an hour; in a
//! flood of strangers' jobs it looks at the same first 50 again and again).

use super::*;

/// The daemons compared: (label, binary).
fn engines() -> Vec<(String, PathBuf)> {
    let mut v = vec![("syft-reviewer".to_string(), reviewer_bin())];
    if let Some(before) = std::env::var_os("SYFT_BENCH_BEFORE") {
        v.push(("syft-reviewer, before".to_string(), PathBuf::from(before)));
    }
    v
}

fn spawn(bin: &Path, sb: &Sandbox) -> Proc {
    let mut c = Command::new(bin);
    c.arg("--config").arg(&sb.config);
    c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
    c.env("HOME", sb.dir.path());
    // With its web server, as `run.sh` starts it: the queue's index is then kept too.
    // `SYFT_BENCH_FLOOD_NO_WEB=1` measures the daemon alone.
    c.args(["run", "--settle-ms", &DEFAULT_SETTLE_MS.to_string()]);
    if std::env::var_os("SYFT_BENCH_FLOOD_NO_WEB").is_some() {
        c.arg("--no-web");
    } else {
        c.args(["--port", &free_port().to_string()]);
    }
    // `SYFT_BENCH_RUST_LOG=info,syft_reviewer::daemon=debug` shows how each flood is ranked.
    let level = std::env::var("SYFT_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
    c.env("RUST_LOG", level);
    Proc::spawn(c, sb.dir.path().join(format!("flood-{}.log", nanos())))
}

fn stranger_job() -> JobKind {
    JobKind {
        from: STRANGER,
        method: "-",
        ..small_job()
    }
}

struct Row {
    engine: String,
    what: &'static str,
    n: usize,
    /// Seconds from the first rename (or the start) to the last decision.
    secs: Option<f64>,
    peak_mb: f64,
    idle_mb: f64,
    /// The allowlisted job's latency, ms.
    owner_ms: Option<f64>,
    cpu_s: f64,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Peak RSS now, then RSS after a few seconds at rest.
fn memory(p: &Proc) -> (f64, f64) {
    let peak = p.mem_kb().1;
    thread::sleep(Duration::from_secs(3));
    (mb(peak), mb(p.mem_kb().0))
}

fn budget(n: usize) -> Duration {
    Duration::from_secs(60 + n as u64 / 200)
}

/// `n` allowlisted jobs renamed in as fast as possible: all approved, durably.
fn allowlisted(engine: &(String, PathBuf), n: usize) -> Row {
    let p = prepare_burst(&small_job(), n);
    let proc = spawn(&engine.1, &p.sb);
    thread::sleep(Duration::from_millis(500));
    let cpu0 = proc.cpu_secs();
    let mut approved = Count::new(
        p.sb.app_data().join("decisions.jsonl"),
        b"\"outcome\":\"approved\"",
    );
    let pending = p.sb.queue().join("pending");
    let t0 = SystemTime::now();
    for uid in &p.uids {
        fs::rename(staging(&p.sb).join(uid), pending.join(uid)).unwrap();
    }
    let done = approved.until(n, budget(n)).is_some();
    let cpu_s = proc.cpu_secs() - cpu0;
    let (peak_mb, idle_mb) = memory(&proc);
    let log = proc.log.clone();
    proc.stop();
    keep_log(&log, n, "allowlisted");
    let last = read_decisions(&p.sb.app_data().join("decisions.jsonl"))
        .values()
        .map(|(t, _)| t.duration_since(t0).map_or(0.0, |d| d.as_secs_f64()))
        .fold(0.0, f64::max);
    Row {
        engine: engine.0.clone(),
        what: "allowlisted, one burst",
        n,
        secs: done.then_some(last),
        peak_mb,
        idle_mb,
        owner_ms: None,
        cpu_s,
    }
}

/// One allowlisted job in a flood of `n` strangers' jobs: present when the daemon starts
/// (`arriving` false), or renamed in halfway through the flood's arrival.
fn owner_in_flood(engine: &(String, PathBuf), n: usize, arriving: bool) -> Row {
    let sb = prepare(&small_job());
    let strangers = build_jobs(&sb, n, &stranger_job());
    let mine = build_jobs(&sb, 1, &small_job()).remove(0);
    sync_fs(&sb);
    let pending = sb.queue().join("pending");
    let stage = staging(&sb);
    if !arriving {
        for uid in &strangers {
            fs::rename(stage.join(uid), pending.join(uid)).unwrap();
        }
        sync_fs(&sb);
    }
    let watch = MoveWatch::new(&sb.queue().join("approved"));
    let proc = spawn(&engine.1, &sb);
    let cpu0 = proc.cpu_secs();
    let t0 = Instant::now();
    let mut owner_at = None;
    if arriving {
        for (i, uid) in strangers.iter().enumerate() {
            if i == n / 2 {
                fs::rename(stage.join(&mine), pending.join(&mine)).unwrap();
                owner_at = Some(Instant::now());
            }
            fs::rename(stage.join(uid), pending.join(uid)).unwrap();
        }
    } else {
        fs::rename(stage.join(&mine), pending.join(&mine)).unwrap();
        owner_at = Some(Instant::now());
    }
    let mut waiting = Count::new(
        sb.app_data().join("decisions.jsonl"),
        b"\"outcome\":\"waiting\"",
    );
    let done = waiting.until(n, budget(n));
    let end = Instant::now() + Duration::from_secs(5);
    while watch.count() < 1 && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    let cpu_s = proc.cpu_secs() - cpu0;
    let (peak_mb, idle_mb) = memory(&proc);
    let log = proc.log.clone();
    proc.stop();
    keep_log(&log, n, if arriving { "arriving" } else { "present" });
    let (moved, _) = watch.finish();
    let owner_ms = match (moved.get(&mine), owner_at) {
        (Some(m), Some(a)) => Some(m.saturating_duration_since(a).as_secs_f64() * 1e3),
        _ => None,
    };
    Row {
        engine: engine.0.clone(),
        what: if arriving {
            "strangers arriving in one burst (+1 allowlisted halfway)"
        } else {
            "strangers present at start (+1 allowlisted right after)"
        },
        n,
        secs: done.map(|d| d.duration_since(t0).as_secs_f64()),
        peak_mb,
        idle_mb,
        owner_ms,
        cpu_s,
    }
}

/// Copies the daemon's log of a row to `$SYFT_BENCH_FLOOD_LOGS/flood-<n>-<what>.log`, if set
/// (the tree it ran in is removed with the row).
fn keep_log(log: &Path, n: usize, what: &str) {
    let Some(dir) = std::env::var_os("SYFT_BENCH_FLOOD_LOGS") else {
        return;
    };
    let to = PathBuf::from(dir).join(format!("flood-{n}-{what}.log"));
    if let Err(e) = fs::copy(log, &to) {
        eprintln!("could not keep the daemon's log as {}: {e}", to.display());
    }
}

/// The baseline on the same two questions at 1,000 jobs.
fn baseline_rows(n: usize) -> Vec<Row> {
    let label = Engine::Baseline.label();
    let p = prepare_burst(&small_job(), n);
    let proc = start(Engine::Baseline, &p.sb, None);
    let pending = p.sb.queue().join("pending");
    let mut approved = Count::new(baseline_log(&p.sb), b"\"outcome\":\"approved\"");
    let t0 = Instant::now();
    for uid in &p.uids {
        fs::rename(staging(&p.sb).join(uid), pending.join(uid)).unwrap();
    }
    let done = approved.until(n, budget(n * 40));
    let cpu_s = proc.cpu_secs();
    let (peak_mb, idle_mb) = memory(&proc);
    proc.stop();
    let mut rows = vec![Row {
        engine: label.clone(),
        what: "allowlisted, one burst",
        n,
        secs: done.map(|d| d.duration_since(t0).as_secs_f64()),
        peak_mb,
        idle_mb,
        owner_ms: None,
        cpu_s,
    }];
    // Strangers' jobs present; the allowlisted one right after the start.
    let sb = prepare(&small_job());
    let strangers = build_jobs(&sb, n, &stranger_job());
    let mine = build_jobs(&sb, 1, &small_job()).remove(0);
    for uid in &strangers {
        fs::rename(staging(&sb).join(uid), sb.queue().join("pending").join(uid)).unwrap();
    }
    sync_fs(&sb);
    let watch = MoveWatch::new(&sb.queue().join("approved"));
    let proc = start(Engine::Baseline, &sb, None);
    let at = Instant::now();
    fs::rename(
        staging(&sb).join(&mine),
        sb.queue().join("pending").join(&mine),
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while watch.count() < 1 && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    let (peak_mb, idle_mb) = memory(&proc);
    let cpu_s = proc.cpu_secs();
    proc.stop();
    let (moved, _) = watch.finish();
    rows.push(Row {
        engine: label,
        what: "strangers present at start (+1 allowlisted right after)",
        n,
        secs: None,
        peak_mb,
        idle_mb,
        owner_ms: moved
            .get(&mine)
            .map(|m| m.saturating_duration_since(at).as_secs_f64() * 1e3),
        cpu_s,
    });
    rows
}

pub(super) fn flood_section(quick: bool, baseline: bool) -> String {
    let sizes: &[usize] = if quick {
        &[300, 1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let only: Option<Vec<usize>> = std::env::var("SYFT_BENCH_FLOOD_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect());
    let sizes: Vec<usize> = only.unwrap_or_else(|| sizes.to_vec());
    // `SYFT_BENCH_FLOOD_ROWS=arriving` (or `allowlisted`, `present`, comma-separated): only
    // those rows.
    let rows_wanted = std::env::var("SYFT_BENCH_FLOOD_ROWS").ok();
    let wants = |row: &str| {
        rows_wanted
            .as_deref()
            .is_none_or(|w| w.split(',').any(|r| r.trim() == row))
    };
    let mut rows = Vec::new();
    // Each row as it is measured, so a long run that is cut short still reports what it did.
    let show = |r: &Row| {
        eprintln!(
            "   {} x {} {}: {:?} s, peak {:.1} MB, idle {:.1} MB, allowlisted job {:?} ms, CPU {:.1} s",
            r.engine, r.n, r.what, r.secs, r.peak_mb, r.idle_mb, r.owner_ms, r.cpu_s
        )
    };
    for &n in &sizes {
        for e in engines() {
            if wants("allowlisted") {
                eprintln!("== flood: {} x {n} allowlisted (load {})", e.0, loadavg());
                rows.push(allowlisted(&e, n));
                show(&rows[rows.len() - 1]);
            }
            for arriving in [false, true] {
                if !wants(if arriving { "arriving" } else { "present" }) {
                    continue;
                }
                eprintln!(
                    "== flood: {} x {n} strangers, {} (load {})",
                    e.0,
                    if arriving { "arriving" } else { "present" },
                    loadavg()
                );
                rows.push(owner_in_flood(&e, n, arriving));
                show(&rows[rows.len() - 1]);
            }
        }
    }
    if baseline && let Some(&n) = sizes.first() {
        eprintln!("== flood: baseline x {n} (load {})", loadavg());
        rows.extend(baseline_rows(n));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## 5. Floods\n\n\
         Allowlisted 2-file jobs renamed into `pending/` in one burst (throughput: jobs over the \
         seconds from the first rename to the last decision record, every one durable); and \
         jobs from an unknown sender that wait, present when the daemon starts or renamed in \
         as one burst, with one allowlisted job among them (its latency: from its rename to its \
         move into `approved/`, seen through inotify; the strangers' time is until the last of \
         them is recorded as waiting). Peak RSS is VmHWM at the end; idle RSS is VmRSS 3 s \
         later. `--settle-ms {DEFAULT_SETTLE_MS}`, {}.\n",
        if std::env::var_os("SYFT_BENCH_FLOOD_NO_WEB").is_some() {
            "`--no-web`"
        } else {
            "with the web server (and so the queue's index), as `run.sh` starts it"
        }
    );
    let _ = writeln!(
        s,
        "| engine | jobs | what | all decided (s) | jobs/s | peak RSS (MB) | idle RSS (MB) | allowlisted job (ms) | CPU s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let secs = r
            .secs
            .map_or("not within budget".into(), |x| format!("{x:.2}"));
        let rate = r
            .secs
            .filter(|x| *x > 0.0)
            .map_or("-".into(), |x| format!("{:.0}", r.n as f64 / x));
        let owner = match (r.what.starts_with("strangers"), r.owner_ms) {
            (false, _) => "-".to_string(),
            (true, Some(ms)) => format!("{ms:.0}"),
            (true, None) => "not approved".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {secs} | {rate} | {:.1} | {:.1} | {owner} | {:.1} |",
            r.engine, r.n, r.what, r.peak_mb, r.idle_mb, r.cpu_s
        );
    }
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| r.engine == "syft-reviewer")
        .collect();
    let peak = mine.iter().map(|r| r.peak_mb).fold(0.0, f64::max);
    let idle = mine.iter().map(|r| r.idle_mb).fold(0.0, f64::max);
    let worst_owner = mine
        .iter()
        .filter(|r| r.what.starts_with("strangers"))
        .map(|r| r.owner_ms.unwrap_or(f64::INFINITY))
        .fold(0.0, f64::max);
    let rate = |n: usize| {
        mine.iter()
            .find(|r| r.n == n && r.what.starts_with("allowlisted"))
            .and_then(|r| r.secs.map(|x| r.n as f64 / x))
    };
    let _ = writeln!(
        s,
        "\nTargets: peak RSS < 64 MB: {peak:.1} MB, **{}**; idle RSS < 30 MB: {idle:.1} MB, **{}**; \
         the allowlisted job within 1 s in every flood: {worst_owner:.0} ms, **{}**.",
        met(peak < 64.0),
        met(idle < 30.0),
        met(worst_owner <= 1000.0)
    );
    if let (Some(small), Some(big)) = (
        sizes.first().and_then(|n| rate(*n)),
        sizes.last().and_then(|n| rate(*n)),
    ) {
        let _ = writeln!(
            s,
            "Throughput at {} jobs / at {} jobs: {big:.0} / {small:.0} jobs/s ({:.0} %; within 20 %: **{}**).",
            sizes.last().unwrap_or(&0),
            sizes.first().unwrap_or(&0),
            big / small * 100.0,
            met(big >= small * 0.8)
        );
    }
    s
}
