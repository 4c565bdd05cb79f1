//! Backing off approvals that fail. When the filesystem refuses a move (no descriptors left, a
//! read-only or full disk, an I/O error) or a job is sent back after its move, the job is tried
//! again later and later (200 ms doubling up to a minute) instead of at every settle window, and
//! each distinct failure of a job is reported (logged at ERROR, recorded in the audit chain) once,
//! not at every attempt; a failure that persists is logged again once a minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// How often a failure that persists is logged again.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Distinct failures remembered per job (a job alternating between a few failures is reported
/// once for each of them).
const REMEMBERED: usize = 8;

#[derive(Debug)]
struct State {
    delay: Duration,
    next: Instant,
    attempts: u32,
    seen: Vec<String>,
    logged: Instant,
}

/// What to do about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    /// A failure not reported for this job before: record it in the audit chain.
    pub(crate) new: bool,
    /// Log it now (new, or a minute since it was last logged).
    pub(crate) log: bool,
    /// When to try again.
    pub(crate) retry_in: Duration,
    /// Failed attempts in a row, this one included.
    pub(crate) attempts: u32,
}

/// The jobs whose last approval attempt failed (only jobs still pending are kept).
#[derive(Debug, Default)]
pub(crate) struct Retries {
    jobs: HashMap<String, State>,
}

impl Retries {
    /// Records a failed attempt for `uid` with the reason `why`.
    pub(crate) fn failed(&mut self, uid: &str, why: &str, now: Instant) -> Failure {
        let key = stable(why);
        let s = self.jobs.entry(uid.to_string()).or_insert(State {
            delay: Duration::ZERO,
            next: now,
            attempts: 0,
            seen: Vec::new(),
            logged: now,
        });
        s.delay = if s.delay.is_zero() {
            FIRST_DELAY
        } else {
            (s.delay * 2).min(MAX_DELAY)
        };
        s.next = now + s.delay;
        s.attempts = s.attempts.saturating_add(1);
        let new = !s.seen.contains(&key);
        if new {
            if s.seen.len() >= REMEMBERED {
                s.seen.remove(0);
            }
            s.seen.push(key);
        }
        let log = new || now.saturating_duration_since(s.logged) >= LOG_EVERY;
        if log {
            s.logged = now;
        }
        Failure {
            new,
            log,
            retry_in: s.delay,
            attempts: s.attempts,
        }
    }

    /// When `uid` may be tried again, if it is backing off.
    pub(crate) fn ready_at(&self, uid: &str) -> Option<Instant> {
        self.jobs.get(uid).map(|s| s.next)
    }

    /// Forgets `uid` (approved, or no longer pending).
    pub(crate) fn clear(&mut self, uid: &str) {
        self.jobs.remove(uid);
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&String) -> bool) {
        self.jobs.retain(|uid, _| keep(uid));
    }
}

/// The reason without what changes from one attempt to the next (temporary file names).
fn stable(why: &str) -> String {
    why.split(' ')
        .map(|w| match w.find(crate::durable::TMP_MARKER) {
            Some(at) => &w[..at],
            None => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_minute_and_reports_each_failure_once() {
        let mut r = Retries::default();
        let t0 = Instant::now();
        let why = "could not rewrite: create a temporary file in /q/approved/u/metadata.json.syft.tmp.Ab12: Too many open files";
        let first = r.failed("u", why, t0);
        assert!(first.new && first.log);
        assert_eq!(first.retry_in, FIRST_DELAY);
        let mut t = t0;
        let mut last = first;
        for _ in 0..20 {
            t += last.retry_in;
            let other = why.replace("Ab12", "Zz99");
            last = r.failed("u", &other, t);
            assert!(!last.new, "the same failure with another temporary name");
        }
        assert_eq!(last.retry_in, MAX_DELAY);
        assert!(
            last.log,
            "a persisting failure is logged again after a minute"
        );
        assert!(!r.failed("u", why, t).log, "but not at every attempt");
        assert!(r.failed("u", "No space left on device", t).new);
        assert_eq!(r.ready_at("u"), Some(t + MAX_DELAY));
        r.clear("u");
        assert_eq!(r.ready_at("u"), None);
        assert!(r.failed("u", why, t).new, "reported again after a success");
    }
}
