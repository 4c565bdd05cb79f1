//! The daemon's loop: its watches, what wakes it up (events, settle windows, retries, expiries,
//! the rescan and status timers), the start-up recovery and the scans that find due work.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::{Daemon, EVENTS_PER_SHORT_TURN, EVENTS_PER_TURN, SHUTDOWN_NOTIFY, STATUS_EVERY};
use crate::core::policy::Disposition;
use crate::daemon::live::Snapshot;
use crate::daemon::watcher::{Msg, Watcher};
use crate::error::Result;
use crate::queue::Status;
use crate::queue::journal::Applied;
use crate::queue::metadata;
use crate::queue::record::Record;
use crate::queue::review;
use crate::queue::uid::Uid;
use crate::store::audit::{self, AuditLog};

impl Daemon {
    fn publish(&self, watcher: Option<&Watcher>) {
        let Some(live) = &self.live else { return };
        let (waiting, flagged) = self.jobs.counts();
        live.publish(Snapshot {
            waiting,
            flagged,
            watcher_healthy: watcher.is_some_and(Watcher::healthy),
            last_event: self.stats.last_event.map(|t| {
                metadata::format_naive(&chrono::DateTime::<chrono::Local>::from(t).naive_local())
            }),
            last_error: watcher.and_then(|w| w.last_error.clone()),
            rescans: self.stats.rescans,
            events: self.stats.events,
            watcher_errors: self.stats.watcher_errors,
            rule_sets: self
                .trust
                .config
                .rule_sets()
                .into_iter()
                .map(|r| r.name)
                .collect(),
            config_error: self.trust.config_error.clone(),
        });
    }

