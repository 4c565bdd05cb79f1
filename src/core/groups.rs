//! Reviewer groups (`approval` in `config.yaml`): the section's keys and checks, and the pure
//! rules of delegated review: who may vote on a job, whether one vote may be counted, and whether
//! the votes counted decide it. The file system (verdict files, answers, read grants) is at the
//! edges, in `store::verdicts`, `store::grants` and `service::votes`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::core::attestation::{self, Attestation};
use crate::core::email;
use crate::error::{Error, Result};

/// The most approvals that can be required (a larger number is a typo, not a policy).
pub const MAX_REQUIRED: u32 = 100;
/// The statement `type` a reviewer signs with their identity key.
pub const VERDICT_STATEMENT_TYPE: &str = "syft-reviewer.verdict-attestation";

/// The human gate: whether there is one, who besides the owner decides, and how many must agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// False: no human gate; a job no trust rule approves is rejected at once.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Jobs wait at most this long for the owner, whatever their own timeout says.
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// Named groups of reviewers: exact emails, or `*@domain` for everyone at exactly that domain.
    #[serde(default)]
    pub reviewer_groups: BTreeMap<String, Vec<String>>,
    /// How many distinct reviewers must approve the same signature (the owner alone suffices).
    #[serde(default = "one")]
    pub required_approvals: u32,
}

impl Default for ApprovalConfig {
    fn default() -> ApprovalConfig {
        ApprovalConfig {
            enabled: true,
            max_timeout_seconds: None,
            reviewer_groups: BTreeMap::new(),
            required_approvals: 1,
        }
    }
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// One entry of a group, as checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Member<'a> {
    Email(&'a str),
    Domain(&'a str),
}

fn member(entry: &str) -> Member<'_> {
    match entry.strip_prefix("*@") {
        Some(domain) => Member::Domain(domain),
        None => Member::Email(entry),
    }
}

impl ApprovalConfig {
    /// Names and members valid, members given exactly, and a reachable number of approvals.
    pub(crate) fn check(&self) -> Result<()> {
        let at = "config.yaml is invalid: approval";
        if !(1..=MAX_REQUIRED).contains(&self.required_approvals) {
            return Err(Error::invalid(
                format!("{at}.required_approvals is {}", self.required_approvals),
                format!("use 1 to {MAX_REQUIRED} (distinct reviewers who must approve)"),
            ));
        }
        for (name, members) in &self.reviewer_groups {
            let ok_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b));
            if !ok_name {
                return Err(Error::invalid(
                    format!("{at}.reviewer_groups has a group named {name:?}"),
                    "name groups with 1 to 64 letters, digits, spaces, - _ or .",
                ));
            }
            if members.is_empty() {
                return Err(Error::invalid(
                    format!("{at}.reviewer_groups.{name} has no members"),
                    "list reviewer emails, or remove the group",
                ));
            }
            for m in members {
                let valid = match member(m) {
                    Member::Email(e) => email::is_valid(e),
                    Member::Domain(d) => !d.contains('*') && email::is_valid(&format!("x@{d}")),
                };
                if !valid {
                    return Err(Error::invalid(
                        format!("{at}.reviewer_groups.{name}: member {m:?} is not valid"),
                        "write lower-case emails like alice@lab.org, or *@lab.org for everyone at exactly lab.org (no other wildcards)",
                    ));
                }
            }
        }
        let has_domain = self
            .reviewer_groups
            .values()
            .flatten()
            .any(|m| matches!(member(m), Member::Domain(_)));
        let named = self.named_reviewers().len();
        if !self.reviewer_groups.is_empty()
            && !has_domain
            && named < self.required_approvals as usize
        {
            return Err(Error::invalid(
                format!(
                    "{at}.required_approvals is {}, but reviewer_groups name only {named} reviewer(s)",
                    self.required_approvals
                ),
                "lower required_approvals or add reviewers; otherwise no job could be approved by them",
            ));
        }
        Ok(())
    }

    /// The groups `who` belongs to (empty: not a reviewer). The owner is not a member of any:
    /// their own verdict goes through the owner's gate.
    pub fn groups_of(&self, owner: &str, who: &str) -> Vec<String> {
        let who = who.to_lowercase();
        if who == owner.to_lowercase() || !email::is_valid(&who) {
            return Vec::new();
        }
        let domain = who.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        self.reviewer_groups
            .iter()
            .filter(|(_, members)| {
                members.iter().any(|m| match member(m) {
                    Member::Email(e) => e == who,
                    Member::Domain(d) => d == domain,
                })
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The reviewers named by exact email (who can be granted read access), without `owner`.
    pub fn named_reviewers_except(&self, owner: &str) -> BTreeSet<String> {
        let mut all = self.named_reviewers();
        all.remove(&owner.to_lowercase());
        all
    }

    fn named_reviewers(&self) -> BTreeSet<String> {
        self.reviewer_groups
            .values()
            .flatten()
            .filter_map(|m| match member(m) {
                Member::Email(e) => Some(e.to_string()),
                Member::Domain(_) => None,
            })
            .collect()
    }

    /// True when anyone besides the owner may decide.
    pub fn has_reviewers(&self) -> bool {
        !self.reviewer_groups.is_empty()
    }
}

/// A reviewer's verdict word (the same three as the owner's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    Approve,
    Reject,
    RequestChanges,
}

impl Vote {
    pub fn parse(s: &str) -> Option<Vote> {
        match s.trim().to_lowercase().replace('-', "_").as_str() {
            "approve" => Some(Vote::Approve),
            "reject" => Some(Vote::Reject),
            "request_changes" => Some(Vote::RequestChanges),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Reject => "reject",
            Vote::RequestChanges => "request_changes",
        }
    }
}

/// Where the job a vote is about stands when the vote is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Pending, with the signature of its code now (none: not read in full).
    Pending { signature: Option<String> },
    /// Decided (or otherwise out of `pending/`): the status folder it is in.
    Elsewhere(String),
    /// In no status folder.
    Missing,
}

