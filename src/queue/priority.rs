//! Which work waits when the cores are busy: the workers that review, rank and index a large
//! batch for the daemon run at a lower scheduling priority than everything else in the process
//! (the web server's requests, the daemon's own loop, the mover under the decision lock, the
//! notifier), and what a piece of work cost its threads (CPU, and time spent waiting for a core)
//! as the kernel counted it.
//!
//! Why: during a flood the daemon's batches would otherwise keep both cores busy, and a page of
//! the UI asked for then waited for a core behind them. A lower priority only matters while the
//! cores are contended: an idle machine still gives the batch every cycle it wants. The loop
//! itself is not lowered, and a small batch (the owner's single job) runs on it.

use std::cell::Cell;

/// The nice value of batch workers (0 is the default, 19 the lowest): about a tenth of the CPU
/// a default thread of the process gets when both want the same core, so a request is served
/// ahead of the batch. Against other programs the kernel shares by group first (a session's
/// autogroup, a service's cgroup), so this orders the process's own threads.
pub(crate) const BATCH_NICE: i32 = 10;

thread_local! {
    static SPAWNS_BATCH_WORKERS: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one whose large batches are background work: the worker threads
/// [`par`](super::par) starts for it run at [`BATCH_NICE`]. The calling thread keeps its own
/// priority.
pub(crate) fn batch_workers_from_here() {
    SPAWNS_BATCH_WORKERS.with(|b| b.set(true));
}

/// Whether the calling thread was marked by [`batch_workers_from_here`].
pub(crate) fn spawns_batch_workers() -> bool {
    SPAWNS_BATCH_WORKERS.with(Cell::get)
}

/// Lowers the calling thread (only it: Linux keeps a nice value per thread) to [`BATCH_NICE`].
/// A thread cannot raise its priority back without privileges, so this is for threads that end
/// with their batch. Failing leaves the thread as it was: the work is the same, only its order.
pub(crate) fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        use nix::libc;
        let tid = nix::unistd::gettid().as_raw();
        let Ok(who) = libc::id_t::try_from(tid) else {
            return;
        };
        // SAFETY: setpriority only changes the scheduling weight of the thread named; it has no
        // memory preconditions.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, BATCH_NICE) };
        if rc != 0 {
            log::debug!(
                "could not lower a batch worker's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The nice value of the calling thread, if it can be read.
#[cfg(test)]
pub(crate) fn nice_of_this_thread() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // After the command name (in parentheses, which may hold spaces): state is field 3, nice 19.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(16)?.parse().ok()
}

/// What the kernel counted for one thread: nanoseconds on a core, and nanoseconds ready to run
/// but waiting for one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) cpu_ns: u64,
    pub(crate) wait_ns: u64,
}

impl Usage {
    /// The calling thread's counts so far (zero where the kernel does not give them).
    pub(crate) fn of_this_thread() -> Usage {
        let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") else {
            return Usage::default();
        };
        let mut f = s.split_ascii_whitespace().map(|n| n.parse::<u64>().ok());
        match (f.next().flatten(), f.next().flatten()) {
            (Some(cpu_ns), Some(wait_ns)) => Usage { cpu_ns, wait_ns },
            _ => Usage::default(),
        }
    }

    /// What was counted between `earlier` and `self` (of the same thread).
    pub(crate) fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
        }
    }

    pub(crate) fn plus(self, other: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_add(other.cpu_ns),
            wait_ns: self.wait_ns.saturating_add(other.wait_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_workers_of_a_marked_thread_are_lowered() {
        let run = |mark: bool| {
            std::thread::spawn(move || {
                let before = nice_of_this_thread();
                if mark {
                    batch_workers_from_here();
                }
                let items: Vec<usize> = (0..4 * super::super::par::MIN_BATCH).collect();
                let workers = super::super::par::map(&items, |_| nice_of_this_thread());
                (before, nice_of_this_thread(), workers)
            })
            .join()
            .unwrap()
        };
        let (before, after, workers) = run(false);
        assert_eq!(before, after);
        assert!(
            workers.iter().all(|n| *n == before),
            "unmarked: as the caller"
        );
        let (before, after, workers) = run(true);
        assert_eq!(before, after, "the marked thread keeps its own priority");
        let spread = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
        if spread && before == Some(0) {
            assert!(
                workers.iter().all(|n| *n == Some(BATCH_NICE)),
                "marked: its workers at the batch priority, got {workers:?}"
            );
        }
    }

    #[test]
    fn a_thread_s_usage_grows_with_its_work() {
        let before = Usage::of_this_thread();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let spent = Usage::of_this_thread().since(before);
        assert!(spent.cpu_ns > 0 || before == Usage::default());
        assert_eq!(spent.plus(Usage::default()), spent);
    }
}
