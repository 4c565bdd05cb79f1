//! Recording decisions: the decision log line and the audit event of each decision, written the
//! same way for the daemon's batches and the owner's verdicts, and what is then announced.
//!
//! Failures to write are logged, never returned: the move already happened and must not be
//! undone because a log could not be written.

use crate::announce::Decision;
use crate::core::policy::{Disposition, Method, Recorded};
use crate::queue::metadata;
use crate::queue::review::Review;
use crate::store::audit::{self, Actor, AuditEvent, AuditLog};
use crate::store::decision_log::{DecisionLog, Record as LogRecord};
use crate::syftbox::Layout;

/// Decision log lines and audit events collected for one write, all by one actor.
pub(crate) struct Record {
    actor: Actor,
    entries: Vec<LogRecord>,
    events: Vec<audit::Event>,
}

impl Record {
    pub(crate) fn new(actor: impl Into<Actor>) -> Record {
        Record {
            actor: actor.into(),
            entries: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A decision: a decision log line and an audit event with the same reasons.
    pub(crate) fn decision(
        &mut self,
        r: &Review,
        outcome: Disposition,
        method: Option<Method>,
        reasons: Vec<String>,
    ) {
        self.event(r, outcome, reasons.clone());
        self.entry(r, outcome, method, reasons);
    }

    /// A decision log line only (a job starting to wait for the owner).
    pub(crate) fn entry(
        &mut self,
        r: &Review,
        outcome: Disposition,
        method: Option<Method>,
        reasons: Vec<String>,
    ) {
        let ins = &r.inspection;
        self.entries.push(LogRecord {
            time: metadata::format_naive(&metadata::now_naive()),
            uid: ins.uid.clone(),
            name: ins.name().map(str::to_owned),
            requester: ins.requester().map(str::to_owned),
            outcome: Recorded::Known(outcome),
            method: method.map(Recorded::Known),
            signature: ins.signature.clone(),
            reasons,
        });
    }

    /// An audit event only (an approval that failed to happen).
    pub(crate) fn event(&mut self, r: &Review, outcome: Disposition, reasons: Vec<String>) {
        let ins = &r.inspection;
        self.events.push(audit::Event {
            event: AuditEvent::Decision,
            actor: self.actor.clone(),
            uid: Some(ins.uid.clone()),
            signature: ins.signature.clone(),
            email: ins.requester().map(str::to_owned),
            outcome: outcome.as_str().to_string(),
            reasons,
        });
    }

    /// Appends the lines to the decision log, then the events to the audit chain. Returns the
    /// decisions to announce, which the caller does once the queue lock is released.
    pub(crate) fn write(self, layout: &Layout) -> Vec<Decision> {
        if let Err(e) = DecisionLog::new(layout).append(&self.entries) {
            log::error!("could not write the decision log: {e}");
        }
        if let Err(e) = AuditLog::new(layout).append(&self.events) {
            log::error!("could not append to the audit chain: {e}");
        }
        self.entries
            .iter()
            .map(|e| Decision::from_record(e, self.actor.as_str()))
            .collect()
    }
}
