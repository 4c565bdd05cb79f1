//! The shortest edit script between two sequences (Myers' O(ND) algorithm), with a work budget:
//! the cost of a diff is bounded by a number of steps fixed in advance, not by a clock, so a
//! hostile pair of files cannot make it expensive and the same input always gives the same answer.

/// One step of an edit script from `a` to `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The next element of `a` is the next of `b`.
    Equal,
    /// The next element of `a` is not in `b`.
    Delete,
    /// The next element of `b` is not in `a`.
    Insert,
}

/// Where the path of diagonal `k` at distance `d` starts (before its run of equal elements), and
/// whether it got there by an insertion (from diagonal `k + 1`) or a deletion (from `k - 1`).
/// `prev` holds the furthest x reached on each diagonal at distance `d - 1` (-1: none). The same
/// choice is made going forward and when walking back, so the two always agree.
fn start(prev: &[i32], d: isize, k: isize, n: isize, m: isize) -> Option<(isize, Op)> {
    let get = |kk: isize| -> isize {
        if kk.abs() > d - 1 {
            return -1;
        }
        usize::try_from(kk + d - 1)
            .ok()
            .and_then(|i| prev.get(i))
            .map_or(-1, |&x| x as isize)
    };
    let in_grid = |x: isize| x <= n && x - k >= 0 && x - k <= m;
    let down = Some(get(k + 1)).filter(|&x| x >= 0 && in_grid(x));
    let right = Some(get(k - 1))
        .filter(|&x| x >= 0)
        .map(|x| x + 1)
        .filter(|&x| in_grid(x));
    match (down, right) {
        (Some(dx), Some(rx)) if dx >= rx => Some((dx, Op::Insert)),
        (_, Some(rx)) => Some((rx, Op::Delete)),
        (Some(dx), None) => Some((dx, Op::Insert)),
        (None, None) => None,
    }
}

/// The shortest edit script turning `a` into `b`, or `None` when finding it would take more than
/// `budget` steps (what was spent is taken from `budget` either way). Common leading and trailing
/// elements cost one step each, so a small change in a long file is cheap.
pub(crate) fn diff<T: PartialEq>(a: &[T], b: &[T], budget: &mut u64) -> Option<Vec<Op>> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_mid, b_mid) = (&a[head..], &b[head..]);
    let tail = a_mid
        .iter()
        .rev()
        .zip(b_mid.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    *budget = budget.saturating_sub((head + tail) as u64);
    let a_mid = &a_mid[..a_mid.len() - tail];
    let b_mid = &b_mid[..b_mid.len() - tail];
    // Only insertions or only deletions left: no search (it would cost the square of their number).
    let middle = if a_mid.is_empty() || b_mid.is_empty() {
        let mut v = vec![Op::Delete; a_mid.len()];
        v.extend(std::iter::repeat_n(Op::Insert, b_mid.len()));
        v
    } else {
        middle(a_mid, b_mid, budget)?
    };
    let mut ops = vec![Op::Equal; head];
    ops.extend(middle);
    ops.extend(std::iter::repeat_n(Op::Equal, tail));
    Some(ops)
}

fn middle<T: PartialEq>(a: &[T], b: &[T], budget: &mut u64) -> Option<Vec<Op>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    // i32 holds any position: files diffed by line are far below 2^31 lines.
    if n > i32::MAX as isize / 2 || m > i32::MAX as isize / 2 {
        return None;
    }
    // snaps[d][k + d]: the furthest x on diagonal k after d edits (-1: not reached).
    let mut snaps: Vec<Vec<i32>> = Vec::new();
    for d in 0..=(n + m) {
        let cost = (2 * d + 1) as u64;
        if *budget < cost {
            *budget = 0;
            return None;
        }
        *budget -= cost;
        let mut cur = vec![-1i32; (2 * d + 1) as usize];
        let mut k = -d;
        while k <= d {
            let begin = if d == 0 {
                Some(0)
            } else {
                snaps.last().and_then(|p| start(p, d, k, n, m)).map(|s| s.0)
            };
            if let Some(x0) = begin {
                let (mut x, mut y) = (x0, x0 - k);
                while x < n && y < m && a[x as usize] == b[y as usize] {
                    x += 1;
                    y += 1;
                }
                *budget = budget.saturating_sub((x - x0) as u64);
                cur[(k + d) as usize] = x as i32;
                if x == n && y == m {
                    snaps.push(cur);
                    return walk_back(&snaps, n, m);
                }
            }
            k += 2;
        }
        snaps.push(cur);
    }
    None
}

