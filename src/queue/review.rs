//! Gathers the facts about a job (its folder, the stores) and asks the policy. The daemon, the
//! `explain` command and the post-move check all go through [`review`], so a dry run and a real
//! decision can never disagree.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::attestation::{self, ProofView, Standing};
use crate::core::config::{self, Config, PeerCheck, RuleCheck};
use crate::core::config_words::InForce;
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
    /// Approved peers: email -> their file in `peers/approved/` (which holds their pin).
    pub peers: std::collections::BTreeMap<String, String>,
    /// Where senders' proofs are checked: the allowlist folder (their pins) and the data folder
    /// (their synced `did.json`). `None` (a bare snapshot): no proofs are looked at.
    pub proofs: Option<ProofPlaces>,
}

#[derive(Debug, Clone)]
pub struct ProofPlaces {
    pub allowlist_dir: PathBuf,
    pub peers_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Trust {
    pub fn load(layout: &Layout) -> Result<Trust> {
        Trust::load_as(layout, InForce::Defaults)
    }

    /// [`Trust::load`], saying that `in_force` holds if config.yaml is invalid.
    fn load_as(layout: &Layout, in_force: InForce) -> Result<Trust> {
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
            Err(e) => (
                Config::default(),
                Some(format!("{e}; {}", in_force.words())),
            ),
        };
        Ok(Trust {
            allowlist,
            trusted,
            trusted_names,
            invalid,
            config,
            config_error,
            peers: crate::store::peers::approved_listing(layout).0,
            proofs: Some(ProofPlaces {
                allowlist_dir: layout.allowlist_dir(),
                peers_dir: crate::store::peers::approved_dir(layout),
                data_dir: layout.data_dir.clone(),
            }),
        })
    }

    /// Like [`Trust::load`], but an invalid config leaves `previous`'s config in force.
    pub fn reload(layout: &Layout, previous: &Trust) -> Result<Trust> {
        // A config equal to the defaults (or kept from a start with an invalid file) is said so.
        let in_force = if previous.config == Config::default() {
            InForce::Defaults
        } else {
            InForce::Previous
        };
        let mut t = Trust::load_as(layout, in_force)?;
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
        crate::queue::copies::fingerprint_then(dir, |fp| (fp, review(dir, owner, trust)))
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
    let sender_allowlisted = requester
        .as_deref()
        .is_some_and(|r| trust.allowlist.contains(r));
    let standing = standing(ins, trust, requester.as_deref(), sender_allowlisted);
    let rules = rule_checks(ins, trust, standing.as_ref());
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
        no_human_gate: !trust.config.approval.enabled,
    };
    let verdict = policy::decide(&facts);
    (Some(verdict), standing)
}

/// Every rule set in force checked against the job (`rules check` shows the same).
pub fn rules_for(ins: &Inspection, trust: &Trust) -> Vec<RuleCheck> {
    let requester = ins.requester().map(str::to_lowercase);
    let allowlisted = requester
        .as_deref()
        .is_some_and(|r| trust.allowlist.contains(r));
    let standing = standing(ins, trust, requester.as_deref(), allowlisted);
    rule_checks(ins, trust, standing.as_ref())
}

fn rule_checks(ins: &Inspection, trust: &Trust, standing: Option<&Standing>) -> Vec<RuleCheck> {
    let (Some(sender), Some(scan)) = (ins.requester().map(str::to_lowercase), &ins.scan) else {
        return Vec::new();
    };
    let files = scan
        .files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    let peer = peer_check(trust.peers.contains_key(&sender), standing);
    trust
        .config
        .rule_sets()
        .iter()
        .map(|r| config::check_rule(r, &sender, &peer, &files))
        .collect()
}

/// What a job shows of its sender as a peer: an approved peer is met with their proof.
fn peer_check(is_peer: bool, standing: Option<&Standing>) -> PeerCheck {
    if !is_peer {
        return PeerCheck::NotPeer;
    }
    match standing {
        Some(Standing::Proven { fingerprint } | Standing::ProvenFirst { fingerprint }) => {
            PeerCheck::Proven(fingerprint.clone())
        }
        // A bare snapshot looks at no proofs: nothing is proven, nothing refuted.
        None | Some(Standing::Unverified) => PeerCheck::Unverified,
        Some(Standing::Unsigned) => PeerCheck::Unproven(
            "the job is unsigned and this peer must prove their jobs (proof: required)".into(),
        ),
        Some(Standing::KeyChanged { pinned_at, .. }) => PeerCheck::Unproven(format!(
            "their identity key changed since you approved them{}: re-pin with `syft-reviewer peers approve EMAIL` once you know why",
            pinned_at
                .as_deref()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default()
        )),
        Some(Standing::Invalid { reason }) => {
            PeerCheck::Unproven(format!("the proof does not match: {reason}"))
        }
    }
}

/// The job's proof met with its sender's pin: for an allowlisted sender their allowlist entry's,
/// for an approved peer their peer entry's, for anyone else none (only a proof that does not
/// hold matters then).
fn standing(
    ins: &Inspection,
    trust: &Trust,
    sender: Option<&str>,
    allowlisted: bool,
) -> Option<Standing> {
    let places = trust.proofs.as_ref()?;
    let proof = crate::queue::proof::check(ins, &places.data_dir);
    let entry = match sender {
        Some(s) if allowlisted => trust
            .allowlist
            .entries
            .get(s)
            .map(|f| places.allowlist_dir.join(f)),
        Some(s) => trust.peers.get(s).map(|f| places.peers_dir.join(f)),
        None => None,
    };
    let pin = entry
        .map(|path| crate::store::pin::read(&path).0)
        .unwrap_or_default();
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
    pub proof: Option<ProofView>,
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
            proof: self
                .proof
                .as_ref()
                .map(|st| ProofView::of(st, ins.requester().unwrap_or("?"))),
            reasons,
        }
    }
}
