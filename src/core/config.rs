//! The rule config (`config.yaml` in the app data folder, SPEC §7): parsed with a real YAML
//! parser, unknown keys and wrong types refused with their line and column, checked for rules
//! that could approve anything, and reloaded on change. An invalid file never replaces the
//! config in force.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::email;
use crate::durable;
use crate::error::{Error, Result};

const MAX_SIZE: u64 = 1 << 20;

/// The whole config. Every section is optional; a missing file means all defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub peers: PeersConfig,
    #[serde(default)]
    pub approval: ApprovalConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
}

/// Rule-based job approval. Either one rule set written inline (as syft-bg does) or several
/// named ones under `rules`; the first that matches in full approves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub peers_only: bool,
    /// With `peers_only`: the peer must prove the job with their identity key (SPEC §9).
    #[serde(default = "yes")]
    pub require_proof: bool,
    #[serde(default)]
    pub allowed_users: Vec<String>,
    #[serde(default)]
    pub required_filenames: Vec<String>,
    #[serde(default)]
    pub required_scripts: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleSet>,
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            enabled: false,
            peers_only: true,
            require_proof: true,
            allowed_users: Vec::new(),
            required_filenames: Vec::new(),
            required_scripts: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// One named set of conditions; a job is approved by it only when all of them hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub name: String,
    #[serde(default = "yes")]
    pub peers_only: bool,
    /// With `peers_only`: the peer must prove the job with their identity key (SPEC §9). The one
    /// change to syft-bg's rules: a job's sender is whatever its writer claims, so "from a peer"
    /// means nothing without a proof.
    #[serde(default = "yes")]
    pub require_proof: bool,
    #[serde(default)]
    pub allowed_users: Vec<String>,
    #[serde(default)]
    pub required_filenames: Vec<String>,
    #[serde(default)]
    pub required_scripts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub approved_domains: Vec<String>,
    #[serde(default)]
    pub auto_share_datasets: Vec<String>,
}

/// The human gate and its reviewer groups (`core::groups`).
pub use crate::core::groups::ApprovalConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// A command (run with `sh -c`) that receives every decision as JSON on stdin.
    #[serde(default)]
    pub on_decision: Option<String>,
    #[serde(default = "hook_timeout")]
    pub timeout_seconds: u64,
}

impl Default for HooksConfig {
    fn default() -> HooksConfig {
        HooksConfig {
            on_decision: None,
            timeout_seconds: hook_timeout(),
        }
    }
}

fn hook_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults to 587 for `starttls`, 465 for `tls` and 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS) or `none` (plain; only for a local relay).
    #[serde(default = "starttls")]
    pub security: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Read from this environment variable, so the password is not stored in the synced folder.
    #[serde(default)]
    pub password_env: Option<String>,
    pub from: String,
    /// Defaults to the datasite owner.
    #[serde(default)]
    pub to: Option<String>,
    /// Send a mail for each new job waiting for the owner.
    #[serde(default = "yes")]
    pub on_pending: bool,
    /// Send a mail for each decision.
    #[serde(default = "yes")]
    pub on_decision: bool,
}

impl SmtpConfig {
    /// The port in force: the configured one, or the usual one for `security`.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security.as_str() {
            "tls" => 465,
            "none" => 25,
            _ => 587,
        })
    }
}

fn starttls() -> String {
    "starttls".into()
}

impl Config {
    /// Parses and checks a config file's text. Errors name the line and column.
    pub fn parse(text: &str) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let cfg: Config = serde_saphyr::from_str(text).map_err(|e| {
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            // The parser suggests one of its own options here, which means nothing to an owner.
            let first = first
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(first)
                .to_string();
            Error::invalid(
                format!(
                    "config.yaml is invalid at {}",
                    crate::core::config_words::describe(text, &first)
                ),
                "fix that line",
            )
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads `path`; a missing file is the default config.
    pub fn load(path: &Path) -> Result<Config> {
        match durable::read_capped(path, MAX_SIZE) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::invalid("config.yaml is not UTF-8 text", "save it as UTF-8")
                })?;
                Config::parse(&text)
            }
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(Config::default()),
            Err(e) => Err(e),
        }
    }

    /// The rule sets in force (none when rule approval is disabled).
    pub fn rule_sets(&self) -> Vec<RuleSet> {
        if !self.jobs.enabled {
            return Vec::new();
        }
        if !self.jobs.rules.is_empty() {
            return self.jobs.rules.clone();
        }
        vec![self.jobs.inline_rule_set()]
    }

    fn check(&self) -> Result<()> {
        self.jobs.check()?;
        self.peers.check()?;
        self.approval.check()?;
        if let Some(s) = &self.notify.smtp {
            s.check()?;
        }
        self.hooks.check()
    }
}

