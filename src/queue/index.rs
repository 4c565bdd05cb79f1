//! The index of the queue: one compact entry per job folder of every status (sender, name,
//! times, and for pending jobs the daemon's verdict in short with the signature), kept ordered
//! newest first. The daemon keeps one up to date from the watcher's events (`daemon::indexer`)
//! and shares it with the web server through `daemon::live`; a listing without the daemon builds
//! a one-off index of one status folder from the disk, so both answer through the same code.
//!
//! An entry is under a hundred bytes (`folder`): senders and names that repeat in a flood are
//! stored once (interned, counted), the signature as 32 bytes, times as integers, a UUID as 16
//! bytes. A page costs its blocks and rows, a count costs nothing, and a filter walks the entries
//! of one status (no sort).

mod folder;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use folder::Folder;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::core::attestation::Standing;
use crate::core::policy::{Method, Outcome};
use crate::queue::metadata::{self, Metadata};
use crate::queue::review::Review;
use crate::queue::{Queue, Status};

/// Where a job is proven to come from, in one word (the full [`Standing`] is in the job's page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Proof {
    Proven,
    ProvenFirst,
    Unverified,
    Unsigned,
    KeyChanged,
    Invalid,
}

impl Proof {
    fn of(s: &Standing) -> Proof {
        match s {
            Standing::Proven { .. } => Proof::Proven,
            Standing::ProvenFirst { .. } => Proof::ProvenFirst,
            Standing::Unverified => Proof::Unverified,
            Standing::Unsigned => Proof::Unsigned,
            Standing::KeyChanged { .. } => Proof::KeyChanged,
            Standing::Invalid { .. } => Proof::Invalid,
        }
    }
}

/// The daemon's dry-run verdict on a pending job, in short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// `None`: the folder is left alone (not a job the reviewer decides).
    pub(crate) outcome: Option<Outcome>,
    pub(crate) method: Option<Method>,
    pub(crate) proof: Option<Proof>,
}

impl Short {
    pub(crate) fn flagged(&self) -> bool {
        self.outcome == Some(Outcome::Invalid)
    }

    /// The word the listing uses (as [`Review::explanation`]'s `would`).
    pub(crate) fn word(&self) -> &'static str {
        match self.outcome {
            None => "ignore",
            Some(Outcome::Approve) => "approve",
            Some(Outcome::Wait) => "wait",
            Some(Outcome::Invalid) => "flag",
        }
    }
}

/// An interned string's number; [`NONE`] for no string (metadata that could not be read).
type Sym = u32;
const NONE: Sym = u32::MAX;
/// `created_at` of a job whose metadata has none (sorts last, newest first).
const NO_TIME: i64 = i64::MIN;

#[derive(Debug, Clone, Copy)]
struct Entry {
    created: i64,
    /// When `metadata.json` last changed (seconds since the epoch).
    updated: i64,
    /// What the folder and its `metadata.json` looked like when read (see [`stamp`]).
    stamp: u64,
    sender: Sym,
    name: Sym,
    signature: Option<[u8; 32]>,
    verdict: Option<Short>,
}

/// Strings stored once however many entries use them.
#[derive(Debug, Default)]
struct Strings {
    ids: HashMap<Arc<str>, Sym>,
    slots: Vec<(Option<Arc<str>>, u32)>,
    free: Vec<Sym>,
}

impl Strings {
    fn get(&mut self, s: Option<&str>) -> Sym {
        let Some(s) = s else { return NONE };
        if let Some(&id) = self.ids.get(s) {
            if let Some(slot) = self.slots.get_mut(id as usize) {
                slot.1 = slot.1.saturating_add(1);
            }
            return id;
        }
        let s: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = (Some(s.clone()), 1);
                id
            }
            None => {
                // A queue never holds four billion distinct strings; if it did, the rest
                // would show as unreadable rather than wrap.
                let Ok(id) = Sym::try_from(self.slots.len()) else {
                    return NONE;
                };
                if id == NONE {
                    return NONE;
                }
                self.slots.push((Some(s.clone()), 1));
                id
            }
        };
        self.ids.insert(s, id);
        id
    }

    fn release(&mut self, id: Sym) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.1 = slot.1.saturating_sub(1);
        if slot.1 == 0
            && let Some(s) = slot.0.take()
        {
            self.ids.remove(&s);
            self.free.push(id);
        }
    }

    fn text(&self, id: Sym) -> Option<&Arc<str>> {
        self.slots.get(id as usize).and_then(|s| s.0.as_ref())
    }

    /// For each string number, whether the string holds `needle` (lower-case) ignoring case.
    fn matching(&self, needle: &str) -> Vec<bool> {
        self.slots
            .iter()
            .map(|(s, _)| s.as_deref().is_some_and(|s| contains_ci(s, needle)))
            .collect()
    }
}

