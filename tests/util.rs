//! Shared fixture: a temporary SyftBox tree, jobs written like the real queue client writes them,
//! and the real binary started on it (killed when dropped).

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const OWNER: &str = "owner@example.org";
pub const BIN: &str = env!("CARGO_BIN_EXE_syft-reviewer");

pub const STATUSES: [&str; 7] = [
    "pending",
    "approved",
    "running",
    "completed",
    "failed",
    "rejected",
    "timedout",
];

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub config: PathBuf,
}

impl Sandbox {
    /// A SyftBox tree with the owner's datasite and an empty queue.
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("SyftBox");
        let config = dir.path().join("config.json");
        fs::write(
            &config,
            serde_json::json!({"data_dir": data_dir, "email": OWNER, "server_url": "https://syftbox.example"})
                .to_string(),
        )
        .unwrap();
        let sb = Sandbox {
            dir,
            data_dir,
            config,
        };
        for s in STATUSES {
            fs::create_dir_all(sb.queue().join(s)).unwrap();
        }
        sb
    }

    pub fn datasite(&self) -> PathBuf {
        self.data_dir.join("datasites").join(OWNER)
    }
    pub fn queue(&self) -> PathBuf {
        self.datasite().join("app_data/code-queue/jobs")
    }
    pub fn app_data(&self) -> PathBuf {
        self.datasite().join("app_data/syft_reviewer_allowlist")
    }
    pub fn allowlist_dir(&self) -> PathBuf {
        self.app_data().join("allowlist")
    }
    pub fn state(&self) -> PathBuf {
        self.data_dir.join(".syft_reviewer_allowlist")
    }
    pub fn job_dir(&self, status: &str, uid: &str) -> PathBuf {
        self.queue().join(status).join(uid)
    }

    /// The binary with `--config` pointing at this tree.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config);
        c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
        c.env("HOME", self.dir.path());
        c
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Starts the daemon with a short settle window; stderr goes to a log file in the tree.
    pub fn start(&self, extra: &[&str]) -> Daemon {
        let mut args = vec!["--settle-ms", "20"];
        // Tests run side by side: only those that ask for a port get a web server.
        if !(extra.contains(&"--port") || extra.contains(&"--no-web")) {
            args.push("--no-web");
        }
        args.extend_from_slice(extra);
        let d = spawn_unready(self, &format!("daemon-{}", nanos()), &args);
        // Ready when it has taken the instance lock and written its first log line.
        wait_for(Duration::from_secs(10), || {
            d.log_text().contains("watching")
        });
        d
    }

    /// Writes a job as the queue client does (built elsewhere, renamed into `status/` whole).
    /// Returns the uid.
    pub fn submit(&self, from: &str, files: &[(&str, &[u8])]) -> String {
        self.submit_with(
            from,
            OWNER,
            "Analysis",
            "Counts rows",
            &["stats"],
            files,
            "pending",
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn submit_with(
        &self,
        from: &str,
        to: &str,
        name: &str,
        description: &str,
        tags: &[&str],
        files: &[(&str, &[u8])],
        status: &str,
    ) -> String {
        let uid = new_uid();
        let tmp = self.dir.path().join(format!("build-{uid}"));
        write_job(&tmp, &uid, from, to, name, description, tags, files);
        let dest = self.queue().join(status).join(&uid);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::rename(&tmp, &dest).unwrap();
        uid
    }

    /// Which status folder holds the job (None if none does; panics if several do).
    pub fn status_of(&self, uid: &str) -> Option<String> {
        let look = || -> Vec<&str> {
            STATUSES
                .iter()
                .copied()
                .filter(|s| self.job_dir(s, uid).is_dir())
                .collect()
        };
        // The folders are looked at one after another, so a move in between can make the job
        // show up twice; only a job that stays in two folders is a real fault.
        let mut found = look();
        for _ in 0..20 {
            if found.len() <= 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            found = look();
        }
        assert!(
            found.len() <= 1,
            "job {uid} is in several folders: {found:?}"
        );
        found.first().map(|s| s.to_string())
    }

    pub fn metadata(&self, status: &str, uid: &str) -> serde_json::Value {
        let text = fs::read_to_string(self.job_dir(status, uid).join("metadata.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Adds an allowlist file by hand, as an owner would in a file manager.
    pub fn allow_by_hand(&self, encoded: &str) {
        fs::create_dir_all(self.allowlist_dir()).unwrap();
        fs::write(self.allowlist_dir().join(encoded), "").unwrap();
    }
}

/// Writes a job folder in the layout syft-code-queue uses.
#[allow(clippy::too_many_arguments)]
pub fn write_job(
    dir: &Path,
    uid: &str,
    from: &str,
    to: &str,
    name: &str,
    description: &str,
    tags: &[&str],
    files: &[(&str, &[u8])],
) {
    let code = dir.join("code");
    fs::create_dir_all(&code).unwrap();
    for (rel, content) in files {
        let p = code.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    // Jobs are written now: a fixed date would make every test job expire once its timeout passes.
    let now =
        syft_reviewer::queue::metadata::format_naive(&syft_reviewer::queue::metadata::now_naive());
    let meta = serde_json::json!({
        "uid": uid, "name": name, "requester_email": from, "target_email": to,
        "code_folder": "/elsewhere/code", "description": description,
        "created_at": now, "timeout_seconds": 86400, "tags": tags,
        "status": "pending", "updated_at": now, "started_at": null,
        "completed_at": null, "output_folder": null, "error_message": null, "exit_code": null,
        "logs": null
    });
    fs::write(
        dir.join("metadata.json"),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
    let perm = format!(
        "rules:\n- pattern: metadata.json\n  access:\n    read:\n    - {to}\n    - {from}\n    write:\n    - {to}\n    - {from}\n    admin:\n    - {from}\n"
    );
    fs::write(dir.join("syft.pub.yaml"), perm).unwrap();
    let mut code_perm = String::from("rules:\n");
    for (rel, _) in files {
        if !rel.contains('/') {
            code_perm.push_str(&format!(
                "- pattern: {rel}\n  access:\n    read:\n    - {to}\n    - {from}\n    write:\n    - {from}\n    admin:\n    - {from}\n"
            ));
        }
    }
    fs::write(code.join("syft.pub.yaml"), code_perm).unwrap();
}

/// A typical small job: run.sh plus a script.
pub fn simple_code() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
    ]
}

pub fn new_uid() -> String {
    let n = nanos();
    let r: u64 = rand_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) as u32,
        (n >> 16) as u16,
        (r & 0xfff) as u16,
        ((r >> 12) & 0xfff) as u16,
        (r >> 16) & 0xffff_ffff_ffff
    )
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The running binary; killed (SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Everything the daemon logged so far (stderr).
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM and waits for exit; returns how long it took and the exit status.
    pub fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let start = Instant::now();
        nix_kill(self.pid(), "TERM");
        let status = self.child.wait().unwrap();
        (start.elapsed(), status)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_kill(pid: i32, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

// Helpers shared by the daemon, bad-input and CLI tests.

impl Sandbox {
    /// The decision log (`decisions.jsonl`), one JSON value per line. A last line without its
    /// newline is still being appended by the daemon, and is not read yet.
    pub fn decisions(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.app_data().join("decisions.jsonl"))
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("every decision log line is JSON"))
            .collect()
    }

    /// Decision log entries about one job with the given outcome.
    pub fn decisions_for(&self, uid: &str, outcome: &str) -> Vec<serde_json::Value> {
        self.decisions()
            .into_iter()
            .filter(|e| e["uid"] == uid && e["outcome"] == outcome)
            .collect()
    }
}

/// Every entry under `dir` (relative path -> content; folders and links marked), to check that a
/// job was left exactly as it was.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(
                    rel,
                    [b"link:".as_slice(), target.as_os_str().as_encoded_bytes()].concat(),
                );
            } else if ft.is_dir() {
                out.insert(rel, b"dir".to_vec());
                walk(root, &path, out);
            } else {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `Daemon::terminate`, with a watchdog: a daemon that ignores SIGTERM is SIGKILLed after 10 s
/// (so the test fails on its exit status instead of hanging).
pub fn terminate(d: &mut Daemon) -> (Duration, std::process::ExitStatus) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid = d.pid();
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            if !wait_for(Duration::from_secs(10), || {
                done.load(std::sync::atomic::Ordering::SeqCst)
            }) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        })
    };
    let r = d.terminate();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
    r
}