impl JobsConfig {
    /// The conditions written directly under `jobs`, as the rule set "default".
    fn inline_rule_set(&self) -> RuleSet {
        RuleSet {
            name: "default".into(),
            peers_only: self.peers_only,
            require_proof: self.require_proof,
            allowed_users: self.allowed_users.clone(),
            required_filenames: self.required_filenames.clone(),
            required_scripts: self.required_scripts.clone(),
        }
    }

    /// Inline conditions or `rules`, never both; each rule set valid under a unique name.
    fn check(&self) -> Result<()> {
        let inline = !self.required_filenames.is_empty()
            || !self.required_scripts.is_empty()
            || !self.allowed_users.is_empty();
        if inline && !self.rules.is_empty() {
            return Err(Error::invalid(
                "config.yaml is invalid: jobs has both inline conditions and `rules`",
                "move the inline conditions into a named entry of `rules`",
            ));
        }
        let sets = if self.rules.is_empty() && (self.enabled || inline) {
            vec![self.inline_rule_set()]
        } else {
            self.rules.clone()
        };
        let mut names = Vec::new();
        for r in &sets {
            if r.name.trim().is_empty() || names.contains(&r.name) {
                return Err(Error::invalid(
                    format!(
                        "config.yaml is invalid: rule set {:?} needs a unique, non-empty name",
                        r.name
                    ),
                    "name each rule set after its project",
                ));
            }
            names.push(r.name.clone());
            r.check()?;
        }
        Ok(())
    }
}

impl RuleSet {
    /// Required files (relative paths), script hashes of required files, valid users.
    fn check(&self) -> Result<()> {
        let at = format!("config.yaml is invalid: rule set {:?}", self.name);
        if self.required_filenames.is_empty() {
            return Err(Error::invalid(
                format!("{at} has no required_filenames"),
                "list every file the job's code/ must hold (run.sh included); a rule without them could approve any code",
            ));
        }
        for f in &self.required_filenames {
            crate::core::rel_path::check(f).map_err(|why| {
                Error::invalid(
                    format!("{at}: required file {f:?} {why}"),
                    "use paths relative to code/, like run.sh or lib/util.py",
                )
            })?;
        }
        for (f, hash) in &self.required_scripts {
            if !self.required_filenames.contains(f) {
                return Err(Error::invalid(
                    format!(
                        "{at}: required_scripts names {f:?}, which is not in required_filenames"
                    ),
                    "add it to required_filenames (the job must hold exactly those files)",
                ));
            }
            let hex = hash.strip_prefix("sha256:").unwrap_or("");
            if !crate::core::signature::is_signature(hex) {
                return Err(Error::invalid(
                    format!("{at}: the hash of {f:?} is not sha256:<64 lower-case hex>"),
                    "paste the full output of `syft-reviewer hash FILE`; prefixes are not accepted",
                ));
            }
        }
        for u in &self.allowed_users {
            email::normalize(u).map_err(|e| {
                Error::invalid(
                    format!("{at}: allowed user {u:?} is not valid"),
                    e.to_string(),
                )
            })?;
        }
        Ok(())
    }
}

impl PeersConfig {
    /// Approved domains are domains; shared datasets are relative folders.
    fn check(&self) -> Result<()> {
        for d in &self.approved_domains {
            let probe = format!("x@{}", d.trim().to_lowercase());
            if d.contains('@') || !email::is_valid(&probe) {
                return Err(Error::invalid(
                    format!(
                        "config.yaml is invalid: peers.approved_domains entry {d:?} is not a domain"
                    ),
                    "write domains like example.org (no @, no wildcards)",
                ));
            }
        }
        for ds in &self.auto_share_datasets {
            crate::core::rel_path::check(ds).map_err(|why| {
                Error::invalid(
                    format!("config.yaml is invalid: dataset {ds:?} {why}"),
                    "give a folder relative to your datasite, like public/datasets/census",
                )
            })?;
        }
        Ok(())
    }
}

impl SmtpConfig {
    /// A known security, valid addresses, a server, and credentials given whole.
    fn check(&self) -> Result<()> {
        if !matches!(self.security.as_str(), "starttls" | "tls" | "none") {
            return Err(Error::invalid(
                format!(
                    "config.yaml is invalid: notify.smtp.security {:?}",
                    self.security
                ),
                "use starttls, tls or none",
            ));
        }
        email::normalize(&self.from).map_err(|e| {
            Error::invalid("config.yaml is invalid: notify.smtp.from", e.to_string())
        })?;
        if let Some(to) = &self.to {
            email::normalize(to).map_err(|e| {
                Error::invalid("config.yaml is invalid: notify.smtp.to", e.to_string())
            })?;
        }
        if self.host.trim().is_empty() || self.port == Some(0) {
            return Err(Error::invalid(
                "config.yaml is invalid: notify.smtp needs a host and a non-zero port",
                "give your mail server's name, like smtp.example.org",
            ));
        }
        if self.username.is_some() != self.password_env.is_some() {
            return Err(Error::invalid(
                "config.yaml is invalid: notify.smtp has only one of username and password_env",
                "give both (password_env names the environment variable holding the password), or neither",
            ));
        }
        Ok(())
    }
}

