//! Trusted code (`trusted_code/<signature>.json`): job patterns the owner marked as trusted. A
//! pending job whose signature is here is approved whoever sent it. The file name is the key;
//! the content is the history record plus `marked_at`, kept so the owner can see what they trusted.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::core::signature;
use crate::durable::Sync;
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::history::{History, HistoryRecord, RecordDir};
use crate::store::lock::StoreLock;
use crate::syftbox::Layout;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedRecord {
    #[serde(flatten)]
    pub record: HistoryRecord,
    pub marked_at: String,
}

#[derive(Debug, Clone)]
pub struct TrustedCode {
    records: RecordDir,
    history: History,
    state: std::path::PathBuf,
}

impl TrustedCode {
    pub fn new(layout: &Layout) -> TrustedCode {
        TrustedCode {
            records: RecordDir {
                dir: layout.trusted_dir(),
            },
            history: History::new(layout),
            state: layout.state.clone(),
        }
    }

    /// The trusted signatures, and file names that are not `<signature>.json` (reported).
    pub fn signatures(&self) -> Result<(HashSet<String>, Vec<String>)> {
        let (sigs, invalid) = self.records.signatures()?;
        Ok((sigs.into_iter().collect(), invalid))
    }

    pub fn list(&self) -> Result<Vec<TrustedRecord>> {
        let mut v: Vec<TrustedRecord> = self.records.list()?;
        v.sort_by(|a, b| b.marked_at.cmp(&a.marked_at));
        Ok(v)
    }

    pub fn is_trusted(&self, sig: &str) -> bool {
        signature::is_signature(sig) && self.records.path(sig).is_file()
    }

    /// Marks a signature that is in the job history as trusted; returns false if it already was.
    pub fn mark(&self, sig: &str) -> Result<bool> {
        let sig = sig.trim().to_lowercase();
        if !signature::is_signature(&sig) {
            return Err(Error::invalid(
                format!("{sig:?} is not a job signature"),
                "a signature is 64 hex characters; see `syft-reviewer trust list` or `syft-reviewer signature JOB_DIR`",
            ));
        }
        let record = self.history.get(&sig)?.ok_or_else(|| {
            Error::absent(
                format!("no job with signature {sig} was seen (it is not in the job history)"),
                "only code the owner has seen can be trusted: use `syft-reviewer trust add --job UID` for a job in the queue",
            )
        })?;
        self.mark_record(record)
    }

    /// Marks a record as trusted (also adding it to the history); false if already trusted.
    pub fn mark_record(&self, record: HistoryRecord) -> Result<bool> {
        let _guard = StoreLock::acquire(&self.state, "trusted")?;
        if self.is_trusted(&record.signature) {
            return Ok(false);
        }
        let mut sync = Sync::batch();
        let record = self.history.record(record, &mut sync)?;
        let trusted = TrustedRecord {
            marked_at: metadata::format_naive(&metadata::now_naive()),
            record,
        };
        self.records
            .write(&trusted.record.signature, &trusted, &mut sync)?;
        sync.commit()?;
        Ok(true)
    }

    pub fn unmark(&self, sig: &str) -> Result<bool> {
        let _guard = StoreLock::acquire(&self.state, "trusted")?;
        self.records.remove(sig.trim())
    }
}
