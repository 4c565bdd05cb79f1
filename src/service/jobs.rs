//! The jobs of the queue as the web UI, the CLI and the MCP server show them: finding a uid, a
//! page of summaries with the dry-run verdict, a page of index entries, the jobs a filter
//! selects, one job with its files, and the explanation of a job. Listings are chosen from the
//! daemon's index (`queue::index`) when there is one, else from the status folder.

use std::path::{Path, PathBuf};

use chrono::Duration as ChronoDuration;
use serde::Serialize;

use crate::core::signature;
use crate::error::{Error, Result};
use crate::queue::index::{Filter, QueueIndex, Row, Shared};
use crate::queue::job::Invisible;
use crate::queue::metadata;
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Inspection, Queue, Status};
use crate::syftbox::Layout;

use super::shown;

/// File contents shown are cut at this size.
pub(crate) const FILE_VIEW_LIMIT: u64 = 256 * 1024;
/// And the texts of all the files of one job together at this size.
pub(crate) const FILE_VIEW_TOTAL: u64 = 16 << 20;
pub(crate) const MAX_PAGE: usize = 500;
/// Pending jobs of a page that the reviewer has not reviewed yet, and that the page reviews
/// itself, at most; and only those that did not just arrive (the reviewer reads those once they
/// have settled, and they may still be being written). In a flood the newest jobs are all
/// such: reviewing a whole page of them cost each request many times what the index it is
/// chosen from costs, on cores the flood keeps busy. The others are shown from their index
/// entry, as being reviewed.
pub(crate) const UNREVIEWED_PER_PAGE: usize = 8;
/// `max_age_hours` beyond this (100 years) is refused rather than overflowing date arithmetic.
pub(crate) const MAX_AGE_HOURS: usize = 876_000;

/// Which jobs a page shows.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    pub(crate) status: Status,
    pub(crate) offset: usize,
    /// Clamped to 1..=[`MAX_PAGE`].
    pub(crate) limit: usize,
    /// Substrings of the sender and of the job name (case-insensitive; empty matches all).
    pub(crate) sender: String,
    pub(crate) name: String,
    pub(crate) max_age_hours: Option<usize>,
}

impl Default for ListQuery {
    fn default() -> ListQuery {
        ListQuery {
            status: Status::Pending,
            offset: 0,
            limit: 50,
            sender: String::new(),
            name: String::new(),
            max_age_hours: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Page {
    pub(crate) jobs: Vec<Summary>,
    pub(crate) total: usize,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    pub(crate) source: Source,
}

/// A job as listed; for a pending job, with the dry-run verdict.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) uid: String,
    pub(crate) status: Status,
    pub(crate) name: Option<String>,
    pub(crate) requester: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) expires_at: Option<String>,
    pub(crate) signature: Option<String>,
    pub(crate) verdict: Option<&'static str>,
    pub(crate) reasons: Vec<String>,
    pub(crate) warnings: Vec<Invisible>,
    /// How far the sender is proven (pending jobs only).
    pub(crate) proof: Option<crate::core::attestation::ProofView>,
    /// Shown from its index entry alone: neither the reviewer nor this page has read the job
    /// yet (it has just arrived, in a flood). No signature, so it cannot be approved as shown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) being_reviewed: bool,
}

/// One job with the text of its files.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Detail {
    #[serde(flatten)]
    pub(crate) summary: Summary,
    pub(crate) files: Vec<FileView>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileView {
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) text: Option<String>,
    pub(crate) truncated: bool,
}

/// A status named in a request.
pub(crate) fn parse_status(s: &str) -> Result<Status> {
    Status::parse(s).ok_or_else(|| {
        Error::invalid(
            format!("unknown status {s:?}"),
            "use pending, approved, running, completed, failed, rejected or timedout",
        )
    })
}

/// The status a listing asks for: pending when none is named.
pub(crate) fn listed_status(s: Option<&str>) -> Result<Status> {
    match s {
        None | Some("") => Ok(Status::Pending),
        Some(s) => parse_status(s),
    }
}

/// The job a uid names: the copy in `status`, or the only copy (a uid in several status folders
/// is a conflict naming each copy).
pub(crate) fn find(layout: &Layout, uid: &str, status: Option<Status>) -> Result<PathBuf> {
    let queue = Queue::new(layout.queue.clone());
    match crate::queue::copies::locate(&queue, uid, status) {
        Ok((_, d)) => Ok(d),
        Err(Error::Invalid { what, hint }) => Err(Error::Conflict { what, hint }),
        Err(_) => Err(Error::not_found(
            format!("job {uid:?}"),
            "GET /api/v1/jobs lists the jobs in the queue",
        )),
    }
}

/// Where a listing's entries came from: the running daemon's index, or the status folder read
/// for this request (no daemon in this process, or its index not built yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    Index,
    Disk,
}

