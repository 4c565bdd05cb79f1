//! The reviewer daemon: reacts to filesystem events, decides pending jobs, records completed ones.
//!
//! Each pending job gets a settle window (reset by every event inside its folder) so it is read
//! only once the sender has finished writing it. Events are hints; a full rescan runs at start,
//! on watcher overflow or errors, and on a timer.

mod backlog;
mod batch;
pub(crate) mod bypass;
mod completed;
mod events;
mod expiry;
mod explained;
mod indexer;
mod jobs;
pub mod live;
mod memory;
mod paths;
mod pending;
mod rank;
mod rescan;
pub(crate) mod retry;
mod run;
mod stores;
mod uids;
mod verdicts;
mod votes;
pub(crate) mod watcher;

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::announce::Notifier;
use crate::core::policy::Outcome;
use crate::daemon::live::Live;
use crate::daemon::retry::Retries;
use crate::error::Result;
use crate::queue::journal::Mover;
use crate::queue::review::Trust;
use crate::queue::{Queue, Status};
use crate::store::appdata;
use crate::store::audit::AuditLog;
use crate::store::history::History;
use crate::syftbox::Layout;

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
/// Events read per turn of the loop: in a burst, batches of the owner's jobs are decided
/// between them rather than after the whole burst is read.
const EVENTS_PER_TURN: usize = 4096;
/// Events read per turn while a job of the owner's is settling: the loop is back in time to
/// decide it when its window passes, not after reading and ranking a whole turn of a flood.
const EVENTS_PER_SHORT_TURN: usize = 256;
/// How long past its due time a job of the owner's keeps the turns short at most (it may have
/// been removed, or its window reset by later writes).
const OWNER_GRACE: Duration = Duration::from_secs(2);
/// How long strangers' jobs are put off at most while a burst is read (or ranked, or a job of
/// the owner's settles): a flood that never ends still has them reviewed.
const STRANGERS_PUT_OFF: Duration = Duration::from_secs(10);
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Quiet time after the last event on a store before it is read again.
const STORES_SETTLE: Duration = Duration::from_millis(50);
/// How long a stopping daemon waits for hooks and mail still in progress.
const SHUTDOWN_NOTIFY: Duration = Duration::from_secs(2);

/// What the daemon keeps about a reviewed pending job: what was last said about it (so rescans
/// do not repeat it), when it expires, and what a store change must match to affect it. Kept
/// for every job in the queue, so a few words, not the review.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    fingerprint: u64,
    outcome: Option<Outcome>,
    /// [`rank::key`] of the lowercased sender and of the signature (0: none).
    sender: u32,
    signature: u32,
    /// When it expires if nobody decides it (from its own created_at + timeout_seconds).
    expires: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sent_back: u64,
    pub expired: u64,
    /// Pending jobs reviewed (read, hashed and judged), including those reviewed again.
    pub reviews: u64,
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
    history: History,
    trust: Trust,
    /// Every pending job's settle window, rank and what was last said about it.
    jobs: jobs::Jobs,
    /// Pending jobs that events announced, to be ranked once the events at hand are read.
    arrivals: Vec<String>,
    /// The last loop left events unread (a burst): they are read before strangers' jobs are
    /// hashed.
    events_waiting: bool,
    /// When the first job of the owner's that arrived, and has not been decided yet, is due:
    /// until then turns are short and no batch of strangers' jobs is hashed.
    owner_due: Option<Instant>,
    /// Since when strangers' jobs have been put off (see [`STRANGERS_PUT_OFF`]).
    strangers_put_off: Option<Instant>,
    /// Completed jobs to record in the history, when due.
    completed: completed::Due,
    /// Pending job folders found changed by a rescan: watched inside (again, or for the first
    /// time if a flood had left no room for their watches).
    rewatch: Vec<String>,
    seen_completed: HashSet<String>,
    seen_path: PathBuf,
    /// When the stores (allowlist, trusted code, peers, config.yaml) are read again: a short quiet
    /// time after their last event, so a file being written is read whole, not half-written
    /// (an empty config.yaml read mid-write would replace the rules in force).
    stores_due: Option<Instant>,
    rescan_due: Instant,
    rescan_cause: rescan::Cause,
    rescans: rescan::Counts,
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
    /// The queue's index, for the web server.
    indexer: crate::daemon::indexer::Indexer,
    /// When memory was last given back.
    settled: memory::Settled,
}

impl Daemon {
    pub fn new(layout: Layout, opts: Options) -> Result<Daemon> {
        Daemon::few_arenas();
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
        let now = Instant::now();
        Ok(Daemon {
            notifier,
            queue: Queue::new(layout.queue.clone()),
            mover: Mover::new(&layout),
            history: History::new(&layout),
            trust,
            jobs: jobs::Jobs::new(now),
            arrivals: Vec::new(),
            events_waiting: false,
            owner_due: None,
            strangers_put_off: None,
            completed: completed::Due::default(),
            rewatch: Vec::new(),
            seen_completed,
            seen_path,
            stores_due: None,
            rescan_due: now + opts.rescan,
            rescan_cause: rescan::Cause::Timer,
            rescans: rescan::Counts::default(),
            next_status: now + STATUS_EVERY,
            stats: Stats::default(),
            live: None,
            peer_notes: Vec::new(),
            retries: Retries::default(),
            audit_offset: std::fs::metadata(AuditLog::new(&layout).chain_path())
                .map_or(0, |m| m.len()),
            bypass: crate::daemon::bypass::Bypass::new(&layout, opts.rescan),
            indexer: crate::daemon::indexer::Indexer::new(Queue::new(layout.queue.clone())),
            settled: memory::Settled::default(),
            layout,
            opts,
        })
    }

    /// Publishes the daemon's state to `live` (for the web UI) as it changes.
    pub fn with_live(mut self, live: Arc<Live>) -> Daemon {
        // Verdicts given through the web server in this process are announced by this notifier.
        live.set_notifier(&self.notifier);
        self.bypass.with_live(Some(live.clone()));
        self.indexer.share(&live);
        self.live = Some(live);
        self
    }

    /// The web UI's address, named in notification mails.
    pub fn with_ui_url(self, url: Option<String>) -> Daemon {
        self.notifier.set_ui_url(url);
        self
    }
}

fn report_invalid(trust: &Trust, before: &[String]) {
    for bad in &trust.invalid {
        if !before.contains(bad) {
            log::warn!("ignored {bad}");
        }
    }
}
