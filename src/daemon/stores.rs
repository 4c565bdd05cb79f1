//! Reloading the stores (allowlist, trusted code, peers, config.yaml) after they change, and
//! auditing the changes nobody recorded.

use std::time::Instant;

use super::batch::Affected;
use super::{Daemon, STORES_SETTLE, report_invalid};
use crate::queue::review::Trust;
use crate::store::allowlist::Allowlist;
use crate::store::audit::{self, AuditEvent, AuditLog};

impl Daemon {
    pub(super) fn reload_stores(&mut self) {
        let _changing = match audit::change_lock(&self.layout) {
            Ok(g) => g,
            Err(e) => {
                log::error!("{e}");
                self.stores_due = Some(Instant::now() + STORES_SETTLE * 4);
                return;
            }
        };
        let trust = match Trust::reload(&self.layout, &self.trust) {
            Ok(t) => t,
            Err(e) => {
                log::error!("could not reload the allowlist and trusted code: {e}");
                return;
            }
        };
        report_invalid(&trust, &self.trust.invalid);
        let trust = self.sync_peers(trust);
        if let Err(e) = Allowlist::new(&self.layout).sync_permissions(&trust.allowlist) {
            log::error!("could not update the allowlist's permission file: {e}");
        }
        self.audit_hand_edits(&trust);
        if trust.config_error != self.trust.config_error || trust.config != self.trust.config {
            match &trust.config_error {
                Some(e) => log::error!("{e}"),
                None => log::info!(
                    "config.yaml loaded: {} rule set(s) enabled",
                    trust.config.rule_sets().len()
                ),
            }
        }
        let affected = Affected::between(&self.trust, &trust);
        if trust.config != self.trust.config {
            self.notifier.configure(&trust.config);
        }
        self.trust = trust;
        if !affected.is_empty() {
            // Only the jobs the change can decide differently: the others' reviews stand.
            let n = self.reevaluate(&affected);
            log::info!(
                "trust changed: {} allowlisted sender(s), {} trusted code pattern(s); re-evaluating {n} of {} pending job(s)",
                self.trust.allowlist.entries.len(),
                self.trust.trusted.len(),
                self.jobs.known_len()
            );
        }
        self.review_by_groups();
    }

    /// Applies the peer config to requests, approvals, dataset grants and answers (the caller
    /// holds the change lock); returns `trust` with the approved peers as they are now.
    pub(super) fn sync_peers(&mut self, mut trust: Trust) -> Trust {
        match crate::store::peers::sync(&self.layout, &trust.config, "daemon") {
            Ok(report) => {
                for p in &report.problems {
                    if !self.peer_notes.contains(p) {
                        log::warn!("{p}");
                    }
                }
                for w in &report.waiting {
                    if !self.peer_notes.contains(w) {
                        log::info!("{w}");
                    }
                }
                self.peer_notes = report.problems.into_iter().chain(report.waiting).collect();
            }
            Err(e) => {
                let msg = format!("could not process the peers: {e}");
                if !self.peer_notes.contains(&msg) {
                    log::error!("{msg}");
                }
                self.peer_notes = vec![msg];
            }
        }
        trust.peers = crate::store::peers::approved_listing(&self.layout).0;
        trust
    }

    /// Records in the audit chain the store changes that no command recorded (made by hand, in a
    /// file manager or editor), so every change to what is trusted is in the chain.
    fn audit_hand_edits(&mut self, new: &Trust) {
        let log = AuditLog::new(&self.layout);
        // Only store changes matter here, however many decisions were recorded meanwhile.
        let (recent, end) = log.read_since_where(self.audit_offset, |line| {
            contains(line, b"\"allowlist.") || contains(line, b"\"trusted_code.")
        });
        self.audit_offset = end;
        let recorded = |event: &AuditEvent, email: Option<&str>, sig: Option<&str>| {
            recent.iter().any(|e| {
                e.body.event == *event
                    && e.body.email.as_deref() == email
                    && e.body.signature.as_deref() == sig
            })
        };
        let mut events = Vec::new();
        let mut push = |event: AuditEvent, email: Option<&str>, sig: Option<&str>| {
            if !recorded(&event, email, sig) {
                events.push(audit::Event {
                    event,
                    actor: audit::Actor::Filesystem,
                    email: email.map(str::to_owned),
                    signature: sig.map(str::to_owned),
                    outcome: "changed".into(),
                    reasons: vec![
                        "a file in the app data folder was created or deleted directly".into(),
                    ],
                    ..audit::Event::default()
                });
            }
        };
        let (old_a, new_a) = (&self.trust.allowlist.entries, &new.allowlist.entries);
        for m in new_a.keys().filter(|m| !old_a.contains_key(*m)) {
            push(AuditEvent::AllowlistAdd, Some(m), None);
        }
        for m in old_a.keys().filter(|m| !new_a.contains_key(*m)) {
            push(AuditEvent::AllowlistRemove, Some(m), None);
        }
        for s in new
            .trusted
            .iter()
            .filter(|s| !self.trust.trusted.contains(*s))
        {
            push(AuditEvent::TrustedCodeMark, None, Some(s));
        }
        for s in self
            .trust
            .trusted
            .iter()
            .filter(|s| !new.trusted.contains(*s))
        {
            push(AuditEvent::TrustedCodeUnmark, None, Some(s));
        }
        if let Err(e) = log.append(&events) {
            log::error!("could not append to the audit chain: {e}");
        }
        self.audit_offset = log.read_since_where(self.audit_offset, |_| false).1;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
