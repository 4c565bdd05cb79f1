//! The jobs in `approved/` and `running/` that an approval explains, as the queue-bypass check
//! (`daemon::bypass`) keeps them: one for every such job, so 25 bytes each for a canonical UUID
//! (the uid packed in 16, the fingerprint of its code, its flags) in one sorted vector grown by
//! a quarter, not a hash map of 24-byte keys; other uids (hand-made folder names) are kept
//! aside by their text.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::queue::uid::Uid;

/// What explained a job, and what its code looked like then (the signatures it was approved
/// with are in the audit chain, read again when its code changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Explained {
    /// Every approval of it named a signature, so its code is compared when it changes.
    pub(super) compared: bool,
    /// `signature::fingerprint` of its `code/` when it was explained, in approved/.
    pub(super) code: Option<u64>,
}

const COMPARED: u8 = 1;
const HAS_CODE: u8 = 2;
/// Added at most this many before they are merged in (each addition moves up to this many).
const FRESH: usize = 4096;

/// One job, in 25 bytes (byte arrays only: no padding).
#[derive(Debug, Clone, Copy)]
struct Item {
    uuid: [u8; 16],
    code: [u8; 8],
    flags: u8,
}

impl Item {
    fn new(uuid: [u8; 16], x: Explained) -> Item {
        let flags =
            if x.compared { COMPARED } else { 0 } | if x.code.is_some() { HAS_CODE } else { 0 };
        Item {
            uuid,
            code: x.code.unwrap_or(0).to_le_bytes(),
            flags,
        }
    }

    fn explained(&self) -> Explained {
        Explained {
            compared: self.flags & COMPARED != 0,
            code: (self.flags & HAS_CODE != 0).then(|| u64::from_le_bytes(self.code)),
        }
    }
}

/// The explained jobs.
#[derive(Debug, Default)]
pub(super) struct Set {
    /// By uid.
    sorted: Vec<Item>,
    /// Added since the last merge, by uid too: a look adds a batch of approvals at a time, and
    /// each is put in place among these few rather than among all.
    fresh: Vec<Item>,
    texts: HashMap<Box<str>, Explained>,
}

fn find(v: &[Item], uuid: &[u8; 16]) -> Result<usize, usize> {
    v.binary_search_by(|i| i.uuid.cmp(uuid))
}

impl Set {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sorted.len() + self.fresh.len() + self.texts.len()
    }

    pub(super) fn get(&self, uid: &Uid) -> Option<Explained> {
        match uid {
            Uid::Uuid(u) => find(&self.sorted, u)
                .ok()
                .and_then(|i| self.sorted.get(i))
                .or_else(|| find(&self.fresh, u).ok().and_then(|i| self.fresh.get(i)))
                .map(Item::explained),
            Uid::Text(t) => self.texts.get(t).copied(),
        }
    }

    /// Records (or replaces) what explained `uid`.
    pub(super) fn insert(&mut self, uid: &Uid, x: Explained) {
        let u = match uid {
            Uid::Uuid(u) => u,
            Uid::Text(t) => {
                self.texts.insert(t.clone(), x);
                return;
            }
        };
        let item = Item::new(*u, x);
        if let Ok(i) = find(&self.sorted, u) {
            self.sorted[i] = item;
            return;
        }
        match find(&self.fresh, u) {
            Ok(i) => self.fresh[i] = item,
            Err(i) => self.fresh.insert(i, item),
        }
        if self.fresh.len() >= FRESH {
            self.merge();
        }
    }

    pub(super) fn remove(&mut self, uid: &Uid) {
        match uid {
            Uid::Uuid(u) => {
                if let Ok(i) = find(&self.sorted, u) {
                    self.sorted.remove(i);
                } else if let Ok(i) = find(&self.fresh, u) {
                    self.fresh.remove(i);
                }
            }
            Uid::Text(t) => {
                self.texts.remove(t);
            }
        }
    }

    /// Keeps the jobs for which `keep` holds.
    pub(super) fn retain(&mut self, keep: impl Fn(&Uid) -> bool) {
        self.sorted.retain(|i| keep(&Uid::Uuid(i.uuid)));
        self.fresh.retain(|i| keep(&Uid::Uuid(i.uuid)));
        self.texts.retain(|t, _| keep(&Uid::Text(t.clone())));
    }

    /// Merges the jobs added since the last merge into the sorted ones, from the back, in place.
    pub(super) fn merge(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        let (n, m) = (self.sorted.len(), self.fresh.len());
        if self.sorted.capacity() < n + m {
            self.sorted.reserve_exact(m.max(n / 4));
        }
        let zero = Item {
            uuid: [0; 16],
            code: [0; 8],
            flags: 0,
        };
        self.sorted.resize(n + m, zero);
        let (mut i, mut j) = (n, m);
        for k in (0..n + m).rev() {
            let take_sorted = i > 0
                && (j == 0
                    || self.sorted[i - 1].uuid.cmp(&self.fresh[j - 1].uuid) == Ordering::Greater);
            if take_sorted {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else if j > 0 {
                self.sorted[k] = self.fresh[j - 1];
                j -= 1;
            }
        }
        self.fresh.clear();
        if self.fresh.capacity() > FRESH {
            self.fresh.shrink_to(FRESH);
        }
    }

    /// Gives back the spare room (once the approvals stop coming).
    pub(super) fn shrink(&mut self) {
        self.merge();
        self.sorted.shrink_to_fit();
        self.fresh = Vec::new();
        self.texts.shrink_to_fit();
    }

    /// Heap bytes held, for the memory figures.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        (self.sorted.capacity() + self.fresh.capacity()) * std::mem::size_of::<Item>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(i: u32) -> Uid {
        Uid::new(&format!(
            "{i:08x}-0000-4000-8000-{:012x}",
            i.wrapping_mul(2_654_435_761)
        ))
    }

    fn x(i: u32) -> Explained {
        Explained {
            compared: i.is_multiple_of(2),
            code: (!i.is_multiple_of(3)).then_some(u64::from(i) << 40 | 7),
        }
    }

    #[test]
    fn every_job_is_found_with_what_explained_it_in_25_bytes() {
        assert_eq!(std::mem::size_of::<Item>(), 25);
        let mut s = Set::default();
        let odd = Uid::new("hand-made");
        s.insert(&odd, x(1));
        // Arrivals in no order, in more than one merge, some recorded twice.
        let order: Vec<u32> = (0..20_000u32)
            .map(|i| i.wrapping_mul(7919) % 20_000)
            .collect();
        for &i in &order {
            s.insert(&uid(i), x(i));
            if i.is_multiple_of(1000) {
                s.insert(&uid(i), x(i + 1));
                s.insert(&uid(i), x(i));
            }
        }
        assert_eq!(s.len(), 20_001);
        for i in (0..20_000).step_by(37) {
            assert_eq!(s.get(&uid(i)), Some(x(i)), "{i}");
        }
        assert_eq!(s.get(&odd), Some(x(1)));
        assert_eq!(s.get(&uid(20_001)), None);
        s.remove(&uid(5));
        s.retain(|u| *u != uid(6) && *u != odd);
        assert_eq!(
            (s.get(&uid(5)), s.get(&uid(6)), s.get(&odd)),
            (None, None, None)
        );
        s.shrink();
        assert_eq!(s.len(), 19_998);
        assert_eq!(s.get(&uid(19_999)), Some(x(19_999)));
        assert!(s.bytes() <= 19_998 * 25, "{}", s.bytes());
        assert!(s.sorted.windows(2).all(|w| w[0].uuid < w[1].uuid));
    }
}
