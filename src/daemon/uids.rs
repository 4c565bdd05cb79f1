//! The uids of the jobs the daemon keeps state for, each stored once and small: a slot number
//! per job, the uid packed into 16 bytes when it is a canonical (lower-case) UUID, as clients
//! write them, and looked up through a keyed hash of it (so a flood of 100,000 jobs costs a few
//! megabytes, not a `String` per job per map).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use crate::queue::uid;

/// A job's slot number.
pub(super) type Id = u32;

/// A uid as kept in a slot: packed, or stored beside it in [`Uids::named`].
pub(super) type Packed = [u8; 16];

/// The 16 bytes of a canonical lower-case UUID, `None` for any other uid (which then round-trips
/// through [`unpack`] exactly).
fn pack(uid: &str) -> Option<Packed> {
    uid::parse_uuid(uid)
}

fn unpack(p: &Packed) -> String {
    uid::uuid_str(&uid::format_uuid(p)).to_owned()
}

/// Hashes a `u32` that already is a keyed hash: spread, not hashed again.
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        // Spread over the whole word: the table takes its buckets from the low bits and its
        // tags from the high ones.
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Uid -> slot number, and back.
#[derive(Default)]
pub(super) struct Uids {
    /// Keyed (per process) hash of the uid -> slot. A sender cannot choose uids that collide.
    by_hash: HashMap<u32, Id, BuildHasherDefault<AsIs>>,
    /// The rare uid whose hash another live uid already has.
    spill: HashMap<Box<str>, Id>,
    /// Uids that are not canonical UUIDs, by slot.
    named: HashMap<Id, Box<str>>,
    /// Packed uids, by slot (all zero where the uid is in `named`).
    packed: Vec<Packed>,
    keys: RandomState,
}

impl Uids {
    /// 32 bits: a hash shared by two live uids only costs the second a place in `spill`.
    fn hash(&self, uid: &str) -> u32 {
        let h = self.keys.hash_one(uid);
        (h ^ (h >> 32)) as u32
    }

    /// The uid of slot `id`.
    pub(super) fn uid(&self, id: Id) -> String {
        if let Some(n) = self.named.get(&id) {
            return n.to_string();
        }
        self.packed.get(id as usize).map(unpack).unwrap_or_default()
    }

    fn is(&self, id: Id, uid: &str) -> bool {
        match self.named.get(&id) {
            Some(n) => &**n == uid,
            None => self
                .packed
                .get(id as usize)
                .is_some_and(|p| Some(*p) == pack(uid)),
        }
    }

    pub(super) fn get(&self, uid: &str) -> Option<Id> {
        match self.by_hash.get(&self.hash(uid)) {
            Some(&id) if self.is(id, uid) => Some(id),
            _ if self.spill.is_empty() => None,
            _ => self.spill.get(uid).copied(),
        }
    }

    /// Records `uid` in slot `id` (the caller knows it is not recorded yet).
    pub(super) fn insert(&mut self, uid: &str, id: Id) {
        let i = id as usize;
        if self.packed.len() <= i {
            // Grown by a quarter, not doubled: this is the one array as long as the queue.
            let more = (self.packed.len() / 4).max(64);
            self.packed.reserve_exact(more);
            self.packed.resize(i + 1, [0; 16]);
        }
        match pack(uid) {
            Some(p) => self.packed[i] = p,
            None => {
                self.packed[i] = [0; 16];
                self.named.insert(id, uid.into());
            }
        }
        let h = self.hash(uid);
        match self.by_hash.entry(h) {
            Entry::Occupied(_) => {
                self.spill.insert(uid.into(), id);
            }
            Entry::Vacant(v) => {
                v.insert(id);
            }
        }
    }

    /// Forgets `uid`, recorded in slot `id`.
    pub(super) fn remove(&mut self, uid: &str, id: Id) {
        let h = self.hash(uid);
        if self.by_hash.get(&h) == Some(&id) {
            self.by_hash.remove(&h);
        } else {
            self.spill.remove(uid);
        }
        self.named.remove(&id);
        if let Some(p) = self.packed.get_mut(id as usize) {
            *p = [0; 16];
        }
    }

    /// Drops the packed uids of slots from `slots` on (none in use) and every table's spare
    /// capacity.
    pub(super) fn shrink(&mut self, slots: usize) {
        self.packed.truncate(slots);
        self.packed.shrink_to_fit();
        self.by_hash.shrink_to_fit();
        self.spill.shrink_to_fit();
        self.named.shrink_to_fit();
    }

    /// An estimate of the heap this takes, for the memory figures.
    pub(super) fn footprint(&self) -> usize {
        use std::mem::size_of;
        let whole = |n: usize| n * (size_of::<(Box<str>, Id)>() + 1 + 64);
        self.by_hash.capacity() * (size_of::<(u32, Id)>() + 1)
            + self.packed.capacity() * size_of::<Packed>()
            + whole(self.named.len() + self.spill.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_packed_and_other_uids_kept_whole() {
        let u = "7e1dc4ac-af1a-44fb-b00c-32a2850708e9";
        assert_eq!(pack(u).map(|p| unpack(&p)).as_deref(), Some(u));
        assert_eq!(pack("7E1DC4AC-AF1A-44FB-B00C-32A2850708E9"), None);
        assert_eq!(pack("job-1"), None);
        let mut ids = Uids::default();
        for (i, uid) in [u, "job-1", "7E1DC4AC-AF1A-44FB-B00C-32A2850708E9"]
            .iter()
            .enumerate()
        {
            ids.insert(uid, i as Id);
        }
        assert_eq!(ids.get(u), Some(0));
        assert_eq!(ids.get("job-1"), Some(1));
        assert_eq!(ids.uid(2), "7E1DC4AC-AF1A-44FB-B00C-32A2850708E9");
        assert_eq!(ids.get("job-2"), None);
        ids.remove("job-1", 1);
        assert_eq!(ids.get("job-1"), None);
        assert_eq!(ids.get(u), Some(0));
    }

    #[test]
    fn a_colliding_hash_is_kept_apart() {
        let mut ids = Uids::default();
        ids.insert("a", 0);
        // Force the second uid into the spill map, as a hash collision would.
        let h = ids.hash("a");
        ids.spill.insert("b".into(), 1);
        ids.named.insert(1, "b".into());
        ids.packed.resize(2, [0; 16]);
        assert_eq!(ids.by_hash.get(&h), Some(&0));
        assert_eq!(ids.get("b"), Some(1));
        ids.remove("a", 0);
        assert_eq!(ids.get("b"), Some(1), "found in the spill map alone");
        ids.remove("b", 1);
        assert_eq!(ids.get("b"), None);
    }
}
