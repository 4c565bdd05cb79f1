//! The order of work in a flood and the short keys the daemon keeps per job: small, with no
//! knowledge of the daemon, so its state and its batching both use them.

use std::hash::{Hash, Hasher};

/// Where a job stands in the order of work; lower goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// Its sender is allowlisted or an approved peer, or its name is that of trusted code: a
    /// rule may well approve it.
    Owner,
    /// Anyone else: most likely it waits for the owner.
    Other,
}

/// A short, stable key for a sender or a signature (0 for none). Equal keys only cost a
/// needless re-evaluation, never a missed one.
pub(crate) fn key(s: Option<&str>) -> u32 {
    let Some(s) = s else { return 0 };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    let h = h.finish();
    ((h ^ (h >> 32)) as u32) | 1
}

/// The sender key of a job: its lowercased `requester_email`.
pub(crate) fn sender_key(sender: Option<&str>) -> u32 {
    key(sender.map(str::to_lowercase).as_deref())
}
