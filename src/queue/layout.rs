//! The syft-code-queue layout (SPEC §3): the status folders, job folders and job uids.

use std::fmt;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Running,
    Completed,
    Failed,
    Rejected,
    Timedout,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Approved,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Rejected,
        Status::Timedout,
    ];

    /// Every status but pending: reached only through a decision (or the runner, after one).
    pub const DECIDED: [Status; 6] = {
        let a = Status::ALL;
        [a[1], a[2], a[3], a[4], a[5], a[6]]
    };

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
            Status::Timedout => "timedout",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job uid is used as a folder name: only these characters are accepted.
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 128
        && !uid.starts_with('.')
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub root: PathBuf,
}

impl Queue {
    pub fn new(root: PathBuf) -> Queue {
        Queue { root }
    }

    pub fn status_dir(&self, s: Status) -> PathBuf {
        self.root.join(s.as_str())
    }

    pub fn job_dir(&self, s: Status, uid: &str) -> PathBuf {
        self.status_dir(s).join(uid)
    }

    /// Job folder names in a status folder (files, our temp names and odd names skipped).
    pub fn list(&self, s: Status) -> Vec<String> {
        let mut out = self.list_with(s, str::to_owned);
        out.sort();
        out
    }

    /// [`list`](Self::list), each name made into a `T` as it is read (a compact form, so a
    /// folder of 100,000 jobs is not held as strings first), in no particular order.
    pub(crate) fn list_with<T>(&self, s: Status, mut f: impl FnMut(&str) -> T) -> Vec<T> {
        let dir = self.status_dir(s);
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) if !name.starts_with('.') => out.push(f(&name)),
                Ok(_) => {}
                Err(raw) => log::warn!(
                    "ignoring {}/{}: the folder name is not UTF-8",
                    dir.display(),
                    raw.to_string_lossy()
                ),
            }
        }
        out
    }

    /// Where a job is now, searching every status folder.
    pub fn find(&self, uid: &str) -> Option<(Status, PathBuf)> {
        if !is_valid_uid(uid) {
            return None;
        }
        Status::ALL
            .into_iter()
            .map(|s| (s, self.job_dir(s, uid)))
            .find(|(_, d)| d.is_dir())
    }
}
