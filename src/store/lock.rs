//! Locks in the private state folder: one daemon per datasite, and short critical sections for
//! store edits shared by the daemon and CLI commands.
//!
//! Locks are taken on dedicated lock files that are never renamed over, with std's `File::lock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("open lock file", path, e))
}

/// Held for the daemon's lifetime; released when dropped or when the process dies.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    /// `daemon.pid`, removed on a clean stop (a crash leaves it; the lock, not the file, says
    /// whether a daemon runs).
    pid_path: std::path::PathBuf,
}

impl InstanceLock {
    pub fn acquire(state_dir: &Path, datasite: &Path) -> Result<InstanceLock> {
        let path = state_dir.join("daemon.lock");
        let pid_path = state_dir.join("daemon.pid");
        let file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&pid_path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                return Err(Error::AlreadyRunning {
                    datasite: datasite.to_path_buf(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let mut pid_file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&pid_path)
            .map_err(|e| Error::io("write", &pid_path, e))?;
        let _ = writeln!(pid_file, "{}", std::process::id());
        Ok(InstanceLock {
            _file: file,
            pid_path,
        })
    }

    /// True when some process holds the daemon lock (without taking it).
    pub fn is_held(state_dir: &Path) -> bool {
        let Ok(file) = OpenOptions::new()
            .read(true)
            .write(true)
            .open(state_dir.join("daemon.lock"))
        else {
            return false;
        };
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Still under the lock (the file is closed after this): no new daemon has written it.
        let _ = std::fs::remove_file(&self.pid_path);
    }
}

/// Serialises read-modify-write edits of a store between processes.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    _path: PathBuf,
}

impl StoreLock {
    pub fn acquire(state_dir: &Path, name: &str) -> Result<StoreLock> {
        let path = state_dir.join(format!("{name}.lock"));
        let file = open(&path)?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(StoreLock {
            _file: file,
            _path: path,
        })
    }
}
