//! Spreading independent per-job work (each job is its own folder) over the cores, so a burst of
//! jobs is not bound to one core. Small batches stay on the calling thread.

/// Batches smaller than this are handled on the calling thread.
pub const MIN_BATCH: usize = 32;

/// Runs `f` on every item, results in the items' order. Each worker thread has a state `S` of
/// its own (for example the fsyncs it owes); the states are returned for the caller to merge.
pub fn map_with<T, S, R, F>(items: &[T], f: F) -> (Vec<R>, Vec<S>)
where
    T: Sync,
    S: Default + Send,
    R: Send,
    F: Fn(&T, &mut S) -> R + Sync,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if items.len() < MIN_BATCH || workers < 2 {
        let mut state = S::default();
        let out = items.iter().map(|i| f(i, &mut state)).collect();
        return (out, vec![state]);
    }
    let f = &f;
    let work = move |part: &[T]| {
        let mut state = S::default();
        let out: Vec<R> = part.iter().map(|i| f(i, &mut state)).collect();
        (out, state)
    };
    let parts: Vec<(Vec<R>, S)> = std::thread::scope(|s| {
        let started: Vec<_> = items
            .chunks(items.len().div_ceil(workers))
            .map(|part| {
                // A thread that cannot be created leaves its share to this one.
                std::thread::Builder::new()
                    .spawn_scoped(s, move || work(part))
                    .map_err(|_| part)
            })
            .collect();
        started
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(part) => work(part),
            })
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    let mut states = Vec::with_capacity(parts.len());
    for (part, state) in parts {
        out.extend(part);
        states.push(state);
    }
    (out, states)
}

/// [`map_with`] without per-worker state.
pub fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    map_with(items, |i, _: &mut ()| f(i)).0
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
