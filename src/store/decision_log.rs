//! The decision log (`decisions.jsonl` in the app data folder): one JSON line per decision, with
//! its reasons, appended durably. Lines are written whole with `O_APPEND`, so concurrent writers
//! never interleave within a line.
//!
//! Each line carries `mac`, an HMAC-SHA256 of the entry under a key derived from the audit
//! signing key (private state folder): the file sits in the datasite, so a line written by
//! anyone without that key (or by a version before MACs) is never shown as a decision.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::policy::{Disposition, Method, Recorded};
use crate::error::{Error, Result};
use crate::syftbox::Layout;

/// One decision as the log keeps it. Outcome and method are [`Recorded`]: a line written with a
/// word this version does not know still reads and verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub time: String,
    pub uid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    pub outcome: Recorded<Disposition>,
    #[serde(default)]
    pub method: Option<Recorded<Method>>,
    #[serde(default)]
    pub signature: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DecisionLog {
    path: PathBuf,
    layout: Layout,
}

/// A line as stored: the record and its MAC.
#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    entry: Record,
    #[serde(default)]
    mac: Option<String>,
}

fn mac(key: &[u8; 32], e: &Record) -> String {
    let msg = serde_json::to_vec(e).expect("entries always serialize");
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(&msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MAC key, derived from the audit signing key (created with it when `create`).
fn mac_key(layout: &Layout, create: bool) -> Option<[u8; 32]> {
    let audit = crate::store::audit::AuditLog::new(layout);
    let seed = if create {
        audit.signing_key().ok()?.to_bytes()
    } else {
        audit.existing_signing_key()?.to_bytes()
    };
    Some(
        Sha256::new()
            .chain_update(b"syft-reviewer decision log v1\0")
            .chain_update(seed)
            .finalize()
            .into(),
    )
}

/// The newest verified entries and how many lines were left out for not verifying.
pub struct Tail {
    pub entries: Vec<Record>,
    pub unverified_lines: u64,
}

impl DecisionLog {
    pub fn new(layout: &Layout) -> DecisionLog {
        DecisionLog {
            path: layout.decision_log(),
            layout: layout.clone(),
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends entries with a single write and one fsync.
    pub fn append(&self, entries: &[Record]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let key = mac_key(&self.layout, true);
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            let line = Line {
                entry: e.clone(),
                mac: key.as_ref().map(|k| mac(k, e)),
            };
            serde_json::to_writer(&mut buf, &line).expect("entries always serialize");
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

    /// The newest `limit` verified entries, newest last.
    pub fn tail(&self, limit: usize) -> Vec<Record> {
        self.tail_verified(limit).entries
    }

    /// The newest `limit` entries whose MAC verifies, newest last, and the count of the others.
    pub fn tail_verified(&self, limit: usize) -> Tail {
        let mut out = std::collections::VecDeque::with_capacity(limit.min(4096));
        let mut unverified_lines = 0;
        let (Ok(f), Some(key)) = (
            std::fs::File::open(&self.path),
            mac_key(&self.layout, false),
        ) else {
            return Tail {
                entries: Vec::new(),
                unverified_lines,
            };
        };
        for line in BufReader::new(f).split(b'\n').map_while(|l| l.ok()) {
            match serde_json::from_slice::<Line>(&line) {
                Ok(l) if l.mac.as_deref() == Some(mac(&key, &l.entry).as_str()) => {
                    if out.len() == limit {
                        out.pop_front();
                    }
                    out.push_back(l.entry);
                }
                _ if line.is_empty() => {}
                _ => unverified_lines += 1,
            }
        }
        Tail {
            entries: out.into(),
            unverified_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_words_this_version_does_not_know_still_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::in_test_dir(tmp.path());
        let log = DecisionLog::new(&layout);
        let record = |outcome: Recorded<Disposition>, method: Option<Recorded<Method>>| Record {
            time: "2026-01-01T00:00:00".into(),
            uid: "u-1".into(),
            name: None,
            requester: Some("r@x.org".into()),
            outcome,
            method,
            signature: None,
            reasons: vec!["why".into()],
        };
        let known = record(
            Disposition::Approved.into(),
            Some(Method::TrustedCode.into()),
        );
        let unknown = record(
            Recorded::Unknown("quarantined".into()),
            Some(Recorded::Unknown("oracle".into())),
        );
        log.append(&[known.clone(), unknown.clone()]).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            text.starts_with(
                "{\"time\":\"2026-01-01T00:00:00\",\"uid\":\"u-1\",\"name\":null,\"requester\":\"r@x.org\",\"outcome\":\"approved\",\"method\":\"trusted_code\","
            ),
            "{text}"
        );
        let tail = log.tail_verified(10);
        assert_eq!(tail.entries, [known, unknown]);
        assert_eq!(tail.unverified_lines, 0);
    }
}
