//! Floods: which due pending jobs are decided next, and which jobs a store change affects.
//!
//! Anyone can write thousands of jobs into `pending/`. The daemon decides them in bounded
//! batches, so its memory does not grow with the backlog, and orders the work by a cheap look at
//! each job's metadata (who sent it, what it is called) before the expensive one (reading and
//! hashing every file): a job from a sender the owner trusts, or named like code the owner
//! trusts, is decided before a flood of strangers' jobs that only wait. A store change
//! re-evaluates only the jobs whose sender or signature it names.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use super::rank::{Rank, key};
use super::{Daemon, Known, Settle};
use crate::queue::Status;
use crate::queue::metadata::Metadata;
use crate::queue::review::Trust;

/// At most this many jobs are reviewed (and held in memory) at once.
pub(super) const MAX_BATCH: usize = 1024;
/// Batches of jobs that most likely wait are smaller: a job of the owner's arriving meanwhile
/// waits for at most one of them.
const MAX_OTHER_BATCH: usize = 256;
/// At most this many due jobs have their metadata read for the order of work per batch, the
/// newest first (a job that just arrived is ranked before the flood it arrived in).
const MAX_TRIAGE: usize = 4096;

/// The order of work for one job, from its metadata alone.
fn rank(meta: Option<&Metadata>, trust: &Trust) -> Rank {
    let Some(m) = meta else { return Rank::Other };
    let sender = m.meta.requester_email.to_lowercase();
    if trust.allowlist.contains(&sender)
        || trust.peers.contains_key(&sender)
        || trust.trusted_names.contains(&m.meta.name)
    {
        Rank::Owner
    } else {
        Rank::Other
    }
}

/// What a store change can affect.
#[derive(Debug, Default)]
pub(super) struct Affected {
    /// Every job (the rules changed).
    pub all: bool,
    pub senders: HashSet<u64>,
    pub signatures: HashSet<u64>,
}

impl Affected {
    /// What changed from `old` to `new`.
    pub(super) fn between(old: &Trust, new: &Trust) -> Affected {
        let mut a = Affected {
            all: old.config != new.config,
            ..Affected::default()
        };
        let (o, n) = (&old.allowlist.entries, &new.allowlist.entries);
        for (email, file) in o.iter().chain(n.iter()) {
            let same = o.get(email) == Some(file) && n.get(email) == Some(file);
            // A pin edited in place moves the stamp but not the file name: every allowlisted
            // sender's jobs then, as which pin changed is not known.
            if !same || old.allowlist.stamp != new.allowlist.stamp {
                a.senders.insert(key(Some(email)));
            }
        }
        // A peer approved, revoked, or whose entry file (which holds their pin) was renamed.
        let changed = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
            x.iter()
                .filter(|(m, f)| y.get(*m) != Some(f))
                .map(|(m, _)| m.clone())
                .collect::<Vec<_>>()
        };
        for p in changed(&old.peers, &new.peers)
            .into_iter()
            .chain(changed(&new.peers, &old.peers))
        {
            a.senders.insert(key(Some(&p)));
        }
        for s in old.trusted.symmetric_difference(&new.trusted) {
            a.signatures.insert(key(Some(s)));
        }
        a
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.all && self.senders.is_empty() && self.signatures.is_empty()
    }

    fn covers(&self, k: &Known) -> bool {
        self.all || self.senders.contains(&k.sender) || self.signatures.contains(&k.signature)
    }
}

