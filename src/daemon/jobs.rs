//! What the daemon keeps per pending job, in one place and a few dozen bytes a job: when it is
//! due to be read (its settle window, or its retry), where it stands in the order of work, and
//! what was last said about it once reviewed (see [`Known`]).
//!
//! Every question a batch or a wake-up asks is answered from ordered sets and counts kept as the
//! jobs change, so its cost does not grow with the backlog: the next due time, the due jobs of
//! the owner's and of strangers (oldest first), the newest jobs not ranked yet, the next expiry,
//! how many wait and how many are flagged.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use super::Known;
use super::rank::Rank;
use super::uids::{Id, Uids};
use crate::core::policy::Outcome;

/// Milliseconds from [`Jobs::epoch`]. Jobs are pending for seconds or minutes, so 32 bits do:
/// the epoch moves forward (every time shifted, in one pass) long before they run out.
type Tick = i32;
/// How far from the epoch a time may be before the epoch moves (about 12 days).
const REBASE_AT: i64 = (i32::MAX / 2) as i64;

/// Seconds since [`origin`] (rounded up), of an expiry time; 0: none.
type Expiry = u32;
const NEVER: Expiry = 0;

/// Where expiry times count from (they are local times, as `metadata::now_naive` gives).
fn origin() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn expiry(t: chrono::NaiveDateTime) -> Expiry {
    let ms = (t - origin()).num_milliseconds();
    let s = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    Expiry::try_from(s.max(1)).unwrap_or(Expiry::MAX)
}

fn expiry_time(e: Expiry) -> Option<chrono::NaiveDateTime> {
    (e != NEVER).then(|| origin() + chrono::Duration::seconds(i64::from(e)))
}

fn clamp(ms: i64) -> Tick {
    Tick::try_from(ms.clamp(i64::from(Tick::MIN), i64::from(Tick::MAX))).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Not due to be read (reviewed, or being decided).
    Out,
    /// In [`Jobs::timers`], until its settle window (or retry) has passed.
    Timer,
    /// Due, in one of [`Jobs::ready`].
    Ready,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    used: bool,
    place: Place,
    rank: Option<Rank>,
    /// Known: reviewed, and what follows is what was said.
    known: bool,
    outcome: Option<Outcome>,
    fingerprint: u64,
    sender: u32,
    signature: u32,
    /// When the daemon first saw it (the settle cap and the latency of its decision count from
    /// then).
    first: Tick,
    /// When it arrived, as far as is known (its folder's change time when a rescan found it):
    /// the newest are ranked first.
    arrived: Tick,
    due: Tick,
    expires: Expiry,
}

const EMPTY: Slot = Slot {
    used: false,
    place: Place::Out,
    rank: None,
    known: false,
    outcome: None,
    fingerprint: 0,
    sender: 0,
    signature: 0,
    first: 0,
    arrived: 0,
    due: 0,
    expires: NEVER,
};

/// The ready set a job of rank `r` is in: the owner's, the others', the not yet ranked.
fn lane(r: Option<Rank>) -> usize {
    match r {
        Some(Rank::Owner) => 0,
        Some(Rank::Other) => 1,
        None => 2,
    }
}

pub(super) struct Jobs {
    epoch: Instant,
    uids: Uids,
    slots: Vec<Slot>,
    /// Free slot numbers, the lowest taken first: the slots in use stay at the front, and
    /// the end a flood left behind can be given back ([`Jobs::shrink`]).
    free: BinaryHeap<Reverse<Id>>,
    /// (due, slot) of the jobs waiting for their settle window.
    timers: BTreeSet<(Tick, Id)>,
    /// Due jobs: the owner's and the others' by `first`, the unranked by `arrived`.
    ready: [BTreeSet<(Tick, Id)>; 3],
    /// (expires, slot) of the reviewed jobs that expire, soonest on top: a heap in one vector,
    /// not a tree of small nodes. The jobs of a flood wait for days, and the nodes of such a tree,
    /// made as they arrive among the flood's passing allocations, kept most of the allocator's
    /// pages from going back once it was over. An entry whose slot no longer expires then is left
    /// in place (never on top: see [`Jobs::drop_stale_top`]) and dropped when the heap is rebuilt.
    expiry: BinaryHeap<Reverse<(Expiry, Id)>>,
    pending: usize,
    known: usize,
    waiting: usize,
    flagged: usize,
}

