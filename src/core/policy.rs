//! The decision rules (SPEC §6) as a pure function from facts to a verdict with reasons, and the
//! words decisions are recorded with (how a job was approved, what happened to it).
//!
//! Order: a job that is invalid or blocked waits, flagged; a sender in the allowlist is approved;
//! code whose signature is trusted is approved; otherwise the job waits for the owner.

use serde::{Deserialize, Serialize};

use crate::core::attestation::Standing;
use crate::core::config::RuleCheck;

/// Everything the policy looks at, gathered by the caller.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub requester: Option<&'a str>,
    /// Why the job cannot be auto-approved as it stands.
    pub problems: &'a [String],
    /// Why neither trusted code nor rules may approve it (files the signature leaves out); an
    /// allowlisted sender's job is approved whatever its code.
    pub code_doubts: &'a [String],
    pub sender_allowlisted: bool,
    /// The job's proof met with the sender's pin (SPEC §9); `None` when no proof facts were
    /// gathered, which counts as an unsigned job from an `optional` sender.
    pub standing: Option<&'a Standing>,
    pub signature: Option<&'a str>,
    pub code_trusted: bool,
    /// Each configured rule set checked against the job (empty when rules are off).
    pub rules: &'a [RuleCheck],
    /// `approval.enabled: false`: nobody reviews what the rules do not approve.
    pub no_human_gate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Approve now.
    Approve,
    /// Leave pending for the owner.
    Wait,
    /// Leave pending for the owner, flagged: the job is malformed or unsafe to auto-approve.
    Invalid,
}

/// An enum written as one word in files and JSON: `as_str` is its only spelling, used by serde,
/// `Display`, logs and metrics alike.
macro_rules! word_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl Word for $name {
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let word = String::deserialize(d)?;
                $name::parse(&word)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&word, &[$($word),*]))
            }
        }
    };
}

word_enum! {
    /// How a job was approved: by [`decide`] (allowlist, trusted code, rules) or by the owner.
    pub enum Method {
        Allowlist = "allowlist",
        TrustedCode = "trusted_code",
        Rules = "rules",
        /// The owner's verdict through the gate; [`decide`] never answers it.
        Human = "human",
    }
}

word_enum! {
    /// What happened to a job, as the decision log, the audit chain and announcements record it.
    pub enum Disposition {
        Approved = "approved",
        /// Left pending for the owner ([`Outcome::Wait`]).
        Waiting = "waiting",
        /// Left pending for the owner, flagged ([`Outcome::Invalid`]).
        Flagged = "flagged",
        /// An approval the mover refused (the job changed): it is evaluated again.
        SentBack = "sent_back",
        /// An approval the filesystem refused (audited once per distinct failure).
        ApprovalFailed = "approval_failed",
        Rejected = "rejected",
        ChangesRequested = "changes_requested",
        Expired = "expired",
        /// Found in approved/ or running/ with no decision that explains it.
        Unexplained = "unexplained",
        RecoveryCompleted = "recovery_completed",
        RecoverySentBack = "recovery_sent_back",
        RecoveryFailed = "recovery_failed",
    }
}

/// An enum spelled as one word (see [`word_enum`]).
pub trait Word: Copy {
    fn as_str(self) -> &'static str;
}

/// A word read back from a file another version may have written: one this version knows, or
/// the word as written, so the line still reads (and anything computed over it still matches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recorded<T> {
    Known(T),
    Unknown(String),
}

impl<T: Word> Recorded<T> {
    pub fn known(&self) -> Option<T> {
        match self {
            Recorded::Known(t) => Some(*t),
            Recorded::Unknown(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Recorded::Known(t) => t.as_str(),
            Recorded::Unknown(word) => word,
        }
    }
}

impl<T> From<T> for Recorded<T> {
    fn from(t: T) -> Recorded<T> {
        Recorded::Known(t)
    }
}

impl<T: Word> std::fmt::Display for Recorded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    pub reasons: Vec<String>,
}

const WAITING: &str = "it waits for the owner to approve, reject or request changes";
const NO_GATE: &str = "approval.enabled is false: nobody reviews what the trust rules do not approve, so it is rejected";

/// What becomes of a job no rule approves.
fn waiting(f: &Facts) -> &'static str {
    if f.no_human_gate { NO_GATE } else { WAITING }
}

