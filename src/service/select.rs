//! The pending jobs a bulk filter selects, chosen from an index of the queue rather than by
//! reading every job: the daemon's own index (the API, in its process), the running reviewer's
//! index through its API (the CLI and MCP, see `remote::chosen`), or a one-off index read from
//! the disk when no reviewer runs. Only uids and senders are held; each chosen job is reviewed
//! again where it lies before its verdict (`service::bulk`).

use chrono::{Duration as ChronoDuration, NaiveDateTime};

use super::bulk::Filter;
use super::jobs::Source;
use crate::queue::index::{self, QueueIndex, Shared};
use crate::queue::{Queue, Status};
use crate::syftbox::Layout;

/// Entries taken from an index per query (one read of it for the whole selection).
const PAGE: usize = 5_000;

/// The jobs a filter selected, newest first.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    /// Each job's uid and sender (lower-case).
    pub(crate) jobs: Vec<(String, String)>,
    /// Whether `flagged` was judged from the daemon's reviews; if not, only a review of each
    /// chosen job tells.
    pub(crate) flagged_known: bool,
    pub(crate) source: Source,
}

impl Chosen {
    pub(crate) fn uids(&self) -> impl Iterator<Item = &str> {
        self.jobs.iter().map(|(u, _)| u.as_str())
    }
}

/// The creation times a filter's ages allow at `now`: created at or after the first, at or
/// before the second.
pub(crate) fn window(
    f: &Filter,
    now: NaiveDateTime,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let at = |d: Option<ChronoDuration>| d.and_then(|d| now.checked_sub_signed(d));
    (at(f.newer_than), at(f.older_than))
}

/// The index's filter for `f` (`flagged` only where the index has the daemon's verdicts).
fn index_filter(f: &Filter, now: NaiveDateTime, verdicts: bool) -> index::Filter {
    let (since, until) = window(f, now);
    index::Filter {
        sender: f.sender.clone().unwrap_or_default(),
        name: f.name.clone().unwrap_or_default(),
        since,
        // The index's bound is strict; the filter's is not.
        before: until.and_then(|t| t.checked_add_signed(ChronoDuration::microseconds(1))),
        flagged: (verdicts && f.flagged).then_some(true),
    }
}

/// What `f` selects in `ix`, read page by page from one view of it.
fn from_index(ix: &QueueIndex, f: &Filter, now: NaiveDateTime, source: Source) -> Chosen {
    let verdicts = source == Source::Index;
    let filter = index_filter(f, now, verdicts);
    let mut jobs = Vec::new();
    let mut offset = 0usize;
    loop {
        let (total, rows) = ix.select(Status::Pending, &filter, offset, PAGE);
        let n = rows.len();
        jobs.extend(rows.into_iter().map(|r| {
            let sender = r.requester.unwrap_or_default().to_lowercase();
            (r.uid, sender)
        }));
        offset = offset.saturating_add(n);
        if n == 0 || offset >= total {
            break;
        }
    }
    Chosen {
        jobs,
        flagged_known: verdicts,
        source,
    }
}

/// What `f` selects from the daemon's index when it is ready, else from the disk.
pub(crate) fn in_process(
    layout: &Layout,
    index: Option<&Shared>,
    f: &Filter,
    now: NaiveDateTime,
) -> Chosen {
    match index.and_then(Shared::read) {
        Some(ix) => from_index(&ix, f, now, Source::Index),
        None => from_disk(layout, f, now),
    }
}

/// What `f` selects in a one-off index of `pending/` (each job's metadata read once).
pub(crate) fn from_disk(layout: &Layout, f: &Filter, now: NaiveDateTime) -> Chosen {
    let queue = Queue::new(layout.queue.clone());
    from_index(
        &QueueIndex::read(&queue, &[Status::Pending]),
        f,
        now,
        Source::Disk,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_bound_the_creation_time_inclusively() {
        let now = chrono::DateTime::from_timestamp(1_000_000, 0)
            .map(|t| t.naive_utc())
            .unwrap();
        let f = Filter {
            sender: Some("Ann@".into()),
            older_than: Some(ChronoDuration::hours(1)),
            newer_than: Some(ChronoDuration::hours(3)),
            flagged: true,
            ..Filter::default()
        };
        let ix = index_filter(&f, now, false);
        assert_eq!(ix.sender, "Ann@");
        assert_eq!(ix.since, Some(now - ChronoDuration::hours(3)));
        assert_eq!(
            ix.before,
            Some(now - ChronoDuration::hours(1) + ChronoDuration::microseconds(1))
        );
        assert_eq!(ix.flagged, None, "no verdicts in a one-off index");
        assert_eq!(index_filter(&f, now, true).flagged, Some(true));
    }
}
