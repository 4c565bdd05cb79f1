//! The reviewer daemon: reacts to filesystem events, decides pending jobs, records completed ones.
//!
//! Each pending job gets a settle window (reset by every event inside its folder) so it is read
//! only once the sender has finished writing it. Events are hints; a full rescan runs at start,
//! on watcher overflow or errors, and on a timer.

pub mod bypass;
pub mod live;
pub(crate) mod retry;
pub mod watcher;

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::announce::{self as notifications, Notifier};
use crate::core::policy::{Disposition, Method, Outcome, Recorded, Verdict};
use crate::daemon::live::{Live, Snapshot};
use crate::daemon::retry::Retries;
use crate::daemon::watcher::{Msg, Watcher};
use crate::durable::Sync;
use crate::error::Result;
use crate::queue::gate;
use crate::queue::journal::{Applied, Check, Mover};
use crate::queue::metadata;
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Queue, Status};
use crate::store::allowlist::Allowlist;
use crate::store::appdata;
use crate::store::audit::{self, AuditLog};
use crate::store::decision_log::{DecisionLog, Record};
use crate::store::history::{History, HistoryRecord};
use crate::syftbox::Layout;
use notify::EventKind;
use notify::event::{AccessKind, AccessMode};

#[derive(Debug, Clone)]
pub struct Options {
    /// Quiet time a job folder must have before it is read.
    pub settle: Duration,
    /// Period of the safety-net rescan.
    pub rescan: Duration,
    /// Decide what is pending, then return.
    pub once: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            settle: Duration::from_millis(200),
            rescan: Duration::from_secs(30),
            once: false,
        }
    }
}

const STATUS_EVERY: Duration = Duration::from_secs(60);
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Quiet time after the last event on a store before it is read again.
const STORES_SETTLE: Duration = Duration::from_millis(50);
/// How long a stopping daemon waits for hooks and mail still in progress.
const SHUTDOWN_NOTIFY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Settle {
    first: Instant,
    due: Instant,
}

/// What was last said about a pending job, so rescans do not repeat it.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    fingerprint: u64,
    outcome: Option<Outcome>,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub approved: u64,
    pub sent_back: u64,
    pub expired: u64,
    pub events: u64,
    pub rescans: u64,
    pub watcher_errors: u64,
    pub last_event: Option<SystemTime>,
}

pub struct Daemon {
    layout: Layout,
    opts: Options,
    queue: Queue,
    mover: Mover,
    log: DecisionLog,
    history: History,
    trust: Trust,
    pending: HashMap<String, Settle>,
    completed: HashMap<String, Instant>,
    known: HashMap<String, Known>,
    /// When each job waiting for the owner expires (from its own created_at + timeout_seconds).
    expiries: HashMap<String, chrono::NaiveDateTime>,
    seen_completed: HashSet<String>,
    seen_path: PathBuf,
    /// When the stores (allowlist, trusted code, peers, config.yaml) are read again: a short quiet
    /// time after their last event, so a file being written is read whole, not half-written
    /// (an empty config.yaml read mid-write would replace the rules in force).
    stores_due: Option<Instant>,
    rescan_due: Instant,
    next_status: Instant,
    pub stats: Stats,
    live: Option<Arc<Live>>,
    /// How far into the audit chain the daemon has read (to tell hand edits from recorded ones).
    audit_offset: u64,
    /// What the last peer sync reported, so each problem or waiting request is logged once.
    peer_notes: Vec<String>,
    /// Hooks and mail about decisions and waiting jobs (never on the decision path).
    notifier: Arc<Notifier>,
    /// Jobs whose approval failed, backing off.
    retries: Retries,
    /// Watches the decided status folders for jobs and permissions nobody decided.
    bypass: crate::daemon::bypass::Bypass,
}

