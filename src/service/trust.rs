//! Trusted code and the job history: mark (a signature, or a job's code), unmark, list, the
//! history, adding a job to it, and whether a signature is trusted.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::store::audit::{self, Actor, AuditEvent, Subject};
use crate::store::history::{self, History, HistoryRecord};
use crate::store::trusted::{TrustedCode, TrustedRecord};
use crate::syftbox::Layout;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Marked {
    pub(crate) signature: String,
    pub(crate) trusted: bool,
    /// False when the signature was already trusted.
    pub(crate) added: bool,
}

/// A job's code marked as trusted.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MarkedJob {
    pub(crate) signature: String,
    pub(crate) name: String,
    pub(crate) added: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Unmarked {
    pub(crate) signature: String,
    pub(crate) trusted: bool,
}

/// A history record and whether its code is trusted now.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Seen {
    #[serde(flatten)]
    pub(crate) record: HistoryRecord,
    pub(crate) trusted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SignatureCheck {
    pub(crate) signature: String,
    pub(crate) trusted: bool,
}

/// Trusts a signature from the job history.
pub(crate) fn mark(layout: &Layout, actor: &Actor, sig: &str) -> Result<Marked> {
    let _changing = audit::change_lock(layout)?;
    let sig = sig.trim().to_lowercase();
    let added = TrustedCode::new(layout).mark(&sig)?;
    if added {
        record(layout, actor, AuditEvent::TrustedCodeMark, &sig, vec![]);
    }
    Ok(Marked {
        signature: sig,
        trusted: true,
        added,
    })
}

/// Trusts the code of the job in `dir` (`job` is how the owner named it, for the record).
pub(crate) fn mark_job(layout: &Layout, actor: &Actor, dir: &Path, job: &str) -> Result<MarkedJob> {
    let _changing = audit::change_lock(layout)?;
    let rec = history::record_for_job(dir, &layout.email)?;
    let (signature, name) = (rec.signature.clone(), rec.name.clone());
    let added = TrustedCode::new(layout).mark_record(rec)?;
    if added {
        let why = vec![format!("from job {job}")];
        record(layout, actor, AuditEvent::TrustedCodeMark, &signature, why);
    }
    Ok(MarkedJob {
        signature,
        name,
        added,
    })
}

/// Stops trusting a signature; `None` when it was not trusted (nothing changed).
pub(crate) fn unmark(layout: &Layout, actor: &Actor, sig: &str) -> Result<Option<Unmarked>> {
    let _changing = audit::change_lock(layout)?;
    if !TrustedCode::new(layout).unmark(sig)? {
        return Ok(None);
    }
    record(layout, actor, AuditEvent::TrustedCodeUnmark, sig, vec![]);
    Ok(Some(Unmarked {
        signature: sig.to_string(),
        trusted: false,
    }))
}

pub(crate) fn list(layout: &Layout) -> Result<Vec<TrustedRecord>> {
    TrustedCode::new(layout).list()
}

/// The jobs seen completing, each with whether its code is trusted now.
pub(crate) fn history(layout: &Layout) -> Result<Vec<Seen>> {
    let trusted = TrustedCode::new(layout);
    Ok(History::new(layout)
        .list()?
        .into_iter()
        .map(|record| Seen {
            trusted: trusted.is_trusted(&record.signature),
            record,
        })
        .collect())
}

/// Adds the job in `dir` to the history (not to trusted code: nothing the audit chain records).
pub(crate) fn add_to_history(layout: &Layout, dir: &Path) -> Result<HistoryRecord> {
    let rec = history::record_for_job(dir, &layout.email)?;
    let mut sync = crate::durable::Sync::batch();
    let rec = History::new(layout).record(rec, &mut sync)?;
    sync.commit()?;
    Ok(rec)
}

pub(crate) fn check_signature(layout: &Layout, signature: String) -> SignatureCheck {
    SignatureCheck {
        trusted: TrustedCode::new(layout).is_trusted(&signature),
        signature,
    }
}

fn record(layout: &Layout, actor: &Actor, event: AuditEvent, sig: &str, why: Vec<String>) {
    audit::record_change(layout, event, actor, Subject::Signature(sig), why);
}