impl HooksConfig {
    /// A command, if any, that is not empty; a timeout of 1 to 3600 seconds.
    fn check(&self) -> Result<()> {
        if let Some(cmd) = &self.on_decision
            && cmd.trim().is_empty()
        {
            return Err(Error::invalid(
                "config.yaml is invalid: hooks.on_decision is empty",
                "give a shell command, or null for none",
            ));
        }
        if !(1..=3600).contains(&self.timeout_seconds) {
            return Err(Error::invalid(
                format!(
                    "config.yaml is invalid: hooks.timeout_seconds is {}",
                    self.timeout_seconds
                ),
                "use 1 to 3600 seconds",
            ));
        }
        Ok(())
    }
}

/// The outcome of one condition of a rule set, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub what: String,
    pub ok: bool,
}

/// One rule set checked against a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleCheck {
    pub name: String,
    pub conditions: Vec<Condition>,
}

impl RuleCheck {
    pub fn matches(&self) -> bool {
        !self.conditions.is_empty() && self.conditions.iter().all(|c| c.ok)
    }
}

/// What the job shows of its sender as a peer, once their proof met their peer entry's pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCheck {
    NotPeer,
    /// An approved peer who proved the job with this key.
    Proven(String),
    /// An approved peer, and the job carries no proof (their entry's proofs are optional).
    Unverified,
    /// An approved peer, and the job is not theirs as far as proofs go: why.
    Unproven(String),
}

/// Checks a rule set against a job's facts: its sender, what it shows of them as a peer, and its
/// code files (path -> sha256 hex).
pub fn check_rule(
    rule: &RuleSet,
    sender: &str,
    peer: &PeerCheck,
    files: &BTreeMap<String, String>,
) -> RuleCheck {
    let mut conditions = Vec::new();
    let sender = sender.to_lowercase();
    if rule.peers_only {
        let (ok, what) = match peer {
            PeerCheck::NotPeer => (
                false,
                format!("{sender} is not an approved peer (peers_only)"),
            ),
            PeerCheck::Proven(key) => (
                true,
                format!(
                    "{sender} is an approved peer and proved the job with their identity key {key}"
                ),
            ),
            PeerCheck::Unverified if rule.require_proof => (
                false,
                format!(
                    "{sender} is an approved peer, but the job carries no proof (require_proof): \
                     anyone can claim to be {sender}"
                ),
            ),
            PeerCheck::Unverified => (
                true,
                format!(
                    "{sender} is an approved peer (unverified sender: the job carries no proof)"
                ),
            ),
            PeerCheck::Unproven(why) => (false, format!("{sender} is an approved peer, but {why}")),
        };
        conditions.push(Condition { what, ok });
    }
    if !rule.allowed_users.is_empty() {
        let ok = rule
            .allowed_users
            .iter()
            .any(|u| u.to_lowercase() == sender);
        conditions.push(Condition {
            what: if ok {
                format!("{sender} is in allowed_users")
            } else {
                format!("{sender} is not in allowed_users")
            },
            ok,
        });
    }
    let wanted: std::collections::BTreeSet<&str> =
        rule.required_filenames.iter().map(String::as_str).collect();
    let have: std::collections::BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let missing: Vec<&str> = wanted.difference(&have).copied().collect();
    let extra: Vec<&str> = have.difference(&wanted).copied().collect();
    let mut what = String::from("the files under code/ are exactly required_filenames");
    if !missing.is_empty() {
        what = format!("missing required file(s): {}", missing.join(", "));
    }
    if !extra.is_empty() {
        let e = format!("file(s) not in required_filenames: {}", extra.join(", "));
        what = if missing.is_empty() {
            e
        } else {
            format!("{what}; {e}")
        };
    }
    conditions.push(Condition {
        what,
        ok: missing.is_empty() && extra.is_empty(),
    });
    for (f, expected) in &rule.required_scripts {
        let expected = expected.strip_prefix("sha256:").unwrap_or(expected);
        let (ok, what) = match files.get(f) {
            None => (false, format!("{f} is missing, so its hash cannot match")),
            Some(h) if h == expected => (true, format!("{f} has the required sha256")),
            Some(h) => (
                false,
                format!("{f} has sha256:{h}, not the required sha256:{expected}"),
            ),
        };
        conditions.push(Condition { what, ok });
    }
    RuleCheck {
        name: rule.name.clone(),
        conditions,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
