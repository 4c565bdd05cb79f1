//! The daemon's loop: its watches, what wakes it up (events, settle windows, retries, expiries,
//! the rescan and status timers), the start-up recovery and the scans that find due work.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::{Daemon, SHUTDOWN_NOTIFY, STATUS_EVERY, Settle};
use crate::core::policy::Disposition;
use crate::core::policy::Outcome;
use crate::daemon::live::Snapshot;
use crate::daemon::watcher::{Msg, Watcher};
use crate::error::Result;
use crate::queue::Status;
use crate::queue::journal::Applied;
use crate::queue::metadata;
use crate::queue::record::Record;
use crate::queue::review;
use crate::store::audit::{self, AuditLog};

impl Daemon {
    fn publish(&self, watcher: Option<&Watcher>) {
        let Some(live) = &self.live else { return };
        let count = |o| self.known.values().filter(|k| k.outcome == Some(o)).count();
        live.publish(Snapshot {
            waiting: count(Outcome::Wait),
            flagged: count(Outcome::Invalid),
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
            let mut left = self.pending.len();
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
            let timeout = self.next_wakeup().saturating_duration_since(Instant::now());
            let first = match rx.recv_timeout(timeout) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut shutdown = false;
            for msg in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                match msg {
                    Msg::Shutdown => shutdown = true,
                    Msg::Fs(ev) => self.on_event(ev, watcher.as_mut()),
                }
            }
            if shutdown {
                break;
            }
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
        let held = |(uid, s): (&String, &Settle)| {
            self.retries.ready_at(uid).map_or(s.due, |r| r.max(s.due))
        };
        if let Some(s) = self.pending.iter().map(held).min() {
            next = next.min(s);
        }
        if let Some(c) = self.completed.values().min() {
            next = next.min(*c);
        }
        if let Some(e) = self.known.values().filter_map(|k| k.expires).min() {
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
            self.stats.rescans += 1;
            // Also catches store changes the watcher missed and dataset grants edited by hand.
            self.reload_stores();
            self.full_scan(false);
            // The scan's listings are gone: with nothing pending, their pages go back too.
            self.give_back_memory();
            self.rescan_due = Instant::now() + self.opts.rescan;
        }
        // Pending jobs wait for a store change in flight: a job must not be approved under trust
        // the owner has just withdrawn.
        if self.stores_due.is_none() {
            self.process(Instant::now());
        }
        self.watch_changes(watcher);
        self.indexer.flush();
        self.bypass.tick(&self.notifier);
        if Instant::now() >= self.next_status {
            self.next_status = Instant::now() + STATUS_EVERY;
            self.status_line();
        }
    }

    /// Walks the pending and completed folders. Pending jobs that changed since they were last
    /// evaluated (or all of them, at start) are queued for a decision.
    fn full_scan(&mut self, all: bool) {
        self.indexer.resync();
        let now = Instant::now();
        let mut uids = self.queue.list(Status::Pending);
        uids.sort_unstable();
        let present = |uid: &String| uids.binary_search(uid).is_ok();
        self.known.retain(|uid, _| present(uid));
        self.retries.retain(|uid| present(uid));
        for uid in &uids {
            if self.pending.contains_key(uid) {
                continue;
            }
            let fresh = all
                || match self.known.get(uid) {
                    None => true,
                    Some(k) => {
                        let changed = k.fingerprint
                            != crate::queue::copies::fingerprint(
                                &self.queue.job_dir(Status::Pending, uid),
                            );
                        if changed {
                            // Its folder may not be watched inside (no room in a flood).
                            self.rewatch.push(uid.clone());
                        }
                        changed
                    }
                };
            if fresh {
                // Found by a walk, not an event: it may still be being written, so settle it too.
                let due = now + self.opts.settle;
                self.pending.insert(uid.clone(), Settle::new(now, due));
            }
        }
        for uid in self.queue.list(Status::Completed) {
            if !self.seen_completed.contains(&uid) {
                self.completed.entry(uid).or_insert(now);
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
        let done = super::due(&self.completed, &until);
        if !done.is_empty() {
            for uid in &done {
                self.completed.remove(uid);
            }
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
        let count = |o| self.known.values().filter(|k| k.outcome == Some(o)).count();
        let (waiting, flagged) = (count(Outcome::Wait), count(Outcome::Invalid));
        log::info!(
            "status: {waiting} job(s) waiting for review, {flagged} flagged, {} approved since start; {} allowlisted sender(s), {} trusted code pattern(s)",
            self.live.as_ref().map_or(0, |l| l.approved()),
            self.trust.allowlist.entries.len(),
            self.trust.trusted.len()
        );
    }
}
