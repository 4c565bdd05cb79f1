//! What the running daemon is doing, published for the web server: `/api/status`, the
//! Prometheus counters of `/metrics`, and the queue's index that listings and counts read.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use serde::Serialize;

use crate::announce::Notifier;
use crate::core::policy::Disposition;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub waiting: usize,
    pub flagged: usize,
    pub watcher_healthy: bool,
    pub last_event: Option<String>,
    pub last_error: Option<String>,
    pub rescans: u64,
    pub events: u64,
    pub watcher_errors: u64,
    /// Names of the rule sets in force (kept when config.yaml becomes invalid).
    pub rule_sets: Vec<String>,
    /// Why config.yaml is invalid and what is in force instead, as the daemon knows it.
    pub config_error: Option<String>,
}

#[derive(Debug)]
pub struct Live {
    pub started: Instant,
    snapshot: Mutex<Snapshot>,
    counters: Mutex<Counters>,
    integrity: Mutex<Integrity>,
    /// The daemon's notifier, for verdicts given through the web server in its process (gone
    /// once the daemon stops: a verdict is then announced on its own).
    notifier: Mutex<Weak<Notifier>>,
    /// The queue's index, kept by the daemon (not ready without one: readers use the disk).
    pub(crate) index: crate::queue::index::Shared,
}

/// What the daemon found wrong in the decided part of the queue (see `bypass`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// Jobs in approved/ or running/ that no decision explains.
    pub unexplained_jobs: Vec<Unexplained>,
    /// Status-folder permission files restored since start.
    pub permission_restores: u64,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            started: Instant::now(),
            snapshot: Mutex::new(Snapshot::default()),
            counters: Mutex::new(Counters::default()),
            integrity: Mutex::new(Integrity::default()),
            notifier: Mutex::new(Weak::new()),
            index: Default::default(),
        }
    }
}

