//! Why the next rescan of the queue runs, and how many ran for each reason: a rescan re-reads
//! the whole queue, so in a flood their number and cost are what the debug status line shows.

use std::time::{Duration, Instant};

use super::Daemon;

/// The periodic rescan is a safety net for events missed (they are not lost in a burst any
/// more): with 100,000 jobs each one stats them all, seconds of CPU. The next one waits at least
/// this many times as long as the last took, so the net costs at most about 1 % of a core.
const COST_SHARE: u32 = 100;
/// A rescan shorter than this keeps the period asked for (at the default of 30 s that is under
/// 1 % anyway), whatever the load on the machine did to its time.
const QUICK: Duration = Duration::from_millis(250);

/// What asked for a rescan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// The periodic safety net.
    Timer,
    /// Events were lost: the kernel's queue, or the events held for the busy loop, overflowed.
    Overflow,
    /// A watcher error, a watched folder itself changed, or a watch target appeared.
    Watch,
}

/// Rescans run, by cause, and the time they took.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    timer: u64,
    overflow: u64,
    watch: u64,
    spent: Duration,
}

impl Counts {
    fn add(&mut self, cause: Cause, took: Duration) {
        let n = match cause {
            Cause::Timer => &mut self.timer,
            Cause::Overflow => &mut self.overflow,
            Cause::Watch => &mut self.watch,
        };
        *n += 1;
        self.spent = self.spent.saturating_add(took);
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} by the timer, {} on overflow, {} for watch changes; {} ms in all",
            self.timer,
            self.overflow,
            self.watch,
            self.spent.as_millis()
        )
    }
}

impl Daemon {
    /// A rescan at once, for `cause`.
    pub(super) fn rescan_now(&mut self, cause: Cause) {
        self.rescan_at(Instant::now(), cause);
    }

    /// A rescan at `at` at the latest, for `cause` if that brings it forward.
    fn rescan_at(&mut self, at: Instant, cause: Cause) {
        if at < self.rescan_due {
            self.rescan_due = at;
            self.rescan_cause = cause;
        }
    }

    /// Notes a rescan that took `took`, and schedules the next one on the timer.
    pub(super) fn rescanned(&mut self, took: Duration) {
        self.stats.rescans += 1;
        self.rescans.add(self.rescan_cause, took);
        log::debug!(
            "rescan ({:?}) took {} ms; rescans so far: {}",
            self.rescan_cause,
            took.as_millis(),
            self.rescans
        );
        let now = Instant::now();
        self.rescan_due = now
            .checked_add(next_gap(self.opts.rescan, took))
            .unwrap_or(now + self.opts.rescan);
        self.rescan_cause = Cause::Timer;
    }
}

/// The time to the next timer rescan after one that took `took`.
fn next_gap(every: Duration, took: Duration) -> Duration {
    if took < QUICK {
        return every;
    }
    every.max(took.saturating_mul(COST_SHARE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_rescan_pushes_the_next_one_out_and_a_quick_one_keeps_the_period() {
        let every = Duration::from_secs(30);
        assert_eq!(next_gap(every, Duration::from_millis(40)), every);
        let second = Duration::from_secs(1);
        assert_eq!(next_gap(second, Duration::from_millis(200)), second);
        assert_eq!(
            next_gap(every, Duration::from_secs(5)),
            Duration::from_secs(500)
        );
        assert_eq!(next_gap(every, Duration::MAX), Duration::MAX);
    }
}
