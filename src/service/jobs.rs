//! The jobs of the queue as the web UI and the MCP server show them: finding a uid, a page of
//! summaries with the dry-run verdict, one job with its files, and the explanation of a job.

use std::path::{Path, PathBuf};

use chrono::Duration as ChronoDuration;
use serde::Serialize;

use crate::core::signature;
use crate::error::{Error, Result};
use crate::queue::job::Invisible;
use crate::queue::metadata::{self, Metadata};
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Inspection, Queue, Status};
use crate::syftbox::Layout;

/// File contents shown are cut at this size.
pub(crate) const FILE_VIEW_LIMIT: u64 = 256 * 1024;
/// And the texts of all the files of one job together at this size.
pub(crate) const FILE_VIEW_TOTAL: u64 = 16 << 20;
pub(crate) const MAX_PAGE: usize = 500;
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

/// A page of jobs of one status, newest first.
pub(crate) fn list(layout: &Layout, q: &ListQuery) -> Result<Page> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let sender = q.sender.to_lowercase();
    let name = q.name.to_lowercase();
    let max_age = match q.max_age_hours {
        Some(h) if h > MAX_AGE_HOURS => {
            return Err(Error::invalid(
                format!("max_age_hours={h} is more than {MAX_AGE_HOURS} (100 years)"),
                "use a smaller number of hours, or leave it out for jobs of any age",
            ));
        }
        h => h.map(|h| ChronoDuration::hours(h as i64)),
    };
    let now = metadata::now_naive();
    let status = q.status;
    let queue = Queue::new(layout.queue.clone());
    // Only what sorting needs is kept per job: metadata documents of a whole queue (up to
    // 1 MiB each) are not held at once.
    let mut rows: Vec<(Option<chrono::NaiveDateTime>, String)> = Vec::new();
    for uid in queue.list(status) {
        let m = Metadata::read(&queue.job_dir(status, &uid)).ok();
        if let Some(m) = &m {
            if !sender.is_empty() && !m.meta.requester_email.to_lowercase().contains(&sender) {
                continue;
            }
            if !name.is_empty() && !m.meta.name.to_lowercase().contains(&name) {
                continue;
            }
        } else if !sender.is_empty() || !name.is_empty() {
            continue;
        }
        let created = m.as_ref().and_then(|m| m.meta.created_at);
        if let Some(h) = max_age {
            match created {
                Some(c) if now.signed_duration_since(c) <= h => {}
                _ => continue,
            }
        }
        rows.push((created, uid));
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let total = rows.len();
    let trust = trust_for(layout, status)?;
    // One page reads at most this long in all; jobs left unread are flagged as too slow.
    let deadline = std::time::Instant::now() + signature::READ_BUDGET;
    let jobs = signature::with_read_deadline(deadline, || {
        rows.into_iter()
            .skip(q.offset)
            .take(limit)
            .map(|(_, uid)| summary(layout, &queue.job_dir(status, &uid), status, trust.as_ref()).0)
            .collect()
    });
    Ok(Page {
        jobs,
        total,
        offset: q.offset,
        limit,
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