impl Daemon {
    pub fn new(layout: Layout, opts: Options) -> Result<Daemon> {
        appdata::ensure_app_data(&layout)?;
        appdata::clean_temps(&layout);
        let seen_path = layout.state.join("completed-seen.txt");
        let seen_completed = fs::read_to_string(&seen_path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        let trust = Trust::load(&layout)?;
        report_invalid(&trust, &[]);
        if let Some(e) = &trust.config_error {
            log::error!("{e}");
        }
        let notifier = Arc::new(Notifier::new(&layout.email, &trust.config));
        notifier.track_announced(
            layout.state.join("announced-pending.txt"),
            &Queue::new(layout.queue.clone()).list(Status::Pending),
        );
        notifications::register(&layout, &notifier);
        let now = Instant::now();
        Ok(Daemon {
            notifier,
            queue: Queue::new(layout.queue.clone()),
            mover: Mover::new(&layout),
            log: DecisionLog::new(&layout),
            history: History::new(&layout),
            trust,
            pending: HashMap::new(),
            completed: HashMap::new(),
            known: HashMap::new(),
            expiries: HashMap::new(),
            seen_completed,
            seen_path,
            stores_due: None,
            rescan_due: now + opts.rescan,
            next_status: now + STATUS_EVERY,
            stats: Stats::default(),
            live: None,
            peer_notes: Vec::new(),
            retries: Retries::default(),
            audit_offset: std::fs::metadata(AuditLog::new(&layout).chain_path())
                .map_or(0, |m| m.len()),
            bypass: crate::daemon::bypass::Bypass::new(&layout, opts.rescan),
            layout,
            opts,
        })
    }

    /// Publishes the daemon's state to `live` (for the web UI) as it changes.
    pub fn with_live(mut self, live: Arc<Live>) -> Daemon {
        self.bypass.with_live(Some(live.clone()));
        self.live = Some(live);
        self
    }

    /// The web UI's address, named in notification mails.
    pub fn with_ui_url(self, url: Option<String>) -> Daemon {
        self.notifier.set_ui_url(url);
        self
    }

    fn publish(&self, watcher: Option<&Watcher>) {
        let Some(live) = &self.live else { return };
        let count = |o| self.known.values().filter(|k| k.outcome == Some(o)).count();
        live.publish(Snapshot {
            waiting: count(Outcome::Wait),
            flagged: count(Outcome::Invalid),
            approved_since_start: self.stats.approved,
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
        });
    }

    /// Runs until a [`Msg::Shutdown`] arrives (or, with `once`, until what is pending is decided).
    pub fn run(mut self, tx: Sender<Msg>, rx: Receiver<Msg>) -> Result<()> {
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
            self.process(Instant::now() + Duration::from_secs(3600));
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
        let mut entries = Vec::new();
        let mut audited = Vec::new();
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
            let v = Verdict {
                outcome: Outcome::Approve,
                method: None,
                reasons: vec![why.clone()],
            };
            entries.push(entry(&r, outcome, &v));
            audited.push(audit_event(&r, outcome.as_str(), vec![why]));
        }
        if let Err(e) = self.log.append(&entries) {
            log::error!("could not write the decision log: {e}");
        }
        if let Err(e) = AuditLog::new(&self.layout).append(&audited) {
            log::error!("could not append to the audit chain: {e}");
        }
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
        let held = |(uid, s): (&String, &Settle)| {
            self.retries.ready_at(uid).map_or(s.due, |r| r.max(s.due))
        };
        if let Some(s) = self.pending.iter().map(held).min() {
            next = next.min(s);
        }
        if let Some(c) = self.completed.values().min() {
            next = next.min(*c);
        }
        if let Some(e) = self.expiries.values().min() {
            let wait = (*e - metadata::now_naive())
                .to_std()
                .unwrap_or(Duration::ZERO);
            // Clock jumps are caught by the periodic rescan; never sleep past it anyway.
            next = next.min(Instant::now().checked_add(wait).unwrap_or(next));
        }
        next
    }

