//! Job history (`job_history/<signature>.json`): jobs seen completing, or added by hand, with
//! every code file so the owner can read the code before trusting it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::signature::{self, CodeScan};
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::metadata::{self, JobMeta};
use crate::syftbox::Layout;

/// Code files up to this size are kept as text in the record.
pub const TEXT_LIMIT: u64 = 64 * 1024;
const RECORD_LIMIT: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub signature: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub requesters: Vec<String>,
    #[serde(default)]
    pub uids: Vec<String>,
    #[serde(default)]
    pub first_seen: String,
    #[serde(default)]
    pub last_seen: String,
    #[serde(default)]
    pub code_files: Vec<HistoryFile>,
}

impl HistoryRecord {
    /// Builds a record from a job's metadata and scanned code.
    pub fn from_job(meta: &JobMeta, scan: &CodeScan, code_dir: &Path) -> HistoryRecord {
        let now = metadata::format_naive(&metadata::now_naive());
        HistoryRecord {
            signature: signature::signature_v1(
                &meta.name,
                &meta.description,
                &meta.tags,
                &scan.files,
            ),
            name: meta.name.clone(),
            description: meta.description.clone(),
            tags: meta.tags.clone(),
            requesters: vec![meta.requester_email.to_lowercase()],
            uids: vec![meta.uid.clone()],
            first_seen: now.clone(),
            last_seen: now,
            code_files: scan
                .files
                .iter()
                .map(|f| HistoryFile {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size,
                    text: signature::read_text(&code_dir.join(&f.path), TEXT_LIMIT),
                })
                .collect(),
        }
    }

    fn merge(&mut self, newer: &HistoryRecord) {
        for r in &newer.requesters {
            if !self.requesters.contains(r) {
                self.requesters.push(r.clone());
            }
        }
        for u in &newer.uids {
            if !self.uids.contains(u) {
                self.uids.push(u.clone());
            }
        }
        self.last_seen = newer.last_seen.clone();
    }
}

/// Reads and writes `<signature>.json` records in one folder.
#[derive(Debug, Clone)]
pub struct RecordDir {
    pub dir: PathBuf,
}

impl RecordDir {
    pub fn path(&self, sig: &str) -> PathBuf {
        self.dir.join(format!("{sig}.json"))
    }

    /// Signatures present (by file name), plus names that are not `<signature>.json`.
    pub fn signatures(&self) -> Result<(Vec<String>, Vec<String>)> {
        let mut sigs = Vec::new();
        let mut invalid = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((sigs, invalid)),
            Err(e) => return Err(Error::io("read", &self.dir, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if signature::is_excluded(&name) || name.starts_with('.') {
                continue;
            }
            match name.strip_suffix(".json") {
                Some(sig) if signature::is_signature(sig) => sigs.push(sig.to_string()),
                _ => invalid.push(name),
            }
        }
        sigs.sort();
        Ok((sigs, invalid))
    }

    pub fn read<T: for<'de> Deserialize<'de>>(&self, sig: &str) -> Result<Option<T>> {
        if !signature::is_signature(sig) {
            return Ok(None);
        }
        let path = self.path(sig);
        let bytes = match durable::read_capped(&path, RECORD_LIMIT) {
            Ok(b) => b,
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::invalid(
                format!("{} is not a valid record", path.display()),
                format!("{e}; fix or delete the file"),
            )
        })
    }

    pub fn write<T: Serialize>(&self, sig: &str, value: &T, sync: &mut Sync) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create folder", &self.dir, e))?;
        let body = serde_json::to_vec_pretty(value).expect("records always serialize");
        durable::write_atomic_with(&self.path(sig), &body, 0o644, sync)
    }

    pub fn remove(&self, sig: &str) -> Result<bool> {
        if !signature::is_signature(sig) {
            return Ok(false);
        }
        match fs::remove_file(self.path(sig)) {
            Ok(()) => {
                durable::fsync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", self.path(sig), e)),
        }
    }

    /// Every readable record, newest `last_seen` first; unreadable ones are logged and skipped.
    pub fn list<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<T>> {
        let (sigs, _) = self.signatures()?;
        let mut out = Vec::with_capacity(sigs.len());
        for sig in sigs {
            match self.read(&sig) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => log::warn!("{e}"),
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct History {
    records: RecordDir,
}

impl History {
    pub fn new(layout: &Layout) -> History {
        History {
            records: RecordDir {
                dir: layout.history_dir(),
            },
        }
    }

    pub fn get(&self, sig: &str) -> Result<Option<HistoryRecord>> {
        self.records.read(sig)
    }

    pub fn list(&self) -> Result<Vec<HistoryRecord>> {
        let mut v: Vec<HistoryRecord> = self.records.list()?;
        v.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Ok(v)
    }

    /// Adds a job to its signature's record (creating it), returning the merged record.
    pub fn record(&self, rec: HistoryRecord, sync: &mut Sync) -> Result<HistoryRecord> {
        let merged = match self.records.read::<HistoryRecord>(&rec.signature) {
            Ok(Some(mut old)) => {
                old.merge(&rec);
                old
            }
            Ok(None) => rec,
            Err(e) => {
                log::warn!("{e}; replacing it");
                rec
            }
        };
        self.records.write(&merged.signature, &merged, sync)?;
        Ok(merged)
    }
}

/// The history record for a job folder, refusing jobs that are not the owner's or not clean.
pub fn record_for_job(dir: &Path, owner: &str) -> Result<HistoryRecord> {
    let ins = crate::queue::inspect(dir, owner);
    let uid = &ins.uid;
    if let Some(why) = &ins.ignored {
        return Err(Error::invalid(
            format!("job {uid} cannot be used"),
            why.clone(),
        ));
    }
    if !ins.problems.is_empty() {
        return Err(Error::invalid(
            format!("job {uid} cannot be trusted"),
            ins.problems.join("; "),
        ));
    }
    match (&ins.meta, &ins.scan) {
        (Some(m), Some(scan)) => Ok(HistoryRecord::from_job(&m.meta, scan, &dir.join("code"))),
        _ => Err(Error::invalid(
            format!("job {uid} cannot be trusted"),
            "it has no readable metadata or code",
        )),
    }
}