pub fn decide(f: &Facts) -> Verdict {
    let sender = f.requester.unwrap_or("(unknown sender)");
    if !f.problems.is_empty() {
        let mut reasons: Vec<String> = f
            .problems
            .iter()
            .map(|p| format!("not auto-approved: {p}"))
            .collect();
        reasons.push(waiting(f).into());
        return Verdict {
            outcome: Outcome::Invalid,
            method: None,
            reasons,
        };
    }
    // A proof that does not hold is a forgery or a damaged job: nothing approves it unseen.
    if let Some(s @ Standing::Invalid { .. }) = f.standing {
        return Verdict {
            outcome: Outcome::Invalid,
            method: None,
            reasons: vec![s.reason(sender).unwrap_or_default(), waiting(f).into()],
        };
    }
    let mut reasons = Vec::new();
    match f.standing {
        _ if !f.sender_allowlisted => {
            reasons.push(format!("sender {sender} is not in the allowlist"));
        }
        Some(Standing::Proven { fingerprint } | Standing::ProvenFirst { fingerprint }) => {
            reasons.push(format!(
                "sender {sender} is in the allowlist and proved the job is theirs with their identity key {fingerprint}"
            ));
            return Verdict {
                outcome: Outcome::Approve,
                method: Some(Method::Allowlist),
                reasons,
            };
        }
        None | Some(Standing::Unverified) => {
            reasons.push(format!(
                "sender {sender} is in the allowlist (the sender address is declared by whoever wrote the job)"
            ));
            if f.standing.is_some() {
                reasons.push("unverified sender: the job carries no proof, and this sender's proofs are optional".into());
            }
            return Verdict {
                outcome: Outcome::Approve,
                method: Some(Method::Allowlist),
                reasons,
            };
        }
        Some(other) => reasons.extend(other.reason(sender)),
    }
    if !f.code_doubts.is_empty() {
        reasons.extend(
            f.code_doubts
                .iter()
                .map(|d| format!("not approved by trusted code or rules: {d}")),
        );
        reasons.push(waiting(f).into());
        return Verdict {
            outcome: Outcome::Invalid,
            method: None,
            reasons,
        };
    }
    match f.signature {
        Some(sig) if f.code_trusted => {
            reasons.push(trusted_code_reason(sig));
            return Verdict {
                outcome: Outcome::Approve,
                method: Some(Method::TrustedCode),
                reasons,
            };
        }
        Some(sig) => reasons.push(format!("code signature {sig} is not marked trusted")),
        None => reasons.push("the code signature could not be computed".into()),
    }
    if let Some(rule) = f.rules.iter().find(|r| r.matches()) {
        let conditions: Vec<&str> = rule.conditions.iter().map(|c| c.what.as_str()).collect();
        reasons.push(format!(
            "rule set {:?} matches in full: {}",
            rule.name,
            conditions.join("; ")
        ));
        return Verdict {
            outcome: Outcome::Approve,
            method: Some(Method::Rules),
            reasons,
        };
    }
    if f.rules.is_empty() {
        reasons.push("no rule set is enabled in config.yaml".into());
    }
    for rule in f.rules {
        let failed: Vec<&str> = rule
            .conditions
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect();
        reasons.push(format!(
            "rule set {:?} does not match: {}",
            rule.name,
            failed.join("; ")
        ));
    }
    reasons.push(waiting(f).into());
    Verdict {
        outcome: Outcome::Wait,
        method: None,
        reasons,
    }
}

