//! Fault injection: the daemon is SIGKILLed at random moments while bursts of mixed jobs
//! arrive; approvals are refused by the filesystem (an immutable `approved/` or journal folder);
//! the disk fills up (a 1 MiB tmpfs as the SyftBox folder); and the API is hammered over loopback
//! while jobs keep arriving. Afterwards nothing is lost or half-done and every approval is
//! justified.
//!
//! `cargo test --release --test tests faults -- --nocapture` runs the bounded default (30 kill
//! rounds, well under a minute); `FAULT_ROUNDS=100` runs 100 rounds, `FAULT_SEED` reuses a kill
//! schedule, `LOAD_REQUESTS` and `LOAD_CLIENTS` set the request count and the concurrent clients
//! of the load test (default 2,000 and 4). The disk-full test mounts a tmpfs, so it needs root or
//! password-less sudo, and fails saying so otherwise; the permission test uses `chattr +i` as root
//! and read-only modes otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

const ALICE: &str = "alice@example.org";
const MALLORY: &str = "mallory@example.net";
const TRUSTED_NAME: &str = "Trusted job";
const TRUSTED_MAIN: &[u8] = b"print('the reviewed analysis')\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// From the allowlisted sender: approved.
    Allowed,
    /// From an unknown sender, with new code: stays pending.
    Unknown,
    /// From an unknown sender, with exactly the trusted code: approved.
    TrustedCode,
    /// From the allowlisted sender, spoiled: stays pending.
    Spoiled(Spoil),
}