impl Daemon {
    /// The due jobs (settled by `until`, not backing off) to decide now: at most [`MAX_BATCH`],
    /// the owner's before the others, then the oldest first. Taken out of the pending map, with
    /// when each was first seen; and whether due jobs are left.
    pub(super) fn next_batch(&mut self, until: Instant) -> (Vec<(String, Instant)>, bool) {
        let mut due: Vec<(&String, &Settle)> = self
            .pending
            .iter()
            .filter(|(u, s)| s.due <= until && self.retries.ready_at(u).is_none_or(|r| r <= until))
            .collect();
        if due.is_empty() {
            return (Vec::new(), false);
        }
        let total = due.len();
        // The newest unranked jobs get their metadata read, in parallel.
        let mut unranked: Vec<&String> = Vec::new();
        due.retain(|(u, s)| {
            if s.rank.is_none() {
                unranked.push(u);
            }
            s.rank.is_some()
        });
        if unranked.len() > MAX_TRIAGE {
            let firsts: std::collections::HashMap<&String, Instant> = unranked
                .iter()
                .map(|u| (*u, self.pending.get(*u).map_or(until, |s| s.first)))
                .collect();
            unranked.select_nth_unstable_by_key(MAX_TRIAGE, |u| {
                std::cmp::Reverse(firsts.get(u).copied())
            });
            unranked.truncate(MAX_TRIAGE);
        }
        let dirs: Vec<_> = unranked
            .iter()
            .map(|u| self.queue.job_dir(Status::Pending, u))
            .collect();
        let ranks = crate::queue::par::map(&dirs, |d| {
            rank(Metadata::read(d).ok().as_ref(), &self.trust)
        });
        let ranked: Vec<(String, Rank)> = unranked.into_iter().cloned().zip(ranks).collect();
        let mut candidates: Vec<(Rank, Instant, String)> = due
            .into_iter()
            .map(|(u, s)| (s.rank.unwrap_or(Rank::Other), s.first, u))
            .map(|(r, f, u)| (r, f, u.clone()))
            .collect();
        for (uid, r) in &ranked {
            if let Some(s) = self.pending.get(uid) {
                candidates.push((*r, s.first, uid.clone()));
            }
        }
        for (uid, r) in ranked {
            if let Some(s) = self.pending.get_mut(&uid) {
                s.rank = Some(r);
            }
        }
        // The owner's jobs make a batch of their own: not one of them waits for a batch of
        // strangers' jobs to be hashed.
        let limit = if candidates.iter().any(|c| c.0 == Rank::Owner) {
            candidates.retain(|c| c.0 == Rank::Owner);
            MAX_BATCH
        } else {
            MAX_OTHER_BATCH
        };
        if candidates.len() > limit {
            candidates.select_nth_unstable_by_key(limit, |a| (a.0, a.1));
            candidates.truncate(limit);
        }
        let more = total > candidates.len();
        candidates.sort_by_key(|a| (a.0, a.1));
        let batch = candidates
            .into_iter()
            .filter_map(|(_, _, uid)| self.pending.remove(&uid).map(|s| (uid, s.first)))
            .collect();
        (batch, more)
    }

    /// The order of work for pending job `uid`; `None` while its metadata cannot be read (it
    /// may still be being written: it is looked at again when due).
    pub(super) fn rank_of(&self, uid: &str) -> Option<Rank> {
        let m = Metadata::read(&self.queue.job_dir(Status::Pending, uid)).ok()?;
        Some(rank(Some(&m), &self.trust))
    }

    /// Queues for evaluation the reviewed jobs that `affected` covers; returns how many.
    pub(super) fn reevaluate(&mut self, affected: &Affected) -> usize {
        let now = Instant::now();
        let hit: Vec<String> = self
            .known
            .iter()
            .filter(|(u, k)| affected.covers(k) && !self.pending.contains_key(*u))
            .map(|(u, _)| u.clone())
            .collect();
        let n = hit.len();
        // Jobs not reviewed yet are ranked again under the new trust.
        for s in self.pending.values_mut() {
            s.rank = None;
        }
        for uid in hit {
            self.pending.insert(uid, Settle::new(now, now));
        }
        n
    }

    /// Caps the allocator's per-thread arenas: each batch's worker threads would otherwise
    /// leave an arena each holding the memory of their share of the batch. And fixes the size
    /// from which an allocation gets pages of its own (glibc raises it as such blocks are
    /// freed): a flood's big transient tables and listings then go back to the system when
    /// dropped instead of staying in the heap as its high-water mark.
    pub(super) fn few_arenas() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator tuning; it has no preconditions.
        unsafe {
            nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
            nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }

    /// Once a flood is drained, hands the memory it took back to the system (the allocator
    /// keeps freed memory otherwise, and a daemon at rest should be small).
    pub(super) fn give_back_memory(&self) {
        if self.pending.is_empty() {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free memory to the kernel; it has no
            // preconditions.
            unsafe {
                nix::libc::malloc_trim(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::rank::sender_key;

    fn known(sender: Option<&str>, signature: Option<&str>) -> Known {
        Known {
            fingerprint: 1,
            outcome: None,
            sender: sender_key(sender),
            signature: key(signature),
            expires: None,
        }
    }

    #[test]
    fn a_store_change_affects_only_the_senders_and_signatures_it_names() {
        let old = Trust::default();
        let mut new = Trust::default();
        new.allowlist
            .entries
            .insert("carol@x.org".into(), "carol.json".into());
        new.trusted.insert("ab".repeat(32));
        let a = Affected::between(&old, &new);
        assert!(!a.all);
        assert!(
            a.covers(&known(Some("Carol@X.org"), None)),
            "by sender, any case"
        );
        assert!(a.covers(&known(Some("dave@x.org"), Some(&"ab".repeat(32)))));
        assert!(!a.covers(&known(Some("dave@x.org"), Some(&"cd".repeat(32)))));
        assert!(!a.covers(&known(None, None)));
        assert!(Affected::between(&new, &new).is_empty(), "nothing changed");
        let mut rules = new.clone();
        rules.config.approval.max_timeout_seconds = Some(1);
        assert!(Affected::between(&new, &rules).all, "the rules changed");
    }
}