/// `hay` contains `needle` (already lower-case) ignoring case, as `to_lowercase().contains`
/// does, without allocating for ASCII text.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if !hay.is_ascii() {
        return hay.to_lowercase().contains(needle);
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// What is read from a job folder for its entry.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    sender: Option<String>,
    name: Option<String>,
    created: Option<NaiveDateTime>,
    updated: i64,
    stamp: u64,
}

impl Facts {
    /// The claimed sender and the name, when `metadata.json` could be read.
    pub(crate) fn who_and_what(&self) -> Option<(&str, &str)> {
        Some((self.sender.as_deref()?, self.name.as_deref()?))
    }
}

/// A cheap look at a job folder (its inode, and its `metadata.json`'s size, time and inode):
/// `None` when it is not a folder (any more). Taken before the metadata is read, so a change
/// during the read is seen next time.
pub(crate) fn stamp(dir: &Path) -> Option<(u64, i64)> {
    let d = std::fs::symlink_metadata(dir).ok()?;
    if !d.is_dir() {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.ino().hash(&mut h);
    let updated = match std::fs::symlink_metadata(dir.join(metadata::FILE_NAME)) {
        Ok(m) => {
            (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.is_file()).hash(&mut h);
            m.mtime()
        }
        Err(_) => d.mtime(),
    };
    Some((h.finish(), updated))
}

/// Reads what the index keeps about the job folder `dir`; `None` when it is not a folder.
pub(crate) fn read_facts(dir: &Path) -> Option<Facts> {
    let (stamp, updated) = stamp(dir)?;
    let m = Metadata::read(dir).ok();
    Some(Facts {
        sender: m.as_ref().map(|m| m.meta.requester_email.clone()),
        name: m.as_ref().map(|m| m.meta.name.clone()),
        created: m.and_then(|m| m.meta.created_at),
        updated,
        stamp,
    })
}

/// Which entries of one status a query wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Substrings of the sender and of the name (matched ignoring case; empty matches all).
    pub(crate) sender: String,
    pub(crate) name: String,
    /// Created at or after this time (a job without `created_at` never matches).
    pub(crate) since: Option<NaiveDateTime>,
    /// Created before this time (likewise).
    pub(crate) before: Option<NaiveDateTime>,
    /// Flagged (or not) by the daemon's last review; only pending entries have a verdict.
    pub(crate) flagged: Option<bool>,
}

/// One entry as a query returns it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) uid: String,
    pub(crate) status: Status,
    pub(crate) name: Option<String>,
    pub(crate) requester: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    pub(crate) signature: Option<String>,
    /// The daemon's last verdict (`approve`, `wait`, `flag`, `ignore`), for pending jobs it
    /// reviewed.
    pub(crate) verdict: Option<&'static str>,
    pub(crate) method: Option<Method>,
    pub(crate) flagged: Option<bool>,
    pub(crate) proof: Option<Proof>,
}

/// The whole queue's index.
#[derive(Debug, Default)]
pub(crate) struct QueueIndex {
    folders: [Folder; 7],
    strings: Strings,
}

fn slot(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn micros(t: Option<NaiveDateTime>) -> i64 {
    t.map_or(NO_TIME, |t| t.and_utc().timestamp_micros())
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    (micros != NO_TIME)
        .then(|| chrono::DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc()))
        .flatten()
}

