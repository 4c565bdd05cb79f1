//! Gathers the facts about a job (its folder, the stores) and asks the policy. The daemon, the
//! `explain` command and the post-move check all go through [`review`], so a dry run and a real
//! decision can never disagree.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::attestation::{self, Pin, Standing};
use crate::core::config::{self, Config, RuleCheck};
use crate::core::policy::{self, Facts, Verdict};
use crate::error::Result;
use crate::queue::{self, Inspection};
use crate::store::allowlist::{Allowlist, Listing};
use crate::store::trusted::TrustedCode;
use crate::syftbox::Layout;

/// A snapshot of what the owner trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub allowlist: Listing,
    pub trusted: HashSet<String>,
    /// The names of the trusted code: a job named so is decided before others in a flood (an
    /// order of work only; approval is by signature).
    pub trusted_names: HashSet<String>,
    /// Store files that could not be used, with the reason (reported, never used).
    pub invalid: Vec<String>,
    /// The rule config in force.
    pub config: Config,
    /// Why `config.yaml` could not be used, if it could not (then `config` is the previous one).
    pub config_error: Option<String>,
    /// Approved peers.
    pub peers: std::collections::BTreeSet<String>,
    /// Where senders' proofs are checked: the allowlist folder (their pins) and the data folder
    /// (their synced `did.json`). `None` (a bare snapshot): no proofs are looked at.
    pub proofs: Option<ProofPlaces>,
}

#[derive(Debug, Clone)]
pub struct ProofPlaces {
    pub allowlist_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Trust {
    pub fn load(layout: &Layout) -> Result<Trust> {
        let allowlist = Allowlist::new(layout).load()?;
        let store = TrustedCode::new(layout);
        let (trusted, bad_trusted) = store.signatures()?;
        let trusted_names = store
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.record.name)
            .collect();
        let mut invalid: Vec<String> = allowlist
            .invalid
            .iter()
            .map(|(name, why)| format!("allowlist/{name}: {why}"))
            .collect();
        invalid.extend(bad_trusted.iter().map(|name| {
            format!("trusted_code/{name}: not named <64 hex signature>.json, ignored")
        }));
        let (config, config_error) = match Config::load(&layout.config_file()) {
            Ok(c) => (c, None),
            Err(e) => (Config::default(), Some(e.to_string())),
        };
        Ok(Trust {
            allowlist,
            trusted,
            trusted_names,
            invalid,
            config,
            config_error,
            peers: crate::store::peers::approved(layout),
            proofs: Some(ProofPlaces {
                allowlist_dir: layout.allowlist_dir(),
                data_dir: layout.data_dir.clone(),
            }),
        })
    }

    /// Like [`Trust::load`], but an invalid config leaves `previous`'s config in force.
    pub fn reload(layout: &Layout, previous: &Trust) -> Result<Trust> {
        let mut t = Trust::load(layout)?;
        if t.config_error.is_some() {
            t.config = previous.config.clone();
        }
        Ok(t)
    }
}

/// A job and what the policy says about it. `verdict` is `None` for folders that are not jobs
/// for this owner (see `inspection.ignored`).
#[derive(Debug, Clone)]
pub struct Review {
    pub inspection: Inspection,
    pub verdict: Option<Verdict>,
    /// The job's proof met with its sender's pin (`None` for folders that are not jobs, and
    /// when no proofs are looked at).
    pub proof: Option<Standing>,
}

impl Review {
    pub fn approves(&self) -> bool {
        matches!(&self.verdict, Some(v) if v.outcome == policy::Outcome::Approve)
    }
}

/// For each folder: `None` if it is not a folder (any more), else its
/// [`fingerprint`](crate::core::signature::fingerprint), taken first, and its [`review`]. Large batches
/// are spread over the cores: reading and hashing the jobs is most of a burst's work.
pub fn review_all(
    dirs: &[std::path::PathBuf],
    owner: &str,
    trust: &Trust,
) -> Vec<Option<(u64, Review)>> {
    crate::queue::par::map(dirs, |dir| {
        dir.is_dir().then(|| {
            crate::queue::copies::fingerprint_then(dir, |fp| (fp, review(dir, owner, trust)))
        })
    })
}