/// The reason of an approval by trusted code (also how the Trusted code tab finds, in the audit
/// chain, the jobs a pattern approved).
pub(crate) fn trusted_code_reason(sig: &str) -> String {
    format!("code signature {sig} is marked trusted (identical name, description, tags and code)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "7eae1d2503de7ecf65a6e2f49d7f6ca7a19b298a6f00cae1d789ef434bdf4906";

    fn facts<'a>() -> Facts<'a> {
        Facts {
            requester: Some("bob@x.org"),
            problems: &[],
            code_doubts: &[],
            sender_allowlisted: false,
            standing: None,
            signature: Some(SIG),
            code_trusted: false,
            rules: &[],
            no_human_gate: false,
        }
    }

    #[test]
    fn without_a_human_gate_what_would_wait_is_said_to_be_rejected() {
        let v = decide(&facts());
        assert_eq!(v.outcome, Outcome::Wait);
        assert!(v.reasons.last().unwrap().contains("waits for the owner"));
        let v = decide(&Facts {
            no_human_gate: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Wait);
        assert!(
            v.reasons
                .last()
                .unwrap()
                .contains("approval.enabled is false"),
            "{v:?}"
        );
    }

    #[test]
    fn a_trusted_sender_is_trusted_only_as_far_as_their_proof_goes() {
        let fp = "sha256:ab".to_string();
        let allowlisted = |s: &Standing| {
            decide(&Facts {
                sender_allowlisted: true,
                standing: Some(s),
                ..facts()
            })
        };
        let proven = allowlisted(&Standing::Proven {
            fingerprint: fp.clone(),
        });
        assert_eq!(proven.outcome, Outcome::Approve);
        assert!(proven.reasons[0].contains("proved the job"));
        let unverified = allowlisted(&Standing::Unverified);
        assert_eq!(unverified.outcome, Outcome::Approve);
        assert!(
            unverified
                .reasons
                .iter()
                .any(|r| r.starts_with("unverified sender"))
        );
        assert_eq!(allowlisted(&Standing::Unsigned).outcome, Outcome::Wait);
        let changed = Standing::KeyChanged {
            pinned: fp.clone(),
            now: "sha256:cd".into(),
            pinned_at: None,
        };
        assert_eq!(allowlisted(&changed).outcome, Outcome::Wait);
        // An unproven sender's trusted code is still trusted code.
        let v = decide(&Facts {
            sender_allowlisted: true,
            standing: Some(&Standing::Unsigned),
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.method, Some(Method::TrustedCode));
        // A proof that does not hold stops everything.
        let bad = Standing::Invalid {
            reason: "signed for another job".into(),
        };
        let v = decide(&Facts {
            standing: Some(&bad),
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Invalid);
        assert!(v.reasons[0].contains("proof does not match: signed for another job"));
    }

    fn rule(name: &str, ok: bool) -> RuleCheck {
        RuleCheck {
            name: name.into(),
            conditions: vec![crate::core::config::Condition {
                what: format!("{name} condition"),
                ok,
            }],
        }
    }

    #[test]
    fn first_fully_matching_rule_set_approves_after_sender_and_code() {
        let rules = [rule("a", false), rule("b", true)];
        let v = decide(&Facts {
            rules: &rules,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Approve);
        assert_eq!(v.method, Some(Method::Rules));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("\"b\" matches in full")),
            "{:?}",
            v.reasons
        );
        let rules = [rule("a", false)];
        let v = decide(&Facts {
            rules: &rules,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Wait);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("\"a\" does not match: a condition"))
        );
        // Problems still block rule approval.
        let problems = vec!["code/x is a symbolic link".to_string()];
        let rules = [rule("b", true)];
        let v = decide(&Facts {
            rules: &rules,
            problems: &problems,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Invalid);
    }

    #[test]
    fn allowlisted_sender_is_approved_first() {
        let v = decide(&Facts {
            sender_allowlisted: true,
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Approve);
        assert_eq!(v.method, Some(Method::Allowlist));
        assert!(v.reasons[0].contains("bob@x.org is in the allowlist"));
    }

    #[test]
    fn trusted_code_from_unknown_sender_is_approved() {
        let v = decide(&Facts {
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Approve);
        assert_eq!(v.method, Some(Method::TrustedCode));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains(SIG) && r.contains("trusted"))
        );
    }

    #[test]
    fn unknown_sender_and_code_waits_with_every_reason() {
        let v = decide(&facts());
        assert_eq!(v.outcome, Outcome::Wait);
        assert_eq!(v.method, None);
        assert!(v.reasons.iter().any(|r| r.contains("not in the allowlist")));
        assert!(v.reasons.iter().any(|r| r.contains("not marked trusted")));
        assert!(v.reasons.last().unwrap().contains("waits for the owner"));
    }

    #[test]
    fn problems_block_every_automatic_approval() {
        let problems = vec!["code/data is a symbolic link".to_string()];
        let v = decide(&Facts {
            problems: &problems,
            sender_allowlisted: true,
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Invalid);
        assert!(v.reasons[0].contains("symbolic link"));
    }

    #[test]
    fn code_doubts_stop_trusted_code_and_rules_but_not_the_allowlist() {
        let doubts = vec!["code/steps/_.syftperm is an old-style permission file".to_string()];
        let rules = [rule("b", true)];
        let v = decide(&Facts {
            code_doubts: &doubts,
            code_trusted: true,
            rules: &rules,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Invalid);
        assert!(v.reasons.iter().any(|r| r.contains("steps/_.syftperm")));
        let v = decide(&Facts {
            code_doubts: &doubts,
            sender_allowlisted: true,
            ..facts()
        });
        assert_eq!(v.method, Some(Method::Allowlist));
    }

    #[test]
    fn words_read_back_as_written() {
        for m in Method::ALL {
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), *m);
        }
        for d in Disposition::ALL {
            let r: Recorded<Disposition> = serde_json::from_str(&format!("\"{d}\"")).unwrap();
            assert_eq!(r, Recorded::Known(*d));
        }
        // A word this version does not know is kept, byte for byte.
        let r: Recorded<Disposition> = serde_json::from_str("\"quarantined\"").unwrap();
        assert_eq!(r, Recorded::Unknown("quarantined".into()));
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"quarantined\"");
        assert!(serde_json::from_str::<Method>("\"quarantined\"").is_err());
    }

    #[test]
    fn trusted_flag_without_signature_does_not_approve() {
        let v = decide(&Facts {
            signature: None,
            code_trusted: true,
            ..facts()
        });
        assert_eq!(v.outcome, Outcome::Wait);
    }
}