/// One verdict file, as read: who wrote it (its folder's name, which the server's permission
/// check proves), what it says, and how its attestation, if any, held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    /// The email its folder is named with.
    pub folder: String,
    /// The `reviewer` field, when the file names one.
    pub claimed: Option<String>,
    pub vote: Vote,
    pub signature: String,
    pub rationale: Option<String>,
    /// None: not attested; Some(Ok(fingerprint)); Some(Err(why)).
    pub attested: Option<std::result::Result<String, String>>,
}

/// Why a vote is not counted. Each is answered in the reviewer's folder and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotMember { who: String },
    OtherFolder { folder: String, claimed: String },
    BadAttestation(String),
    Stale { voted: String, now: Option<String> },
    NotPending(String),
    NoSuchJob,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotMember { who } => write!(
                f,
                "{who} is not a member of this datasite's approval.reviewer_groups"
            ),
            Refusal::OtherFolder { folder, claimed } => write!(
                f,
                "the verdict is signed or written as {claimed}, but it is in the folder of {folder}: each reviewer writes only in the folder named with their own email"
            ),
            Refusal::BadAttestation(why) => write!(f, "its attestation does not hold: {why}"),
            Refusal::Stale { voted, now } => write!(
                f,
                "it is for signature {voted}, but the job's code now has signature {}: review the job again",
                now.as_deref()
                    .unwrap_or("(none: the code could not be read in full)")
            ),
            Refusal::NotPending(status) => {
                write!(f, "the job is no longer pending (it is {status})")
            }
            Refusal::NoSuchJob => f.write_str("there is no such job in the owner's queue"),
        }
    }
}

/// Whether a ballot may be counted now: from a member, in their own folder, with a holding
/// attestation if it has one, for the job's current code, while the job is pending.
pub fn admit(
    cfg: &ApprovalConfig,
    owner: &str,
    job: &JobState,
    b: &Ballot,
) -> std::result::Result<Vec<String>, Refusal> {
    if let Some(claimed) = &b.claimed
        && claimed.to_lowercase() != b.folder
    {
        return Err(Refusal::OtherFolder {
            folder: b.folder.clone(),
            claimed: claimed.clone(),
        });
    }
    let groups = cfg.groups_of(owner, &b.folder);
    if groups.is_empty() {
        return Err(Refusal::NotMember {
            who: b.folder.clone(),
        });
    }
    if let Some(Err(why)) = &b.attested {
        return Err(Refusal::BadAttestation(why.clone()));
    }
    match job {
        JobState::Missing => Err(Refusal::NoSuchJob),
        JobState::Elsewhere(s) => Err(Refusal::NotPending(s.clone())),
        JobState::Pending { signature } if signature.as_deref() != Some(b.signature.as_str()) => {
            Err(Refusal::Stale {
                voted: b.signature.clone(),
                now: signature.clone(),
            })
        }
        JobState::Pending { .. } => Ok(groups),
    }
}