    fn on_event(&mut self, ev: notify::Result<notify::Event>, watcher: Option<&mut Watcher>) {
        self.stats.events += 1;
        self.stats.last_event = Some(SystemTime::now());
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                self.stats.watcher_errors += 1;
                log::warn!("watcher error ({}); rescanning", watcher::describe(&e));
                self.rescan_due = Instant::now();
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
            self.rescan_due = Instant::now();
        }
        let pending_dir = self.queue.status_dir(Status::Pending);
        let completed_dir = self.queue.status_dir(Status::Completed);
        let mut refresh = false;
        for path in &ev.paths {
            if appdata::is_own_output(&self.layout, path) {
                continue;
            }
            self.bypass.note(path);
            if let Some(uid) = first_component(path, &pending_dir) {
                self.touch_pending(uid);
            } else if let Some(uid) = first_component(path, &completed_dir) {
                self.completed
                    .entry(uid)
                    .or_insert_with(|| Instant::now() + self.opts.settle);
            } else if path.starts_with(self.layout.allowlist_dir())
                || path.starts_with(self.layout.trusted_dir())
                || path.starts_with(crate::store::peers::peers_dir(&self.layout))
                || path == &self.layout.config_file()
            {
                // Not postponed by later events: whoever writes in these folders (peer
                // requests are anyone's) must not be able to hold the reload off.
                self.stores_due
                    .get_or_insert_with(|| Instant::now() + STORES_SETTLE);
            } else if path == &pending_dir || path == &completed_dir {
                self.rescan_due = Instant::now();
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
            self.rescan_due = Instant::now();
        }
    }

    fn touch_pending(&mut self, uid: String) {
        let now = Instant::now();
        let settle = self.opts.settle;
        // A folder that never goes quiet is still read eventually.
        let cap = (settle * 10).max(Duration::from_secs(2));
        let entry = self.pending.entry(uid).or_insert(Settle {
            first: now,
            due: now + settle,
        });
        entry.due = (now + settle).min(entry.first + cap);
    }

    fn tick(&mut self, watcher: Option<&mut Watcher>) {
        let now = Instant::now();
        if self.stores_due.is_some_and(|d| now >= d) {
            self.stores_due = None;
            self.reload_stores();
        }
        if now >= self.rescan_due {
            if let Some(w) = watcher
                && !w.refresh()
            {
                self.stats.watcher_errors += 1;
            }
            self.stats.rescans += 1;
            // Also catches store changes the watcher missed and dataset grants edited by hand.
            self.reload_stores();
            self.full_scan(false);
            self.rescan_due = Instant::now() + self.opts.rescan;
        }
        // Pending jobs wait for a store change in flight: a job must not be approved under trust
        // the owner has just withdrawn.
        if self.stores_due.is_none() {
            self.process(Instant::now());
        }
        self.bypass.tick(&self.notifier);
        if Instant::now() >= self.next_status {
            self.next_status = Instant::now() + STATUS_EVERY;
            self.status_line();
        }
    }

    fn reload_stores(&mut self) {
        let _changing = match audit::change_lock(&self.layout) {
            Ok(g) => g,
            Err(e) => {
                log::error!("{e}");
                self.stores_due = Some(Instant::now() + STORES_SETTLE * 4);
                return;
            }
        };
        let trust = match Trust::reload(&self.layout, &self.trust) {
            Ok(t) => t,
            Err(e) => {
                log::error!("could not reload the allowlist and trusted code: {e}");
                return;
            }
        };
        report_invalid(&trust, &self.trust.invalid);
        let trust = self.sync_peers(trust);
        if let Err(e) = Allowlist::new(&self.layout).sync_permissions(&trust.allowlist) {
            log::error!("could not update the allowlist's permission file: {e}");
        }
        self.audit_hand_edits(&trust);
        if trust.config_error != self.trust.config_error || trust.config != self.trust.config {
            match &trust.config_error {
                Some(e) => log::error!("{e}"),
                None => log::info!(
                    "config.yaml loaded: {} rule set(s) enabled",
                    trust.config.rule_sets().len()
                ),
            }
        }
        let changed = trust.allowlist.entries != self.trust.allowlist.entries
            || trust.trusted != self.trust.trusted
            || trust.config != self.trust.config
            || trust.peers != self.trust.peers;
        if trust.config != self.trust.config {
            self.notifier.configure(&trust.config);
        }
        self.trust = trust;
        if changed {
            log::info!(
                "trust changed: {} allowlisted sender(s), {} trusted code pattern(s); re-evaluating pending jobs",
                self.trust.allowlist.entries.len(),
                self.trust.trusted.len()
            );
            let now = Instant::now();
            for uid in self.queue.list(Status::Pending) {
                self.pending.insert(
                    uid,
                    Settle {
                        first: now,
                        due: now,
                    },
                );
            }
        }
    }