fn hex(sig: &[u8; 32]) -> String {
    sig.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signature as 32 bytes (`None` for anything but 64 hex digits).
pub(crate) fn signature_bytes(s: &str) -> Option<[u8; 32]> {
    if !crate::core::signature::is_signature(s) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl QueueIndex {
    /// A one-off index of the `statuses` folders, read from the disk.
    pub(crate) fn read(queue: &Queue, statuses: &[Status]) -> QueueIndex {
        let mut ix = QueueIndex::default();
        for s in statuses {
            for uid in queue.list(*s) {
                if let Some(f) = read_facts(&queue.job_dir(*s, &uid)) {
                    ix.put(*s, &uid, f);
                }
            }
        }
        ix
    }

    pub(crate) fn count(&self, status: Status) -> usize {
        self.folders[slot(status)].len()
    }

    /// The stamp the entry was read with.
    pub(crate) fn stamp_of(&self, status: Status, uid: &str) -> Option<u64> {
        self.folders[slot(status)].get(uid).map(|e| e.stamp)
    }

    /// The uids of `status` for which `present` is false, to be forgotten.
    pub(crate) fn missing(&self, status: Status, present: impl Fn(&str) -> bool) -> Vec<String> {
        let f = &self.folders[slot(status)];
        f.ids()
            .map(|id| f.uid(id))
            .filter(|u| !present(u.as_str()))
            .map(|u| u.as_str().to_string())
            .collect()
    }

    /// Adds or replaces the entry of `uid` in `status`. A verdict stays until the daemon's next
    /// review, which follows every change of a pending job.
    pub(crate) fn put(&mut self, status: Status, uid: &str, f: Facts) {
        let old = self.take(status, uid);
        let (signature, verdict) = old
            .as_ref()
            .map_or((None, None), |o| (o.signature, o.verdict));
        let entry = Entry {
            created: micros(f.created),
            updated: f.updated,
            stamp: f.stamp,
            sender: self.strings.get(f.sender.as_deref()),
            name: self.strings.get(f.name.as_deref()),
            signature,
            verdict,
        };
        if let Some(o) = old {
            self.strings.release(o.sender);
            self.strings.release(o.name);
        }
        self.insert(status, uid, entry);
    }

    /// Notes the daemon's review of a pending job. A job the index has not read yet gets an
    /// entry from the review, with no stamp, so its own read follows; returns true then.
    pub(crate) fn reviewed(&mut self, uid: &str, r: &Review) -> bool {
        let short = Short {
            outcome: r.verdict.as_ref().map(|v| v.outcome),
            method: r.verdict.as_ref().and_then(|v| v.method),
            proof: r.proof.as_ref().map(Proof::of),
        };
        let signature = r.inspection.signature.as_deref().and_then(signature_bytes);
        if let Some(mut e) = self.take(Status::Pending, uid) {
            e.verdict = Some(short);
            e.signature = signature;
            self.insert(Status::Pending, uid, e);
            return false;
        }
        let m = r.inspection.meta.as_ref().map(|m| &m.meta);
        let entry = Entry {
            created: micros(m.and_then(|m| m.created_at)),
            updated: 0,
            stamp: 0,
            sender: self.strings.get(m.map(|m| m.requester_email.as_str())),
            name: self.strings.get(m.map(|m| m.name.as_str())),
            signature,
            verdict: Some(short),
        };
        self.insert(Status::Pending, uid, entry);
        true
    }

    /// Forgets the entry of `uid` in `status`.
    pub(crate) fn remove(&mut self, status: Status, uid: &str) {
        if let Some(o) = self.take(status, uid) {
            self.strings.release(o.sender);
            self.strings.release(o.name);
        }
    }

    fn take(&mut self, status: Status, uid: &str) -> Option<Entry> {
        self.folders[slot(status)].take(uid)
    }

    fn insert(&mut self, status: Status, uid: &str, e: Entry) {
        self.folders[slot(status)].insert(uid, e);
    }

    /// The entries of `status` that `filter` keeps, newest first: how many there are, and
    /// `limit` of them from `offset` on.
    pub(crate) fn select(
        &self,
        status: Status,
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Row>) {
        let f = &self.folders[slot(status)];
        let senders = (!filter.sender.is_empty())
            .then(|| self.strings.matching(&filter.sender.to_lowercase()));
        let names =
            (!filter.name.is_empty()).then(|| self.strings.matching(&filter.name.to_lowercase()));
        let hit = |m: &Option<Vec<bool>>, id: Sym| {
            m.as_ref()
                .is_none_or(|m| m.get(id as usize).copied().unwrap_or(false))
        };
        let since = filter.since.map(|t| micros(Some(t)));
        let before = filter.before.map(|t| micros(Some(t)));
        let plain = senders.is_none()
            && names.is_none()
            && since.is_none()
            && before.is_none()
            && filter.flagged.is_none();
        if plain {
            let rows = f
                .page(offset, limit)
                .into_iter()
                .filter_map(|id| self.row(status, f, id))
                .collect();
            return (f.len(), rows);
        }
        let mut total = 0usize;
        let mut rows = Vec::new();
        for id in f.ids() {
            let created = f.created(id);
            // Newest first: once past `since`, nothing further is recent enough.
            if since.is_some_and(|s| created < s) {
                break;
            }
            let Some(e) = f.entry(id) else { continue };
            let keep = hit(&senders, e.sender)
                && hit(&names, e.name)
                && before.is_none_or(|b| e.created != NO_TIME && e.created < b)
                && filter
                    .flagged
                    .is_none_or(|want| e.verdict.is_some_and(|v| v.flagged()) == want);
            if !keep {
                continue;
            }
            if total >= offset
                && rows.len() < limit
                && let Some(r) = self.row(status, f, id)
            {
                rows.push(r);
            }
            total += 1;
        }
        (total, rows)
    }

    fn row(&self, status: Status, f: &Folder, id: u32) -> Option<Row> {
        let e = f.entry(id)?;
        let text = |id| self.strings.text(id).map(|s| s.to_string());
        Some(Row {
            uid: f.uid(id).as_str().to_string(),
            status,
            name: text(e.name),
            requester: text(e.sender),
            created_at: naive(e.created).map(|t| metadata::format_naive(&t)),
            updated_at: chrono::DateTime::from_timestamp(e.updated, 0)
                .filter(|_| e.updated != 0)
                .map(|t| {
                    metadata::format_naive(
                        &chrono::DateTime::<chrono::Local>::from(t).naive_local(),
                    )
                }),
            signature: e.signature.as_ref().map(hex),
            verdict: e.verdict.map(|v| v.word()),
            method: e.verdict.and_then(|v| v.method),
            flagged: e.verdict.map(|v| v.flagged()),
            proof: e.verdict.and_then(|v| v.proof),
        })
    }
}

/// An index shared between the daemon that keeps it and the web server that reads it. Until
/// the daemon has read the whole queue once (and after it stops) it is not ready, and readers
/// go to the disk.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    index: RwLock<QueueIndex>,
    ready: AtomicBool,
    /// Nothing in this process reads it (no web server): the daemon keeps none.
    unread: AtomicBool,
}

impl Shared {
    /// The index, if it is ready.
    pub(crate) fn read(&self) -> Option<RwLockReadGuard<'_, QueueIndex>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        Some(self.index.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks at `uid` in every status folder now, for a move this process has just made: its
    /// counts and listings are right when the move returns, not once the watcher's event is in.
    pub(crate) fn refresh(&self, queue: &Queue, uid: &str) {
        self.refresh_in(queue, uid, &Status::ALL);
    }

    /// [`refresh`](Self::refresh) in `statuses` only: a move touches its source and its
    /// destination, nothing else.
    pub(crate) fn refresh_in(&self, queue: &Queue, uid: &str, statuses: &[Status]) {
        let found: Vec<(Status, Option<Facts>)> = statuses
            .iter()
            .map(|s| (*s, read_facts(&queue.job_dir(*s, uid))))
            .collect();
        let mut ix = self.write();
        for (s, fresh) in found {
            match fresh {
                Some(f) => ix.put(s, uid, f),
                None => ix.remove(s, uid),
            }
        }
    }

    /// The index whether ready or not (for the daemon that fills it).
    pub(crate) fn read_always(&self) -> RwLockReadGuard<'_, QueueIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, QueueIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Says that nothing in this process will read the index (before the daemon starts).
    pub(crate) fn set_unread(&self) {
        self.unread.store(true, Ordering::Release);
    }

    pub(crate) fn is_unread(&self) -> bool {
        self.unread.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(sender: &str, name: &str, created: i64, stamp: u64) -> Facts {
        Facts {
            sender: Some(sender.into()),
            name: Some(name.into()),
            created: chrono::DateTime::from_timestamp(created, 0).map(|t| t.naive_utc()),
            updated: created,
            stamp,
        }
    }

    fn uids(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.uid.as_str()).collect()
    }

    #[test]
    fn pages_come_newest_first_with_counts_and_filters() {
        let mut ix = QueueIndex::default();
        ix.put(Status::Pending, "a", facts("Ann@x.org", "Count", 100, 1));
        ix.put(Status::Pending, "b", facts("bob@y.org", "Plot", 300, 1));
        ix.put(
            Status::Pending,
            "c",
            facts("ann@x.org", "count rows", 200, 1),
        );
        ix.put(Status::Approved, "a", facts("ann@x.org", "Count", 100, 1));
        let all = Filter::default();
        let (n, rows) = ix.select(Status::Pending, &all, 0, 10);
        assert_eq!((n, uids(&rows)), (3, vec!["b", "c", "a"]));
        let (n, rows) = ix.select(Status::Pending, &all, 1, 1);
        assert_eq!((n, uids(&rows)), (3, vec!["c"]));
        // Far pages (counted from the end) and pages past the end.
        let (n, rows) = ix.select(Status::Pending, &all, 2, 5);
        assert_eq!((n, uids(&rows)), (3, vec!["a"]));
        let (n, rows) = ix.select(Status::Pending, &all, 1, 5);
        assert_eq!((n, uids(&rows)), (3, vec!["c", "a"]));
        assert!(ix.select(Status::Pending, &all, 3, 5).1.is_empty());
        assert!(ix.select(Status::Pending, &all, usize::MAX, 5).1.is_empty());
        let ann = Filter {
            sender: "ANN@".into(),
            ..Filter::default()
        };
        let (n, rows) = ix.select(Status::Pending, &ann, 0, 10);
        assert_eq!((n, uids(&rows)), (2, vec!["c", "a"]));
        let recent = Filter {
            since: chrono::DateTime::from_timestamp(200, 0).map(|t| t.naive_utc()),
            name: "COUNT".into(),
            ..Filter::default()
        };
        let (n, rows) = ix.select(Status::Pending, &recent, 0, 10);
        assert_eq!((n, uids(&rows)), (1, vec!["c"]));
        assert_eq!(ix.count(Status::Approved), 1);
        // Moved on: the entry leaves pending, its strings stay while another entry uses them.
        ix.remove(Status::Pending, "a");
        ix.put(Status::Pending, "b", facts("bob@y.org", "Plot v2", 50, 2));
        let (n, rows) = ix.select(Status::Pending, &all, 0, 10);
        assert_eq!((n, uids(&rows)), (2, vec!["c", "b"]));
        assert_eq!(rows[1].name.as_deref(), Some("Plot v2"));
        assert_eq!(ix.count(Status::Pending) + ix.count(Status::Approved), 3);
    }

    #[test]
    fn strings_are_shared_and_freed() {
        let mut ix = QueueIndex::default();
        for i in 0..100 {
            ix.put(
                Status::Pending,
                &format!("j{i}"),
                facts("s@x.org", "N", i, 1),
            );
        }
        assert_eq!(ix.strings.ids.len(), 2);
        for i in 0..100 {
            ix.remove(Status::Pending, &format!("j{i}"));
        }
        assert!(ix.strings.ids.is_empty());
        ix.put(Status::Pending, "k", facts("t@x.org", "M", 1, 1));
        assert_eq!(ix.strings.slots.len(), 2, "freed numbers are reused");
    }

    /// What 100,000 pending entries from a flood cost: the bytes the folder holds are checked;
    /// the RSS figure is printed (`--nocapture`), as other tests share the process.
    #[test]
    fn memory_of_a_flood() {
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let before = rss();
        let mut ix = QueueIndex::default();
        for i in 0..100_000u64 {
            let uid = format!("{:08x}-{:04x}-4abc-8def-{:012x}", i, i % 65536, i * 7919);
            ix.put(
                Status::Pending,
                &uid,
                facts("flood@junk.example", "Analysis", i as i64, i),
            );
            // Reviewed, each with code of its own: every entry has a signature.
            if let Some(mut e) = ix.take(Status::Pending, &uid) {
                let mut sig = [0u8; 32];
                sig[..8].copy_from_slice(&i.to_le_bytes());
                e.signature = Some(sig);
                ix.insert(Status::Pending, &uid, e);
            }
        }
        let after = rss();
        let held = ix.folders[slot(Status::Pending)].bytes();
        println!("slot {} bytes", folder::Folder::slot_size());
        println!(
            "100,000 entries: {} kB of RSS ({} bytes each); {} bytes each held by the folder",
            after.saturating_sub(before),
            after.saturating_sub(before) * 1024 / 100_000,
            held / 100_000
        );
        assert_eq!(ix.count(Status::Pending), 100_000);
        assert!(held / 100_000 < 110, "{held}");
    }

    #[test]
    fn case_insensitive_substrings() {
        assert!(contains_ci("Alice@Uni.example", "uni.ex"));
        assert!(contains_ci("ÄLICE@x", "älice"));
        assert!(!contains_ci("bob", "bobby"));
        assert!(contains_ci("x", ""));
    }

    #[test]
    fn signatures_round_trip() {
        let s = "ab".repeat(32);
        assert_eq!(signature_bytes(&s).map(|b| hex(&b)), Some(s));
        assert_eq!(signature_bytes("zz"), None);
        assert_eq!(signature_bytes(&"é".repeat(32)), None);
    }
}