/// What the counted votes on one job come to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Tally {
    /// A member's reject or request for changes: it decides on its own.
    Refused { by: String, vote: Vote },
    /// Enough distinct members approved the same signature.
    Approved { by: Vec<String> },
    /// Still waiting: who approved so far, how many more are needed.
    Open { approvals: Vec<String>, needed: u32 },
}

/// Counts admitted ballots (each reviewer once; every ballot already for the current signature).
/// A refusal wins over approvals, the first refusal (by reviewer order) deciding.
pub fn tally(cfg: &ApprovalConfig, admitted: &[&Ballot]) -> Tally {
    let mut approvals = BTreeSet::new();
    for b in admitted {
        match b.vote {
            Vote::Reject | Vote::RequestChanges => {
                return Tally::Refused {
                    by: b.folder.clone(),
                    vote: b.vote,
                };
            }
            Vote::Approve => {
                approvals.insert(b.folder.clone());
            }
        }
    }
    let have = u32::try_from(approvals.len()).unwrap_or(u32::MAX);
    let approvals: Vec<String> = approvals.into_iter().collect();
    if have >= cfg.required_approvals {
        Tally::Approved { by: approvals }
    } else {
        Tally::Open {
            approvals,
            needed: cfg.required_approvals - have,
        }
    }
}

/// The facts a reviewer signs: the owner, the reviewer, the job, the code seen and the verdict.
#[derive(Debug, Clone, Copy)]
pub struct VerdictClaim<'a> {
    pub owner: &'a str,
    pub reviewer: &'a str,
    pub uid: &'a str,
    pub signature: &'a str,
    pub verdict: Vote,
    pub rationale: &'a str,
}

