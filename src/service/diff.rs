//! What changed in a job: the closest code the owner knows (a trusted pattern or a history entry
//! with the same name and sender, else the one sharing the most identical files) and the diff
//! from it, for the UI, `explain --diff`, the API and MCP. Also what each trusted pattern did,
//! read from the audit chain in one pass.
//!
//! The old texts are the ones the records already keep (`HistoryRecord::code_files`: every
//! UTF-8 file up to [`history::TEXT_LIMIT`]), so no copy of job code is stored for this; files
//! over that size are compared by size and hash, on both sides alike.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use serde::Serialize;

use crate::core::diff::{self, Content, FileDiff, Side};
use crate::core::signature::{self, CodeScan};
use crate::error::{Error, Result};
use crate::queue::{Status, metadata::JobMeta};
use crate::store::audit::{AuditEvent, AuditLog, Entry};
use crate::store::history::{self, HistoryRecord, RecordDir};
use crate::store::trusted::TrustedRecord;
use crate::syftbox::Layout;

/// New files are diffed by line up to the size the records keep text to, so both sides of a
/// diff obey the same cap.
pub(crate) const FILE_LIMIT: u64 = history::TEXT_LIMIT;
/// And the new texts read for one diff, all files together.
pub(crate) const TOTAL_LIMIT: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    History,
    Trusted,
}

/// Why this record was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Closeness {
    /// The same job name, and the sender among the record's requesters.
    SameNameAndSender,
    /// The most files with identical bytes.
    SharedFiles,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Closest {
    pub(crate) source: Source,
    pub(crate) signature: String,
    pub(crate) name: String,
    pub(crate) closeness: Closeness,
    /// Files of the job whose bytes are in the record.
    pub(crate) shared_files: usize,
    pub(crate) requesters: Vec<String>,
    pub(crate) marked_at: Option<String>,
    pub(crate) last_seen: String,
}