pub fn review(dir: &Path, owner: &str, trust: &Trust) -> Review {
    let inspection = queue::inspect(dir, owner);
    let (verdict, proof) = judge(&inspection, trust);
    Review {
        inspection,
        verdict,
        proof,
    }
}

pub fn verdict_for(ins: &Inspection, trust: &Trust) -> Option<Verdict> {
    judge(ins, trust).0
}

fn judge(ins: &Inspection, trust: &Trust) -> (Option<Verdict>, Option<Standing>) {
    if ins.ignored.is_some() {
        return (None, None);
    }
    let requester = ins.requester().map(str::to_lowercase);
    let rules: Vec<RuleCheck> = match (&requester, &ins.scan) {
        (Some(sender), Some(scan)) => {
            let files = scan
                .files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect();
            let is_peer = trust.peers.contains(sender);
            trust
                .config
                .rule_sets()
                .iter()
                .map(|r| config::check_rule(r, sender, is_peer, &files))
                .collect()
        }
        _ => Vec::new(),
    };
    let sender_allowlisted = requester
        .as_deref()
        .is_some_and(|r| trust.allowlist.contains(r));
    let standing = standing(ins, trust, requester.as_deref(), sender_allowlisted);
    let facts = Facts {
        requester: requester.as_deref(),
        standing: standing.as_ref(),
        problems: &ins.problems,
        code_doubts: &ins.findings.code_doubts,
        sender_allowlisted,
        signature: ins.signature.as_deref(),
        code_trusted: ins
            .signature
            .as_deref()
            .is_some_and(|s| trust.trusted.contains(s)),
        rules: &rules,
    };
    let verdict = policy::decide(&facts);
    (Some(verdict), standing)
}

/// The job's proof met with its sender's pin: for an allowlisted sender their pin, for anyone
/// else none (only a proof that does not hold matters then).
fn standing(
    ins: &Inspection,
    trust: &Trust,
    sender: Option<&str>,
    allowlisted: bool,
) -> Option<Standing> {
    let places = trust.proofs.as_ref()?;
    let proof = crate::queue::proof::check(ins, &places.data_dir);
    let pin = match (
        allowlisted,
        sender.and_then(|s| trust.allowlist.entries.get(s)),
    ) {
        (true, Some(file)) => crate::store::pin::read(&places.allowlist_dir.join(file)).0,
        _ => Pin::default(),
    };
    Some(attestation::standing(&pin, &proof))
}

/// The explanation printed by `explain` and returned by the API.
#[derive(Debug, Serialize)]
pub struct Explanation<'a> {
    pub uid: &'a str,
    pub path: String,
    pub name: Option<&'a str>,
    pub requester: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub would: &'static str,
    pub ignored: Option<&'a str>,
    /// How far the sender is proven (SPEC §9).
    pub proof: Option<&'a Standing>,
    pub reasons: Vec<String>,
}

impl Review {
    pub fn explanation(&self) -> Explanation<'_> {
        let ins = &self.inspection;
        let (would, reasons) = match &self.verdict {
            None => (
                "ignore",
                vec![format!(
                    "this folder is left alone: {}",
                    ins.ignored.as_deref().unwrap_or("")
                )],
            ),
            Some(v) => (
                match v.outcome {
                    policy::Outcome::Approve => "approve",
                    policy::Outcome::Wait => "wait",
                    policy::Outcome::Invalid => "flag",
                },
                v.reasons.clone(),
            ),
        };
        Explanation {
            uid: &ins.uid,
            path: ins.dir.display().to_string(),
            name: ins.name(),
            requester: ins.requester(),
            signature: ins.signature.as_deref(),
            would,
            ignored: ins.ignored.as_deref(),
            proof: self.proof.as_ref(),
            reasons,
        }
    }
}