impl Kind {
    fn approved(self) -> bool {
        matches!(self, Kind::Allowed | Kind::TrustedCode)
    }
    fn pick(r: u64) -> Kind {
        match r % 20 {
            0 => Kind::Spoiled(Spoil::NoRunScript),
            1 => Kind::Spoiled(Spoil::BrokenMetadata),
            2 => Kind::Spoiled(Spoil::Symlink),
            3..=6 => Kind::TrustedCode,
            7..=11 => Kind::Unknown,
            _ => Kind::Allowed,
        }
    }
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Builds a job of `kind` under `build_root` (same filesystem as the queue) and returns its uid
/// and build folder; `land` renames it into pending/ whole, as the queue client does.
fn build(build_root: &Path, i: usize, kind: Kind) -> (String, PathBuf) {
    let uid = new_uid();
    let dir = build_root.join(format!("build-{uid}"));
    let from = match kind {
        Kind::Unknown | Kind::TrustedCode => MALLORY,
        _ => ALICE,
    };
    let main = format!("print('job {i}')\n");
    let (name, main): (String, &[u8]) = if kind == Kind::TrustedCode {
        (TRUSTED_NAME.into(), TRUSTED_MAIN)
    } else {
        (format!("Job {i}"), main.as_bytes())
    };
    write_script_job(&dir, &uid, from, &name, main);
    if let Kind::Spoiled(how) = kind {
        spoil(&dir, how);
    }
    (uid, dir)
}

fn land(sb: &Sandbox, uid: &str, dir: &Path) {
    fs::rename(dir, sb.job_dir("pending", uid)).unwrap();
}

fn submit(sb: &Sandbox, i: usize, kind: Kind) -> String {
    let (uid, dir) = build(&sb.data_dir, i, kind);
    land(sb, &uid, &dir);
    uid
}

/// The signature of the trusted job's code, computed from a sample built like the others.
fn trusted_signature(sb: &Sandbox) -> String {
    let (_, dir) = build(&sb.data_dir, 0, Kind::TrustedCode);
    let scan = syft_reviewer::core::signature::scan_code(&dir.join("code")).unwrap();
    let sig = syft_reviewer::core::signature::signature_v1(
        TRUSTED_NAME,
        "Counts rows",
        &["stats".to_string()],
        &scan.files,
    );
    fs::remove_dir_all(dir).unwrap();
    sig
}

/// The allowlisted sender and the trusted code, set through the CLI.
/// Only code the owner has seen can be trusted: a first trusted-code job is queued and trusted
/// by uid; it is returned with the signature.
fn set_rules(sb: &Sandbox) -> (String, (String, Kind)) {
    let sig = trusted_signature(sb);
    let first = submit(sb, 0, Kind::TrustedCode);
    let cmds: [&[&str]; 2] = [&["allow", "add", ALICE], &["trust", "add", "--job", &first]];
    for args in cmds {
        let out = sb.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (sig, (first, Kind::TrustedCode))
}

fn spawn(sb: &Sandbox, tag: &str) -> Daemon {
    spawn_unready(
        sb,
        &format!("faults-{tag}"),
        &["--settle-ms", "0", "--no-web"],
    )
}

fn journal(sb: &Sandbox) -> Vec<PathBuf> {
    fs::read_dir(sb.state().join("moves"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn temps(sb: &Sandbox) -> Vec<PathBuf> {
    [sb.queue(), sb.app_data(), sb.state()]
        .iter()
        .flat_map(|r| walk(r))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".syft.tmp.")
        })
        .collect()
}

fn audit_verifies(sb: &Sandbox) -> Result<(), String> {
    let out = sb.cli(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() && text.contains("\"valid\":true") {
        Ok(())
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Every job in exactly one status folder with metadata that agrees, approved exactly when the
/// rules approve it, no temporary file, an empty journal, a verifying audit chain, and every
/// approval in the decision log justified by the allowlist or the trusted code.
fn check_settled(sb: &Sandbox, jobs: &BTreeMap<String, Kind>, sig: &str, ctx: &dyn Fn() -> String) {
    for (uid, kind) in jobs {
        let status = sb
            .status_of(uid)
            .unwrap_or_else(|| panic!("job {uid} ({kind:?}) is in no status folder\n{}", ctx()));
        let want = if kind.approved() {
            "approved"
        } else {
            "pending"
        };
        assert_eq!(status, want, "job {uid} ({kind:?})\n{}", ctx());
        if *kind == Kind::Spoiled(Spoil::BrokenMetadata) {
            let text = fs::read_to_string(sb.job_dir(&status, uid).join("metadata.json")).unwrap();
            assert_eq!(
                text, "{\"uid\": \"",
                "the broken metadata of {uid} was rewritten"
            );
        } else {
            let meta = sb.metadata(&status, uid);
            assert_eq!(
                meta["status"],
                status.as_str(),
                "{uid} ({kind:?}): {meta:#}\n{}",
                ctx()
            );
            assert_eq!(meta["uid"], uid.as_str());
        }
    }
    for s in STATUSES {
        for e in fs::read_dir(sb.queue().join(s)).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            // Each decided status folder has its owner-write-only permission file.
            if name == "syft.pub.yaml" {
                continue;
            }
            assert!(jobs.contains_key(&name), "unexpected {s}/{name}\n{}", ctx());
        }
    }
    assert_eq!(
        temps(sb),
        Vec::<PathBuf>::new(),
        "temporary files left\n{}",
        ctx()
    );
    assert_eq!(
        journal(sb),
        Vec::<PathBuf>::new(),
        "unfinished moves\n{}",
        ctx()
    );
    if let Err(e) = audit_verifies(sb) {
        panic!("the audit chain does not verify: {e}\n{}", ctx());
    }
    for d in sb.decisions() {
        if d["outcome"] != "approved" {
            continue;
        }
        let by_sender = d["requester"] == ALICE && d["method"] == "allowlist";
        let by_code = d["signature"] == sig && d["method"] == "trusted_code";
        assert!(
            by_sender || by_code,
            "an unjustified approval: {d}\n{}",
            ctx()
        );
        let uid = d["uid"].as_str().unwrap();
        assert!(
            jobs.get(uid).is_some_and(|k| k.approved()),
            "approved {uid}, which the rules do not approve: {d}\n{}",
            ctx()
        );
    }
}

fn tail_logs(sb: &Sandbox) -> String {
    log_tails(sb, 4, 30)
}

#[test]
fn sigkill_loop_during_bursts_of_mixed_jobs() {
    let rounds = env_num("FAULT_ROUNDS", 30) as usize;
    let seed = env_num("FAULT_SEED", 0);
    let seed = if seed != 0 {
        seed
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1
    };
    let mut rng = Rng(seed);
    let sb = Sandbox::new();
    let (sig, first) = set_rules(&sb);
    let mut jobs: BTreeMap<String, Kind> = BTreeMap::from([first]);
    let ctx = |sb: &Sandbox| format!("seed {seed} (FAULT_SEED={seed})\n{}", tail_logs(sb));
    let started = Instant::now();
    let mut kills_before_watching = 0;
    for round in 0..rounds {
        let burst = 5 + rng.below(40) as usize;
        let writer_seed = rng.next() | 1;
        let early = rng.below(3) == 0;
        let delay = rng.below(if early { 40 } else { 300 });
        let base = jobs.len();
        let written: Vec<(String, Kind)> = std::thread::scope(|s| {
            let sb = &sb;
            let writer = s.spawn(move || {
                let mut rng = Rng(writer_seed);
                let mut out = Vec::new();
                for i in 0..burst {
                    let kind = Kind::pick(rng.next());
                    out.push((submit(sb, base + i, kind), kind));
                    if rng.below(4) == 0 {
                        std::thread::sleep(Duration::from_millis(rng.below(15)));
                    }
                }
                out
            });
            let mut d = spawn(sb, &format!("round-{round:03}"));
            if early {
                kills_before_watching += 1;
            } else {
                wait_for(Duration::from_secs(20), || {
                    d.log_text().contains("watching")
                });
            }
            std::thread::sleep(Duration::from_millis(delay));
            d.kill();
            writer.join().unwrap()
        });
        jobs.extend(written);
        // With the daemon dead, every job is in exactly one folder (status_of panics on several).
        for uid in jobs.keys() {
            assert!(
                sb.status_of(uid).is_some(),
                "round {round}: job {uid} is in no status folder\n{}",
                ctx(&sb)
            );
        }
    }
    let mut d = spawn(&sb, "final");
    // Ready (signal handler installed) before it may be stopped.
    assert_watching(&d, || ctx(&sb));
    let expected: BTreeSet<&String> = jobs
        .iter()
        .filter(|(_, k)| k.approved())
        .map(|(u, _)| u)
        .collect();
    let settled = wait_for(Duration::from_secs(60), || {
        expected.iter().all(|u| {
            fs::read_to_string(sb.job_dir("approved", u).join("metadata.json"))
                .is_ok_and(|m| m.contains("\"approved\""))
        }) && journal(&sb).is_empty()
    });
    let (_, status) = terminate(&mut d);
    assert!(settled, "the queue did not settle\n{}", ctx(&sb));
    assert!(status.success(), "no clean stop: {status}\n{}", ctx(&sb));
    check_settled(&sb, &jobs, &sig, &|| ctx(&sb));
    eprintln!(
        "fault loop: {rounds} SIGKILL rounds ({kills_before_watching} during start-up), {} jobs ({} approved), consistent, in {:.1} s (seed {seed})",
        jobs.len(),
        expected.len(),
        started.elapsed().as_secs_f64()
    );
}

/// `chattr +i` on a folder; undone when dropped.
/// Waits (20 s at most) until every job the rules approve is approved and no move is unfinished.
fn approved_in_time(sb: &Sandbox, jobs: &BTreeMap<String, Kind>) -> bool {
    wait_for(Duration::from_secs(20), || {
        jobs.iter()
            .filter(|(_, k)| k.approved())
            .all(|(u, _)| sb.status_of(u).as_deref() == Some("approved"))
            && journal(sb).is_empty()
    })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `cmd` as is, or through `sudo -n` when not root.
fn privileged(cmd: &str) -> Command {
    if is_root() {
        Command::new(cmd)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", cmd]);
        c
    }
}

/// Approvals refused by the filesystem (an immutable `approved/`, then an immutable move
/// journal): the daemon says why and retries, the jobs stay in pending/ untouched, and they are
/// approved once the folder is writable again.
#[test]
fn permission_denied_on_the_queue_and_the_journal() {
    for target in ["approved", "journal"] {
        let sb = Sandbox::new();
        let (sig, first) = set_rules(&sb);
        let mut d = sb.start(&["--settle-ms", "0"]);
        // The first (trusted) job is approved at start, before the folder is locked.
        assert!(wait_for(Duration::from_secs(10), || sb
            .status_of(&first.0)
            .as_deref()
            == Some("approved")
            && journal(&sb).is_empty()));
        let folder = match target {
            "approved" => sb.queue().join("approved"),
            _ => {
                let moves = sb.state().join("moves");
                fs::create_dir_all(&moves).unwrap();
                moves
            }
        };
        let lock = ReadOnly::set(&folder);
        let mut jobs = BTreeMap::from([first]);
        let mut before = BTreeMap::new();
        for i in 0..6 {
            let kind = [Kind::Allowed, Kind::TrustedCode, Kind::Unknown][i % 3];
            let uid = submit(&sb, i, kind);
            before.insert(uid.clone(), snapshot(&sb.job_dir("pending", &uid)));
            jobs.insert(uid, kind);
        }
        assert!(
            wait_for(Duration::from_secs(10), || d
                .log_text()
                .contains("could not approve")
                || d.log_text().contains("retrying")),
            "{target}: no error logged:\n{}",
            d.log_text()
        );
        // Past one retry (5 s): still refused, still retrying, and nothing moved or changed.
        std::thread::sleep(Duration::from_secs(6));
        let log = d.log_text();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.len() >= 2, "{target}: retried? {log}");
        assert!(
            errors
                .iter()
                .any(|l| l.contains("ermission denied") || l.contains("not permitted")),
            "{target}: the error should name the cause: {errors:?}"
        );
        for (uid, snap) in &before {
            assert_eq!(
                sb.status_of(uid).as_deref(),
                Some("pending"),
                "{target}: {uid}"
            );
            assert_eq!(
                &snapshot(&sb.job_dir("pending", uid)),
                snap,
                "{target}: {uid} changed"
            );
        }
        drop(lock);
        assert!(
            approved_in_time(&sb, &jobs),
            "{target}: not approved after the folder became writable again (journal {:?}, statuses {:?}):\n{}",
            journal(&sb),
            jobs.keys().map(|u| sb.status_of(u)).collect::<Vec<_>>(),
            d.log_text()
        );
        let (_, status) = terminate(&mut d);
        assert!(status.success());
        check_settled(&sb, &jobs, &sig, &|| d.log_text());
        eprintln!(
            "permission denied on {target}: {} errors logged while refused, all approved after",
            errors.len()
        );
    }
}

/// A tmpfs mounted over the sandbox's SyftBox folder; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Needs root or password-less sudo: there is no other way to get a small filesystem.
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let out = privileged("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "could not mount a {size} tmpfs at {} ({}): this test needs root or password-less sudo",
            at.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = privileged("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `path` with one file until it is full.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut n = 0;
    while f.write_all(&chunk).is_ok() {
        n += chunk.len() as u64;
    }
    let _ = f.flush();
    n
}

/// The SyftBox folder on a 1 MiB tmpfs that fills up: approvals fail with a clear error and are
/// retried, nothing is lost or half-moved, and everything is approved once space is freed.
#[test]
fn disk_full_then_freed() {
    let sb = Sandbox::new();
    let _mnt = Tmpfs::mount(&sb.data_dir, "1m");
    for s in STATUSES {
        fs::create_dir_all(sb.queue().join(s)).unwrap();
    }
    let (sig, first) = set_rules(&sb);
    let mut d = sb.start(&["--settle-ms", "0"]);
    let builds = sb.data_dir.join("builds");
    fs::create_dir_all(&builds).unwrap();
    let first_uid = first.0.clone();
    let mut jobs = BTreeMap::from([first]);
    let mut built = Vec::new();
    for i in 0..8 {
        let kind = [
            Kind::Allowed,
            Kind::TrustedCode,
            Kind::Unknown,
            Kind::Allowed,
        ][i % 4];
        let (uid, dir) = build(&builds, i, kind);
        jobs.insert(uid.clone(), kind);
        built.push((uid, dir, kind));
    }
    // The first job's approval must be over (its journal file removed) before the disk fills:
    // space it frees later would let a write through.
    assert!(
        wait_for(Duration::from_secs(10), || sb
            .status_of(&first_uid)
            .as_deref()
            == Some("approved")
            && journal(&sb).is_empty()),
        "the first job was not approved:\n{}",
        d.log_text()
    );
    let filler = sb.data_dir.join("filler");
    let filled = fill(&filler);
    let mut before = BTreeMap::new();
    for (uid, dir, _) in &built {
        before.insert(uid.clone(), snapshot(dir));
        land(&sb, uid, dir);
    }
    let full_log = wait_for(Duration::from_secs(10), || {
        d.log_text().contains("No space left")
    });
    std::thread::sleep(Duration::from_secs(6));
    let log = d.log_text();
    assert!(full_log, "no clear disk-full error:\n{log}");
    let errors = log.lines().filter(|l| l.contains("No space left")).count();
    for (uid, snap) in &before {
        let status = sb.status_of(uid);
        assert_eq!(
            status.as_deref(),
            Some("pending"),
            "{uid} moved while the disk was full:\n{log}"
        );
        assert_eq!(
            &snapshot(&sb.job_dir("pending", uid)),
            snap,
            "{uid} changed on a full disk"
        );
    }
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon died on a full disk:\n{log}"
    );
    fs::remove_file(&filler).unwrap();
    assert!(
        approved_in_time(&sb, &jobs),
        "not approved after space was freed:\n{}",
        d.log_text()
    );
    let (_, status) = terminate(&mut d);
    assert!(status.success());
    fs::remove_dir_all(&builds).unwrap();
    check_settled(&sb, &jobs, &sig, &|| d.log_text());
    eprintln!(
        "disk full: filled {filled} bytes, {errors} 'No space left' errors logged while full, nothing lost, all approved after freeing"
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The API hammered over loopback by concurrent clients (status, job list, allowlist add/remove
/// with the bearer token) while a burst of allowlisted jobs arrives: every job is approved within
/// a bound and the UI page keeps answering. Prints throughput and latency percentiles.
#[test]
fn http_load_while_jobs_arrive() {
    const JOBS: usize = 300;
    let clients = env_num("LOAD_CLIENTS", 4) as usize;
    let requests = env_num("LOAD_REQUESTS", 2000) as usize;
    let sb = Sandbox::new();
    let out = sb.cli(&["allow", "add", ALICE]);
    assert!(out.status.success());
    let web = crate::http::serve(&sb, &["--settle-ms", "0"]);
    let bearer = format!("Bearer {}", web.token);
    let next = AtomicUsize::new(0);
    let latencies: Mutex<Vec<(usize, Duration)>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let mut uids = Vec::new();
    let mut page_times = Vec::new();
    let decided: Mutex<Option<(bool, Duration, bool)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for c in 0..clients {
            let (web, bearer, next, latencies, failures) =
                (&web, &bearer, &next, &latencies, &failures);
            s.spawn(move || {
                let mut mine = Vec::new();
                let mut added: Vec<String> = Vec::new();
                let mut i = 0usize;
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= requests {
                        break;
                    }
                    // Removals only of what this client added (and still holds).
                    i += 1;
                    let kind = match i % 4 {
                        3 if added.is_empty() => 2,
                        k => k,
                    };
                    let who = format!("load{c}_{n}@example.com");
                    let auth = [("Authorization", bearer.as_str())];
                    let t = Instant::now();
                    let r = match kind {
                        0 => web.request("GET", "/api/status", &[], b""),
                        1 => web.request("GET", "/api/v1/jobs", &[], b""),
                        2 => {
                            let r = web.request(
                                "POST",
                                &format!("/api/v1/allowlist/add/{who}"),
                                &auth,
                                b"",
                            );
                            added.push(who);
                            r
                        }
                        _ => {
                            let prev = added.pop().unwrap();
                            web.request(
                                "DELETE",
                                &format!("/api/v1/allowlist/remove/{prev}"),
                                &auth,
                                b"",
                            )
                        }
                    };
                    mine.push((kind, t.elapsed()));
                    if !(200..300).contains(&r.status) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{kind}: {} {}", r.status, r.text));
                    }
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
        // Jobs arrive in bursts meanwhile; the UI page is fetched now and then.
        for i in 0..JOBS {
            uids.push(submit(&sb, i, Kind::Allowed));
            if i % 30 == 29 {
                let t = Instant::now();
                let page = web.get("/");
                assert_eq!(page.status, 200);
                page_times.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Decided while the load goes on.
        let last = Instant::now();
        let ok = wait_for(Duration::from_secs(30), || {
            uids.iter()
                .all(|u| sb.status_of(u).as_deref() == Some("approved"))
        });
        *decided.lock().unwrap() =
            Some((ok, last.elapsed(), next.load(Ordering::SeqCst) < requests));
    });
    let elapsed = start.elapsed();
    let (all_approved, decided_after, under_load) = decided.into_inner().unwrap().unwrap();
    let failures = failures.into_inner().unwrap();
    assert!(
        all_approved,
        "jobs not approved under load:\n{}",
        web.daemon.log_text()
    );
    assert!(
        failures.len() <= requests / 100,
        "{} of {requests} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let mut lat = latencies.into_inner().unwrap();
    let mut all: Vec<Duration> = lat.iter().map(|(_, d)| *d).collect();
    all.sort();
    lat.sort_by_key(|(k, d)| (*k, *d));
    let by_kind = |k: usize| -> Vec<Duration> {
        lat.iter()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, d)| *d)
            .collect()
    };
    page_times.sort();
    eprintln!(
        "http load: {} requests by {clients} clients in {:.2} s = {:.0} req/s; {} failed (non-200)",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        failures.len()
    );
    eprintln!(
        "  all     p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    );
    for (k, name) in [
        "GET /api/status",
        "GET /api/v1/jobs",
        "POST allowlist/add",
        "DELETE allowlist/remove",
    ]
    .iter()
    .enumerate()
    {
        let v = by_kind(k);
        if !v.is_empty() {
            eprintln!(
                "  {name:<24} p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms",
                percentile(&v, 0.5),
                percentile(&v, 0.95),
                percentile(&v, 0.99)
            );
        }
    }
    eprintln!(
        "  UI page (GET /) during the load: {} fetches, max {:.2} ms; {JOBS} allowlisted jobs all approved {:.3} s after the last one arrived (load still running then: {under_load})",
        page_times.len(),
        page_times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        decided_after.as_secs_f64()
    );
}

/// Store writes refused, first by a read-only allowlist folder, then by a full disk: the API and
/// the CLI say why, nothing is half-written or audited, the daemon keeps serving, and the same
/// change goes through once the cause is gone.
#[test]
fn store_writes_refused_then_allowed() {
    let sb = Sandbox::new();
    let _mnt = Tmpfs::mount(&sb.data_dir, "1m");
    fs::create_dir_all(sb.queue()).unwrap();
    let out = sb.cli(&["allow", "add", ALICE]);
    assert!(out.status.success(), "{out:?}");
    let web = crate::http::serve(&sb, &["--settle-ms", "0"]);
    let bearer = format!("Bearer {}", web.token);
    let auth = [("Authorization", bearer.as_str())];
    let store = sb.app_data().join("allowlist");
    let add = |who: &str| web.request("POST", &format!("/api/v1/allowlist/add/{who}"), &auth, b"");
    let audited = || sb.cli(&["audit", "show"]).stdout.len();

    for (cause, words) in [("read-only", "permitted"), ("disk full", "No space left")] {
        let who = if cause == "read-only" {
            "bob@example.org"
        } else {
            "carol@example.org"
        };
        let before = snapshot(&store);
        let audit_before = audited();
        let refused = match cause {
            "read-only" => {
                let _ro = ReadOnly::set(&store);
                let api = add(who);
                let cli = sb.cli(&["allow", "add", who]);
                (api, cli)
            }
            _ => {
                let filler = sb.data_dir.join("filler");
                fill(&filler);
                let api = add(who);
                let cli = sb.cli(&["allow", "add", who]);
                fs::remove_file(&filler).unwrap();
                (api, cli)
            }
        };
        let (api, cli) = refused;
        assert!(
            api.status >= 500 && api.text.contains(words),
            "{cause}: the API must say why: {} {}",
            api.status,
            api.text
        );
        let stderr = String::from_utf8_lossy(&cli.stderr);
        eprintln!(
            "{cause}: API {} {}; CLI: {}",
            api.status,
            api.text.trim(),
            stderr.trim()
        );
        assert!(
            !cli.status.success() && stderr.contains(words),
            "{cause}: the CLI must say why: {stderr}"
        );
        assert_eq!(snapshot(&store), before, "{cause}: the allowlist changed");
        assert_eq!(
            audited(),
            audit_before,
            "{cause}: a refused change was audited"
        );
        assert_eq!(
            web.get("/health").status,
            200,
            "{cause}: the daemon stopped serving"
        );
        // The cause is gone: the same change works.
        assert_eq!(add(who).status, 201, "{cause}: not added once possible");
        let listed = web.request("GET", "/api/v1/allowlist", &auth, b"");
        assert!(listed.text.contains(who), "{cause}: {}", listed.text);
    }
    assert_eq!(audit_verifies(&sb), Ok(()));
    let temps: Vec<PathBuf> = walk(&sb.data_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".syft.tmp."))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