/// A field the signature covers besides the code.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FieldChange {
    pub(crate) field: &'static str,
    pub(crate) old: serde_json::Value,
    pub(crate) new: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Caps {
    pub(crate) file_bytes: u64,
    pub(crate) total_bytes: u64,
    pub(crate) file_lines: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobDiff {
    pub(crate) uid: String,
    pub(crate) signature: Option<String>,
    pub(crate) closest: Option<Closest>,
    /// "identical to trusted "Count rows" except `a.py` (+2 -1) and a new file `net.py`".
    pub(crate) summary: String,
    /// Same signature as the closest record.
    pub(crate) identical: bool,
    pub(crate) fields: Vec<FieldChange>,
    pub(crate) files: Vec<FileDiff>,
    pub(crate) caps: Caps,
}

/// The diff of the job `uid` (the copy in `status` when it is in several folders).
pub(crate) fn job_diff(layout: &Layout, uid: &str, status: Option<Status>) -> Result<JobDiff> {
    let dir = super::jobs::find(layout, uid, status)?;
    diff_dir(layout, &dir)
}

/// The diff of the job in `dir` from the closest record.
pub(crate) fn diff_dir(layout: &Layout, dir: &Path) -> Result<JobDiff> {
    let ins = crate::queue::inspect(dir, &layout.email);
    let caps = Caps {
        file_bytes: FILE_LIMIT,
        total_bytes: TOTAL_LIMIT,
        file_lines: diff::LIMITS.file_lines,
    };
    let mut out = JobDiff {
        uid: ins.uid.clone(),
        signature: ins.signature.clone(),
        closest: None,
        summary: String::new(),
        identical: false,
        fields: Vec::new(),
        files: Vec::new(),
        caps,
    };
    let (Some(m), Some(scan)) = (&ins.meta, &ins.scan) else {
        out.summary = format!(
            "nothing to compare: the job has no readable metadata or code ({})",
            ins.problems.join("; ")
        );
        return Ok(out);
    };
    let Some((closest, record)) = closest(layout, &m.meta, scan)? else {
        out.summary = "no close match: no trusted code or history entry has this job's name and \
                       sender, or any of its files"
            .to_string();
        return Ok(out);
    };
    out.identical = ins.signature.as_deref() == Some(closest.signature.as_str());
    out.fields = fields(&record, &m.meta);
    out.files = files(&record, scan, &dir.join("code"));
    let what = match closest.source {
        Source::Trusted => format!("trusted \"{}\"", closest.name),
        Source::History => format!("history entry \"{}\"", closest.name),
    };
    let named: Vec<&str> = out
        .fields
        .iter()
        .map(|f| match f.field {
            "name" => "the name",
            "description" => "the description",
            _ => "the tags",
        })
        .collect();
    out.summary = diff::summary(&what, &named, &out.files);
    out.closest = Some(closest);
    Ok(out)
}

/// Ranks a record for a job: the same name and sender first, then shared files, then trusted
/// before history, then the newest.
type Rank = (bool, usize, Source, String);

/// The closest record, reading one record at a time (only the best so far is held).
fn closest(
    layout: &Layout,
    meta: &JobMeta,
    scan: &CodeScan,
) -> Result<Option<(Closest, HistoryRecord)>> {
    let hashes: Vec<&str> = scan.files.iter().map(|f| f.sha256.as_str()).collect();
    let sender = meta.requester_email.to_lowercase();
    let mut best: Option<(Rank, Closest, HistoryRecord)> = None;
    let mut consider =
        |source: Source, sig: String, record: HistoryRecord, marked_at: Option<String>| {
            let theirs: HashSet<&str> = record
                .code_files
                .iter()
                .map(|f| f.sha256.as_str())
                .collect();
            let shared = hashes.iter().filter(|h| theirs.contains(*h)).count();
            let same = record.name == meta.name && record.requesters.contains(&sender);
            if !same && shared == 0 {
                return;
            }
            let when = marked_at
                .clone()
                .unwrap_or_else(|| record.last_seen.clone());
            let rank: Rank = (same, shared, source, when);
            if best.as_ref().is_some_and(|(r, _, _)| *r >= rank) {
                return;
            }
            let c = Closest {
                source,
                // The file name, which the store checked, rather than what the file says.
                signature: sig,
                name: record.name.clone(),
                closeness: if same {
                    Closeness::SameNameAndSender
                } else {
                    Closeness::SharedFiles
                },
                shared_files: shared,
                requesters: record.requesters.clone(),
                marked_at,
                last_seen: record.last_seen.clone(),
            };
            best = Some((rank, c, record));
        };
    let trusted = RecordDir {
        dir: layout.trusted_dir(),
    };
    for sig in trusted.signatures()?.0 {
        match trusted.read::<TrustedRecord>(&sig) {
            Ok(Some(t)) => consider(Source::Trusted, sig, t.record, Some(t.marked_at)),
            Ok(None) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    let seen = RecordDir {
        dir: layout.history_dir(),
    };
    for sig in seen.signatures()?.0 {
        match seen.read::<HistoryRecord>(&sig) {
            Ok(Some(r)) => consider(Source::History, sig, r, None),
            Ok(None) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(best.map(|(_, c, r)| (c, r)))
}

fn fields(record: &HistoryRecord, meta: &JobMeta) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if record.name != meta.name {
        out.push(FieldChange {
            field: "name",
            old: record.name.clone().into(),
            new: meta.name.clone().into(),
        });
    }
    if record.description != meta.description {
        out.push(FieldChange {
            field: "description",
            old: record.description.clone().into(),
            new: meta.description.clone().into(),
        });
    }
    let sorted = |t: &[String]| {
        let mut t = t.to_vec();
        t.sort();
        t
    };
    if sorted(&record.tags) != sorted(&meta.tags) {
        out.push(FieldChange {
            field: "tags",
            old: record.tags.clone().into(),
            new: meta.tags.clone().into(),
        });
    }
    out
}

/// The file diffs; only the new files that differ from the record are read (each up to
/// [`FILE_LIMIT`], all of them up to [`TOTAL_LIMIT`]).
fn files(record: &HistoryRecord, scan: &CodeScan, code: &Path) -> Vec<FileDiff> {
    let old: Vec<Side> = record
        .code_files
        .iter()
        .map(|f| Side {
            path: &f.path,
            sha256: &f.sha256,
            size: f.size,
            content: match &f.text {
                Some(t) => Content::Text(t),
                // The record keeps the text of every UTF-8 file up to the limit.
                None if f.size <= history::TEXT_LIMIT => Content::Binary,
                None => Content::TooLarge,
            },
        })
        .collect();
    let known: HashMap<&str, &str> = record
        .code_files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let paths: HashSet<&str> = scan.files.iter().map(|f| f.path.as_str()).collect();
    // Hashes of old files gone from their path: a new file with one of them is a rename.
    let gone: HashSet<&str> = known
        .iter()
        .filter(|(p, _)| !paths.contains(*p))
        .map(|(_, h)| *h)
        .collect();
    let mut left = TOTAL_LIMIT;
    let read: Vec<ReadText> = scan
        .files
        .iter()
        .map(|f| {
            let same = known.get(f.path.as_str()) == Some(&f.sha256.as_str());
            let moved = !known.contains_key(f.path.as_str()) && gone.contains(f.sha256.as_str());
            if same || moved {
                return ReadText::Skipped;
            }
            if f.size > FILE_LIMIT {
                return ReadText::TooLarge;
            }
            if f.size > left {
                return ReadText::OverBudget;
            }
            match signature::read_text(&code.join(&f.path), FILE_LIMIT) {
                Some(t) => {
                    left = left.saturating_sub(t.len() as u64);
                    ReadText::Text(t)
                }
                None => ReadText::Binary,
            }
        })
        .collect();
    let new: Vec<Side> = scan
        .files
        .iter()
        .zip(&read)
        .map(|(f, r)| Side {
            path: &f.path,
            sha256: &f.sha256,
            size: f.size,
            content: match r {
                ReadText::Text(t) => Content::Text(t),
                ReadText::Binary => Content::Binary,
                ReadText::TooLarge | ReadText::OverBudget => Content::TooLarge,
                // Identical bytes: the diff compares hashes and never looks at the text.
                ReadText::Skipped => Content::Unavailable,
            },
        })
        .collect();
    diff::diff_files(&old, &new, &diff::LIMITS)
}

enum ReadText {
    Text(String),
    Binary,
    TooLarge,
    OverBudget,
    Skipped,
}

/// What one trusted pattern did, from the audit chain.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Usage {
    /// Who marked it last (`cli`, `web`, `mcp`...) and when.
    pub(crate) marked_by: Option<String>,
    pub(crate) marked_at: Option<String>,
    /// Jobs approved because their code was this pattern.
    pub(crate) approved: u64,
    pub(crate) last_uid: Option<String>,
    pub(crate) last_at: Option<String>,
}

/// What the chain said per signature, and how far it was read: the Trusted code tab asks every
/// few seconds, and only what was appended since is read again (the chain only grows; a shorter
/// or other chain is read from the start).
struct Folded {
    path: std::path::PathBuf,
    offset: u64,
    by_sig: HashMap<String, Usage>,
}

static FOLDED: std::sync::Mutex<Option<Folded>> = std::sync::Mutex::new(None);

/// For each signature in `sigs`, what the audit chain says it did. Each entry is read once (one
/// at a time); what is kept is one small summary per signature ever marked or approving.
pub(crate) fn usage(layout: &Layout, sigs: &HashSet<String>) -> Result<HashMap<String, Usage>> {
    let path = AuditLog::new(layout).chain_path();
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let mut guard = FOLDED.lock().unwrap_or_else(|p| p.into_inner());
    let mut folded = match guard.take() {
        Some(f) if f.path == path && f.offset <= len => f,
        _ => Folded {
            path: path.clone(),
            offset: 0,
            by_sig: HashMap::new(),
        },
    };
    if len > folded.offset {
        fold(&mut folded)?;
    }
    let out = sigs
        .iter()
        .filter_map(|s| folded.by_sig.get(s).map(|u| (s.clone(), u.clone())))
        .collect();
    *guard = Some(folded);
    Ok(out)
}

/// Reads the complete lines appended after `f.offset` into `f`.
fn fold(f: &mut Folded) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let path = f.path.clone();
    let mut file = std::fs::File::open(&path).map_err(|e| Error::io("read", &path, e))?;
    file.seek(SeekFrom::Start(f.offset))
        .map_err(|e| Error::io("read", &path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read", &path, e))?;
        // The end, or a line still being written: read it next time.
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        f.offset += n as u64;
        let Ok(entry) = serde_json::from_slice::<Entry>(&line) else {
            continue;
        };
        let ev = &entry.body;
        let Some(sig) = ev.signature.as_deref() else {
            continue;
        };
        match ev.event {
            AuditEvent::TrustedCodeMark => {
                let u = f.by_sig.entry(sig.to_string()).or_default();
                u.marked_by = Some(ev.actor.to_string());
                u.marked_at = Some(entry.time.clone());
            }
            AuditEvent::Decision
                if ev.outcome == "approved"
                    && ev
                        .reasons
                        .contains(&crate::core::policy::trusted_code_reason(sig)) =>
            {
                let u = f.by_sig.entry(sig.to_string()).or_default();
                u.approved += 1;
                u.last_uid = ev.uid.clone();
                u.last_at = Some(entry.time.clone());
            }
            _ => {}
        }
    }
}

/// A trusted pattern with what it did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrustedUsage {
    pub(crate) signature: String,
    #[serde(flatten)]
    pub(crate) usage: Usage,
}

/// What every trusted pattern did.
pub(crate) fn trusted_usage(layout: &Layout) -> Result<Vec<TrustedUsage>> {
    let (sigs, _) = crate::store::trusted::TrustedCode::new(layout).signatures()?;
    let mut used = usage(layout, &sigs)?;
    let mut v: Vec<TrustedUsage> = sigs
        .into_iter()
        .map(|s| TrustedUsage {
            usage: used.remove(&s).unwrap_or_default(),
            signature: s,
        })
        .collect();
    v.sort_by(|a, b| a.signature.cmp(&b.signature));
    Ok(v)
}
