//! The entries of one status folder in the queue's index, stored compactly: each in a slot
//! (56 bytes: times, stamp, string numbers, verdict, and the uid inline as 16 bytes when it is a
//! canonical UUID), found by uid through a small hash table of slot numbers, kept newest first
//! in blocks of slot numbers (a page skips whole blocks, an insertion moves at most one block).
//! Signatures (32 bytes) sit in slots of their own, so only the entries that have one pay for
//! it, and entries with the same code share one (a flood is most often one job sent again and
//! again; each signature of its own costs 9 bytes more for the count and the lookup); uids
//! that are not canonical UUIDs (hostile or hand-made folder names) are kept aside as text.
//! Slots come in fixed chunks, not one vector that doubles: no spare half, no copy of the whole
//! when it grows.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::{Entry, Short, Sym};
use crate::queue::uid::{format_uuid, parse_uuid, uuid_str};

/// Slot numbers per block at most: an insertion moves up to this many (4 KB).
const BLOCK: usize = 1024;
/// Slots per chunk.
const CHUNK: usize = 4096;
/// No signature (or no slot).
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot {
    created: i64,
    updated: i64,
    stamp: u64,
    /// The uid as 16 bytes when it is a canonical (lower-case) UUID; unused otherwise.
    uuid: [u8; 16],
    sender: Sym,
    name: Sym,
    signature: u32,
    verdict: Option<Short>,
    /// The uid is in [`Store::texts`], not in `uuid`.
    text: bool,
}

/// The slots and what they point to.
#[derive(Debug, Default)]
struct Store {
    slots: Chunks<Option<Slot>>,
    free: Vec<u32>,
    texts: HashMap<u32, Box<str>>,
    signatures: Chunks<Shared>,
    free_signatures: Vec<u32>,
    /// Signature slot numbers by signature: the jobs of a flood of the same code share one.
    by_signature: HashTable<u32>,
    hasher: RandomState,
}

/// A signature and the number of entries that have it.
#[derive(Debug, Clone, Copy)]
struct Shared {
    bytes: [u8; 32],
    /// At `u32::MAX` it stays (never reached: a queue does not hold four billion jobs).
    uses: u32,
}

/// A vector in chunks of [`CHUNK`] items, numbered by `u32`.
#[derive(Debug)]
struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    fn get(&self, i: u32) -> Option<&T> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let i = i as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Appends `v` and returns its number (`None` past `u32::MAX - 1` items).
    fn push(&mut self, v: T) -> Option<u32> {
        let i = u32::try_from(self.len).ok().filter(|i| *i != NONE)?;
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut()?.push(v);
        self.len += 1;
        Some(i)
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.chunks.len() * (CHUNK * std::mem::size_of::<T>() + 24)
    }
}

/// A uid as text, formatted from its 16 bytes on the stack when it was stored that way.
pub(crate) enum Uid<'a> {
    Uuid([u8; 36]),
    Text(&'a str),
}

impl Uid<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Uid::Uuid(b) => uuid_str(b),
            Uid::Text(s) => s,
        }
    }
}

impl Store {
    fn slot(&self, id: u32) -> Option<&Slot> {
        self.slots.get(id).and_then(Option::as_ref)
    }