/// The index filter a query asks for (its `max_age_hours` checked).
pub(crate) fn filter(q: &ListQuery) -> Result<Filter> {
    let since = match q.max_age_hours {
        Some(h) if h > MAX_AGE_HOURS => {
            return Err(Error::invalid(
                format!("max_age_hours={h} is more than {MAX_AGE_HOURS} (100 years)"),
                "use a smaller number of hours, or leave it out for jobs of any age",
            ));
        }
        Some(h) => metadata::now_naive().checked_sub_signed(ChronoDuration::hours(h as i64)),
        None => None,
    };
    Ok(Filter {
        sender: q.sender.clone(),
        name: q.name.clone(),
        since,
        ..Filter::default()
    })
}

/// The entries of `status` that `filter` keeps, newest first (how many, and `limit` of them from
/// `offset`), from the daemon's index when it is ready, else read from the status folder.
pub(crate) fn select(
    layout: &Layout,
    index: Option<&Shared>,
    status: Status,
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> (Source, usize, Vec<Row>) {
    if let Some(ix) = index.and_then(Shared::read) {
        let (total, rows) = ix.select(status, filter, offset, limit);
        return (Source::Index, total, rows);
    }
    let queue = Queue::new(layout.queue.clone());
    let (total, rows) = QueueIndex::read(&queue, &[status]).select(status, filter, offset, limit);
    (Source::Disk, total, rows)
}

/// A page of jobs of one status, newest first: chosen and counted from the index, then each job
/// of the page reviewed where it lies (so the page costs what it shows), or shown as when it was
/// last reviewed for a page if nothing it depends on changed since (`service::shown`).
pub(crate) fn list(layout: &Layout, index: Option<&Shared>, q: &ListQuery) -> Result<Page> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let f = filter(q)?;
    let status = q.status;
    let (source, total, rows) = select(layout, index, status, &f, q.offset, limit);
    let queue = Queue::new(layout.queue.clone());
    let trust = trust_for(layout, status)?;
    // One page reads at most this long in all; jobs left unread are flagged as too slow. The
    // page's jobs are read on every core.
    let deadline = std::time::Instant::now() + signature::READ_BUDGET;
    let trust_state = trust.as_ref().map(shown::trust_state);
    // The rows the reviewer has not reviewed yet (the index says so only for pending jobs),
    // and whether the page may read each itself.
    let mut unreviewed = 0;
    let unread: Vec<Option<bool>> = rows
        .iter()
        .map(|r| {
            let unread =
                source == Source::Index && status == Status::Pending && r.verdict.is_none();
            unreviewed += usize::from(unread);
            unread.then_some(unreviewed <= UNREVIEWED_PER_PAGE)
        })
        .collect();
    let rows: Vec<(&Row, Option<bool>)> = rows.iter().zip(unread).collect();
    let jobs = crate::queue::par::map(&rows, |&(r, unread)| {
        let dir = queue.job_dir(status, &r.uid);
        if let Some(may_read) = unread
            && (!may_read || shown::just_arrived(&dir))
        {
            return being_reviewed(r);
        }
        // A pending job whose folder, copies, sender's files and stores are as when it was last
        // shown is shown as then, without reading and checking it again.
        let state = match (&trust, trust_state) {
            (Some(t), Some(ts)) => {
                shown::state(&queue, &dir, &r.uid, r.requester.as_deref(), t, ts)
            }
            _ => None,
        };
        if let Some(kept) = state.and_then(|st| shown::get(&dir, st)) {
            return kept;
        }
        let s = signature::with_read_deadline(deadline, || {
            summary(layout, &dir, status, trust.as_ref()).0
        });
        // Kept only when read in full, from the sender the state was taken with.
        let same_sender = s.requester.as_deref().map(str::to_lowercase)
            == r.requester.as_deref().map(str::to_lowercase);
        if let Some(st) = state
            && same_sender
            && std::time::Instant::now() < deadline
        {
            shown::put(&dir, st, s.clone());
        }
        s
    });
    Ok(Page {
        jobs,
        total,
        offset: q.offset,
        limit,
        source,
    })
}

/// A pending job as its index entry has it, before anything has read it in full.
fn being_reviewed(r: &Row) -> Summary {
    Summary {
        uid: r.uid.clone(),
        status: r.status,
        name: r.name.clone(),
        requester: r.requester.clone(),
        description: None,
        tags: Vec::new(),
        created_at: r.created_at.clone(),
        timeout_seconds: None,
        expires_at: None,
        signature: None,
        verdict: None,
        reasons: vec![
            "not reviewed yet: the reviewer reads it once it has settled, and it is shown in \
             full then"
                .to_string(),
        ],
        warnings: Vec::new(),
        proof: None,
        being_reviewed: true,
    }
}