impl Jobs {
    pub(super) fn new(epoch: Instant) -> Jobs {
        Jobs {
            epoch,
            uids: Uids::default(),
            slots: Vec::new(),
            free: BinaryHeap::new(),
            timers: BTreeSet::new(),
            ready: [BTreeSet::new(), BTreeSet::new(), BTreeSet::new()],
            expiry: BinaryHeap::new(),
            pending: 0,
            known: 0,
            waiting: 0,
            flagged: 0,
        }
    }

    /// Milliseconds from the epoch to `t`, rounded up.
    fn ms(&self, t: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
        match t.checked_duration_since(self.epoch) {
            Some(d) => ms(d),
            None => ms(self.epoch.duration_since(t)).saturating_neg(),
        }
    }

    /// `t` as a tick, the epoch moved first if `t` is far from it.
    fn tick(&mut self, t: Instant) -> Tick {
        let ms = self.ms(t);
        if ms > REBASE_AT {
            self.rebase(t);
            return clamp(self.ms(t));
        }
        clamp(ms)
    }

    /// Moves the epoch to `to`: every time shifted, the sets rebuilt (once in days).
    fn rebase(&mut self, to: Instant) {
        let delta = self.ms(to);
        self.epoch = to;
        let shift = |t: Tick| clamp(i64::from(t) - delta);
        self.timers.clear();
        for r in &mut self.ready {
            r.clear();
        }
        for (i, s) in self.slots.iter_mut().enumerate() {
            s.first = shift(s.first);
            s.arrived = shift(s.arrived);
            s.due = shift(s.due);
            let id = Id::try_from(i).unwrap_or(Id::MAX);
            match s.place {
                Place::Out => {}
                Place::Timer => {
                    self.timers.insert((s.due, id));
                }
                Place::Ready => {
                    let key = if s.rank.is_some() { s.first } else { s.arrived };
                    self.ready[lane(s.rank)].insert((key, id));
                }
            }
        }
    }

    fn instant(&self, t: Tick) -> Instant {
        let d = Duration::from_millis(u64::from(t.unsigned_abs()));
        if t >= 0 {
            self.epoch + d
        } else {
            self.epoch.checked_sub(d).unwrap_or(self.epoch)
        }
    }

    fn slot(&self, uid: &str) -> Option<(Id, &Slot)> {
        let id = self.uids.get(uid)?;
        self.slots.get(id as usize).map(|s| (id, s))
    }

    fn id_or_new(&mut self, uid: &str) -> Id {
        if let Some(id) = self.uids.get(uid) {
            return id;
        }
        let id = match self.free.pop() {
            Some(Reverse(id)) => id,
            None => {
                if self.slots.len() == self.slots.capacity() {
                    self.slots.reserve_exact((self.slots.len() / 4).max(64));
                }
                self.slots.push(EMPTY);
                Id::try_from(self.slots.len() - 1).unwrap_or(Id::MAX)
            }
        };
        self.uids.insert(uid, id);
        if let Some(s) = self.slots.get_mut(id as usize) {
            *s = Slot {
                used: true,
                ..EMPTY
            };
        }
        id
    }