    fn uid(&self, id: u32) -> Uid<'_> {
        match self.slot(id) {
            Some(s) if !s.text => Uid::Uuid(format_uuid(&s.uuid)),
            _ => Uid::Text(self.texts.get(&id).map_or("", |s| s)),
        }
    }

    fn hash(&self, uid: &str) -> u64 {
        self.hasher.hash_one(uid)
    }

    fn hash_of(&self, id: u32) -> u64 {
        self.hash(self.uid(id).as_str())
    }

    fn is(&self, id: u32, uid: &str) -> bool {
        self.uid(id).as_str() == uid
    }

    /// Where the entry `id` is against the key `(created, uid)` in newest-first order.
    fn cmp(&self, id: u32, created: i64, uid: &str) -> Ordering {
        let c = self.slot(id).map_or(i64::MIN, |s| s.created);
        created.cmp(&c).then_with(|| self.uid(id).as_str().cmp(uid))
    }

    fn entry(&self, id: u32) -> Option<Entry> {
        let s = self.slot(id)?;
        Some(Entry {
            created: s.created,
            updated: s.updated,
            stamp: s.stamp,
            sender: s.sender,
            name: s.name,
            signature: self.signatures.get(s.signature).map(|s| s.bytes),
            verdict: s.verdict,
        })
    }

    /// Stores `e` under a new slot number (`None` past four billion slots).
    fn add(&mut self, uid: &str, e: Entry) -> Option<u32> {
        let signature = match e.signature {
            None => NONE,
            Some(sig) => self.share(sig)?,
        };
        let uuid = parse_uuid(uid);
        let slot = Slot {
            created: e.created,
            updated: e.updated,
            stamp: e.stamp,
            uuid: uuid.unwrap_or_default(),
            sender: e.sender,
            name: e.name,
            signature,
            verdict: e.verdict,
            text: uuid.is_none(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(at) = self.slots.get_mut(id) {
                    *at = Some(slot);
                }
                id
            }
            None => self.slots.push(Some(slot))?,
        };
        if uuid.is_none() {
            self.texts.insert(id, uid.into());
        }
        Some(id)
    }

    /// The signature slot of `sig`, one more use of it (`None` past four billion slots).
    fn share(&mut self, sig: [u8; 32]) -> Option<u32> {
        let h = self.hasher.hash_one(sig);
        let sigs = &self.signatures;
        let found = self
            .by_signature
            .find(h, |&i| sigs.get(i).is_some_and(|s| s.bytes == sig))
            .copied();
        if let Some(i) = found {
            if let Some(s) = self.signatures.get_mut(i) {
                s.uses = s.uses.saturating_add(1);
            }
            return Some(i);
        }
        let fresh = Shared {
            bytes: sig,
            uses: 1,
        };
        let i = match self.free_signatures.pop() {
            Some(i) => {
                if let Some(at) = self.signatures.get_mut(i) {
                    *at = fresh;
                }
                i
            }
            None => self.signatures.push(fresh)?,
        };
        let (sigs, hasher) = (&self.signatures, &self.hasher);
        self.by_signature.insert_unique(h, i, |&j| {
            sigs.get(j).map_or(0, |s| hasher.hash_one(s.bytes))
        });
        Some(i)
    }

    /// One use of signature slot `i` less: freed with the last.
    fn unshare(&mut self, i: u32) {
        let Some(s) = self.signatures.get_mut(i) else {
            return;
        };
        if s.uses == u32::MAX {
            return;
        }
        s.uses = s.uses.saturating_sub(1);
        if s.uses > 0 {
            return;
        }
        let h = self.hasher.hash_one(s.bytes);
        if let Ok(e) = self.by_signature.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.free_signatures.push(i);
    }

    fn free(&mut self, id: u32) -> Option<Entry> {
        let e = self.entry(id)?;
        let s = self.slots.get_mut(id)?.take()?;
        if s.signature != NONE {
            self.unshare(s.signature);
        }
        if s.text {
            self.texts.remove(&id);
        }
        self.free.push(id);
        Some(e)
    }
}

/// One status folder's entries.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    store: Store,
    /// Slot numbers by uid.
    table: HashTable<u32>,
    /// Slot numbers newest first (then by uid), in blocks of at most [`BLOCK`], none empty.
    blocks: Vec<Vec<u32>>,
    len: usize,
}

impl Folder {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn find(&self, uid: &str) -> Option<u32> {
        let h = self.store.hash(uid);
        self.table.find(h, |&id| self.store.is(id, uid)).copied()
    }

    pub(crate) fn get(&self, uid: &str) -> Option<Entry> {
        self.store.entry(self.find(uid)?)
    }

    /// The block holding the key, and where in it the key is or would go.
    fn position(&self, created: i64, uid: &str) -> (usize, usize) {
        let before = |id: &u32| self.store.cmp(*id, created, uid) == Ordering::Less;
        let b = self
            .blocks
            .partition_point(|b| b.last().is_some_and(before))
            .min(self.blocks.len().saturating_sub(1));
        let at = self.blocks.get(b).map_or(0, |v| v.partition_point(before));
        (b, at)
    }