/// The canonical JSON a reviewer signs (emails lower-cased).
pub fn verdict_statement(c: &VerdictClaim<'_>) -> String {
    let value = serde_json::json!({
        "owner_email": c.owner.to_lowercase(),
        "rationale": c.rationale,
        "reviewer_email": c.reviewer.to_lowercase(),
        "signature": c.signature,
        "type": VERDICT_STATEMENT_TYPE,
        "uid": c.uid,
        "v": 1,
        "verdict": c.verdict.as_str(),
    });
    let bytes = crate::core::canonical::value_to_vec(value).unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Signs a verdict with the reviewer's identity key (`key_id`: their DID verification method).
pub fn sign_verdict(
    key: &ed25519_dalek::SigningKey,
    key_id: &str,
    c: &VerdictClaim<'_>,
) -> Attestation {
    attestation::sign_text(key, key_id, &verdict_statement(c))
}

/// Checks a verdict's attestation against the reviewer's published key.
pub fn verify_verdict(
    att: &Attestation,
    c: &VerdictClaim<'_>,
    key_id: &str,
    public: &[u8; 32],
) -> std::result::Result<(), attestation::Refusal> {
    attestation::verify_text(att, &verdict_statement(c), key_id, public)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "owner@x.org";

    fn cfg(yaml: &str) -> Result<ApprovalConfig> {
        crate::core::config::Config::parse(yaml).map(|c| c.approval)
    }

    fn ballot(folder: &str, vote: Vote, sig: &str) -> Ballot {
        Ballot {
            folder: folder.into(),
            claimed: None,
            vote,
            signature: sig.into(),
            rationale: None,
            attested: None,
        }
    }

    #[test]
    fn groups_are_exact_emails_or_exact_domains() {
        let c = cfg("approval:\n  reviewer_groups:\n    stats: [alice@lab.org, '*@hospital.org']\n    ethics: [bob@uni.edu]\n").unwrap();
        assert_eq!(c.groups_of(OWNER, "Alice@Lab.org"), vec!["stats"]);
        assert_eq!(c.groups_of(OWNER, "carol@hospital.org"), vec!["stats"]);
        assert!(c.groups_of(OWNER, "carol@sub.hospital.org").is_empty());
        assert!(c.groups_of(OWNER, "carol@evilhospital.org").is_empty());
        assert_eq!(c.groups_of(OWNER, "bob@uni.edu"), vec!["ethics"]);
        assert!(c.groups_of("bob@uni.edu", "bob@uni.edu").is_empty());
        assert!(c.enabled && c.required_approvals == 1);
        for bad in [
            "approval:\n  reviewer_groups:\n    g: ['*.org']\n",
            "approval:\n  reviewer_groups:\n    g: ['*@*.org']\n",
            "approval:\n  reviewer_groups:\n    g: ['a*@x.org']\n",
            "approval:\n  reviewer_groups:\n    g: []\n",
            "approval:\n  reviewer_groups:\n    'a/b': [a@x.org]\n",
            "approval:\n  required_approvals: 0\n",
            "approval:\n  reviewer_groups:\n    g: [a@x.org]\n  required_approvals: 2\n",
            "approval:\n  enabled: maybe\n",
            "approval:\n  reviewer_group: {}\n",
        ] {
            assert!(cfg(bad).is_err(), "{bad}");
        }
        let e = cfg("approval:\n  reviewer_groups:\n    g: [a@x.org]\n  required_approvals: 2\n")
            .unwrap_err();
        assert!(e.to_string().contains("only 1 reviewer"), "{e}");
    }

    #[test]
    fn a_vote_counts_only_from_a_member_in_their_folder_for_the_current_code() {
        let c = cfg("approval:\n  reviewer_groups:\n    g: [alice@x.org, bob@x.org]\n").unwrap();
        let pending = JobState::Pending {
            signature: Some("s1".into()),
        };
        let ok = ballot("alice@x.org", Vote::Approve, "s1");
        assert_eq!(admit(&c, OWNER, &pending, &ok), Ok(vec!["g".to_string()]));
        let eve = ballot("eve@x.org", Vote::Approve, "s1");
        assert!(matches!(
            admit(&c, OWNER, &pending, &eve),
            Err(Refusal::NotMember { .. })
        ));
        let other = Ballot {
            claimed: Some("bob@x.org".into()),
            ..ok.clone()
        };
        assert!(matches!(
            admit(&c, OWNER, &pending, &other),
            Err(Refusal::OtherFolder { .. })
        ));
        let stale = ballot("alice@x.org", Vote::Approve, "s0");
        assert!(matches!(
            admit(&c, OWNER, &pending, &stale),
            Err(Refusal::Stale { .. })
        ));
        let decided = JobState::Elsewhere("approved".into());
        assert_eq!(
            admit(&c, OWNER, &decided, &ok),
            Err(Refusal::NotPending("approved".into()))
        );
        let forged = Ballot {
            attested: Some(Err("bad".into())),
            ..ok
        };
        assert!(matches!(
            admit(&c, OWNER, &pending, &forged),
            Err(Refusal::BadAttestation(_))
        ));
    }

    #[test]
    fn a_refusal_decides_and_approvals_need_distinct_reviewers() {
        let c = cfg("approval:\n  reviewer_groups:\n    g: [a@x.org, b@x.org, c@x.org]\n  required_approvals: 2\n").unwrap();
        let a = ballot("a@x.org", Vote::Approve, "s");
        let b = ballot("b@x.org", Vote::Approve, "s");
        let c_rej = ballot("c@x.org", Vote::Reject, "s");
        assert_eq!(
            tally(&c, &[&a]),
            Tally::Open {
                approvals: vec!["a@x.org".into()],
                needed: 1
            }
        );
        assert_eq!(
            tally(&c, &[&a, &a]),
            Tally::Open {
                approvals: vec!["a@x.org".into()],
                needed: 1
            }
        );
        assert_eq!(
            tally(&c, &[&a, &b]),
            Tally::Approved {
                by: vec!["a@x.org".into(), "b@x.org".into()]
            }
        );
        assert_eq!(
            tally(&c, &[&a, &c_rej, &b]),
            Tally::Refused {
                by: "c@x.org".into(),
                vote: Vote::Reject
            }
        );
    }

    #[test]
    fn a_signed_verdict_holds_only_for_its_own_facts() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key().to_bytes();
        let id = "did:web:x#identity-key";
        let claim = VerdictClaim {
            owner: OWNER,
            reviewer: "a@x.org",
            uid: "u1",
            signature: "s",
            verdict: Vote::Approve,
            rationale: "",
        };
        let att = sign_verdict(&key, id, &claim);
        assert!(verify_verdict(&att, &claim, id, &public).is_ok());
        for other in [
            VerdictClaim {
                reviewer: "b@x.org",
                ..claim
            },
            VerdictClaim {
                verdict: Vote::Reject,
                ..claim
            },
            VerdictClaim {
                signature: "t",
                ..claim
            },
        ] {
            assert!(verify_verdict(&att, &other, id, &public).is_err());
        }
    }
}