// --- what is on disk

pub type Tree = std::collections::BTreeMap<PathBuf, Vec<u8>>;

/// Everything the app and the queue keep on disk.
pub fn disk(sb: &Sandbox) -> (Tree, Tree) {
    (snapshot(&sb.app_data()), snapshot(&sb.queue()))
}

/// Runs `f` and asserts it changed nothing in the app data or the queue.
#[track_caller]
pub fn unchanged<T>(sb: &Sandbox, what: &str, f: impl FnOnce() -> T) -> T {
    let before = disk(sb);
    let out = f();
    let after = disk(sb);
    if before != after {
        let diff = |a: &Tree, b: &Tree| -> Vec<String> {
            let keys: std::collections::BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    let show = |v: Option<&Vec<u8>>| {
                        v.map(|v| {
                            String::from_utf8_lossy(v)
                                .chars()
                                .rev()
                                .take(600)
                                .collect::<String>()
                                .chars()
                                .rev()
                                .collect::<String>()
                        })
                    };
                    format!(
                        "{}:\n  before: {:?}\n  after:  {:?}",
                        k.display(),
                        show(a.get(k)),
                        show(b.get(k))
                    )
                })
                .collect()
        };
        panic!(
            "{what} changed the disk.\napp data:\n{}\nqueue:\n{}",
            diff(&before.0, &after.0).join("\n"),
            diff(&before.1, &after.1).join("\n")
        );
    }
    out
}