    /// Adds the entry of `uid`, replacing the one it had.
    pub(crate) fn insert(&mut self, uid: &str, e: Entry) {
        self.take(uid);
        let created = e.created;
        let Some(id) = self.store.add(uid, e) else {
            return;
        };
        let store = &self.store;
        self.table
            .insert_unique(store.hash(uid), id, |&id| store.hash_of(id));
        let (b, at) = self.position(created, uid);
        match self.blocks.get_mut(b) {
            None => self.blocks.push(vec![id]),
            Some(block) if block.len() < BLOCK => block.insert(at, id),
            // A full block: arrivals at either end (the common case: a flood comes newest
            // first or oldest first) start a block of their own and leave this one full.
            Some(_) if at == 0 => self.blocks.insert(b, vec![id]),
            Some(block) if at >= block.len() => self.blocks.insert(b + 1, vec![id]),
            Some(block) => {
                let tail = block.split_off(at);
                block.push(id);
                block.shrink_to_fit();
                self.blocks.insert(b + 1, tail);
            }
        }
        self.len += 1;
    }

    /// Removes the entry of `uid` and returns it.
    pub(crate) fn take(&mut self, uid: &str) -> Option<Entry> {
        let h = self.store.hash(uid);
        let store = &self.store;
        let found = self.table.find_entry(h, |&id| store.is(id, uid)).ok()?;
        let (id, _) = found.remove();
        let created = self.store.slot(id).map_or(i64::MIN, |s| s.created);
        let (b, at) = self.position(created, uid);
        if let Some(block) = self.blocks.get_mut(b)
            && block.get(at) == Some(&id)
        {
            block.remove(at);
            if block.is_empty() {
                self.blocks.remove(b);
            } else if let Some(next) = self.blocks.get(b + 1)
                && self.blocks[b].len() + next.len() <= BLOCK / 2
            {
                // Removals leave small blocks; two small neighbours become one.
                let next = self.blocks.remove(b + 1);
                self.blocks[b].extend(next);
            }
        }
        self.len = self.len.saturating_sub(1);
        let e = self.store.free(id);
        self.compact_if_sparse();
        e
    }

    /// Gives back the slots a flood left behind: a folder emptied of most of its entries (a
    /// burst moved on to `approved/`) would otherwise keep every chunk, signature and free
    /// number it ever had. Rebuilt once fewer than a quarter of its slots are in use, so the
    /// cost of the copy is spread over the removals that made it sparse.
    fn compact_if_sparse(&mut self) {
        let slots = self.store.slots.len;
        if self.len == 0 {
            if slots > 0 {
                *self = Folder::default();
            }
            return;
        }
        if slots <= CHUNK || self.len > slots / 4 {
            return;
        }
        let mut fresh = Folder::default();
        for id in self.ids() {
            if let Some(e) = self.store.entry(id) {
                fresh.insert(self.store.uid(id).as_str(), e);
            }
        }
        *self = fresh;
    }

    /// Slot numbers newest first.
    pub(crate) fn ids(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.blocks.iter().flat_map(|b| b.iter().copied())
    }

    /// `take` slot numbers from `offset` on, newest first, skipping whole blocks before it.
    pub(crate) fn page(&self, offset: usize, take: usize) -> Vec<u32> {
        let mut skip = offset;
        let mut out = Vec::with_capacity(take.min(self.len));
        for b in &self.blocks {
            if out.len() >= take {
                break;
            }
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let want = take - out.len();
            out.extend(b.iter().skip(skip).take(want));
            skip = 0;
        }
        out
    }