/// A page of index entries only (no job is read): what `syft-reviewer jobs` prints.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Brief {
    pub(crate) jobs: Vec<Row>,
    pub(crate) total: usize,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    pub(crate) source: Source,
}

pub(crate) fn brief(layout: &Layout, index: Option<&Shared>, q: &ListQuery) -> Result<Brief> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let (source, total, jobs) = select(layout, index, q.status, &filter(q)?, q.offset, limit);
    Ok(Brief {
        jobs,
        total,
        offset: q.offset,
        limit,
        source,
    })
}

/// One job with the text of its files (each cut at [`FILE_VIEW_LIMIT`], all of them together
/// at [`FILE_VIEW_TOTAL`], so a job of many large files costs one bounded read).
pub(crate) fn detail(layout: &Layout, uid: &str, status: Option<Status>) -> Result<Detail> {
    let dir = find(layout, uid, status)?;
    let status = dir
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| Status::parse(&n.to_string_lossy()))
        .unwrap_or(Status::Pending);
    let trust = trust_for(layout, status)?;
    let (summary, ins) = summary(layout, &dir, status, trust.as_ref());
    let code = dir.join("code");
    let mut left = FILE_VIEW_TOTAL;
    let files = ins
        .scan
        .map(|s| s.files)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let limit = FILE_VIEW_LIMIT.min(left);
            let (text, truncated) = if limit == 0 {
                (None, f.size > 0)
            } else {
                read_text_prefix(&code.join(&f.path), limit)
            };
            left -= text.as_ref().map_or(0, |t| t.len() as u64).min(left);
            FileView {
                path: f.path,
                size: f.size,
                sha256: f.sha256,
                text,
                truncated,
            }
        })
        .collect();
    Ok(Detail { summary, files })
}

/// The dry run of the job in `dir` under the stores and rules as they are now.
pub(crate) fn review(layout: &Layout, dir: &Path) -> Result<Review> {
    let trust = Trust::load(layout)?;
    Ok(review::review(dir, &layout.email, &trust))
}

/// The stores a dry-run verdict needs: only pending jobs get one.
fn trust_for(layout: &Layout, status: Status) -> Result<Option<Trust>> {
    if status == Status::Pending {
        Trust::load(layout).map(Some)
    } else {
        Ok(None)
    }
}

/// A job's summary; with `trust`, the dry-run verdict too. Also returns the inspection.
fn summary(
    layout: &Layout,
    dir: &Path,
    status: Status,
    trust: Option<&Trust>,
) -> (Summary, Inspection) {
    let r = review::review(dir, &layout.email, trust.unwrap_or(&Trust::default()));
    let ins = &r.inspection;
    let m = ins.meta.as_ref().map(|m| &m.meta);
    // The daemon's own expiry (none when the timeout reaches past the last date there is).
    let cap = trust.and_then(|t| t.config.approval.max_timeout_seconds);
    let (verdict, reasons) = if trust.is_some() {
        let ex = r.explanation();
        (Some(ex.would), ex.reasons)
    } else {
        (None, ins.problems.clone())
    };
    let s = Summary {
        uid: ins.uid.clone(),
        status,
        name: m.map(|m| m.name.clone()),
        requester: m.map(|m| m.requester_email.clone()),
        description: m.map(|m| m.description.clone()),
        tags: m.map(|m| m.tags.clone()).unwrap_or_default(),
        created_at: m
            .and_then(|m| m.created_at)
            .map(|c| metadata::format_naive(&c)),
        timeout_seconds: m.and_then(|m| m.timeout_seconds),
        expires_at: m
            .and_then(|m| crate::queue::gate::expires_at(m, dir, cap))
            .map(|t| metadata::format_naive(&t)),
        signature: ins.signature.clone(),
        verdict,
        reasons,
        warnings: ins.findings.invisible.clone(),
        proof: r.proof.as_ref().map(|st| {
            crate::core::attestation::ProofView::of(
                st,
                m.map_or("?", |m| m.requester_email.as_str()),
            )
        }),
        being_reviewed: false,
    };
    (s, r.inspection)
}

/// The text of a file for display: the first `limit` bytes if they are UTF-8, and whether it
/// was cut.
fn read_text_prefix(path: &Path, limit: u64) -> (Option<String>, bool) {
    use std::io::Read;
    let Ok((f, meta)) = crate::durable::open_regular(path) else {
        return (None, false);
    };
    let size = meta.len();
    let mut buf = Vec::new();
    if f.take(limit).read_to_end(&mut buf).is_err() {
        return (None, false);
    }
    let truncated = size > limit;
    match String::from_utf8(buf) {
        Ok(s) => (Some(s), truncated),
        Err(e) if truncated && e.utf8_error().valid_up_to() + 4 > e.as_bytes().len() => {
            let n = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(n);
            (String::from_utf8(bytes).ok(), true)
        }
        Err(_) => (None, truncated),
    }
}
