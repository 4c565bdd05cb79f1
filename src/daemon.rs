//! The reviewer daemon: reacts to filesystem events, decides pending jobs, records completed ones.
//!
//! Each pending job gets a settle window (reset by every event inside its folder) so it is read
//! only once the sender has finished writing it. Events are hints; a full rescan runs at start,
//! on watcher overflow or errors, and on a timer.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::allowlist::Allowlist;
use crate::appdata;
use crate::decision_log::{DecisionLog, Entry};
use crate::durable::Sync;
use crate::error::Result;
use crate::history::{History, HistoryRecord};
use crate::journal::{Applied, Check, Mover};
use crate::metadata;
use crate::policy::{Method, Outcome, Verdict};
use crate::queue::{Queue, Status};
use crate::review::{self, Review, Trust};
use crate::signature;
use crate::syftbox::Layout;
use crate::watcher::{self, Msg, Watcher};

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
    seen_completed: HashSet<String>,
    seen_path: PathBuf,
    stores_dirty: bool,
    rescan_due: Instant,
    next_status: Instant,
    pub stats: Stats,
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
        let now = Instant::now();
        Ok(Daemon {
            queue: Queue::new(layout.queue.clone()),
            mover: Mover::new(&layout),
            log: DecisionLog::new(layout.decision_log()),
            history: History::new(&layout),
            trust,
            pending: HashMap::new(),
            completed: HashMap::new(),
            known: HashMap::new(),
            seen_completed,
            seen_path,
            stores_dirty: false,
            rescan_due: now + opts.rescan,
            next_status: now + STATUS_EVERY,
            stats: Stats::default(),
            layout,
            opts,
        })
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
            w.add_target(self.layout.app_data.clone(), false);
            if !w.refresh() {
                self.stats.watcher_errors += 1;
            }
            Some(w)
        };
        // Watches are in place before the first scan, so nothing arriving now is missed.
        self.startup();
        if self.opts.once {
            self.process(Instant::now() + Duration::from_secs(3600));
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
            for msg in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match msg {
                    Msg::Shutdown => shutdown = true,
                    Msg::Fs(ev) => self.on_event(ev, watcher.as_mut()),
                }
            }
            if shutdown {
                break;
            }
            self.tick(watcher.as_mut());
        }
        log::info!("stopped");
        Ok(())
    }

    fn startup(&mut self) {
        for (uid, applied) in self.mover.recover(&self.trust) {
            if let Applied::SentBack(why) = applied {
                log::warn!("job {uid} was sent back to pending: {why}");
            }
        }
        let repaired = self.mover.repair_statuses();
        if repaired > 0 {
            log::info!("repaired the status of {repaired} job(s)");
        }
        self.full_scan(true);
    }

    fn next_wakeup(&self) -> Instant {
        let mut next = self.rescan_due.min(self.next_status);
        if let Some(s) = self.pending.values().map(|s| s.due).min() {
            next = next.min(s);
        }
        if let Some(c) = self.completed.values().min() {
            next = next.min(*c);
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
            if let Some(uid) = first_component(path, &pending_dir) {
                self.touch_pending(uid);
            } else if let Some(uid) = first_component(path, &completed_dir) {
                self.completed.entry(uid).or_insert_with(|| Instant::now() + self.opts.settle);
            } else if path.starts_with(self.layout.allowlist_dir())
                || path.starts_with(self.layout.trusted_dir())
                || path == &self.layout.config_file()
            {
                self.stores_dirty = true;
            } else if path == &pending_dir || path == &completed_dir {
                self.rescan_due = Instant::now();
            }
            if watcher.as_ref().is_some_and(|w| w.is_stand_in_event(path)) {
                refresh = true;
            }
        }
        if refresh {
            if let Some(w) = watcher {
                if !w.refresh() {
                    self.stats.watcher_errors += 1;
                }
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
        if self.stores_dirty {
            self.stores_dirty = false;
            self.reload_stores();
        }
        if now >= self.rescan_due {
            if let Some(w) = watcher {
                if !w.refresh() {
                    self.stats.watcher_errors += 1;
                }
            }
            self.stats.rescans += 1;
            self.full_scan(false);
            self.rescan_due = Instant::now() + self.opts.rescan;
        }
        self.process(Instant::now());
        if Instant::now() >= self.next_status {
            self.next_status = Instant::now() + STATUS_EVERY;
            self.status_line();
        }
    }

    fn reload_stores(&mut self) {
        let trust = match Trust::load(&self.layout) {
            Ok(t) => t,
            Err(e) => {
                log::error!("could not reload the allowlist and trusted code: {e}");
                return;
            }
        };
        report_invalid(&trust, &self.trust.invalid);
        if let Err(e) = Allowlist::new(&self.layout).sync_permissions(&trust.allowlist) {
            log::error!("could not update the allowlist's permission file: {e}");
        }
        let changed = trust.allowlist.entries != self.trust.allowlist.entries
            || trust.trusted != self.trust.trusted;
        self.trust = trust;
        if changed {
            log::info!(
                "trust changed: {} allowlisted sender(s), {} trusted code pattern(s); re-evaluating pending jobs",
                self.trust.allowlist.entries.len(),
                self.trust.trusted.len()
            );
            self.known.clear();
            let now = Instant::now();
            for uid in self.queue.list(Status::Pending) {
                self.pending.insert(uid, Settle { first: now, due: now });
            }
        }
    }

    /// Walks the pending and completed folders. Pending jobs that changed since they were last
    /// evaluated (or all of them, at start) are queued for a decision.
    fn full_scan(&mut self, all: bool) {
        let now = Instant::now();
        let uids = self.queue.list(Status::Pending);
        let present: HashSet<&String> = uids.iter().collect();
        self.known.retain(|uid, _| present.contains(uid));
        for uid in &uids {
            if self.pending.contains_key(uid) {
                continue;
            }
            let fresh = all
                || match self.known.get(uid) {
                    None => true,
                    Some(k) => {
                        k.fingerprint != signature::fingerprint(&self.queue.job_dir(Status::Pending, uid))
                    }
                };
            if fresh {
                self.pending.insert(uid.clone(), Settle { first: now, due: now });
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
            .filter(|(_, s)| s.due <= until)
            .map(|(u, _)| u.clone())
            .collect();
        if !due.is_empty() {
            for uid in &due {
                self.pending.remove(uid);
            }
            self.decide(due);
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
    }

    fn decide(&mut self, uids: Vec<String>) {
        let mut approvals: Vec<Review> = Vec::new();
        let mut entries = Vec::new();
        for uid in uids {
            let dir = self.queue.job_dir(Status::Pending, &uid);
            if !dir.is_dir() {
                self.known.remove(&uid);
                continue;
            }
            let fingerprint = signature::fingerprint(&dir);
            let r = review::review(&dir, &self.layout.email, &self.trust);
            let outcome = r.verdict.as_ref().map(|v| v.outcome);
            let known = Known { fingerprint, outcome };
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
                        let word = if v.outcome == Outcome::Invalid { "flagged" } else { "waiting" };
                        if v.outcome == Outcome::Invalid {
                            log::warn!("job {uid} is flagged: {}", v.reasons.join("; "));
                        } else {
                            log::info!("job {uid} {}: {}", describe_job(&r), v.reasons.join("; "));
                        }
                        entries.push(entry(&r, word, v));
                    }
                    self.known.insert(uid, known);
                }
            }
        }
        if !approvals.is_empty() {
            let batch: Vec<_> = approvals
                .iter()
                .map(|r| (r, Status::Approved, Check::Policy, None))
                .collect();
            let results = self.mover.apply(&batch, &self.trust);
            let by_uid: HashMap<&str, &Review> =
                approvals.iter().map(|r| (r.inspection.uid.as_str(), r)).collect();
            for (uid, applied) in results {
                let r = by_uid[uid.as_str()];
                let v = r.verdict.as_ref().expect("approvals have a verdict");
                match applied {
                    Applied::Done => {
                        self.stats.approved += 1;
                        self.known.remove(&uid);
                        log::info!(
                            "approved job {uid} {} ({}): {}",
                            describe_job(r),
                            method_name(v.method),
                            v.reasons.join("; ")
                        );
                        entries.push(entry(r, "approved", v));
                    }
                    Applied::SentBack(why) => {
                        self.stats.sent_back += 1;
                        log::warn!("job {uid} was not approved: {why}; it will be evaluated again");
                        let mut e = entry(r, "sent_back", v);
                        e.reasons.push(why);
                        entries.push(e);
                        self.touch_pending(uid);
                    }
                    Applied::Failed(err) => {
                        log::error!("could not approve job {uid}: {err}; retrying in {} s", RETRY_AFTER.as_secs());
                        let now = Instant::now();
                        self.pending.insert(uid, Settle { first: now, due: now + RETRY_AFTER });
                    }
                }
            }
        }
        if let Err(e) = self.log.append(&entries) {
            log::error!("could not write the decision log: {e}");
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
            } else if let (Some(m), Some(scan), true) = (&ins.meta, &ins.scan, ins.problems.is_empty()) {
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
        let waiting = self.known.values().filter(|k| k.outcome == Some(Outcome::Wait)).count();
        let flagged = self.known.values().filter(|k| k.outcome == Some(Outcome::Invalid)).count();
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
    if name == crate::permfile::FILE_NAME || crate::durable::is_temp_name(name) {
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
        None => "no method",
    }
}

fn entry(r: &Review, outcome: &str, v: &Verdict) -> Entry {
    Entry {
        time: metadata::format_naive(&metadata::now_naive()),
        uid: r.inspection.uid.clone(),
        name: r.inspection.name().map(str::to_owned),
        requester: r.inspection.requester().map(str::to_owned),
        outcome: outcome.to_string(),
        method: v.method.map(|m| {
            serde_json::to_value(m)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }),
        signature: r.inspection.signature.clone(),
        reasons: v.reasons.clone(),
    }
}
