//! The status report: what is in the queue and in the stores, shared by `syft-reviewer status`
//! and `/api/status` (each adds what only it knows: the CLI the daemon lock and the recent
//! decisions, the API the running daemon's live state).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::Result;
use crate::queue::review::Trust;
use crate::queue::{Queue, Status};
use crate::syftbox::Layout;

/// How many jobs each status folder holds, in the order of [`Status::ALL`].
#[derive(Debug, Clone)]
pub(crate) struct JobCounts(pub(crate) Vec<(Status, usize)>);

impl JobCounts {
    pub(crate) fn get(&self, status: Status) -> usize {
        self.0
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }
}

impl Serialize for JobCounts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (status, n) in &self.0 {
            map.serialize_entry(status.as_str(), n)?;
        }
        map.end()
    }
}

/// What both status reports show.
#[derive(Debug, Clone)]
pub(crate) struct Overview {
    pub(crate) jobs: JobCounts,
    pub(crate) allowlisted_senders: usize,
    pub(crate) trusted_code: usize,
    /// Store files that could not be used, with the reason.
    pub(crate) ignored_store_files: Vec<String>,
    pub(crate) config_error: Option<String>,
    /// The rule sets config.yaml enables now.
    pub(crate) rule_sets: Vec<String>,
}

/// What both reports show, with the job counts given (the daemon's index), or counted on disk when
/// `None`.
pub(crate) fn overview_with(
    layout: &Layout,
    counts: Option<Vec<(Status, usize)>>,
) -> Result<Overview> {
    let q = Queue::new(layout.queue.clone());
    let trust = Trust::load(layout)?;
    Ok(Overview {
        jobs: JobCounts(
            counts.unwrap_or_else(|| Status::ALL.iter().map(|s| (*s, q.list(*s).len())).collect()),
        ),
        allowlisted_senders: trust.allowlist.entries.len(),
        trusted_code: trust.trusted.len(),
        rule_sets: trust
            .config
            .rule_sets()
            .iter()
            .map(|r| r.name.clone())
            .collect(),
        ignored_store_files: trust.invalid,
        config_error: trust.config_error,
    })
}
