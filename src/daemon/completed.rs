//! Completed jobs: recorded once each in the history of approved code.

use std::collections::{BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::time::Instant;

use super::Daemon;
use crate::durable::Sync;
use crate::queue::Status;
use crate::store::history::HistoryRecord;

/// Completed jobs not recorded yet, each with when it is due (a settle window after its last
/// event), in time order so taking the due ones costs what is due, not all that wait.
#[derive(Debug, Default)]
pub(super) struct Due {
    at: HashMap<String, Instant>,
    order: BTreeSet<(Instant, String)>,
}

impl Due {
    /// Adds `uid`, due at `at`, unless it is there already.
    pub(super) fn add(&mut self, uid: String, at: Instant) {
        if self.at.contains_key(&uid) {
            return;
        }
        self.order.insert((at, uid.clone()));
        self.at.insert(uid, at);
    }

    /// Gives back the room a burst of completed jobs took.
    pub(super) fn shrink(&mut self) {
        self.at.shrink_to_fit();
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.order.first().map(|(t, _)| *t)
    }

    /// Takes the jobs due by `until`.
    pub(super) fn take(&mut self, until: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while self.order.first().is_some_and(|(t, _)| *t <= until) {
            if let Some((_, uid)) = self.order.pop_first() {
                self.at.remove(&uid);
                out.push(uid);
            }
        }
        out
    }
}

impl Daemon {
    pub(super) fn record_completed(&mut self, uids: Vec<String>) {
        let mut sync = Sync::batch();
        let mut recorded = Vec::new();
        for uid in uids {
            if self.seen_completed.contains(&uid) {
                continue;
            }
            let dir = self.queue.job_dir(Status::Completed, &uid);
            if !dir.is_dir() {
                continue;
            }
            let ins = crate::queue::inspect(&dir, &self.layout.email);
            if let Some(why) = &ins.ignored {
                log::debug!("not recording completed/{uid}: {why}");
            } else if let (Some(m), Some(scan), true) =
                (&ins.meta, &ins.scan, ins.problems.is_empty())
            {
                let rec = HistoryRecord::from_job(&m.meta, scan, &dir.join("code"));
                match self.history.record(rec, &mut sync) {
                    Ok(r) => log::info!(
                        "recorded completed job {uid} ({}) in the history as {}",
                        r.name,
                        r.signature
                    ),
                    Err(e) => {
                        log::error!("could not record completed job {uid}: {e}");
                        continue;
                    }
                }
            } else {
                log::info!(
                    "completed job {uid} is not recorded in the history: {}",
                    ins.problems.join("; ")
                );
            }
            recorded.push(uid);
        }
        if let Err(e) = sync.commit() {
            log::error!("{e}");
            return;
        }
        if recorded.is_empty() {
            return;
        }
        let mut lines = String::new();
        for uid in &recorded {
            lines.push_str(uid);
            lines.push('\n');
        }
        let appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.seen_path)
            .and_then(|mut f| f.write_all(lines.as_bytes()));
        if let Err(e) = appended {
            log::error!("could not write {}: {e}", self.seen_path.display());
        }
        self.seen_completed.extend(recorded);
    }
}