/// Waits until the daemon has finished what it was doing (nothing changes on disk for a while).
pub fn settle(sb: &Sandbox) {
    let mut last = disk(sb);
    let mut stable_since = Instant::now();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        let now = disk(sb);
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(500) {
            return;
        }
    }
    panic!("the daemon never stopped changing the disk");
}

/// Every file under `dir`, recursively (links not followed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let ft = e.file_type().unwrap();
        out.push(e.path());
        if ft.is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// A small xorshift generator: reproducible from its seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Starts `run` with `args`, logging to `<name>.log` in the sandbox, without waiting for it to be
/// ready (a kill may land during its start-up and recovery too).
pub fn spawn_unready(sb: &Sandbox, name: &str, args: &[&str]) -> Daemon {
    let log = sb.dir.path().join(format!("{name}.log"));
    let child = sb
        .cmd()
        .arg("run")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    Daemon { child, log }
}

/// Ways a job written by [`write_job`] can be spoiled, each of which must keep it pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoil {
    /// `code/run.sh` is missing: flagged.
    NoRunScript,
    /// A symbolic link under `code/`.
    Symlink,
    /// `metadata.json` is not JSON.
    BrokenMetadata,
}

/// Spoils the job folder `dir` as `how` says.
pub fn spoil(dir: &Path, how: Spoil) {
    match how {
        Spoil::NoRunScript => fs::remove_file(dir.join("code/run.sh")).unwrap(),
        Spoil::Symlink => {
            std::os::unix::fs::symlink("/etc/passwd", dir.join("code/data.csv")).unwrap()
        }
        Spoil::BrokenMetadata => fs::write(dir.join("metadata.json"), "{\"uid\": \"").unwrap(),
    }
}

/// A job for the owner whose code is `run.sh` starting `main.py` with `main`: the shape of the
/// bursts the crash and fault tests throw at the daemon.
pub fn write_script_job(dir: &Path, uid: &str, from: &str, name: &str, main: &[u8]) {
    let files: [(&str, &[u8]); 2] = [
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", main),
    ];
    write_job(
        dir,
        uid,
        from,
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        &files,
    );
}

/// Waits (30 s at most) for a daemon started by [`spawn_unready`] to say it is watching; fails
/// with `ctx()` otherwise.
#[track_caller]
pub fn assert_watching(d: &Daemon, ctx: impl Fn() -> String) {
    assert!(
        wait_for(Duration::from_secs(30), || d
            .log_text()
            .contains("watching")),
        "the daemon did not start:\n{}",
        ctx()
    );
}

/// The last `lines` lines of the newest `files` daemon logs (`*.err`) in the sandbox, for
/// failure messages.
pub fn log_tails(sb: &Sandbox, files: usize, lines: usize) -> String {
    let mut logs: Vec<PathBuf> = fs::read_dir(sb.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "err"))
        .collect();
    logs.sort();
    let mut text = String::new();
    for p in &logs[logs.len().saturating_sub(files)..] {
        let body = fs::read_to_string(p).unwrap_or_default();
        let all: Vec<&str> = body.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        text.push_str(&format!(
            "--- {} (last {} lines)\n{}\n",
            p.display(),
            tail.len(),
            tail.join("\n")
        ));
    }
    text
}

