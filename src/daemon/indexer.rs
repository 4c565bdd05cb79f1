//! Keeping the queue's index (`queue::index`) right as the queue changes: every watcher event
//! under a status folder marks that job for a fresh look once it has been quiet a moment (moves
//! by the daemon, by the owner's verdicts from any process, by the job runner or by hand), the
//! daemon's reviews give pending jobs their verdict, and each full scan compares the whole queue
//! with the index (a stat per job; only what changed is read again).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::live::Live;
use crate::queue::index::{self, Shared};
use crate::queue::review::Review;
use crate::queue::uid::Uid;
use crate::queue::{Queue, Status};

/// Quiet time before a job folder that had events is read again.
const SETTLE: Duration = Duration::from_millis(100);
/// Job folders read per wake-up at most, so a flood of arrivals never holds the loop up long.
const BATCH: usize = 2_000;

pub(crate) struct Indexer {
    queue: Queue,
    /// The index the web server reads: none without a web server (nothing is kept then).
    live: Option<Arc<Live>>,
    /// Job folders to read again (all of them at start: the uids in compact form).
    dirty: HashMap<(Status, Uid), Instant>,
    /// A status folder itself changed (created, removed, renamed): compare everything.
    resync: bool,
    /// The first comparison is being read; the index is ready once it is.
    warming: bool,
    ready_after: bool,
}

impl Indexer {
    pub(crate) fn new(queue: Queue) -> Indexer {
        Indexer {
            queue,
            live: None,
            dirty: HashMap::new(),
            resync: false,
            warming: false,
            ready_after: false,
        }
    }

    pub(crate) fn share(&mut self, live: &Arc<Live>) {
        // Without a reader (no web server) an index of 100,000 jobs would be memory for nothing.
        if !live.index.is_unread() {
            self.live = Some(live.clone());
        }
    }

    fn shared(&self) -> Option<&Shared> {
        self.live.as_deref().map(|l| &l.index)
    }

    /// A watcher event on `path`.
    pub(crate) fn note(&mut self, path: &Path) {
        if self.live.is_none() {
            return;
        }
        let Some(rel) = super::paths::rest_under(path, &self.queue.root) else {
            return;
        };
        let mut parts = rel
            .split(|b| *b == b'/')
            .filter(|p| !p.is_empty())
            .map(|p| std::str::from_utf8(p).ok());
        let Some(Some(status)) = parts.next().map(|s| s.and_then(Status::parse)) else {
            // The queue folder itself.
            self.resync |= rel.is_empty();
            return;
        };
        match parts.next() {
            None => self.resync = true,
            Some(Some(uid)) if !uid.starts_with('.') => {
                self.dirty
                    .entry((status, Uid::new(uid)))
                    .or_insert_with(|| Instant::now() + SETTLE);
            }
            Some(_) => {}
        }
    }

    /// Entries the daemon has just read itself (ranking arrivals reads the same metadata), after
    /// the events that marked them: the index takes them as they are, and does not look at them
    /// again unless a later event says they changed. One whose metadata could not be read yet is
    /// still looked at once it has been quiet a moment.
    pub(crate) fn read_by_daemon(&mut self, status: Status, read: Vec<(&str, index::Facts)>) {
        let Some(s) = self.live.clone() else { return };
        if read.is_empty() {
            return;
        }
        let mut ix = s.index.write();
        for (uid, f) in read {
            if f.who_and_what().is_some() {
                self.dirty.remove(&(status, Uid::new(uid)));
            }
            ix.put(status, uid, f);
        }
    }

    /// The daemon's review of the pending job `uid`.
    pub(crate) fn reviewed(&mut self, uid: &str, r: &Review) {
        let Some(s) = self.shared() else { return };
        if s.write().reviewed(uid, r) {
            // Known from the review only: the index reads the folder itself next.
            self.dirty
                .insert((Status::Pending, Uid::new(uid)), Instant::now());
        }
    }

    /// Jobs the daemon has just moved.
    pub(crate) fn moved(&self, uids: &[String]) {
        if let Some(s) = self.shared() {
            // Approved, or sent back to pending/: the other status folders are not touched.
            for uid in uids {
                s.refresh_in(&self.queue, uid, &[Status::Pending, Status::Approved]);
            }
        }
    }

    /// Gives back the room a burst's marks took, once all are read.
    pub(crate) fn shrink(&mut self) {
        self.dirty.shrink_to_fit();
    }

