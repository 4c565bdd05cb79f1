//! Nothing reaches `approved/` or `running/` unexplained (SPEC §8). This module owns the checks
//! that keep the decided part of the queue honest:
//! - a job in `approved/` or `running/` that no approval in the audit chain accounts for (nor a
//!   move in flight in the journal) is reported once (log, audit event, decision log and hooks,
//!   status, metric) and left exactly as it is: its metadata is never made to look decided;
//! - each decided status folder keeps a `syft.pub.yaml` that grants nobody but the owner write,
//!   restored (with a warning and an audit event) whenever it is loosened;
//! - the per-job rules that the queue client adds to `pending/syft.pub.yaml` are removed once
//!   their job is decided;
//! - no decision is made while the audit chain cannot record it ([`decision_lock`]).

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::announce::{Decision, Notifier};
use crate::core::policy::Disposition;
use crate::core::signature;
use crate::daemon::explained::{Explained, Set};
use crate::daemon::live::{Live, Unexplained};
use crate::durable::{self, Sync};
use crate::queue::journal::Mover;
use crate::queue::metadata::{self, Metadata};
use crate::queue::uid::Uid;
use crate::queue::{self, Queue, Status};
use crate::store::audit::{self, AuditLog};
use crate::store::decision_log::{DecisionLog, Record};
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

/// What is recorded in the audit chain about the queue's integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// A job in approved/ or running/ that no decision explains.
    UnexplainedJob,
    /// A decided status folder's permission file let others write, or was gone; it was restored.
    PermissionsRestored,
}

impl Finding {
    pub fn event(self) -> &'static str {
        match self {
            Finding::UnexplainedJob => "queue.unexplained_job",
            Finding::PermissionsRestored => "queue.permissions_restored",
        }
    }
}

/// Status folders a job reaches only through a decision (or the runner, after one).
pub const DECIDED: [Status; 6] = Status::DECIDED;
/// Where a job must never be without an approval.
const GUARDED: [Status; 2] = [Status::Approved, Status::Running];
/// Quiet time after an event before the folders are looked at.
// A second, not less: every approval the daemon makes lands in approved/, and each look lists
// the folder on the daemon's own thread, so during a stream of approvals the looks must stay few
// enough not to delay the next decision.
const SETTLE: Duration = Duration::from_secs(1);
/// A look lists every job in the decided folders: with 100,000 approved it takes a quarter of
/// a second, and a flood's approvals ask for one every [`SETTLE`]. After a look, the next waits
/// at least this many times as long as it took, so looks take at most about 5 % of the loop,
/// up to [`SETTLE_MAX`]: a job put into approved/ by hand is still reported within seconds, and
/// the memory a flood leaves is given back soon after (that waits for the last look).
const LOOK_SHARE: u32 = 20;
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// What explains job `uid` in status `s`, approved with the signatures `sigs`, and what its code
/// looks like now.
fn explained(queue: &Queue, s: Status, uid: &str, sigs: &[Option<String>]) -> Explained {
    let code = (s == Status::Approved)
        .then(|| signature::fingerprint(&queue.job_dir(s, uid).join("code")));
    Explained {
        compared: !sigs.iter().any(Option::is_none),
        code,
    }
}

/// The uids in status folder `s`, in compact form and sorted (a look holds the whole folder).
fn listed(queue: &Queue, s: Status) -> Vec<Uid> {
    let mut v = queue.list_with(s, Uid::new);
    v.sort_unstable();
    v.dedup();
    v
}

pub struct Bypass {
    layout: Layout,
    queue: Queue,
    /// Each decided status folder and its permission file, for [`Bypass::note`] (called for every
    /// event, so not joined each time).
    decided_dirs: Vec<(PathBuf, PathBuf)>,
    mover: Mover,
    /// Jobs now in approved/ or running/ that an approval explains (one per approved job, so
    /// kept compact).
    explained: Set,
    /// Jobs now in approved/ or running/ that nothing explains.
    reported: HashMap<String, Unexplained>,
    /// Approvals read from the chain since the last look, for jobs not seen yet: uid -> signatures.
    recent: HashMap<String, Vec<Option<String>>>,
    offset: u64,
    due: Option<Instant>,
    /// Quiet time after an event before the next look (longer after a slow look).
    settle: Duration,
    perms_due: Option<Instant>,
    next_rescan: Instant,
    rescan: Duration,
    live: Option<Arc<Live>>,
    restores: u64,
    /// Finds without logging (the `status` command prints them itself).
    quiet: bool,
}