    pub(crate) fn uid(&self, id: u32) -> Uid<'_> {
        self.store.uid(id)
    }

    pub(crate) fn entry(&self, id: u32) -> Option<Entry> {
        self.store.entry(id)
    }

    /// The created time of slot `id`, without copying its entry.
    pub(crate) fn created(&self, id: u32) -> i64 {
        self.store.slot(id).map_or(i64::MIN, |s| s.created)
    }

    /// Heap bytes held (capacities, not lengths), for the memory test.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        let s = &self.store;
        s.slots.bytes()
            + s.free.capacity() * 4
            + s.signatures.bytes()
            + s.free_signatures.capacity() * 4
            + s.by_signature.capacity() * 5
            + s.texts.capacity() * 24
            + s.texts.values().map(|t| t.len()).sum::<usize>()
            + self.table.capacity() * 5
            + self
                .blocks
                .iter()
                .map(|b| b.capacity() * 4 + 24)
                .sum::<usize>()
    }

    #[cfg(test)]
    pub(crate) fn slot_size() -> usize {
        std::mem::size_of::<Option<Slot>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(created: i64, sig: Option<u8>) -> Entry {
        Entry {
            created,
            updated: created,
            stamp: created as u64,
            sender: 0,
            name: 1,
            signature: sig.map(|b| [b; 32]),
            verdict: None,
        }
    }

    fn order(f: &Folder) -> Vec<String> {
        f.ids().map(|id| f.uid(id).as_str().to_string()).collect()
    }

    #[test]
    fn entries_with_the_same_code_share_its_signature_until_the_last_goes() {
        let mut f = Folder::default();
        let uid = |i: u32| format!("{i:08x}-0000-4000-8000-000000000000");
        for i in 0..3000u32 {
            f.insert(&uid(i), e(i64::from(i), Some((i % 3) as u8)));
        }
        assert_eq!(f.store.signatures.len, 3, "one slot per distinct signature");
        // Replaced with other code, then removed: each signature goes with its last entry.
        for i in 0..1000u32 {
            f.insert(&uid(i), e(i64::from(i), Some(7)));
        }
        assert_eq!(f.get(&uid(999)).and_then(|e| e.signature), Some([7; 32]));
        assert_eq!(f.get(&uid(1000)).and_then(|e| e.signature), Some([1; 32]));
        for i in 1000..3000u32 {
            f.take(&uid(i));
        }
        assert_eq!(f.store.by_signature.len(), 1);
        assert_eq!(f.store.free_signatures.len(), 3);
        assert_eq!(f.get(&uid(0)).and_then(|e| e.signature), Some([7; 32]));
        // A freed slot is reused for the next new signature.
        f.insert(&uid(5000), e(5000, Some(9)));
        assert_eq!(f.store.signatures.len, 4);
        assert_eq!(f.get(&uid(5000)).and_then(|e| e.signature), Some([9; 32]));
        assert_eq!(f.get(&uid(1)).and_then(|e| e.signature), Some([7; 32]));
    }

    #[test]
    fn a_slot_is_56_bytes() {
        assert!(Folder::slot_size() <= 56, "{}", Folder::slot_size());
    }

    #[test]
    fn entries_stay_ordered_through_inserts_replacements_and_removals() {
        let mut f = Folder::default();
        // More than a few blocks, equal times in runs, uids of every kind.
        let uid = |i: u32| match i % 3 {
            0 => format!("{i:08x}-0000-4000-8000-000000000000"),
            1 => format!("hand-made {i} ü"),
            _ => format!("{}{i}", "x".repeat(250)),
        };
        let mut want: Vec<(i64, String)> = Vec::new();
        for i in 0..5000u32 {
            let t = i64::from(i % 97) * 10;
            f.insert(&uid(i), e(t, (i % 2 == 0).then_some(i as u8)));
            want.push((t, uid(i)));
        }
        let sorted = |w: &mut Vec<(i64, String)>| {
            w.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            w.iter().map(|x| x.1.clone()).collect::<Vec<_>>()
        };
        assert_eq!(order(&f), sorted(&mut want));
        assert_eq!(f.len(), 5000);
        // Replacing moves an entry to its new time; removing forgets it and its signature.
        for i in (0..5000u32).step_by(7) {
            f.insert(&uid(i), e(-1, None));
            want.retain(|x| x.1 != uid(i));
            want.push((-1, uid(i)));
        }
        for i in (0..5000u32).step_by(5) {
            let was = f.take(&uid(i)).expect("present");
            assert_eq!(was.signature.is_some(), i % 7 != 0 && i % 2 == 0);
            assert!(f.take(&uid(i)).is_none(), "removed once");
            want.retain(|x| x.1 != uid(i));
        }
        assert_eq!(order(&f), sorted(&mut want));
        assert_eq!(f.len(), want.len());
        let got = f.get(&uid(2)).expect("kept");
        assert_eq!((got.created, got.signature), (20, Some([2; 32])));
        assert!(f.get("not there").is_none());
        assert!(f.blocks.iter().all(|b| !b.is_empty() && b.len() <= BLOCK));
        // Pages from any offset match the whole order.
        let all = order(&f);
        for (off, n) in [
            (0, 50),
            (1023, 3),
            (2047, 100),
            (all.len() - 1, 10),
            (all.len(), 5),
        ] {
            let page: Vec<String> = f
                .page(off, n)
                .into_iter()
                .map(|id| f.uid(id).as_str().to_string())
                .collect();
            assert_eq!(
                page,
                all.iter().skip(off).take(n).cloned().collect::<Vec<_>>()
            );
        }
        // Everything removed: slots and signatures are reused, not grown.
        let slots = f.store.slots.len;
        for (_, u) in want.drain(..) {
            assert!(f.take(&u).is_some());
        }
        assert_eq!((f.len(), f.blocks.len(), f.store.texts.len()), (0, 0, 0));
        for i in 0..5000u32 {
            f.insert(&uid(i), e(1, Some(1)));
        }
        assert_eq!(f.store.slots.len, slots);
        assert!(f.store.signatures.len <= 5000);
    }

    #[test]
    fn a_folder_a_flood_left_gives_its_slots_back() {
        let mut f = Folder::default();
        let uid = |i: u32| format!("{i:08x}-0000-4000-8000-000000000000");
        // Each with code of its own, so that the signatures take room too.
        let sig = |i: u32| {
            let mut s = [1; 32];
            s[..4].copy_from_slice(&i.to_le_bytes());
            s
        };
        for i in 0..20_000u32 {
            let mut entry = e(i64::from(i), None);
            entry.signature = Some(sig(i));
            f.insert(&uid(i), entry);
        }
        let full = f.bytes();
        // Most of the flood moves on: the rest is kept, in order, in a fraction of the room.
        for i in 0..19_000u32 {
            assert!(f.take(&uid(i)).is_some());
        }
        assert!(f.bytes() < full / 4, "{} of {full}", f.bytes());
        let left: Vec<String> = (19_000..20_000u32).rev().map(uid).collect();
        assert_eq!(order(&f), left);
        assert_eq!(
            f.get(&uid(19_500)).map(|e| e.signature),
            Some(Some(sig(19_500)))
        );
        for i in 19_000..20_000u32 {
            assert!(f.take(&uid(i)).is_some());
        }
        assert_eq!(
            (f.len(), f.bytes()),
            (0, 0),
            "an empty folder holds nothing"
        );
    }

    #[test]
    fn a_job_moved_between_statuses_is_in_one_of_them_with_its_facts() {
        use crate::queue::Status;
        use crate::queue::index::{Facts, Filter, QueueIndex};
        let facts = |t: i64| Facts {
            sender: Some("s@x.org".into()),
            name: Some("N".into()),
            created: chrono::DateTime::from_timestamp(t, 0).map(|t| t.naive_utc()),
            updated: t,
            stamp: t as u64,
        };
        let odd = format!("../{}", "é".repeat(100));
        let uuid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        let mut ix = QueueIndex::default();
        for (i, uid) in [uuid, odd.as_str(), "plain"].into_iter().enumerate() {
            // Equal times: ordered by uid.
            ix.put(Status::Pending, uid, facts(if i == 2 { 5 } else { 7 }));
        }
        ix.remove(Status::Pending, &odd);
        ix.put(Status::Approved, &odd, facts(7));
        let all = Filter::default();
        let (n, rows) = ix.select(Status::Pending, &all, 0, 10);
        let uids: Vec<&str> = rows.iter().map(|r| r.uid.as_str()).collect();
        assert_eq!((n, uids), (2, vec![uuid, "plain"]));
        let (n, rows) = ix.select(Status::Approved, &all, 0, 10);
        assert_eq!((n, rows[0].uid.as_str()), (1, odd.as_str()));
        assert_eq!(rows[0].requester.as_deref(), Some("s@x.org"));
        assert_eq!(ix.stamp_of(Status::Approved, &odd), Some(7));
        assert_eq!(ix.stamp_of(Status::Pending, &odd), None);
        assert_eq!(
            ix.missing(Status::Pending, |u| u == "plain"),
            vec![uuid.to_string()]
        );
    }
}