/// `syft-reviewer mcp`, driven line by line over its stdin and stdout; killed on drop.
pub(crate) struct Mcp {
    pub(crate) child: Child,
    pub(crate) stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Mcp {
    pub(crate) fn start(sb: &Sandbox) -> Mcp {
        let stderr = sb.dir.path().join("mcp.err");
        let mut child = sb
            .cmd()
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Mcp {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    pub(crate) fn send_raw(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        // A server that died answers nothing: `recv` says so, with its exit status.
        let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
    }

    pub(crate) fn recv(&mut self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| {
                panic!(
                    "no answer from the MCP server ({e}; exit status {:?}); stderr:\n{}",
                    self.child.try_wait(),
                    fs::read_to_string(&self.stderr).unwrap_or_default()
                )
            });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("the MCP server wrote a line that is not JSON ({e}): {line:?}")
        });
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        v
    }

    /// Sends a request and returns its answer (which must carry the same id).
    pub(crate) fn request(
        &mut self,
        id: u64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        self.send_raw(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                .to_string(),
        );
        let v = self.recv();
        assert_eq!(v["id"], id, "answer to the wrong request: {v}");
        v
    }

    /// `tools/call`: returns the result (`content`, `structuredContent`, `isError`).
    pub(crate) fn call(
        &mut self,
        id: u64,
        tool: &str,
        args: serde_json::Value,
    ) -> serde_json::Value {
        let v = self.request(
            id,
            "tools/call",
            serde_json::json!({"name": tool, "arguments": args}),
        );
        let r = v["result"].clone();
        assert!(r.is_object(), "tools/call must answer with a result: {v}");
        let text = r["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(r["content"][0]["type"], "text", "{v}");
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            parsed, r["structuredContent"],
            "the text is the structured content"
        );
        r
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder that refuses writes until dropped: `chattr +i` as root (root ignores modes), mode
/// 0555 otherwise.
pub(crate) struct ReadOnly {
    /// Where the folder is, or may be by the time it is released.
    paths: Vec<PathBuf>,
    /// The mode to restore (`None`: the immutable flag was set).
    mode: Option<u32>,
}

impl ReadOnly {
    pub(crate) fn set(path: &Path) -> ReadOnly {
        use std::os::unix::fs::PermissionsExt;
        let mode = if nix::unistd::geteuid().is_root() {
            let ok = Command::new("chattr").arg("+i").arg(path).status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "chattr +i {} failed: this test needs a filesystem with the immutable flag (ext4, tmpfs, xfs, btrfs)",
                path.display()
            );
            None
        } else {
            let mode = fs::metadata(path).unwrap().permissions().mode();
            fs::set_permissions(path, fs::Permissions::from_mode(0o555)).unwrap();
            Some(mode)
        };
        assert!(
            fs::write(path.join("probe"), "").is_err(),
            "{} still accepts writes after being made read-only",
            path.display()
        );
        ReadOnly {
            paths: vec![path.to_path_buf()],
            mode,
        }
    }

    /// The folder was (or will be) moved there: it is released wherever it is found.
    pub(crate) fn moved_to(&mut self, path: PathBuf) {
        self.paths.push(path);
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for path in self.paths.iter().filter(|p| p.exists()) {
            match self.mode {
                None => {
                    let _ = Command::new("chattr").arg("-i").arg(path).status();
                }
                Some(mode) => {
                    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
                }
            }
        }
    }
}

/// Writes a job into `status/` as the queue client does (built elsewhere, renamed in whole),
/// after `edit` changed its metadata. Returns the uid.
pub fn submit_edited(
    sb: &Sandbox,
    from: &str,
    name: &str,
    status: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let uid = new_uid();
    let tmp = sb.dir.path().join(format!("build-{uid}"));
    write_job(
        &tmp,
        &uid,
        from,
        OWNER,
        name,
        "Counts rows",
        &["stats"],
        &simple_code(),
    );
    let path = tmp.join("metadata.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut meta);
    fs::write(&path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    fs::rename(&tmp, sb.job_dir(status, &uid)).unwrap();
    uid
}