impl Bypass {
    pub fn new(layout: &Layout, rescan: Duration) -> Bypass {
        let queue = Queue::new(layout.queue.clone());
        let decided_dirs = DECIDED
            .iter()
            .map(|s| {
                let dir = queue.status_dir(*s);
                (dir.join(permfile::FILE_NAME), dir)
            })
            .collect();
        Bypass {
            layout: layout.clone(),
            queue,
            decided_dirs,
            mover: Mover::new(layout),
            explained: Set::default(),
            reported: HashMap::new(),
            recent: HashMap::new(),
            offset: std::fs::metadata(AuditLog::new(layout).chain_path()).map_or(0, |m| m.len()),
            due: None,
            settle: SETTLE,
            perms_due: None,
            next_rescan: Instant::now() + rescan,
            rescan,
            live: None,
            restores: 0,
            quiet: false,
        }
    }

    pub fn with_live(&mut self, live: Option<Arc<Live>>) {
        self.live = live;
    }

    /// The status folders watched for it (`pending/` and `completed/` are watched already).
    pub fn watched(&self) -> Vec<PathBuf> {
        DECIDED
            .iter()
            .filter(|s| **s != Status::Completed)
            .map(|s| self.queue.status_dir(*s))
            .collect()
    }

    /// Notes a filesystem event; events are hints, the periodic look catches what they miss.
    pub fn note(&mut self, path: &Path) {
        let now = Instant::now();
        for (perm, dir) in &self.decided_dirs {
            let Some(rest) = super::paths::rest_under(path, dir) else {
                continue;
            };
            if rest.is_empty() || path.as_os_str() == perm.as_os_str() {
                self.perms_due = Some(now + SETTLE);
            }
            self.due = self.due.or(now.checked_add(self.settle));
        }
    }

    pub fn next_wakeup(&self) -> Instant {
        [self.due, self.perms_due]
            .into_iter()
            .flatten()
            .fold(self.next_rescan, Instant::min)
    }

    /// No look is due (the approvals of a burst have all been looked at).
    pub(crate) fn idle(&self) -> bool {
        self.due.is_none()
    }

    /// Gives back the room the approvals of a burst took (see [`Set::shrink`]).
    pub(crate) fn shrink(&mut self) {
        self.explained.shrink();
        self.recent.shrink_to_fit();
    }

    /// At start: secure the status folders and look at every job in them.
    pub fn startup(&mut self, notifier: &Notifier) {
        self.secure_status_folders(true);
        self.look(notifier, false);
        prune_pending_rules(&self.queue);
    }

    pub fn tick(&mut self, notifier: &Notifier) {
        let now = Instant::now();
        let rescan = now >= self.next_rescan;
        if rescan || self.perms_due.is_some_and(|d| d <= now) {
            self.perms_due = None;
            self.secure_status_folders(false);
        }
        if rescan || self.due.is_some_and(|d| d <= now) {
            self.look(notifier, rescan);
        }
        if rescan {
            // Anyone may write pending/syft.pub.yaml (and the client does at every submission):
            // it is pruned on the timer, not at each of its changes.
            prune_pending_rules(&self.queue);
            self.next_rescan = now + self.rescan;
        }
    }

    fn look(&mut self, notifier: &Notifier, recheck: bool) {
        self.due = None;
        let started = Instant::now();
        let found = self.scan(recheck);
        self.report(&found, notifier);
        self.publish();
        self.settle = (started.elapsed().saturating_mul(LOOK_SHARE)).clamp(SETTLE, SETTLE_MAX);
    }

    fn publish(&self) {
        if let Some(live) = &self.live {
            let mut list: Vec<Unexplained> = self.reported.values().cloned().collect();
            list.sort_by(|a, b| a.uid.cmp(&b.uid));
            live.set_integrity(list, self.restores);
        }
    }