/// The edit script read back from the furthest points of each distance, from the end.
fn walk_back(snaps: &[Vec<i32>], n: isize, m: isize) -> Option<Vec<Op>> {
    let mut ops = Vec::with_capacity((n + m) as usize);
    let (mut x, mut y) = (n, m);
    for d in (0..snaps.len() as isize).rev() {
        let k = x - y;
        let (sx, via) = if d == 0 {
            (0, Op::Equal)
        } else {
            start(snaps.get(d as usize - 1)?, d, k, n, m)?
        };
        while x > sx {
            ops.push(Op::Equal);
            x -= 1;
            y -= 1;
        }
        match via {
            Op::Insert => y -= 1,
            Op::Delete => x -= 1,
            Op::Equal => {}
        }
        if d > 0 {
            ops.push(via);
        }
    }
    if x != 0 || y != 0 {
        return None;
    }
    ops.reverse();
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply<T: Clone + PartialEq>(a: &[T], b: &[T], ops: &[Op]) -> Vec<T> {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Equal => {
                    assert!(a[i] == b[j]);
                    out.push(a[i].clone());
                    i += 1;
                    j += 1;
                }
                Op::Delete => i += 1,
                Op::Insert => {
                    out.push(b[j].clone());
                    j += 1;
                }
            }
        }
        assert_eq!((i, j), (a.len(), b.len()));
        out
    }

    fn lcs(a: &[u8], b: &[u8]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                t[i + 1][j + 1] = if a[i] == b[j] {
                    t[i][j] + 1
                } else {
                    t[i][j + 1].max(t[i + 1][j])
                };
            }
        }
        t[a.len()][b.len()]
    }

    #[test]
    fn one_changed_line_is_one_delete_and_one_insert() {
        let a = ["a", "b", "c", "d"];
        let b = ["a", "b", "x", "d"];
        let ops = diff(&a, &b, &mut 1000).unwrap();
        use Op::*;
        assert_eq!(ops, vec![Equal, Equal, Delete, Insert, Equal]);
    }

    #[test]
    fn empty_sides() {
        assert_eq!(diff::<u8>(&[], &[], &mut 10).unwrap(), vec![]);
        assert_eq!(diff(&[1], &[], &mut 10).unwrap(), vec![Op::Delete]);
        assert_eq!(diff(&[], &[1, 2], &mut 10).unwrap(), vec![Op::Insert; 2]);
    }

    #[test]
    fn a_budget_too_small_gives_up_instead_of_working_on() {
        let a: Vec<u32> = (0..2000).collect();
        let b: Vec<u32> = (2000..4000).collect();
        let mut budget = 10_000;
        assert!(diff(&a, &b, &mut budget).is_none());
        assert_eq!(budget, 0);
        // A long common prefix and suffix cost one step per element, not a search.
        let mut c = a.clone();
        c[1000] = 9999;
        let mut budget = 10_000;
        assert!(diff(&a, &c, &mut budget).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_script_turns_a_into_b_with_the_fewest_edits(
            a in proptest::collection::vec(0u8..4, 0..40),
            b in proptest::collection::vec(0u8..4, 0..40),
        ) {
            let ops = diff(&a, &b, &mut { u64::MAX }).unwrap();
            prop_assert_eq!(apply(&a, &b, &ops), b.clone());
            let edits = ops.iter().filter(|o| **o != Op::Equal).count();
            prop_assert_eq!(edits, a.len() + b.len() - 2 * lcs(&a, &b));
        }
    }
}
