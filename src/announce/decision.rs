//! A decision as it is announced: what hooks receive on stdin and mails describe.

use serde::{Deserialize, Serialize};

use crate::store::decision_log::Record;

/// A decision as hooks receive it on stdin (one JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub uid: String,
    pub name: Option<String>,
    pub requester: Option<String>,
    /// approved, rejected, changes_requested, expired, sent_back, or for jobs that start waiting
    /// for the owner: waiting, flagged.
    pub outcome: String,
    /// allowlist, trusted_code, rules, human; null for expiry and waiting jobs.
    pub method: Option<String>,
    pub signature: Option<String>,
    pub reasons: Vec<String>,
    /// daemon, cli, web, mcp.
    pub actor: String,
    pub time: String,
}

impl Decision {
    pub fn from_record(e: &Record, actor: &str) -> Decision {
        Decision {
            uid: e.uid.clone(),
            name: e.name.clone(),
            requester: e.requester.clone(),
            outcome: e.outcome.as_str().to_string(),
            method: e.method.as_ref().map(|m| m.as_str().to_string()),
            signature: e.signature.clone(),
            reasons: e.reasons.clone(),
            actor: actor.to_string(),
            time: e.time.clone(),
        }
    }

    /// Whether this is a job starting to wait for the owner rather than a decision.
    pub fn is_pending(&self) -> bool {
        matches!(self.outcome.as_str(), "waiting" | "flagged")
    }
}

#[cfg(test)]
impl Decision {
    pub(crate) fn sample(outcome: &str) -> Decision {
        Decision {
            uid: "u-1".into(),
            name: Some("Count\nrows".into()),
            requester: Some("r@example.org".into()),
            outcome: outcome.into(),
            method: Some("trusted_code".into()),
            signature: Some("ab".repeat(32)),
            reasons: vec!["the code is trusted".into()],
            actor: "daemon".into(),
            time: "2026-01-01T00:00:00".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_serialize_with_every_field() {
        let text = serde_json::to_string(&Decision::sample("rejected")).unwrap();
        let sig = "ab".repeat(32);
        // Every field, in this order, whatever its value.
        assert_eq!(
            text,
            format!(
                r#"{{"uid":"u-1","name":"Count\nrows","requester":"r@example.org","outcome":"rejected","method":"trusted_code","signature":"{sig}","reasons":["the code is trusted"],"actor":"daemon","time":"2026-01-01T00:00:00"}}"#
            )
        );
    }
}
