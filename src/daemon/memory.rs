//! Memory a flood leaves behind, given back once the daemon goes idle: the per-job tables
//! shrunk to what they hold (vectors and hash tables keep their high-water mark otherwise), the
//! file caches emptied, then the allocator's free pages handed to the system.
//!
//! Idle means nothing pending, no look of the queue-bypass check due and no job waiting for the
//! index: the moment after the last approval's move has been seen by every part, not the moment
//! the last batch returns. Done once per spell of work, not at every turn of the loop; while a
//! flood lasts, the allocator's free pages are handed back every few batches.

use super::Daemon;

/// Reviews between two trims while a flood is decided: the allocator keeps the pages that
/// batches free between its live blocks, and a trim every few batches hands them back while
/// the flood lasts (it walks the free lists: a millisecond or two, against seconds of work).
const TRIM_EVERY: u64 = 4096;

/// What the daemon had done when it last gave memory back.
#[derive(Debug, Default)]
pub(super) struct Settled {
    work: u64,
    reviews: u64,
    /// Nothing was pending at the last turn (and what that freed was given back).
    drained: bool,
}

impl Daemon {
    /// Gives memory back if the daemon has just gone idle after some work, and the allocator's
    /// free pages every [`TRIM_EVERY`] reviews in a flood.
    pub(super) fn settle_memory(&mut self) {
        if self.stats.reviews.wrapping_sub(self.settled.reviews) >= TRIM_EVERY {
            self.settled.reviews = self.stats.reviews;
            trim();
        }
        // The last batch decided: the per-job table and the caches are done with, even while
        // the index and the bypass check still read what the flood's moves changed.
        let drained = self.jobs.pending_len() == 0;
        if drained && !self.settled.drained {
            self.give_back(false);
        }
        self.settled.drained = drained;
        let work = self
            .stats
            .events
            .wrapping_add(self.stats.reviews)
            .wrapping_add(self.stats.rescans);
        if work == self.settled.work
            || self.jobs.pending_len() != 0
            || self.indexer.next_wakeup().is_some()
            || !self.bypass.idle()
        {
            return;
        }
        self.settled.work = work;
        self.give_back(true);
    }

    /// Shrinks the per-job table and empties the file caches (and with `all`, the other
    /// tables a flood grew), then trims the allocator.
    fn give_back(&mut self, all: bool) {
        self.jobs.shrink();
        crate::core::hash_cache::shrink();
        crate::queue::content::PERM_BY_FILE.drop_all();
        if all {
            self.bypass.shrink();
            self.indexer.shrink();
            self.completed.shrink();
        }
        trim();
    }
}

/// Hands the allocator's free memory back to the system.
pub(super) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it has no preconditions.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
