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
use crate::queue::{Queue, Status};

/// Quiet time before a job folder that had events is read again.
const SETTLE: Duration = Duration::from_millis(100);
/// Job folders read per wake-up at most, so a flood of arrivals never holds the loop up long.
const BATCH: usize = 2_000;

pub(crate) struct Indexer {
    queue: Queue,
    /// The index the web server reads: none without a web server (nothing is kept then).
    live: Option<Arc<Live>>,
    dirty: HashMap<(Status, String), Instant>,
    /// A status folder itself changed (created, removed, renamed): compare everything.
    resync: bool,
}

impl Indexer {
    pub(crate) fn new(queue: Queue) -> Indexer {
        Indexer {
            queue,
            live: None,
            dirty: HashMap::new(),
            resync: false,
        }
    }

    pub(crate) fn share(&mut self, live: &Arc<Live>) {
        self.live = Some(live.clone());
    }

    fn shared(&self) -> Option<&Shared> {
        self.live.as_deref().map(|l| &l.index)
    }

    /// A watcher event on `path`.
    pub(crate) fn note(&mut self, path: &Path) {
        if self.live.is_none() {
            return;
        }
        let Ok(rel) = path.strip_prefix(&self.queue.root) else {
            return;
        };
        let mut parts = rel.components().map(|c| c.as_os_str().to_str());
        let Some(Some(status)) = parts.next().map(|s| s.and_then(Status::parse)) else {
            // The queue folder itself.
            self.resync |= rel.as_os_str().is_empty();
            return;
        };
        match parts.next() {
            None => self.resync = true,
            Some(Some(uid)) if !uid.starts_with('.') => {
                self.dirty
                    .entry((status, uid.to_string()))
                    .or_insert_with(|| Instant::now() + SETTLE);
            }
            Some(_) => {}
        }
    }

    /// The daemon's review of the pending job `uid`.
    pub(crate) fn reviewed(&mut self, uid: &str, r: &Review) {
        let Some(s) = self.shared() else { return };
        if s.write().reviewed(uid, r) {
            // Known from the review only: the index reads the folder itself next.
            self.dirty
                .insert((Status::Pending, uid.to_string()), Instant::now());
        }
    }

    /// When the next marked job is due.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        if self.resync {
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
            self.resync();
            return;
        }
        let now = Instant::now();
        let due: Vec<(Status, String)> = self
            .dirty
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .take(BATCH)
            .collect();
        if due.is_empty() {
            return;
        }
        let Some(shared) = self.shared() else { return };
        // Read outside the lock: the web server keeps answering meanwhile.
        let mut read = Vec::with_capacity(due.len());
        {
            let ix = shared.read_always();
            for (status, uid) in &due {
                let dir = self.queue.job_dir(*status, uid);
                let fresh = match (index::stamp(&dir), ix.stamp_of(*status, uid)) {
                    (None, None) => continue,
                    (Some((now, _)), Some(was)) if now == was => continue,
                    (None, Some(_)) => None,
                    (Some(_), _) => index::read_facts(&dir),
                };
                read.push((*status, uid.clone(), fresh));
            }
        }
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
    }

    /// Compares every status folder with the index: entries of folders gone are dropped, new
    /// and changed folders read. The index is ready once this has run.
    pub(crate) fn resync(&mut self) {
        let Some(live) = self.live.clone() else {
            return;
        };
        let shared = &live.index;
        self.resync = false;
        for status in Status::ALL {
            let on_disk = self.queue.list(status);
            let known = shared.read_always().stamps(status);
            let gone: Vec<_> = known
                .iter()
                .filter(|(uid, _)| on_disk.binary_search_by(|d| d.as_str().cmp(uid)).is_err())
                .map(|(uid, _)| uid.clone())
                .collect();
            let known: HashMap<_, _> = known.into_iter().collect();
            if !gone.is_empty() {
                let mut ix = shared.write();
                for uid in gone {
                    ix.remove(status, &uid);
                }
            }
            // Read in bounded groups, each put under a short write lock.
            for chunk in on_disk.chunks(BATCH) {
                let mut read = Vec::new();
                for uid in chunk {
                    let dir = self.queue.job_dir(status, uid);
                    let was = known.get(uid.as_str());
                    match index::stamp(&dir) {
                        Some((stamp, _)) if was == Some(&stamp) => {}
                        None if was.is_none() => {}
                        _ => read.push((uid, index::read_facts(&dir))),
                    }
                }
                let mut ix = shared.write();
                for (uid, fresh) in read {
                    match fresh {
                        Some(f) => ix.put(status, uid, f),
                        None => ix.remove(status, uid),
                    }
                }
            }
        }
        shared.set_ready(true);
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
