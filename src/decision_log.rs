//! The decision log (`decisions.jsonl` in the app data folder): one JSON line per decision, with
//! its reasons, appended durably. Lines are written whole with `O_APPEND`, so concurrent writers
//! never interleave within a line.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub uid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    /// approved, waiting, flagged, sent_back
    pub outcome: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DecisionLog {
    path: PathBuf,
}

impl DecisionLog {
    pub fn new(path: PathBuf) -> DecisionLog {
        DecisionLog { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends entries with a single write and one fsync.
    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            serde_json::to_writer(&mut buf, e).expect("entries always serialize");
            buf.push(b'\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| Error::io("open", &self.path, e))?;
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io("append to", &self.path, e))
    }

    /// The newest `limit` entries, newest last. Unparseable lines are skipped.
    pub fn tail(&self, limit: usize) -> Vec<Entry> {
        let Ok(f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut out = std::collections::VecDeque::with_capacity(limit.min(4096));
        for line in BufReader::new(f).lines().map_while(|l| l.ok()) {
            if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                if out.len() == limit {
                    out.pop_front();
                }
                out.push_back(e);
            }
        }
        out.into()
    }
}
