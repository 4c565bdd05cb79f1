//! The `hooks.on_decision` command: run with `sh -c` in its own process group, the decision as
//! one JSON object on stdin, killed (the whole group) when its timeout passes. Nothing here
//! decides anything: the caller logs the [`HookRun`] and carries on.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How much of the command's stderr is kept for the log.
const STDERR_TAIL: usize = 2048;

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRun {
    /// Exited 0.
    Ok,
    /// Exited with another status (or was killed by a signal it did not get from us).
    Failed { status: String, stderr: String },
    /// Still running when the timeout passed; its process group was killed.
    TimedOut { stderr: String },
    /// `sh` could not be started.
    SpawnError(String),
}

impl HookRun {
    /// One line for the log; `None` when the hook succeeded.
    pub fn describe(&self, timeout: Duration) -> Option<String> {
        let tail = |s: &str| {
            if s.trim().is_empty() {
                "no stderr".to_string()
            } else {
                format!("stderr: {}", s.trim().replace('\n', " | "))
            }
        };
        match self {
            HookRun::Ok => None,
            HookRun::Failed { status, stderr } => {
                Some(format!("exited with {status} ({})", tail(stderr)))
            }
            HookRun::TimedOut { stderr } => Some(format!(
                "timed out after {} s and was killed ({})",
                timeout.as_secs_f64(),
                tail(stderr)
            )),
            HookRun::SpawnError(e) => Some(format!("could not be started: {e}")),
        }
    }
}

/// The process group of the hook in flight, so a shutdown can kill it.
pub type Running = Arc<Mutex<Option<i32>>>;

/// Runs `command` with `sh -c`, `input` on its stdin and `env` added to its environment, and
/// waits at most `timeout`. Stdout is discarded; the tail of stderr is kept.
pub fn run(
    command: &str,
    input: &[u8],
    env: &[(&str, &str)],
    timeout: Duration,
    running: Option<&Running>,
) -> HookRun {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills what it started too.
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return HookRun::SpawnError(e.to_string()),
    };
    let pgid = child.id() as i32;
    if let Some(r) = running {
        *r.lock().unwrap_or_else(|e| e.into_inner()) = Some(pgid);
    }
    // Writing and reading happen on their own threads: a hook that reads nothing, or writes a
    // lot, must not stall us past the timeout.
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        let _ = std::thread::Builder::new()
            .name("hook-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(&input);
            });
    }
    let (tail_tx, tail_rx) = mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::thread::Builder::new()
            .name("hook-stderr".into())
            .spawn(move || {
                let mut tail: Vec<u8> = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
                let _ = tail_tx.send(tail);
            });
    }
    let deadline = Instant::now() + timeout;
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(pgid);
                let _ = child.wait();
                clear(running);
                return HookRun::SpawnError(format!("could not wait for it: {e}"));
            }
        }
    };
    if status.is_none() {
        kill_group(pgid);
        let _ = child.wait();
    }
    clear(running);
    // A process the hook left in the background may hold stderr open: do not wait for it long.
    let stderr = tail_rx
        .recv_timeout(Duration::from_millis(500))
        .map(|t| {
            let t = String::from_utf8_lossy(&t).into_owned();
            let chars: Vec<char> = t.chars().collect();
            chars[chars.len().saturating_sub(STDERR_TAIL)..]
                .iter()
                .collect()
        })
        .unwrap_or_default();
    match status {
        None => HookRun::TimedOut { stderr },
        Some(s) if s.success() => HookRun::Ok,
        Some(s) => HookRun::Failed {
            status: s.to_string(),
            stderr,
        },
    }
}

fn clear(running: Option<&Running>) {
    if let Some(r) = running {
        *r.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Kills a hook's whole process group (the hook and whatever it started).
pub fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_stdin_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!("cat > {} && test \"$X\" = y", out.display());
        let o = run(
            &cmd,
            b"{\"a\":1}",
            &[("X", "y")],
            Duration::from_secs(5),
            None,
        );
        assert_eq!(o, HookRun::Ok);
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"a\":1}");
    }

    #[test]
    fn failure_keeps_the_stderr_tail() {
        let o = run(
            "echo first >&2; echo boom >&2; exit 3",
            b"",
            &[],
            Duration::from_secs(5),
            None,
        );
        match &o {
            HookRun::Failed { status, stderr } => {
                assert!(status.contains('3'), "{status}");
                assert!(stderr.contains("boom"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
        let line = o.describe(Duration::from_secs(5)).unwrap();
        assert!(line.contains("first | boom"), "{line}");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        // The background child would write the marker after 2 s if it survived.
        let cmd = format!(
            "(sleep 2; touch {}) & echo started >&2; sleep 30",
            marker.display()
        );
        let start = Instant::now();
        let o = run(&cmd, b"", &[], Duration::from_millis(300), None);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        match &o {
            HookRun::TimedOut { stderr } => assert!(stderr.contains("started"), "{stderr}"),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the hook's child outlived the timeout");
    }

    #[test]
    fn a_hook_that_ignores_stdin_still_finishes() {
        let big = vec![b'x'; 1 << 20];
        let o = run("exit 0", &big, &[], Duration::from_secs(5), None);
        assert_eq!(o, HookRun::Ok);
    }
}
