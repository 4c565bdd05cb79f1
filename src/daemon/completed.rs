//! Completed jobs: recorded once each in the history of approved code.

use std::fs::OpenOptions;
use std::io::Write;

use super::Daemon;
use crate::durable::Sync;
use crate::queue::Status;
use crate::store::history::HistoryRecord;

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