    /// Looks at every job in approved/ and running/; returns the newly unexplained ones that were
    /// never reported before (those reported at an earlier run are only logged again). With
    /// `recheck`, the code of explained jobs in approved/ is looked at again too (cheaply: only
    /// a job whose files changed is hashed).
    fn scan(&mut self, recheck: bool) -> Vec<Unexplained> {
        // approved/ first: a job moving on to running/ meanwhile is then seen in one or the other.
        // Listed in compact form, sorted: every look holds the whole of both folders, and looks
        // a uid up in them without a set of them beside.
        let [approved, running] = GUARDED.map(|s| listed(&self.queue, s));
        let here = |u: &Uid| approved.binary_search(u).is_ok() || running.binary_search(u).is_ok();
        self.explained.retain(here);
        self.reported.retain(|u, _| here(&Uid::new(u)));
        let log = AuditLog::new(&self.layout);
        self.read_recent_approvals(&log);
        let present = GUARDED
            .iter()
            .zip([&approved, &running])
            .flat_map(|(s, v)| v.iter().map(move |u| (*s, u)));
        let left = self.unexplained_so_far(present, recheck);
        self.explained.merge();
        self.recent.retain(|u, _| here(&Uid::new(u)));
        if left.is_empty() {
            return Vec::new();
        }
        let wanted: HashSet<&str> = left.iter().map(|(_, u)| u.as_str()).collect();
        let history = if wanted.is_empty() {
            History::default()
        } else {
            History::read(&log.chain_path(), &wanted)
        };
        let mut fresh = Vec::new();
        for (s, uid) in left {
            let dir = self.queue.job_dir(s, &uid);
            if !dir.is_dir() {
                continue;
            }
            let Some(why) = self.unexplained_because(s, &uid, &dir, &history) else {
                let sigs = history.approvals.get(uid.as_str());
                let x = explained(&self.queue, s, &uid, sigs.map_or(&[], Vec::as_slice));
                self.explained.insert(&Uid::new(&uid), x);
                continue;
            };
            let before = history.reported.contains(uid.as_str());
            if let Some(u) = self.flag(s, uid, &dir, why, before) {
                fresh.push(u);
            }
        }
        self.explained.merge();
        fresh
    }

    /// Takes in the approvals appended to the audit chain since the last look.
    fn read_recent_approvals(&mut self, log: &AuditLog) {
        let (entries, end) = log.read_since(self.offset);
        self.offset = end;
        for e in entries {
            super::verdicts::note(&e, self.live.as_deref());
            if let Some(uid) = approved_uid(&e) {
                self.recent
                    .entry(uid.to_string())
                    .or_default()
                    .push(e.body.signature.clone());
            }
        }
    }

    /// The jobs of `present` that nothing explains yet (and, with `recheck`, the explained ones
    /// in approved/ whose code changed: their approvals are read from the chain again).
    fn unexplained_so_far<'a>(
        &mut self,
        present: impl Iterator<Item = (Status, &'a Uid)>,
        recheck: bool,
    ) -> Vec<(Status, String)> {
        let mut left = Vec::new();
        let mut in_flight = None;
        for (s, id) in present {
            if let Some(x) = self.explained.get(id) {
                if recheck && s == Status::Approved && x.compared {
                    let dir = id.with_str(|u| self.queue.job_dir(s, u));
                    let now = signature::fingerprint(&dir.join("code"));
                    if x.code.is_some_and(|c| c != now) {
                        // Hashed below; unchanged code keeps its explanation.
                        let code = Some(now);
                        self.explained.insert(id, Explained { code, ..x });
                        left.push((s, id.to_string()));
                    }
                }
                continue;
            }
            let uid = id.to_string();
            if self.reported.contains_key(&uid) {
                continue;
            }
            if let Some(sigs) = self.recent.remove(&uid) {
                let x = explained(&self.queue, s, &uid, &sigs);
                self.explained.insert(id, x);
                continue;
            }
            // A move in progress writes its decision last; look again once it is done.
            if in_flight
                .get_or_insert_with(|| self.mover.in_flight())
                .contains(&uid)
            {
                self.due = Some(Instant::now() + SETTLE * 4);
                continue;
            }
            left.push((s, uid));
        }
        left
    }