    /// Applies the peer config to requests, approvals, dataset grants and answers (the caller
    /// holds the change lock); returns `trust` with the approved peers as they are now.
    fn sync_peers(&mut self, mut trust: Trust) -> Trust {
        match crate::store::peers::sync(&self.layout, &trust.config, "daemon") {
            Ok(report) => {
                for p in &report.problems {
                    if !self.peer_notes.contains(p) {
                        log::warn!("{p}");
                    }
                }
                for w in &report.waiting {
                    if !self.peer_notes.contains(w) {
                        log::info!("{w}");
                    }
                }
                self.peer_notes = report.problems.into_iter().chain(report.waiting).collect();
            }
            Err(e) => {
                let msg = format!("could not process the peers: {e}");
                if !self.peer_notes.contains(&msg) {
                    log::error!("{msg}");
                }
                self.peer_notes = vec![msg];
            }
        }
        trust.peers = crate::store::peers::approved(&self.layout);
        trust
    }

    /// Records in the audit chain the store changes that no command recorded (made by hand, in a
    /// file manager or editor), so every change to what is trusted is in the chain.
    fn audit_hand_edits(&mut self, new: &Trust) {
        let log = AuditLog::new(&self.layout);
        let (recent, end) = log.read_since(self.audit_offset);
        self.audit_offset = end;
        let recorded = |event: &str, email: Option<&str>, sig: Option<&str>| {
            recent.iter().any(|e| {
                e.body.event == event
                    && e.body.email.as_deref() == email
                    && e.body.signature.as_deref() == sig
            })
        };
        let mut events = Vec::new();
        let mut push = |event: &str, email: Option<&str>, sig: Option<&str>| {
            if !recorded(event, email, sig) {
                events.push(audit::Event {
                    event: event.into(),
                    actor: "filesystem".into(),
                    email: email.map(str::to_owned),
                    signature: sig.map(str::to_owned),
                    outcome: "changed".into(),
                    reasons: vec![
                        "a file in the app data folder was created or deleted directly".into(),
                    ],
                    ..audit::Event::default()
                });
            }
        };
        let (old_a, new_a) = (&self.trust.allowlist.entries, &new.allowlist.entries);
        for m in new_a.keys().filter(|m| !old_a.contains_key(*m)) {
            push("allowlist.add", Some(m), None);
        }
        for m in old_a.keys().filter(|m| !new_a.contains_key(*m)) {
            push("allowlist.remove", Some(m), None);
        }
        for s in new
            .trusted
            .iter()
            .filter(|s| !self.trust.trusted.contains(*s))
        {
            push("trusted_code.mark", None, Some(s));
        }
        for s in self
            .trust
            .trusted
            .iter()
            .filter(|s| !new.trusted.contains(*s))
        {
            push("trusted_code.unmark", None, Some(s));
        }
        if let Err(e) = log.append(&events) {
            log::error!("could not append to the audit chain: {e}");
        }
        self.audit_offset = log.read_since(self.audit_offset).1;
    }

    /// Walks the pending and completed folders. Pending jobs that changed since they were last
    /// evaluated (or all of them, at start) are queued for a decision.
    fn full_scan(&mut self, all: bool) {
        let now = Instant::now();
        let uids = self.queue.list(Status::Pending);
        let present: HashSet<&String> = uids.iter().collect();
        self.known.retain(|uid, _| present.contains(uid));
        self.expiries.retain(|uid, _| present.contains(uid));
        self.retries.retain(|uid| present.contains(uid));
        for uid in &uids {
            if self.pending.contains_key(uid) {
                continue;
            }
            let fresh = all
                || match self.known.get(uid) {
                    None => true,
                    Some(k) => {
                        k.fingerprint
                            != crate::queue::copies::fingerprint(
                                &self.queue.job_dir(Status::Pending, uid),
                            )
                    }
                };
            if fresh {
                // Found by a walk, not an event: it may still be being written, so settle it too.
                let due = now + self.opts.settle;
                self.pending.insert(uid.clone(), Settle { first: now, due });
            }
        }
        for uid in self.queue.list(Status::Completed) {
            if !self.seen_completed.contains(&uid) {
                self.completed.entry(uid).or_insert(now);
            }
        }
    }