    /// Runs until a [`Msg::Shutdown`] arrives (or, with `once`, until what is pending is decided).
    pub fn run(mut self, tx: SyncSender<Msg>, rx: Receiver<Msg>) -> Result<()> {
        let mut watcher = if self.opts.once {
            None
        } else {
            let mut w = Watcher::new(tx, self.layout.data_dir.clone())?;
            w.add_target(self.queue.status_dir(Status::Pending), true);
            w.add_target(self.queue.status_dir(Status::Completed), false);
            w.add_target(self.layout.allowlist_dir(), false);
            w.add_target(self.layout.trusted_dir(), false);
            w.add_target(crate::store::peers::approved_dir(&self.layout), false);
            w.add_target(crate::store::peers::requests_dir(&self.layout), false);
            w.add_target(self.layout.app_data.clone(), false);
            w.add_target(crate::store::verdicts::dir(&self.layout), true);
            for dir in self.bypass.watched() {
                w.add_target(dir, false);
            }
            if !w.refresh() {
                self.stats.watcher_errors += 1;
            }
            Some(w)
        };
        // Watches are in place before the first scan, so nothing arriving now is missed.
        self.startup();
        self.publish(watcher.as_ref());
        if self.opts.once {
            // In bounded batches, like the loop, until what was pending is decided (a job put
            // back to be retried is not tried again and again).
            let until = Instant::now() + Duration::from_secs(3600);
            let mut left = self.jobs.pending_len();
            loop {
                let (n, more) = self.process(until);
                left = left.saturating_sub(n);
                if !more || left == 0 {
                    break;
                }
            }
            // A cron run exits next: let its hooks and mail finish first (within limits).
            let hooks = Duration::from_secs(self.trust.config.hooks.timeout_seconds);
            self.notifier.close(hooks + Duration::from_secs(30));
            return Ok(());
        }
        log::info!(
            "watching {} for {} (settle {} ms, rescan every {} s)",
            self.queue.root.display(),
            self.layout.email,
            self.opts.settle.as_millis(),
            self.opts.rescan.as_secs()
        );
        loop {
            // What waits for room in the channel goes in before the loop waits on it.
            if let Some(w) = &watcher {
                w.flush();
            }
            let timeout = self.next_wakeup().saturating_duration_since(Instant::now());
            let first = match rx.recv_timeout(timeout) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut shutdown = false;
            let mut read = 0;
            let turn = if self.owner_due.is_some() {
                EVENTS_PER_SHORT_TURN
            } else {
                EVENTS_PER_TURN
            };
            for msg in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
                .take(turn)
            {
                read += 1;
                match msg {
                    Msg::Shutdown => shutdown = true,
                    Msg::Fs(ev) => self.on_event(ev, watcher.as_mut()),
                }
            }
            if !shutdown && self.rescan_due <= Instant::now() {
                // The rescan this turn runs covers whatever waits: it is not read first.
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Shutdown => shutdown = true,
                        Msg::Fs(_) => self.stats.events += 1,
                    }
                }
            }
            if shutdown {
                break;
            }
            // A turn that read more than a short one is in a burst: more events follow.
            self.events_waiting = read == turn || read > EVENTS_PER_SHORT_TURN;
            self.rank_arrivals();
            self.tick(watcher.as_mut());
            self.publish(watcher.as_ref());
        }
        self.notifier.close(SHUTDOWN_NOTIFY);
        log::info!("stopped");
        Ok(())
    }

    fn startup(&mut self) {
        let mut record = Record::new("daemon");
        for (uid, applied) in self.mover.recover(&self.trust) {
            let (outcome, why) = match applied {
                Applied::Done => (
                    Disposition::RecoveryCompleted,
                    "an interrupted move was completed after a restart".to_string(),
                ),
                Applied::SentBack(why) => {
                    log::warn!("job {uid} was sent back to pending: {why}");
                    (Disposition::RecoverySentBack, why)
                }
                Applied::Failed(e) => (Disposition::RecoveryFailed, e.to_string()),
            };
            let dir = self
                .queue
                .find(&uid)
                .map(|(_, d)| d)
                .unwrap_or_else(|| self.queue.job_dir(Status::Pending, &uid));
            let r = review::review(&dir, &self.layout.email, &self.trust);
            record.decision(&r, outcome, None, vec![why]);
        }
        // Recoveries are recorded, not announced: they finish decisions announced before.
        record.write(&self.layout);
        // Crash recovery goes through the journal only: a job in approved/ or running/ that no
        // decision explains is reported, never given a status that makes it look decided.
        self.bypass.startup(&self.notifier);
        match audit::change_lock(&self.layout) {
            Ok(_changing) => {
                let trust = std::mem::take(&mut self.trust);
                self.trust = self.sync_peers(trust);
            }
            Err(e) => log::error!("{e}"),
        }
        self.full_scan(true);
        self.review_by_groups();
        let v = AuditLog::new(&self.layout).verify(None);
        if v.valid {
            log::info!("audit chain verified: {}", v.reason);
        } else {
            log::error!(
                "the audit chain does NOT verify (first break at line {:?}): {}",
                v.first_break,
                v.reason
            );
        }
        if let Some(live) = &self.live {
            live.set_audit(v.valid, v.entries);
        }
    }

    fn next_wakeup(&self) -> Instant {
        let mut next = self.rescan_due.min(self.next_status);
        next = next.min(self.bypass.next_wakeup());
        if let Some(d) = self.stores_due {
            next = next.min(d);
        }
        next = self.indexer.next_wakeup().map_or(next, |t| next.min(t));
        if let Some(s) = self.jobs.next_due() {
            // Strangers' due jobs put off for a job of the owner's that settles: not a busy
            // wait until it is due (events still wake the loop).
            let s = match self.owner_due {
                Some(d) if !self.events_waiting && self.jobs.unranked_len() == 0 => s.max(d),
                _ => s,
            };
            next = next.min(s);
        }
        if let Some(c) = self.completed.next() {
            next = next.min(c);
        }
        if let Some(e) = self.jobs.next_expiry() {
            let wait = (e - metadata::now_naive())
                .to_std()
                .unwrap_or(Duration::ZERO);
            // Clock jumps are caught by the periodic rescan; never sleep past it anyway.
            next = next.min(Instant::now().checked_add(wait).unwrap_or(next));
        }
        next
    }

    fn tick(&mut self, mut watcher: Option<&mut Watcher>) {
        let now = Instant::now();
        if self.stores_due.is_some_and(|d| now >= d) {
            self.stores_due = None;
            self.reload_stores();
        }
        if now >= self.rescan_due {
            if let Some(w) = watcher.as_mut()
                && !w.refresh()
            {
                self.stats.watcher_errors += 1;
            }
            let started = Instant::now();
            // Also catches store changes the watcher missed and dataset grants edited by hand.
            self.reload_stores();
            self.full_scan(false);
            // The scan's listings are gone: with nothing pending, their pages go back too.
            self.give_back_memory();
            self.rescanned(started.elapsed());
        }
        // Pending jobs wait for a store change in flight: a job must not be approved under trust
        // the owner has just withdrawn.
        if self.stores_due.is_none() {
            self.process(Instant::now());
        }
        self.watch_changes(watcher);
        self.indexer.flush();
        self.bypass.tick(&self.notifier);
        self.settle_memory();
        if Instant::now() >= self.next_status {
            self.next_status = Instant::now() + STATUS_EVERY;
            self.status_line();
        }
    }

    /// Walks the pending and completed folders. Pending jobs that changed since they were last
    /// evaluated (or all of them, at start) are queued for a decision.
    fn full_scan(&mut self, all: bool) {
        self.indexer.resync_soon();
        let now = Instant::now();
        // Compact uids: no allocation per job (a list of 100,000 `String`s was 7 MB, and its
        // small blocks, freed among the ones kept, held pages the trim could not give back).
        let mut uids = self.queue.list_with(Status::Pending, Uid::new);
        uids.sort_unstable();
        let present = |uid: &str| uids.binary_search(&Uid::new(uid)).is_ok();
        self.jobs.retain_known(present);
        self.retries.retain(|uid| present(uid));
        let mut found = Vec::new();
        let mut check = Vec::new();
        for uid in &uids {
            uid.with_str(|u| {
                if self.jobs.is_pending(u) {
                    return;
                }
                match self.jobs.known(u) {
                    Some(k) if !all => check.push((uid, k.fingerprint)),
                    _ => found.push(uid),
                }
            });
        }
        // Reviewed jobs changed since: their folders' metadata looked at in parallel (with
        // 100,000 jobs waiting, this walk is most of a rescan). Each path made as it is looked
        // at: a list of 100,000 paths would be the rescan's largest allocation.
        let queue = &self.queue;
        let now_fp = crate::queue::par::map(&check, |(u, _)| {
            u.with_str(|u| crate::queue::copies::fingerprint(&queue.job_dir(Status::Pending, u)))
        });
        log::debug!(
            "scan: listed, and {} reviewed job(s) fingerprinted, in {} ms",
            check.len(),
            now.elapsed().as_millis()
        );
        for ((uid, was), fp) in check.into_iter().zip(now_fp) {
            if fp != was {
                // Its folder may not be watched inside (no room in a flood).
                self.rewatch.push(uid.to_string());
                found.push(uid);
            }
        }
        // Found by a walk, not an event: they may still be being written, so they settle too.
        // Ordered by when each arrived (its folder's change time): ranking the newest first
        // reaches a job that arrived after a flood (or in a burst the watcher lost) early.
        let arrived = crate::queue::par::map(&found, |u| {
            u.with_str(|u| arrived(&queue.job_dir(Status::Pending, u), now))
        });
        for (uid, arrived) in found.iter().zip(arrived) {
            uid.with_str(|uid| {
                let due = self.held(uid, now + self.opts.settle);
                self.jobs.put_pending(uid, now, arrived, due, None);
            });
        }
        if !found.is_empty() {
            log::info!(
                "{} found {} pending job(s) to look at",
                if all { "the start-up scan" } else { "a rescan" },
                found.len()
            );
        }
        for uid in self.queue.list(Status::Completed) {
            if !self.seen_completed.contains(&uid) {
                self.completed.add(uid, now);
            }
        }
    }

    /// Decides the next batch of pending jobs whose settle window has passed by `until`, and
    /// records every completed job that is due. Returns how many jobs were decided and whether
    /// due jobs are left.
    fn process(&mut self, until: Instant) -> (usize, bool) {
        let (batch, more) = self.next_batch(until);
        let n = batch.len();
        if !batch.is_empty() {
            let (due, seen): (Vec<String>, Vec<Instant>) = batch.into_iter().unzip();
            let seen: HashMap<String, Instant> = due.iter().cloned().zip(seen).collect();
            self.decide(due, &seen);
            if !more {
                self.give_back_memory();
            }
        }
        let done = self.completed.take(until);
        if !done.is_empty() {
            self.record_completed(done);
        }
        self.expire_due();
        (n, more)
    }

    /// Watches inside the job folders a rescan found changed.
    fn watch_changes(&mut self, watcher: Option<&mut Watcher>) {
        let rewatch = std::mem::take(&mut self.rewatch);
        let Some(w) = watcher else { return };
        let pending = self.queue.status_dir(Status::Pending);
        for uid in rewatch {
            w.rewatch(&pending.join(uid));
        }
    }

    fn status_line(&self) {
        log::debug!("rescans: {}", self.rescans);
        log::debug!(
            "per-job state: {} pending, {} reviewed, about {} KB",
            self.jobs.pending_len(),
            self.jobs.known_len(),
            self.jobs.footprint() / 1024
        );
        let (waiting, flagged) = self.jobs.counts();
        log::info!(
            "status: {waiting} job(s) waiting for review, {flagged} flagged, {} approved since start; {} allowlisted sender(s), {} trusted code pattern(s)",
            self.live.as_ref().map_or(0, |l| l.approved()),
            self.trust.allowlist.entries.len(),
            self.trust.trusted.len()
        );
    }
}

/// When the job folder `dir` arrived, from its change time (a rename into `pending/` sets it), as
/// an instant of this process; `now` when it is unknown or in the future.
fn arrived(dir: &Path, now: Instant) -> Instant {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return now;
    };
    let changed = u64::try_from(m.ctime()).ok().and_then(|s| {
        let ns = u32::try_from(m.ctime_nsec()).unwrap_or(0);
        std::time::UNIX_EPOCH.checked_add(Duration::new(s, ns.min(999_999_999)))
    });
    let age = changed.and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
    let Some(mut age) = age else { return now };
    // Older than the clock the instants count from: as old as can be said.
    while now.checked_sub(age).is_none() && !age.is_zero() {
        age /= 2;
    }
    now.checked_sub(age).unwrap_or(now)
}
