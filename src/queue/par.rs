//! Spreading independent per-job work (each job is its own folder) over the cores, so a burst of
//! jobs is not bound to one core. Small batches stay on the calling thread; the daemon's large ones
//! run at the batch priority (`queue::priority`).

use super::priority::{self, Usage};

/// Batches smaller than this are handled on the calling thread.
pub const MIN_BATCH: usize = 32;

/// Runs `f` on every item, results in the items' order. Each worker thread has a state `S` of
/// its own (for example the fsyncs it owes); the states are returned for the caller to merge.
/// Its workers keep the priority of the calling thread: its callers move jobs under the
/// decision lock, which a lowered thread would hold longer.
pub fn map_with<T, S, R, F>(items: &[T], f: F) -> (Vec<R>, Vec<S>)
where
    T: Sync,
    S: Default + Send,
    R: Send,
    F: Fn(&T, &mut S) -> R + Sync,
{
    let (out, states, _) = run(items, f, false, false);
    (out, states)
}

/// [`map`], and what it cost the threads it started (CPU, and waiting for a core); a small batch
/// runs on the calling thread and is counted in that thread's own figures.
pub(crate) fn map_measured<T, R, F>(items: &[T], f: F) -> (Vec<R>, Usage)
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let (out, _, usage) = run(
        items,
        |i, _: &mut ()| f(i),
        true,
        priority::spawns_batch_workers(),
    );
    (out, usage)
}

/// `lower`: the workers run at the batch priority.
fn run<T, S, R, F>(items: &[T], f: F, measure: bool, lower: bool) -> (Vec<R>, Vec<S>, Usage)
where
    T: Sync,
    S: Default + Send,
    R: Send,
    F: Fn(&T, &mut S) -> R + Sync,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let f = &f;
    // `since`: what the thread had counted before its part (a new thread's counts start at
    // zero, so its wait to be first run on a core is in them).
    let work = move |part: &[T], since: Usage| {
        let mut state = S::default();
        let out: Vec<R> = part.iter().map(|i| f(i, &mut state)).collect();
        let usage = if measure {
            Usage::of_this_thread().since(since)
        } else {
            Usage::default()
        };
        (out, state, usage)
    };
    if items.len() < MIN_BATCH || workers < 2 {
        let (out, state, _) = work(items, Usage::default());
        return (out, vec![state], Usage::default());
    }
    let parts: Vec<(Vec<R>, S, Usage)> = std::thread::scope(|s| {
        let started: Vec<_> = items
            .chunks(items.len().div_ceil(workers))
            .map(|part| {
                // A thread that cannot be created leaves its share to this one.
                std::thread::Builder::new()
                    .spawn_scoped(s, move || {
                        if lower {
                            priority::lower_this_thread();
                        }
                        work(part, Usage::default())
                    })
                    .map_err(|_| part)
            })
            .collect();
        started
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                // Counted in the calling thread's own figures.
                Err(part) => {
                    let (out, state, _) = work(part, Usage::default());
                    (out, state, Usage::default())
                }
            })
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    let mut states = Vec::with_capacity(parts.len());
    let mut usage = Usage::default();
    for (part, state, u) in parts {
        out.extend(part);
        states.push(state);
        usage = usage.plus(u);
    }
    (out, states, usage)
}

/// Runs `f` on every item, results in the items' order. The workers of a thread marked by
/// [`priority::batch_workers_from_here`] run at the batch priority.
pub fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let lower = priority::spawns_batch_workers();
    run(items, |i, _: &mut ()| f(i), false, lower).0
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_order_of_the_items() {
        for n in [0, 1, super::MIN_BATCH - 1, super::MIN_BATCH, 1000] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(
                super::map(&items, |i| i * 2),
                (0..n).map(|i| i * 2).collect::<Vec<_>>()
            );
            let (_, states) = super::map_with(&items, |i, seen: &mut Vec<usize>| seen.push(*i));
            let mut all: Vec<usize> = states.into_iter().flatten().collect();
            all.sort_unstable();
            assert_eq!(all, items);
        }
    }
}