    /// Decides every pending job whose settle window has passed by `until`, and records every
    /// completed job that is due.
    fn process(&mut self, until: Instant) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(u, s)| s.due <= until && self.retries.ready_at(u).is_none_or(|r| r <= until))
            .map(|(u, _)| u.clone())
            .collect();
        if !due.is_empty() {
            let mut seen = HashMap::new();
            for uid in &due {
                if let Some(st) = self.pending.remove(uid) {
                    seen.insert(uid.clone(), st.first);
                }
            }
            self.decide(due, &seen);
        }
        let done: Vec<String> = self
            .completed
            .iter()
            .filter(|(_, t)| **t <= until)
            .map(|(u, _)| u.clone())
            .collect();
        if !done.is_empty() {
            for uid in &done {
                self.completed.remove(uid);
            }
            self.record_completed(done);
        }
        self.expire_due();
    }

    /// Moves jobs whose timeout has passed to `timedout/`.
    fn expire_due(&mut self) {
        let now = metadata::now_naive();
        let due: Vec<String> = self
            .expiries
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(u, _)| u.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let mut reviews = Vec::new();
        for uid in due {
            self.expiries.remove(&uid);
            let dir = self.queue.job_dir(Status::Pending, &uid);
            if !dir.is_dir() {
                continue;
            }
            let r = review::review(&dir, &self.layout.email, &self.trust);
            // A job that a rule approves now is decided, not expired.
            let waiting = matches!(&r.verdict, Some(v) if v.outcome != Outcome::Approve);
            if waiting && r.inspection.meta.is_some() {
                reviews.push(r);
            } else {
                self.touch_pending(uid);
            }
        }
        for uid in gate::expire(&self.layout, &reviews, &self.trust) {
            self.stats.expired += 1;
            if let Some(live) = &self.live {
                live.count_decision(Disposition::Expired.as_str(), "timeout", None);
            }
            self.known.remove(&uid);
        }
    }

    fn decide(&mut self, uids: Vec<String>, first_seen: &HashMap<String, Instant>) {
        let mut approvals: Vec<Review> = Vec::new();
        let mut entries = Vec::new();
        let dirs: Vec<PathBuf> = uids
            .iter()
            .map(|u| self.queue.job_dir(Status::Pending, u))
            .collect();
        let looked = review::review_all(&dirs, &self.layout.email, &self.trust);
        for ((uid, dir), looked) in uids.into_iter().zip(dirs).zip(looked) {
            let Some((fingerprint, r)) = looked else {
                self.known.remove(&uid);
                self.retries.clear(&uid);
                continue;
            };
            let outcome = r.verdict.as_ref().map(|v| v.outcome);
            let known = Known {
                fingerprint,
                outcome,
            };
            let repeated = self.known.get(&uid) == Some(&known);
            match &r.verdict {
                None => {
                    if !repeated {
                        log::info!(
                            "ignoring pending/{uid}: {}",
                            r.inspection.ignored.as_deref().unwrap_or("")
                        );
                    }
                    self.known.insert(uid, known);
                }
                Some(v) if v.outcome == Outcome::Approve => approvals.push(r),
                Some(v) => {
                    if !repeated {
                        let word = if v.outcome == Outcome::Invalid {
                            Disposition::Flagged
                        } else {
                            Disposition::Waiting
                        };
                        if v.outcome == Outcome::Invalid {
                            log::warn!("job {uid} is flagged: {}", v.reasons.join("; "));
                        } else {
                            log::info!("job {uid} {}: {}", describe_job(&r), v.reasons.join("; "));
                        }
                        entries.push(entry(&r, word, v));
                    }
                    if let Some(m) = &r.inspection.meta
                        && let Some(t) = gate::expires_at(
                            &m.meta,
                            &dir,
                            self.trust.config.approval.max_timeout_seconds,
                        )
                    {
                        self.expiries.insert(uid.clone(), t);
                    }
                    self.known.insert(uid, known);
                }
            }
        }
        let mut audited = Vec::new();
        let mut moved: Vec<String> = Vec::new();
        if !approvals.is_empty() {
            // The CLI and the API move jobs too; one mover at a time, and only what can be recorded.
            let _guard = match crate::queue::gate::decision_lock(&self.layout) {
                Ok(g) => g,
                Err(e) => {
                    log::error!("{e}; retrying in {} s", RETRY_AFTER.as_secs());
                    let now = Instant::now();
                    for r in &approvals {
                        self.pending.insert(
                            r.inspection.uid.clone(),
                            Settle {
                                first: now,
                                due: now + RETRY_AFTER,
                            },
                        );
                    }
                    return;
                }
            };
            let batch: Vec<_> = approvals
                .iter()
                .map(|r| (r, Status::Approved, Check::Policy, None))
                .collect();
            let results = self.mover.apply(&batch, &self.trust);
            moved.extend(results.iter().map(|(u, _)| u.clone()));
            let by_uid: HashMap<&str, &Review> = approvals
                .iter()
                .map(|r| (r.inspection.uid.as_str(), r))
                .collect();
            for (uid, applied) in results {
                let r = by_uid[uid.as_str()];
                let v = r.verdict.as_ref().expect("approvals have a verdict");
                match applied {
                    Applied::Done => {
                        self.stats.approved += 1;
                        if let Some(live) = &self.live {
                            let method = v.method.map_or("none", Method::as_str);
                            live.count_decision(
                                Disposition::Approved.as_str(),
                                method,
                                first_seen.get(&uid).map(|t| t.elapsed()),
                            );
                        }
                        self.known.remove(&uid);
                        self.expiries.remove(&uid);
                        self.retries.clear(&uid);
                        log::info!(
                            "approved job {uid} {} ({}): {}",
                            describe_job(r),
                            method_name(v.method),
                            v.reasons.join("; ")
                        );
                        entries.push(entry(r, Disposition::Approved, v));
                        audited.push(audit_event(
                            r,
                            Disposition::Approved.as_str(),
                            v.reasons.clone(),
                        ));
                    }
                    Applied::SentBack(why) => {
                        self.stats.sent_back += 1;
                        let f = self.retries.failed(&uid, &why, Instant::now());
                        if f.log {
                            log::warn!(
                                "job {uid} was not approved ({} time(s) in a row): {why}; it will be evaluated again in {:?}",
                                f.attempts,
                                f.retry_in
                            );
                        }
                        // Each distinct reason once: a job sent back again and again for the
                        // same reason must not fill the audit chain.
                        if f.new {
                            let mut e = entry(r, Disposition::SentBack, v);
                            e.reasons.push(why);
                            audited.push(audit_event(
                                r,
                                Disposition::SentBack.as_str(),
                                e.reasons.clone(),
                            ));
                            entries.push(e);
                        }
                        self.touch_pending(uid);
                    }
                    Applied::Failed(err) => {
                        let why = err.to_string();
                        let f = self.retries.failed(&uid, &why, Instant::now());
                        if f.log {
                            log::error!(
                                "could not approve job {uid} ({} attempt(s)): {why}; retrying in {:?}, then less and less often (at least once a minute)",
                                f.attempts,
                                f.retry_in
                            );
                        }
                        if f.new {
                            audited.push(audit_event(r, "approval_failed", vec![why]));
                        }
                        let now = Instant::now();
                        self.pending.insert(
                            uid,
                            Settle {
                                first: now,
                                due: now + f.retry_in,
                            },
                        );
                    }
                }
            }
        }
        if let Err(e) = self.log.append(&entries) {
            log::error!("could not write the decision log: {e}");
        }
        if let Err(e) = AuditLog::new(&self.layout).append(&audited) {
            log::error!("could not append to the audit chain: {e}");
        }
        self.mover.settled(&moved);
        // Queued for the notifier's workers: this returns at once whatever the hooks do.
        for e in &entries {
            let d = notifications::Decision::from_record(e, "daemon");
            if d.is_pending() {
                self.notifier.pending(d);
            } else {
                self.notifier.decision(d);
            }
        }
    }

    fn record_completed(&mut self, uids: Vec<String>) {
        let mut sync = Sync::batch();
        let mut recorded = Vec::new();
        for uid in uids {
            if self.seen_completed.contains(&uid) {
                continue;
            }
            let dir = self.queue.job_dir(Status::Completed, &uid);
            if !dir.is_dir() {
                continue;
            }
            let ins = crate::queue::inspect(&dir, &self.layout.email);
            if let Some(why) = &ins.ignored {
                log::debug!("not recording completed/{uid}: {why}");
            } else if let (Some(m), Some(scan), true) =
                (&ins.meta, &ins.scan, ins.problems.is_empty())
            {
                let rec = HistoryRecord::from_job(&m.meta, scan, &dir.join("code"));
                match self.history.record(rec, &mut sync) {
                    Ok(r) => log::info!(
                        "recorded completed job {uid} ({}) in the history as {}",
                        r.name,
                        r.signature
                    ),
                    Err(e) => {
                        log::error!("could not record completed job {uid}: {e}");
                        continue;
                    }
                }
            } else {
                log::info!(
                    "completed job {uid} is not recorded in the history: {}",
                    ins.problems.join("; ")
                );
            }
            recorded.push(uid);
        }
        if let Err(e) = sync.commit() {
            log::error!("{e}");
            return;
        }
        if recorded.is_empty() {
            return;
        }
        let mut lines = String::new();
        for uid in &recorded {
            lines.push_str(uid);
            lines.push('\n');
        }
        let appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.seen_path)
            .and_then(|mut f| f.write_all(lines.as_bytes()));
        if let Err(e) = appended {
            log::error!("could not write {}: {e}", self.seen_path.display());
        }
        self.seen_completed.extend(recorded);
    }

    fn status_line(&self) {
        let count = |o| self.known.values().filter(|k| k.outcome == Some(o)).count();
        let (waiting, flagged) = (count(Outcome::Wait), count(Outcome::Invalid));
        log::info!(
            "status: {waiting} job(s) waiting for review, {flagged} flagged, {} approved since start; {} allowlisted sender(s), {} trusted code pattern(s)",
            self.stats.approved,
            self.trust.allowlist.entries.len(),
            self.trust.trusted.len()
        );
    }
}

