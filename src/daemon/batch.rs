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
use super::{Daemon, Known, OWNER_GRACE, STRANGERS_PUT_OFF};
use crate::queue::Status;
use crate::queue::index::{self, Facts};
use crate::queue::review::Trust;

/// At most this many jobs are reviewed (and held in memory) at once.
pub(super) const MAX_BATCH: usize = 1024;
/// Batches of jobs that most likely wait are smaller: a job of the owner's arriving meanwhile
/// waits for at most one of them.
const MAX_OTHER_BATCH: usize = 256;
/// At most this many due jobs have their metadata read for the order of work per batch, the
/// newest first (a job that just arrived is ranked before the flood it arrived in).
const MAX_TRIAGE: usize = 4096;

/// The order of work for one job, from its metadata alone (its claimed sender and its name).
fn rank(sender: &str, name: &str, trust: &Trust) -> Rank {
    let sender = sender.to_lowercase();
    if trust.allowlist.contains(&sender)
        || trust.peers.contains_key(&sender)
        || trust.trusted_names.contains(name)
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
    pub senders: HashSet<u32>,
    pub signatures: HashSet<u32>,
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
    /// the owner's before the others, then the oldest first. Taken out of the pending ones, with
    /// when each was first seen; and whether due jobs are left.
    ///
    /// Due jobs not ranked yet are ranked first, the newest first, [`MAX_TRIAGE`] per call, and
    /// no stranger's job is reviewed while some wait to be ranked (or while events wait to be
    /// read): when a rescan finds a flood
    /// at once, the owner's job in it is found by the metadata pass over the flood, not after
    /// the flood is hashed. Each call costs what it takes, not what waits.
    pub(super) fn next_batch(&mut self, until: Instant) -> (Vec<(String, Instant)>, bool) {
        self.jobs.promote(until);
        if self.jobs.ready_len() == 0 {
            return (Vec::new(), false);
        }
        // A job of the owner's that is due goes first, before the next part of a flood is
        // ranked.
        let unranked = if self.jobs.has_ready(Rank::Owner) {
            Vec::new()
        } else {
            self.jobs.newest_unranked(MAX_TRIAGE)
        };
        if !unranked.is_empty() {
            let uids: Vec<&str> = unranked.iter().map(|(_, u)| u.as_str()).collect();
            let ranks = self.read_and_rank(&uids);
            let mut owners = 0;
            for ((id, _), r) in unranked.iter().zip(ranks) {
                // Metadata that cannot be read ranks with the strangers'.
                let r = r.unwrap_or(Rank::Other);
                owners += usize::from(r == Rank::Owner);
                self.jobs.set_rank(*id, r);
            }
            log::debug!(
                "ranked {} due job(s) by their metadata ({owners} of the owner's), {} left to rank",
                unranked.len(),
                self.jobs.unranked_len()
            );
        }
        // The owner's job that kept the turns short is decided now (or has been waited for
        // long enough: it may have gone).
        if self.jobs.has_ready(Rank::Owner)
            || self.owner_due.is_some_and(|d| d + OWNER_GRACE < until)
        {
            self.owner_due = None;
        }
        // The owner's jobs make a batch of their own: not one of them waits for a batch of
        // strangers' jobs to be hashed.
        let batch = if self.jobs.has_ready(Rank::Owner) {
            self.jobs.take_ready(Rank::Owner, MAX_BATCH)
        } else if (self.jobs.unranked_len() > 0 || self.events_waiting || self.owner_due.is_some())
            && self
                .strangers_put_off
                .get_or_insert(until)
                .checked_add(STRANGERS_PUT_OFF)
                .is_some_and(|end| until < end)
        {
            // Events still waiting to be read may announce a job of the owner's, and one that
            // arrived may be about to settle: both go before a batch of strangers' jobs is
            // hashed.
            return (Vec::new(), true);
        } else {
            self.strangers_put_off = None;
            self.jobs.take_ready(Rank::Other, MAX_OTHER_BATCH)
        };
        (batch, self.jobs.ready_len() > 0)
    }

    /// A due time held back while `uid` backs off after a failed approval.
    pub(super) fn held(&self, uid: &str, due: Instant) -> Instant {
        self.retries.ready_at(uid).map_or(due, |r| r.max(due))
    }

    /// Ranks the jobs that events announced since the last call, in parallel; a job whose
    /// metadata cannot be read yet (it may still be being written) is ranked when due.
    pub(super) fn rank_arrivals(&mut self) {
        let uids = std::mem::take(&mut self.arrivals);
        if uids.is_empty() {
            return;
        }
        let names: Vec<&str> = uids.iter().map(String::as_str).collect();
        let ranks = self.read_and_rank(&names);
        for (uid, r) in uids.iter().zip(ranks) {
            let Some(r) = r else { continue };
            self.jobs.rank_unranked(uid, r);
            if r == Rank::Owner
                && let Some(due) = self.jobs.due(uid)
            {
                self.owner_due = Some(self.owner_due.map_or(due, |d| d.min(due)));
            }
        }
    }

    /// The rank of each pending job `uids` from its metadata, read on every core (`None` where
    /// it cannot be read yet). The index needs the same reads: they are handed to it.
    fn read_and_rank(&mut self, uids: &[&str]) -> Vec<Option<Rank>> {
        let dirs: Vec<_> = uids
            .iter()
            .map(|u| self.queue.job_dir(Status::Pending, u))
            .collect();
        let read = crate::queue::par::map(&dirs, |d| index::read_facts(d));
        let ranks = read
            .iter()
            .map(|f| {
                let (sender, name) = f.as_ref().and_then(Facts::who_and_what)?;
                Some(rank(sender, name, &self.trust))
            })
            .collect();
        let seen = uids
            .iter()
            .zip(read)
            .filter_map(|(u, f)| Some((*u, f?)))
            .collect();
        self.indexer.read_by_daemon(Status::Pending, seen);
        ranks
    }

    /// Queues for evaluation the reviewed jobs that `affected` covers; returns how many.
    pub(super) fn reevaluate(&mut self, affected: &Affected) -> usize {
        let now = Instant::now();
        let hit = self.jobs.known_where(|k| affected.covers(k));
        let n = hit.len();
        // Jobs not reviewed yet are ranked again under the new trust.
        self.jobs.unrank_all();
        for uid in hit {
            self.jobs.put_pending(&uid, now, now, now, None);
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
        if self.jobs.pending_len() == 0 {
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
