//! The syft-code-queue layout (SPEC §3): status folders, job folders, and inspecting a job folder
//! into the facts the policy needs. Nothing here decides anything.

pub mod content;
pub mod copies;
pub mod gate;
pub mod journal;
pub mod metadata;
pub mod par;
pub mod proof;
pub(crate) mod record;
pub mod review;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::signature::{self, CodeScan};
use crate::queue::metadata::Metadata;

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
                Ok(name) if !name.starts_with('.') => out.push(name),
                Ok(_) => {}
                Err(raw) => log::warn!(
                    "ignoring {}/{}: the folder name is not UTF-8",
                    dir.display(),
                    raw.to_string_lossy()
                ),
            }
        }
        out.sort();
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

/// Everything known about one job folder, before any decision.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The folder name.
    pub uid: String,
    pub dir: PathBuf,
    pub meta: Option<Metadata>,
    pub scan: Option<CodeScan>,
    pub signature: Option<String>,
    /// Why the job cannot be auto-approved as it is (malformed, links, missing run.sh...).
    pub problems: Vec<String>,
    /// Why this folder is not a job for this owner at all (then it is left alone).
    pub ignored: Option<String>,
    /// What [`crate::queue::content`] found beyond `problems`.
    pub findings: crate::queue::content::Findings,
}

impl Inspection {
    pub fn requester(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.meta.requester_email.as_str())
    }
    pub fn name(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.meta.name.as_str())
    }
}

/// Reads a job folder: metadata, code, signature, and every problem found on the way.
pub fn inspect(dir: &Path, owner: &str) -> Inspection {
    let mut ins = inspect_files(dir, owner);
    crate::queue::content::add_findings(&mut ins);
    ins
}

fn inspect_files(dir: &Path, owner: &str) -> Inspection {
    let uid = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ins = Inspection {
        uid: uid.clone(),
        dir: dir.to_path_buf(),
        meta: None,
        scan: None,
        signature: None,
        problems: Vec::new(),
        ignored: None,
        findings: Default::default(),
    };
    if !is_valid_uid(&uid) {
        ins.ignored = Some(format!("folder name {uid:?} is not a job uid"));
        return ins;
    }
    match Metadata::read(dir) {
        Ok(m) => {
            if m.meta.uid != uid {
                ins.ignored = Some(format!(
                    "its metadata uid {:?} differs from the folder name {uid:?}",
                    m.meta.uid
                ));
                return ins;
            }
            if m.meta.target_email.to_lowercase() != owner {
                ins.ignored = Some(format!(
                    "it is addressed to {:?}, not to this datasite's owner {owner}",
                    m.meta.target_email
                ));
                return ins;
            }
            if !crate::core::email::is_valid(&m.meta.requester_email.to_lowercase()) {
                ins.problems.push(format!(
                    "requester_email {:?} is not a valid email",
                    m.meta.requester_email
                ));
            }
            ins.meta = Some(m);
        }
        Err(e) => ins.problems.push(e.to_string()),
    }
    let code = dir.join("code");
    match signature::scan_code(&code) {
        Ok(scan) => {
            ins.problems.extend(scan.problems.iter().cloned());
            // Code that was not read in full has no signature: one over part of it would lie.
            if scan.complete && !scan.files.iter().any(|f| f.path == "run.sh") {
                ins.problems
                    .push("code/run.sh is missing (the runner executes it)".into());
            }
            if let Some(m) = &ins.meta
                && scan.complete
            {
                ins.signature = Some(signature::signature_v1(
                    &m.meta.name,
                    &m.meta.description,
                    &m.meta.tags,
                    &scan.files,
                ));
            }
            ins.scan = Some(scan);
        }
        Err(e) => ins
            .problems
            .push(format!("the job has no usable code/ folder: {e}")),
    }
    ins
}