fn report_invalid(trust: &Trust, before: &[String]) {
    for bad in &trust.invalid {
        if !before.contains(bad) {
            log::warn!("ignored {bad}");
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

fn describe_job(r: &Review) -> String {
    format!(
        "{:?} from {}",
        r.inspection.name().unwrap_or("?"),
        r.inspection.requester().unwrap_or("?")
    )
}

fn method_name(m: Option<Method>) -> &'static str {
    match m {
        Some(Method::Allowlist) => "trusted sender",
        Some(Method::TrustedCode) => "trusted code",
        Some(Method::Rules) => "rules",
        Some(Method::Human) => "the owner",
        None => "no method",
    }
}

fn audit_event(r: &Review, outcome: &str, reasons: Vec<String>) -> audit::Event {
    audit::Event {
        event: "decision".into(),
        actor: "daemon".into(),
        uid: Some(r.inspection.uid.clone()),
        signature: r.inspection.signature.clone(),
        email: r.inspection.requester().map(str::to_owned),
        outcome: outcome.into(),
        reasons,
    }
}

fn entry(r: &Review, outcome: Disposition, v: &Verdict) -> Record {
    Record {
        time: metadata::format_naive(&metadata::now_naive()),
        uid: r.inspection.uid.clone(),
        name: r.inspection.name().map(str::to_owned),
        requester: r.inspection.requester().map(str::to_owned),
        outcome: outcome.into(),
        method: v.method.map(Recorded::from),
        signature: r.inspection.signature.clone(),
        reasons: v.reasons.clone(),
    }
}
