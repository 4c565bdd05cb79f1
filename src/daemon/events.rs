//! Filesystem events: which job, store or folder each one is about, and the settle window of a
//! pending job being written.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};

use super::rescan::Cause;
use super::{Daemon, STORES_SETTLE};
use crate::daemon::watcher::{self, Watcher};
use crate::queue::Status;
use crate::store::appdata;

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
            log::info!("the watcher lost events; rescanning");
            self.rescan_now(Cause::Overflow);
            // The queue-bypass check does not wait for its own timer either.
            for dir in self.bypass.watched() {
                self.bypass.note(&dir);
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
            if let Some(uid) = job_named(path, &pending_dir) {
                // About a job folder that is not there and was not known: one the daemon has
                // just approved, above all (its folder leaving, or its rewrites in approved/
                // reported under its old path before the watch learnt of the move). Nothing to
                // look at; had it come back, a later event says so.
                let gone = self.jobs.first_seen(&uid).is_none()
                    && self.jobs.known(&uid).is_none()
                    && if super::paths::rest_under(path, &pending_dir)
                        .is_some_and(|rest| !rest.contains(&b'/'))
                    {
                        left(ev.kind)
                    } else {
                        std::fs::symlink_metadata(pending_dir.join(&uid)).is_err()
                    };
                if !gone {
                    self.touch_pending(uid);
                }
            } else if let Some(uid) = job_named(path, &completed_dir) {
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

/// The event says its path is no longer there (moved away or deleted).
fn left(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
    )
}

/// The job folder `path` is in (or is), in the status folder `dir`.
fn job_named(path: &Path, dir: &Path) -> Option<String> {
    let name = super::paths::first_below(path, dir)?;
    if name == crate::store::permfile::FILE_NAME || crate::durable::is_temp_name(name) {
        return None;
    }
    Some(name.to_string())
}