    /// When the next marked job is due.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        if self.resync || self.ready_after {
            return Some(Instant::now());
        }
        self.dirty.values().min().copied()
    }

    /// Reads again the marked jobs that are due (a bounded number), or everything if a status
    /// folder changed.
    pub(crate) fn flush(&mut self) {
        if self.live.is_none() {
            return;
        }
        if self.resync {
            let started = Instant::now();
            self.resync();
            log::debug!(
                "the index compared with the queue in {} ms",
                started.elapsed().as_millis()
            );
            return;
        }
        let now = Instant::now();
        let due: Vec<(Status, Uid)> = self
            .dirty
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .take(BATCH)
            .collect();
        if due.len() < BATCH && self.warming {
            // Caught up with the first comparison once this batch is in.
            self.warming = false;
            self.ready_after = true;
        }
        if due.is_empty() {
            self.mark_ready();
            return;
        }
        let Some(shared) = self.shared() else { return };
        let was: Vec<Option<u64>> = {
            let ix = shared.read_always();
            due.iter()
                .map(|(status, id)| id.with_str(|uid| ix.stamp_of(*status, uid)))
                .collect()
        };
        // Read without the index's lock, on every core: in a flood this is the loop's largest
        // share of work between two turns of events, and the web server keeps answering.
        let looked: Vec<(Status, String, Option<u64>)> = due
            .iter()
            .zip(was)
            .map(|((status, id), was)| (*status, id.to_string(), was))
            .collect();
        let read = crate::queue::par::map(&looked, |(status, uid, was)| {
            let dir = self.queue.job_dir(*status, uid);
            match (index::stamp(&dir), was) {
                (None, None) => None,
                (Some((now, _)), Some(was)) if now == *was => None,
                (None, Some(_)) => Some(None),
                (Some(_), _) => Some(index::read_facts(&dir)),
            }
        });
        let read: Vec<(Status, String, Option<index::Facts>)> = looked
            .into_iter()
            .zip(read)
            .filter_map(|((status, uid, _), fresh)| fresh.map(|f| (status, uid, f)))
            .collect();
        let mut ix = shared.write();
        for (status, uid, fresh) in read {
            match fresh {
                Some(f) => ix.put(status, &uid, f),
                None => ix.remove(status, &uid),
            }
        }
        drop(ix);
        for k in &due {
            self.dirty.remove(k);
        }
        self.mark_ready();
    }

    fn mark_ready(&mut self) {
        if std::mem::take(&mut self.ready_after)
            && let Some(s) = self.shared()
        {
            s.set_ready(true);
        }
    }

    /// Asks for a [`resync`](Indexer::resync) at the next [`flush`](Indexer::flush): after the
    /// loop's next batch, so a rescan in a flood decides the owner's jobs it finds before the
    /// index (for the web server) is compared with the whole queue.
    pub(crate) fn resync_soon(&mut self) {
        self.resync |= self.live.is_some();
    }

    /// Compares every status folder with the index: entries of folders gone are dropped, new
    /// and changed folders marked to be read (by [`flush`](Indexer::flush), a batch at a time,
    /// so a queue of 100,000 jobs at start never holds the loop up). The index is ready once
    /// the first comparison is read.
    fn resync(&mut self) {
        let Some(live) = self.live.clone() else {
            return;
        };
        let shared = &live.index;
        self.resync = false;
        let now = Instant::now();
        for status in Status::ALL {
            // In compact form, and what the index has is looked up one uid at a time, not
            // copied out: a queue of 100,000 jobs is compared without a second copy of it.
            let mut on_disk = self.queue.list_with(status, Uid::new);
            on_disk.sort_unstable_by(|a, b| a.with_str(|a| b.with_str(|b| a.cmp(b))));
            let gone = shared.read_always().missing(status, |uid| {
                on_disk
                    .binary_search_by(|d| d.with_str(|d| d.cmp(uid)))
                    .is_ok()
            });
            if !gone.is_empty() {
                let mut ix = shared.write();
                for uid in gone {
                    ix.remove(status, &uid);
                }
            }
            let was: Vec<Option<u64>> = {
                let ix = shared.read_always();
                on_disk
                    .iter()
                    .map(|id| id.with_str(|uid| ix.stamp_of(status, uid)))
                    .collect()
            };
            // A stat or two per job: on every core, as with 100,000 jobs this is most of a
            // rescan.
            let looked: Vec<(&Uid, Option<u64>)> = on_disk.iter().zip(was).collect();
            let changed = crate::queue::par::map(&looked, |(id, was)| match was {
                None => true,
                Some(was) => {
                    let dir = id.with_str(|uid| self.queue.job_dir(status, uid));
                    index::stamp(&dir).map(|s| s.0) != Some(*was)
                }
            });
            drop(looked);
            for (id, changed) in on_disk.into_iter().zip(changed) {
                if changed {
                    self.dirty.insert((status, id), now);
                }
            }
        }
        self.warming |= !shared.is_ready();
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        // A stopped daemon no longer follows the queue: readers go back to the disk.
        if let Some(s) = self.shared() {
            s.set_ready(false);
        }
    }
}
