//! Filesystem events: which job, store or folder each one is about, and the settle window of a
//! pending job being written.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode};

use super::rescan::Cause;
use super::{Daemon, STORES_SETTLE};
use crate::daemon::watcher::{self, Watcher};
use crate::queue::Status;
use crate::store::appdata;

/// The shortest time between rescans asked for by dropped events.
const DROPPED_RESCAN_GAP: Duration = Duration::from_secs(10);

impl Daemon {
    pub(super) fn on_event(
        &mut self,
        ev: notify::Result<notify::Event>,
        watcher: Option<&mut Watcher>,
    ) {
        self.stats.events += 1;
        self.stats.last_event = Some(SystemTime::now());
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                self.stats.watcher_errors += 1;
                log::warn!("watcher error ({}); rescanning", watcher::describe(&e));
                self.rescan_now(Cause::Watch);
                return;
            }
        };
        // Opening or reading a file changes nothing, and the daemon's own scans cause such events:
        // reacting to them would rescan (and re-read jobs) in an endless loop and cut the settle
        // window of jobs still being written. Only a file closed after writing is news.
        if let EventKind::Access(kind) = ev.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        if ev.need_rescan() {
            if ev.info() == Some(watcher::DROPPED) {
                self.dropped_events();
            } else {
                log::info!("the watcher lost events; rescanning");
                self.rescan_now(Cause::Overflow);
            }
        }
        let pending_dir = self.queue.status_dir(Status::Pending);
        let completed_dir = self.queue.status_dir(Status::Completed);
        let mut refresh = false;
        for path in &ev.paths {
            if appdata::is_own_output(&self.layout, path) {
                continue;
            }
            self.bypass.note(path);
            self.indexer.note(path);
            if let Some(uid) = first_component(path, &pending_dir) {
                self.touch_pending(uid);
            } else if let Some(uid) = first_component(path, &completed_dir) {
                self.completed.add(uid, Instant::now() + self.opts.settle);
            } else if path.starts_with(self.layout.allowlist_dir())
                || path.starts_with(self.layout.trusted_dir())
                || path.starts_with(crate::store::peers::peers_dir(&self.layout))
                || path == &self.layout.config_file()
                || crate::store::verdicts::is_vote_path(&self.layout, path)
            {
                // Not postponed by later events: whoever writes in these folders (peer
                // requests are anyone's) must not be able to hold the reload off.
                self.stores_due
                    .get_or_insert_with(|| Instant::now() + STORES_SETTLE);
            } else if path == &pending_dir || path == &completed_dir {
                self.rescan_now(Cause::Watch);
            }
            if watcher.as_ref().is_some_and(|w| w.is_stand_in_event(path)) {
                refresh = true;
            }
        }
        if refresh {
            if let Some(w) = watcher
                && !w.refresh()
            {
                self.stats.watcher_errors += 1;
            }
            self.rescan_now(Cause::Watch);
        }
    }

    /// Events of the `notify` watches (the stores, `completed/`, the decided status folders)
    /// were dropped while a batch ran; the pending tree's are never dropped (they wait in the
    /// kernel). The stores are read again now, as trust must not lag; the rest is bookkeeping,
    /// caught by a rescan at most every [`DROPPED_RESCAN_GAP`]: a burst's own approvals fill the
    /// channel again and again, and each full rescan re-reads the whole queue.
    fn dropped_events(&mut self) {
        log::debug!("watcher events dropped while the loop was busy; stores read again");
        let now = Instant::now();
        self.stores_due.get_or_insert_with(|| now + STORES_SETTLE);
        let last = self.rescan_due.checked_sub(self.opts.rescan).unwrap_or(now);
        let at = last.checked_add(DROPPED_RESCAN_GAP).unwrap_or(now).max(now);
        self.rescan_at(at, Cause::Dropped);
    }

    pub(super) fn touch_pending(&mut self, uid: String) {
        let now = Instant::now();
        let settle = self.opts.settle;
        // A folder that never goes quiet is still read eventually.
        let cap = (settle * 10).max(Duration::from_secs(2));
        match self.jobs.first_seen(&uid) {
            None => {
                // Ranked as it arrives, from its metadata alone, once the events at hand are
                // taken in (all at once, in parallel: see `rank_arrivals`): a job of the owner's
                // arriving in a flood is then decided as soon as it has settled, not after the
                // flood is ranked.
                let due = self.held(&uid, now + settle);
                self.jobs.put_pending(&uid, now, now, due, None);
                self.arrivals.push(uid);
            }
            Some(first) => {
                let due = self.held(&uid, (now + settle).min(first + cap));
                self.jobs.set_due(&uid, due);
            }
        }
    }
}

fn first_component(path: &Path, dir: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let first = rel.components().next()?;
    let name = first.as_os_str().to_str()?;
    if name == crate::store::permfile::FILE_NAME || crate::durable::is_temp_name(name) {
        return None;
    }
    Some(name.to_string())
}
