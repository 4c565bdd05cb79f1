//! Expiry: pending jobs nobody decided within their timeout move to `timedout/`.

use super::Daemon;
use crate::core::policy::Outcome;
use crate::queue::Status;
use crate::queue::gate;
use crate::queue::metadata;
use crate::queue::review;

impl Daemon {
    /// Moves jobs whose timeout has passed to `timedout/`.
    pub(super) fn expire_due(&mut self) {
        let now = metadata::now_naive();
        let due = self.jobs.take_expired(now);
        if due.is_empty() {
            return;
        }
        let mut reviews = Vec::new();
        for uid in due {
            let dir = self.queue.job_dir(Status::Pending, &uid);
            if !dir.is_dir() {
                continue;
            }
            let r = review::review(&dir, &self.layout.email, &self.trust);
            // A job that a rule approves now is decided, not expired.
            let waiting = matches!(&r.verdict, Some(v) if v.outcome != Outcome::Approve);
            if waiting && r.inspection.meta.is_some() {
                reviews.push(r);
            } else {
                self.touch_pending(uid);
            }
        }
        for uid in gate::expire(&self.layout, &reviews, &self.trust, &self.notifier) {
            self.stats.expired += 1;
            if let Some(live) = &self.live {
                live.count_decision("expired", "timeout", None);
            }
            self.jobs.forget(&uid);
        }
    }
}