    /// Frees the slot of a job that is neither due nor known any more.
    fn release(&mut self, id: Id) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        if !s.used || s.known || s.place != Place::Out {
            return;
        }
        *s = EMPTY;
        let uid = self.uids.uid(id);
        self.uids.remove(&uid, id);
        self.free.push(Reverse(id));
    }

    /// Takes the job out of whichever timer or ready set holds it.
    fn unplace(&mut self, id: Id) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        match s.place {
            Place::Out => return,
            Place::Timer => {
                self.timers.remove(&(s.due, id));
            }
            Place::Ready => {
                let key = if s.rank.is_some() { s.first } else { s.arrived };
                self.ready[lane(s.rank)].remove(&(key, id));
            }
        }
        s.place = Place::Out;
        self.pending -= 1;
    }

    fn place_ready(&mut self, id: Id) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        let key = if s.rank.is_some() { s.first } else { s.arrived };
        s.place = Place::Ready;
        self.ready[lane(s.rank)].insert((key, id));
    }

    // ---- Pending jobs: settle windows, retries and the order of work.

    /// Jobs due now or waiting for their settle window.
    pub(super) fn pending_len(&self) -> usize {
        self.pending
    }

    pub(super) fn is_pending(&self, uid: &str) -> bool {
        self.slot(uid).is_some_and(|(_, s)| s.place != Place::Out)
    }

    /// When pending job `uid` was first seen.
    pub(super) fn first_seen(&self, uid: &str) -> Option<Instant> {
        let (_, s) = self.slot(uid).filter(|(_, s)| s.place != Place::Out)?;
        Some(self.instant(s.first))
    }

    /// When pending job `uid` is due to be read, if it is still settling.
    pub(super) fn due(&self, uid: &str) -> Option<Instant> {
        let (_, s) = self.slot(uid).filter(|(_, s)| s.place == Place::Timer)?;
        Some(self.instant(s.due))
    }

    /// Makes `uid` pending (again), first seen at `first`, arrived at `arrived`, due at `due`.
    pub(super) fn put_pending(
        &mut self,
        uid: &str,
        first: Instant,
        arrived: Instant,
        due: Instant,
        rank: Option<Rank>,
    ) {
        let id = self.id_or_new(uid);
        self.unplace(id);
        // The latest first: if it moves the epoch, the others are taken from the new one.
        let due = self.tick(due);
        let (first, arrived) = (clamp(self.ms(first)), clamp(self.ms(arrived)));
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.first = first;
            s.arrived = arrived;
            s.due = due;
            s.rank = rank;
            s.place = Place::Timer;
            self.timers.insert((due, id));
            self.pending += 1;
        }
    }

    /// Moves the settle window of pending job `uid` to `due`.
    pub(super) fn set_due(&mut self, uid: &str, due: Instant) {
        let Some(id) = self.uids.get(uid) else { return };
        if !self
            .slots
            .get(id as usize)
            .is_some_and(|s| s.place != Place::Out)
        {
            return;
        }
        self.unplace(id);
        let due = self.tick(due);
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.due = due;
            s.place = Place::Timer;
            self.timers.insert((due, id));
            self.pending += 1;
        }
    }

    /// Makes the jobs whose settle window has passed by `until` due.
    pub(super) fn promote(&mut self, until: Instant) {
        let until = self.tick(until);
        while let Some(&(due, id)) = self.timers.first() {
            if due > until {
                break;
            }
            self.timers.pop_first();
            self.place_ready(id);
        }
    }

    /// Due jobs, ranked or not.
    pub(super) fn ready_len(&self) -> usize {
        self.ready.iter().map(BTreeSet::len).sum()
    }

    /// When the next pending job is due (now, if some are).
    pub(super) fn next_due(&self) -> Option<Instant> {
        if self.ready.iter().any(|r| !r.is_empty()) {
            return Some(self.epoch);
        }
        self.timers.first().map(|&(t, _)| self.instant(t))
    }

    /// Up to `n` due jobs not ranked yet, the newest first.
    pub(super) fn newest_unranked(&self, n: usize) -> Vec<(Id, String)> {
        self.ready[2]
            .iter()
            .rev()
            .take(n)
            .map(|&(_, id)| (id, self.uids.uid(id)))
            .collect()
    }

    /// Due jobs waiting to be ranked.
    pub(super) fn unranked_len(&self) -> usize {
        self.ready[2].len()
    }

    /// Ranks job `id` (still pending).
    pub(super) fn set_rank(&mut self, id: Id, rank: Rank) {
        let Some(s) = self.slots.get(id as usize) else {
            return;
        };
        match s.place {
            Place::Out => {}
            Place::Timer => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    s.rank = Some(rank);
                }
            }
            Place::Ready => {
                self.unplace(id);
                if let Some(s) = self.slots.get_mut(id as usize) {
                    s.rank = Some(rank);
                }
                self.pending += 1;
                self.place_ready(id);
            }
        }
    }

    /// Ranks pending job `uid` if it is not ranked yet.
    pub(super) fn rank_unranked(&mut self, uid: &str, rank: Rank) {
        let Some((id, s)) = self.slot(uid) else {
            return;
        };
        if s.place != Place::Out && s.rank.is_none() {
            self.set_rank(id, rank);
        }
    }

    /// Whether due jobs of rank `r` wait.
    pub(super) fn has_ready(&self, r: Rank) -> bool {
        !self.ready[lane(Some(r))].is_empty()
    }

    /// Takes up to `n` due jobs of rank `r`, the oldest first, out of the pending ones; with
    /// when each was first seen.
    pub(super) fn take_ready(&mut self, r: Rank, n: usize) -> Vec<(String, Instant)> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some(&(first, id)) = self.ready[lane(Some(r))].first() else {
                break;
            };
            self.unplace(id);
            out.push((self.uids.uid(id), self.instant(first)));
            self.release(id);
        }
        out
    }

    /// Forgets the rank of every pending job (the trust it was ranked under changed).
    pub(super) fn unrank_all(&mut self) {
        let ranked: Vec<Id> = self.ready[0]
            .iter()
            .chain(self.ready[1].iter())
            .map(|&(_, id)| id)
            .collect();
        for id in ranked {
            self.unplace(id);
            if let Some(s) = self.slots.get_mut(id as usize) {
                s.rank = None;
            }
            self.pending += 1;
            self.place_ready(id);
        }
        for &(_, id) in &self.timers {
            if let Some(s) = self.slots.get_mut(id as usize) {
                s.rank = None;
            }
        }
    }

    // ---- Reviewed jobs.

    pub(super) fn known_len(&self) -> usize {
        self.known
    }

    /// Reviewed jobs that wait for the owner, and flagged ones.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.waiting, self.flagged)
    }

    pub(super) fn known(&self, uid: &str) -> Option<Known> {
        let (_, s) = self.slot(uid).filter(|(_, s)| s.known)?;
        Some(self.known_of(s))
    }

    fn known_of(&self, s: &Slot) -> Known {
        Known {
            fingerprint: s.fingerprint,
            outcome: s.outcome,
            sender: s.sender,
            signature: s.signature,
            expires: expiry_time(s.expires),
        }
    }

    fn count(&mut self, o: Option<Outcome>, add: bool) {
        let c = match o {
            Some(Outcome::Wait) => &mut self.waiting,
            Some(Outcome::Invalid) => &mut self.flagged,
            _ => return,
        };
        *c = if add {
            c.saturating_add(1)
        } else {
            c.saturating_sub(1)
        };
    }

    /// Records what was said about `uid`.
    pub(super) fn know(&mut self, uid: &str, k: Known) {
        self.forget(uid);
        let id = self.id_or_new(uid);
        let expires = k.expires.map_or(NEVER, expiry);
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.known = true;
            s.outcome = k.outcome;
            s.fingerprint = k.fingerprint;
            s.sender = k.sender;
            s.signature = k.signature;
            s.expires = expires;
        }
        if expires != NEVER {
            self.expiry.push(Reverse((expires, id)));
        }
        self.known += 1;
        self.count(k.outcome, true);
    }

    /// Forgets what was said about `uid` (decided, gone, or to be said again).
    pub(super) fn forget(&mut self, uid: &str) {
        let Some(id) = self.uids.get(uid) else { return };
        self.forget_id(id);
        self.release(id);
    }

    fn forget_id(&mut self, id: Id) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        if !s.known {
            return;
        }
        let (outcome, expires) = (s.outcome, s.expires);
        *s = Slot {
            known: false,
            outcome: None,
            fingerprint: 0,
            sender: 0,
            signature: 0,
            expires: NEVER,
            ..*s
        };
        if expires != NEVER {
            self.drop_stale_top();
            if self.expiry.len() > 2 * self.known + 1024 {
                self.rebuild_expiry();
            }
        }
        self.known -= 1;
        self.count(outcome, false);
    }

    pub(super) fn set_fingerprint(&mut self, uid: &str, fingerprint: u64) {
        let Some(id) = self.uids.get(uid) else { return };
        if let Some(s) = self.slots.get_mut(id as usize).filter(|s| s.known) {
            s.fingerprint = fingerprint;
        }
    }

    /// Forgets the reviewed jobs for which `keep` is false (a rescan no longer finds them).
    pub(super) fn retain_known(&mut self, mut keep: impl FnMut(&str) -> bool) {
        for i in 0..self.slots.len() {
            let id = Id::try_from(i).unwrap_or(Id::MAX);
            if self.slots[i].known && !keep(&self.uids.uid(id)) {
                self.forget_id(id);
                self.release(id);
            }
        }
    }

    /// The reviewed jobs, not pending now, for which `hit` holds.
    pub(super) fn known_where(&self, mut hit: impl FnMut(&Known) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if s.known && s.place == Place::Out && hit(&self.known_of(s)) {
                out.push(self.uids.uid(Id::try_from(i).unwrap_or(Id::MAX)));
            }
        }
        out
    }

    /// Takes the jobs that expire by `now` off the expiry list.
    pub(super) fn take_expired(&mut self, now: chrono::NaiveDateTime) -> Vec<String> {
        let secs = (now - origin()).num_seconds();
        let now = Expiry::try_from(secs.max(0)).unwrap_or(Expiry::MAX);
        let mut out = Vec::new();
        while let Some(&Reverse((t, id))) = self.expiry.peek() {
            if t > now {
                break;
            }
            self.expiry.pop();
            if let Some(s) = self.slots.get_mut(id as usize) {
                s.expires = NEVER;
            }
            out.push(self.uids.uid(id));
            self.drop_stale_top();
        }
        out
    }

    /// The next expiry of a reviewed job.
    pub(super) fn next_expiry(&self) -> Option<chrono::NaiveDateTime> {
        let &Reverse((t, _)) = self.expiry.peek()?;
        expiry_time(t)
    }

    /// Whether the expiry entry (t, id) still stands: its slot is reviewed and expires then.
    fn stands(&self, t: Expiry, id: Id) -> bool {
        self.slots
            .get(id as usize)
            .is_some_and(|s| s.used && s.known && s.expires == t)
    }

    /// Pops entries that no longer stand off the top, so the top is always the next expiry.
    fn drop_stale_top(&mut self) {
        while let Some(&Reverse((t, id))) = self.expiry.peek() {
            if self.stands(t, id) {
                break;
            }
            self.expiry.pop();
        }
    }

    /// The expiry heap with only the entries that stand, in a vector of their size.
    fn rebuild_expiry(&mut self) {
        let mut kept = std::mem::take(&mut self.expiry).into_vec();
        kept.retain(|&Reverse((t, id))| self.stands(t, id));
        kept.shrink_to_fit();
        self.expiry = BinaryHeap::from(kept);
    }

    /// Gives back the room a flood took once it is over: the slots past the last one in use
    /// (and the free numbers among them), and the spare capacity of the uids' tables. The sets
    /// free their nodes as they empty; the vectors and tables would keep their high-water mark.
    pub(super) fn shrink(&mut self) {
        let used = self.slots.iter().rposition(|s| s.used).map_or(0, |i| i + 1);
        self.slots.truncate(used);
        self.slots.shrink_to_fit();
        self.free.retain(|&Reverse(id)| (id as usize) < used);
        self.free.shrink_to_fit();
        self.uids.shrink(used);
        self.rebuild_expiry();
    }

    /// An estimate of the heap this state takes (slots, uids, sets and the expiry heap), for the
    /// memory figures.
    pub(super) fn footprint(&self) -> usize {
        use std::mem::size_of;
        // A B-tree keeps its entries in nodes of up to 11, about two thirds full.
        let set = |n: usize| n * size_of::<(Tick, Id)>() * 3 / 2;
        let sets = self.timers.len() + self.ready_len();
        self.slots.capacity() * size_of::<Slot>()
            + self.free.capacity() * size_of::<Id>()
            + self.expiry.capacity() * size_of::<(Expiry, Id)>()
            + self.uids.footprint()
            + set(sets)
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