    /// Why job `uid` in `dir` (in status `s`) is not explained by the approvals in `history`;
    /// `None` when it is.
    fn unexplained_because(
        &self,
        s: Status,
        uid: &str,
        dir: &Path,
        history: &History,
    ) -> Option<String> {
        match history.approvals.get(uid) {
            None => Some("no decision in the audit chain approved it".to_string()),
            // The runner may write into code/ of a running job; only approved/ is compared.
            Some(sigs) if s == Status::Running || sigs.iter().any(Option::is_none) => None,
            Some(sigs) => {
                let now = queue::inspect(dir, &self.layout.email).signature;
                (!sigs.contains(&now)).then(|| {
                    format!(
                        "its code is not the code that was approved (signature {}; approved: {})",
                        now.as_deref().unwrap_or("none"),
                        sigs.iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
        }
    }

    /// Logs an unexplained job and keeps it as reported; returns it unless it was reported at an
    /// earlier run (`before`).
    fn flag(
        &mut self,
        s: Status,
        uid: String,
        dir: &Path,
        why: String,
        before: bool,
    ) -> Option<Unexplained> {
        self.explained.remove(&Uid::new(&uid));
        let meta = Metadata::read(dir).ok();
        let u = Unexplained {
            uid: uid.clone(),
            status: s.as_str().to_string(),
            name: meta.as_ref().map(|m| m.meta.name.clone()),
            requester: meta.as_ref().map(|m| m.meta.requester_email.clone()),
            metadata_status: meta.as_ref().and_then(|m| m.meta.status.clone()),
            why,
        };
        if !self.quiet {
            log::error!(
                "job {uid} is in {s}/ but {}; the reviewer did not put it there, and it is left as it is (metadata status {:?}). Find out who wrote it before it runs.{}",
                u.why,
                u.metadata_status.as_deref().unwrap_or("?"),
                if before { " (reported before)" } else { "" }
            );
        }
        let fresh = (!before).then(|| u.clone());
        self.reported.insert(uid, u);
        fresh
    }

    fn report(&self, found: &[Unexplained], notifier: &Notifier) {
        if found.is_empty() {
            return;
        }
        let events: Vec<audit::Event> = found
            .iter()
            .map(|u| audit::Event {
                event: Finding::UnexplainedJob.event().into(),
                actor: "daemon".into(),
                uid: Some(u.uid.clone()),
                email: u.requester.clone(),
                outcome: "reported".into(),
                reasons: vec![format!("found in {}/: {}", u.status, u.why)],
                ..audit::Event::default()
            })
            .collect();
        if let Err(e) = AuditLog::new(&self.layout).append(&events) {
            log::error!("could not record the unexplained job(s) in the audit chain: {e}");
        }
        let time = metadata::format_naive(&metadata::now_naive());
        let entries: Vec<Record> = found
            .iter()
            .map(|u| Record {
                time: time.clone(),
                uid: u.uid.clone(),
                name: u.name.clone(),
                requester: u.requester.clone(),
                outcome: Disposition::Unexplained.into(),
                method: None,
                signature: None,
                reasons: vec![format!(
                    "found in {}/ without a decision: {}",
                    u.status, u.why
                )],
            })
            .collect();
        if let Err(e) = DecisionLog::new(&self.layout).append(&entries) {
            log::error!("could not write the decision log: {e}");
        }
        for e in &entries {
            notifier.decision(Decision::from_record(e, "daemon"));
        }
    }

    /// Gives each decided status folder a permission file that lets nobody but the owner write,
    /// keeping the read grants (and rules) that are there.
    fn secure_status_folders(&mut self, startup: bool) {
        let mut restored = Vec::new();
        for s in DECIDED {
            let dir = self.queue.status_dir(s);
            if startup {
                // A kill during an earlier start's write of the permission file leaves its temp.
                crate::durable::remove_stale_temps(&dir);
            }
            if !dir.is_dir() {
                if !startup {
                    continue;
                }
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    log::error!("could not create {}: {e}", dir.display());
                    continue;
                }
            }
            let path = dir.join(permfile::FILE_NAME);
            let (want, what) = match PermFile::read(&path) {
                Ok(p) if p.is_read_only() => continue,
                Ok(p) => (
                    p.read_only(),
                    "granted write or admin to others".to_string(),
                ),
                Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => {
                    (readable_by_all(), "was missing".to_string())
                }
                Err(e) => (readable_by_all(), format!("was unreadable ({e})")),
            };
            let mut sync = Sync::batch();
            if let Err(e) =
                permfile::write_if_changed(&path, &want, &mut sync).and_then(|_| sync.commit())
            {
                log::error!("could not secure {}: {e}", path.display());
                continue;
            }
            if startup && what == "was missing" {
                log::info!("created {} (only the owner may write)", path.display());
            } else {
                log::warn!(
                    "{} {what}; restored so that only the owner may write in {s}/",
                    path.display()
                );
                restored.push(format!("{s}/{} {what}", permfile::FILE_NAME));
            }
        }
        if restored.is_empty() {
            return;
        }
        self.restores = self.restores.saturating_add(restored.len() as u64);
        let ev = audit::Event {
            event: Finding::PermissionsRestored.event().into(),
            actor: "daemon".into(),
            outcome: "restored".into(),
            reasons: restored,
            ..audit::Event::default()
        };
        if let Err(e) = AuditLog::new(&self.layout).append(&[ev]) {
            log::error!("could not record the restored permissions in the audit chain: {e}");
        }
        self.publish();
    }
}

/// The uid an entry approves: a decision to approve, or an interrupted move the journal completed.
fn approved_uid(e: &audit::Entry) -> Option<&str> {
    let b = &e.body;
    (b.event == "decision" && matches!(b.outcome.as_str(), "approved" | "recovery_completed"))
        .then_some(b.uid.as_deref())
        .flatten()
}

/// What the whole chain says about some jobs, read line by line.
#[derive(Default)]
struct History {
    approvals: HashMap<String, Vec<Option<String>>>,
    reported: HashSet<String>,
}

impl History {
    fn read(chain: &Path, wanted: &HashSet<&str>) -> History {
        let mut h = History::default();
        let Ok(f) = std::fs::File::open(chain) else {
            return h;
        };
        for line in BufReader::new(f).split(b'\n').map_while(|l| l.ok()) {
            let Ok(e) = serde_json::from_slice::<audit::Entry>(&line) else {
                continue;
            };
            let Some(uid) = e.body.uid.as_deref().filter(|u| wanted.contains(u)) else {
                continue;
            };
            if approved_uid(&e).is_some() {
                h.approvals
                    .entry(uid.to_string())
                    .or_default()
                    .push(e.body.signature.clone());
            } else if e.body.event == Finding::UnexplainedJob.event() {
                h.reported.insert(uid.to_string());
            }
        }
        h
    }
}

/// What syft-code-queue gives the status folders other than `pending/`.
fn readable_by_all() -> PermFile {
    PermFile {
        rules: vec![Rule::new(
            "**",
            Access {
                read: vec!["*".into()],
                ..Access::default()
            },
        )],
        ..PermFile::default()
    }
}

/// The job a rule of `pending/syft.pub.yaml` is about, as the queue client writes them
/// (`pattern: <uid>`, the job folder).
fn rule_job(pattern: &str) -> Option<&str> {
    let p = pattern.trim();
    let p = p
        .strip_suffix("/**")
        .or_else(|| p.strip_suffix("/*"))
        .or_else(|| p.strip_suffix('/'))
        .unwrap_or(p);
    queue::is_valid_uid(p).then_some(p)
}

/// Removes the rules of `pending/syft.pub.yaml` about jobs that are decided (in a decided folder
/// and no longer in `pending/`); every other rule is kept as it is.
fn prune_pending_rules(queue: &Queue) {
    let pending = queue.status_dir(Status::Pending);
    let path = pending.join(permfile::FILE_NAME);
    let Ok(bytes) = durable::read_capped(&path, 1 << 20) else {
        return;
    };
    let Ok(perm) = PermFile::parse(&String::from_utf8_lossy(&bytes)) else {
        return;
    };
    let decided = |uid: &str| {
        !pending.join(uid).exists() && DECIDED.iter().any(|s| queue.job_dir(*s, uid).is_dir())
    };
    let keep: Vec<Rule> = perm
        .rules
        .iter()
        .filter(|r| !rule_job(&r.pattern).is_some_and(decided))
        .cloned()
        .collect();
    let removed = perm.rules.len() - keep.len();
    if removed == 0 {
        return;
    }
    // The client may have added a rule since it was read: then leave it for the next look.
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        return;
    }
    let pruned = PermFile {
        terminal: perm.terminal,
        rules: keep,
        ..PermFile::default()
    };
    match durable::write_atomic(&path, pruned.to_yaml().as_bytes(), 0o644) {
        Ok(()) => log::info!(
            "removed {removed} rule(s) about decided jobs from {}",
            path.display()
        ),
        Err(e) => log::warn!("could not prune {}: {e}", path.display()),
    }
}

/// Every job in approved/ or running/ that nothing explains, looked up afresh (for `status`).
pub fn unexplained_now(layout: &Layout) -> Vec<Unexplained> {
    // Starting at the chain's end, every job is checked against the whole chain.
    let mut b = Bypass::new(layout, Duration::from_secs(3600));
    b.quiet = true;
    b.scan(false);
    let mut list: Vec<Unexplained> = b.reported.into_values().collect();
    list.sort_by(|a, b| a.uid.cmp(&b.uid));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_their_job() {
        assert_eq!(rule_job("abc-123"), Some("abc-123"));
        assert_eq!(rule_job("abc-123/**"), Some("abc-123"));
        assert_eq!(rule_job("**"), None);
        assert_eq!(rule_job("*.json"), None);
    }
}