impl Live {
    pub fn publish(&self, s: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    pub(crate) fn set_notifier(&self, n: &Arc<Notifier>) {
        *self.notifier.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(n);
    }

    /// The running daemon's notifier, if there is one.
    pub(crate) fn notifier(&self) -> Option<Arc<Notifier>> {
        self.notifier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
    }

    /// How many jobs each status folder holds, from the daemon's index (`None` without one).
    pub(crate) fn job_counts(&self) -> Option<Vec<(crate::queue::Status, usize)>> {
        let ix = self.index.read()?;
        Some(
            crate::queue::Status::ALL
                .iter()
                .map(|s| (*s, ix.count(*s)))
                .collect(),
        )
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Upper bounds (seconds) of the decision-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// (outcome, method) -> count
    pub decisions: std::collections::BTreeMap<(String, String), u64>,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`], then the total count and sum.
    pub latency_buckets: [u64; LATENCY_BUCKETS.len()],
    pub latency_count: u64,
    pub latency_sum: f64,
    pub audit_valid: Option<bool>,
    pub audit_entries: u64,
}

impl Live {
    pub fn count_decision(
        &self,
        outcome: &str,
        method: &str,
        latency: Option<std::time::Duration>,
    ) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.decisions
            .entry((outcome.into(), method.into()))
            .or_default() += 1;
        if let Some(l) = latency {
            let secs = l.as_secs_f64();
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *b {
                    c.latency_buckets[i] += 1;
                }
            }
            c.latency_count += 1;
            c.latency_sum += secs;
        }
    }

    /// Approvals since start, by rules and by the owner (through any front end).
    pub fn approved(&self) -> u64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.decisions
            .iter()
            .filter(|((outcome, _), _)| outcome == Disposition::Approved.as_str())
            .map(|(_, n)| n)
            .sum()
    }

    pub fn set_audit(&self, valid: bool, entries: u64) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.audit_valid = Some(valid);
        c.audit_entries = entries;
    }

    pub fn set_integrity(&self, unexplained_jobs: Vec<Unexplained>, restores: u64) {
        *self.integrity.lock().unwrap_or_else(|p| p.into_inner()) = Integrity {
            unexplained_jobs,
            permission_restores: restores,
        };
    }

    pub fn integrity(&self) -> Integrity {
        self.integrity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn counters(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Prometheus text exposition of the counters and the snapshot.
    pub fn prometheus(&self, pending: usize) -> String {
        let c = self.counters();
        let s = self.snapshot();
        let mut o = String::new();
        job_metrics(&mut o, &c, &s, pending);
        health_metrics(&mut o, &c, &s, &self.integrity());
        o
    }
}

/// Decisions, the jobs waiting, and how long automatic decisions take.
fn job_metrics(o: &mut String, c: &Counters, s: &Snapshot, pending: usize) {
    let decisions: Vec<Sample> = c
        .decisions
        .iter()
        .map(|((outcome, method), n)| {
            (
                format!("{{outcome=\"{outcome}\",method=\"{method}\"}}"),
                n.to_string(),
            )
        })
        .collect();
    metric(
        o,
        "syft_reviewer_decisions_total",
        "counter",
        "Decisions made since start, by outcome and method.",
        &decisions,
    );
    metric(
        o,
        "syft_reviewer_pending_jobs",
        "gauge",
        "Jobs in pending/.",
        &one(pending),
    );
    metric(
        o,
        "syft_reviewer_waiting_jobs",
        "gauge",
        "Pending jobs waiting for the owner (flagged ones included).",
        &[
            ("{flagged=\"false\"}".into(), s.waiting.to_string()),
            ("{flagged=\"true\"}".into(), s.flagged.to_string()),
        ],
    );
    let mut latency: Vec<Sample> = LATENCY_BUCKETS
        .iter()
        .zip(c.latency_buckets)
        .map(|(b, n)| (format!("_bucket{{le=\"{b}\"}}"), n.to_string()))
        .collect();
    latency.push(("_bucket{le=\"+Inf\"}".into(), c.latency_count.to_string()));
    latency.push(("_sum".into(), c.latency_sum.to_string()));
    latency.push(("_count".into(), c.latency_count.to_string()));
    metric(
        o,
        "syft_reviewer_decision_latency_seconds",
        "histogram",
        "From the first sight of a job to its automatic decision.",
        &latency,
    );
}

/// The watcher's health, the audit chain's and the decided folders'.
fn health_metrics(o: &mut String, c: &Counters, s: &Snapshot, i: &Integrity) {
    metric(
        o,
        "syft_reviewer_watcher_rescans_total",
        "counter",
        "Full rescans of the queue (timer, overflow, errors).",
        &one(s.rescans),
    );
    metric(
        o,
        "syft_reviewer_watcher_errors_total",
        "counter",
        "Errors reported by the filesystem watcher.",
        &one(s.watcher_errors),
    );
    metric(
        o,
        "syft_reviewer_watcher_events_total",
        "counter",
        "Filesystem events received.",
        &one(s.events),
    );
    metric(
        o,
        "syft_reviewer_watcher_healthy",
        "gauge",
        "1 when every watch is in place.",
        &one(u8::from(s.watcher_healthy)),
    );
    // No sample before the first verification: a 0 would say the chain is broken.
    let valid = c.audit_valid.map(u8::from).map(one).unwrap_or_default();
    metric(
        o,
        "syft_reviewer_audit_chain_valid",
        "gauge",
        "1 when the audit chain verified at start-up, 0 when it did not.",
        &valid,
    );
    metric(
        o,
        "syft_reviewer_audit_chain_entries",
        "gauge",
        "Entries in the audit chain at the last verification.",
        &one(c.audit_entries),
    );
    metric(
        o,
        "syft_reviewer_unexplained_jobs",
        "gauge",
        "Jobs in approved/ or running/ that no decision in the audit chain explains.",
        &one(i.unexplained_jobs.len()),
    );
    metric(
        o,
        "syft_reviewer_status_permissions_restored_total",
        "counter",
        "Status-folder permission files restored after being loosened.",
        &one(i.permission_restores),
    );
}

/// What follows a metric's name on a sample line (a suffix, labels), and the value.
type Sample = (String, String);

/// The one unlabelled sample `v`.
fn one(v: impl std::fmt::Display) -> Vec<Sample> {
    vec![(String::new(), v.to_string())]
}

/// A metric in the text exposition: its HELP and TYPE lines, then its samples.
fn metric(o: &mut String, name: &str, kind: &str, help: &str, samples: &[Sample]) {
    use std::fmt::Write;
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
    for (after, value) in samples {
        let _ = writeln!(o, "{name}{after} {value}");
    }
}

/// A job found where only an approval may put it, with nothing that explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unexplained {
    pub uid: String,
    pub status: String,
    pub name: Option<String>,
    pub requester: Option<String>,
    /// What its metadata says (left as it is).
    pub metadata_status: Option<String>,
    pub why: String,
}
