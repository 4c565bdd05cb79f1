//! The command line's arguments (clap): the global flags, the commands and their options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::queue::Status;

#[derive(Debug, Parser)]
#[command(
    name = "syft-reviewer",
    version,
    // A later flag wins over an earlier one (as with most Unix tools), e.g. in wrapper scripts.
    args_override_self = true,
    about = "Reviews the code-execution jobs sent to your SyftBox datasite",
    long_about = "Reviews the code-execution jobs sent to your SyftBox datasite: approves jobs from \
trusted senders and trusted code at once, and keeps everything else pending for you.\n\n\
Note: a job's requester_email is declared by whoever wrote the job; anyone can claim any \
sender. Trusting exact code (`trust`) is evidence that cannot be forged."
)]
pub(crate) struct Cli {
    /// SyftBox client config file (default: $SYFTBOX_CLIENT_CONFIG_PATH, ~/.syftbox/config.json, ~/.config/syftbox/config.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// SyftBox data folder (overrides the config's data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The datasite owner's email (overrides the config's email)
    #[arg(long, global = true, value_name = "EMAIL")]
    pub(crate) email: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the reviewer (the default): decide pending jobs as they arrive
    Run(RunArgs),
    /// Print `sha256:<hex>` of each file, as rules compare them
    Hash {
        /// The files to hash (any path; the same bytes give the same hash as in a rule)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the trusted-code signature of a job folder
    Signature {
        /// A job folder (the one holding metadata.json and code/)
        #[arg(value_name = "JOB_DIR")]
        job_dir: PathBuf,
    },
    /// Dry run: what would happen to a job, and why
    Explain {
        #[command(flatten)]
        query: JobQuery,
        /// Also show what changed since the closest trusted code or history entry (a summary
        /// and a unified diff)
        #[arg(long)]
        diff: bool,
    },
    /// Manage the trusted-sender allowlist
    #[command(subcommand)]
    Allow(AllowCommand),
    /// Manage trusted code patterns
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Manage peers: approved peers, peer requests, revocation
    #[command(subcommand)]
    Peers(PeersCommand),
    /// List jobs in the queue
    Jobs {
        /// Only jobs with this status (pending, approved, running, completed, failed, rejected, timedout)
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<Status>,
        /// Print JSON lines
        #[arg(long)]
        json: bool,
    },
    /// Show where everything is and what the reviewer is doing
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Decide a pending job yourself: approve, reject or request-changes; with --all, every
    /// pending job the filters select (`decide --all --sender EMAIL reject --rationale TEXT`)
    Decide(DecideArgs),
    /// Check a job against the rule sets of config.yaml, condition by condition
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Check and read the signed audit chain
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the Model Context Protocol on stdin/stdout (tools approvals.list, approvals.explain, approvals.decide, approvals.decide_many)
    Mcp,
    /// Print the address of the running web UI; where the UI needs a login (not on this
    /// machine's loopback under Linux), a one-time login link valid for 10 minutes
    Ui {
        /// Also open it in the browser (xdg-open, or open on macOS)
        #[arg(long)]
        open: bool,
    },
    /// Prove a job folder is yours: sign it with your SyftBox identity key (syft-crypto's), for
    /// owners who require proven senders
    Attest {
        /// The job folder to sign (the one holding metadata.json and code/)
        #[arg(value_name = "JOB_DIR")]
        job: PathBuf,
        /// The key file (syft-crypto's pvt.jwks.json; default: the one your SyftBox config implies)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// As a member of an owner's reviewer group: list, explain and decide their pending jobs
    /// synced to you (the verdict is a file in their datasite, attested when you have a key)
    Review {
        /// The datasite owner whose jobs you review
        #[arg(long, value_name = "EMAIL")]
        owner: String,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Your SyftBox identity key: make one (as syft-crypto does) or show it
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a job into an owner's queue as a requester's client would (for demos and tests)
    Submit {
        /// Folder with the job's code (must contain run.sh)
        #[arg(value_name = "CODE_DIR")]
        code: PathBuf,
        /// The requester's email
        #[arg(long, value_name = "EMAIL")]
        from: String,
        /// The owner to send it to (default: this datasite's owner)
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
        /// The job's name, as the requester gives it
        #[arg(long, default_value = "Demo job", value_name = "TEXT")]
        name: String,
        /// The job's description
        #[arg(long, default_value = "", value_name = "TEXT")]
        description: String,
        /// A tag of the job (repeat for several)
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Sign the job with the sender's identity key (as `attest` does) before it enters the
        /// queue, for owners who require proven senders
        #[arg(long)]
        sign: bool,
        /// With --sign: the key file (syft-crypto's pvt.jwks.json; default: the one the SyftBox
        /// config implies for the sender)
        #[arg(long, value_name = "FILE", requires = "sign")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// The owner's pending jobs synced to you, with the answer to your verdict on each
    List {
        /// Print JSON lines
        #[arg(long)]
        json: bool,
    },
    /// One pending job: its files, signature, doubts and the answer to your verdict
    Explain {
        /// The pending job's uid
        uid: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Write your verdict on a pending job into the owner's verdicts/<your email>/ folder
    Decide {
        /// The pending job's uid
        uid: String,
        /// approve, reject or request-changes
        #[arg(value_parser = ["approve", "reject", "request-changes", "request_changes"])]
        verdict: String,
        /// Why (required for reject and request-changes; shown to the requester)
        #[arg(long, value_name = "TEXT")]
        rationale: Option<String>,
        /// Refuse if the job's signature is no longer this (what you reviewed)
        #[arg(long, value_name = "SIGNATURE")]
        signature: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create the identity key file and publish did.json, exactly as syft-crypto does
    Init {
        /// Replace existing keys (owners who pinned the old key must pin the new one)
        #[arg(long)]
        force: bool,
    },
    /// Print the published key's DID and fingerprint
    Show {
        /// The key file to read (syft-crypto's pvt.jwks.json; default: the one your SyftBox
        /// config implies)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Decide what is pending now, then exit
    #[arg(long)]
    pub(crate) once: bool,
    /// Quiet time (ms) a job folder needs before it is read
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub(crate) settle_ms: u64,
    /// Seconds between safety-net rescans of the queue (longer after a slow one: at most about
    /// 1 % of a core goes to them)
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rescan_secs: u64,
    /// Where to create the demo datasite when no SyftBox config exists
    #[arg(long, default_value = "demo", value_name = "DIR")]
    pub(crate) demo_dir: PathBuf,
    /// Port of the web UI (default: $SYFTBOX_ASSIGNED_PORT, else 8002)
    #[arg(long, value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// Address the web UI listens on; anything but loopback exposes it without TLS, and browsers
    /// then log in with the link `syft-reviewer ui` prints
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub(crate) bind: std::net::IpAddr,
    /// Do not start the web UI
    #[arg(long)]
    pub(crate) no_web: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AllowCommand {
    /// Add senders to the allowlist (or re-pin them), pinning each one's published identity key
    Add {
        /// The senders' emails (one or more)
        #[arg(required = true, value_name = "EMAILS")]
        emails: Vec<String>,
        /// Whether jobs must carry a proof made with the pinned key (default: required when
        /// the sender has published a key, optional when not)
        #[arg(long, value_parser = ["required", "optional"])]
        proof: Option<String>,
    },
    /// Remove senders from the allowlist
    Remove {
        /// The senders' emails (one or more)
        #[arg(required = true, value_name = "EMAILS")]
        emails: Vec<String>,
    },
    /// List the allowlist (and report files that are not valid entries)
    List {
        /// Print JSON (the emails and the files that are not valid entries)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// List approved peers, pending peer requests and revoked peers
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Approve a peer (with or without a request) and share the auto_share_datasets with them
    Approve {
        /// The peer's email
        // Not `email`: that is the global owner flag's id.
        #[arg(value_name = "EMAIL")]
        peer: String,
    },
    /// Revoke a peer and remove the read grants syft-reviewer added for them
    Revoke {
        /// The peer's email
        #[arg(value_name = "EMAIL")]
        peer: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Show each rule set's conditions and whether the job meets them
    Check(JobQuery),
}

// The job `explain` and `rules check` look at.
#[derive(Debug, Args)]
pub(crate) struct JobQuery {
    /// A job uid in the queue, or a job folder
    #[arg(value_name = "UID|JOB_DIR")]
    pub(crate) job: String,
    #[command(flatten)]
    pub(crate) at: StatusArg,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// Which copy of a uid is meant, when it is in several status folders.
#[derive(Debug, Args)]
pub(crate) struct StatusArg {
    /// The status folder of the job (needed when its uid is in several)
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    pub(crate) status: Option<Status>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify every entry's hash link and signature, and the checkpoint
    Verify {
        /// Verify with this public key file (default: audit/public_key beside the chain)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Print the verified entries of the chain as JSON lines
    Show,
    /// Print entries from a time on (ISO, e.g. 2026-11-22 or 2026-11-22T10:00) as JSON lines
    Export {
        /// The first time to print (local time, as the entries are written): a date such as
        /// 2026-11-22, or a date and time such as 2026-11-22T10:00 or 2026-11-22T10:00:30
        #[arg(long, value_name = "TIME", value_parser = parse_since)]
        since: Option<String>,
    },
    /// Accept the chain as it is now after a rollback or deletion you know about (recorded)
    ResetAnchor {
        /// Confirm: the chain's current state becomes the reference
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Mark code as trusted: a signature from the history, or a job in the queue with --job
    #[command(group(clap::ArgGroup::new("code").required(true).args(["signature", "job"])))]
    Add {
        /// A signature from `trust list --history` (or give a job with --job instead)
        signature: Option<String>,
        /// A job uid in the queue, or a job folder
        #[arg(long, value_name = "UID|JOB_DIR")]
        job: Option<String>,
        /// With --job: the status folder of the job (needed when its uid is in several)
        #[arg(long, value_name = "STATUS", value_parser = parse_status, requires = "job")]
        status: Option<Status>,
    },
    /// Stop trusting a signature
    Remove {
        /// The signature, as `trust list` shows it
        signature: String,
    },
    /// List trusted code (or, with --history, jobs seen completing)
    List {
        /// List the code of jobs seen completing instead (what `trust add SIGNATURE` takes)
        #[arg(long)]
        history: bool,
        /// Print JSON lines
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(s: &str) -> std::result::Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("unknown status {s:?}; use one of pending, approved, running, completed, failed, rejected, timedout")
    })
}

/// `audit export --since`: a date or a date and time as entries are written (their times are
/// compared as text, so anything else would silently select nothing or everything).
fn parse_since(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    let ok = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .any(|f| chrono::NaiveDateTime::parse_from_str(t, f).is_ok())
        || chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok_and(|_| t.len() == 10);
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!(
            "{s:?} is not a date or time: use a local date such as 2026-11-22, or a date and time such as 2026-11-22T10:00"
        ))
    }
}

/// The verdicts `decide` takes.
pub(crate) const VERDICTS: [&str; 4] = ["approve", "reject", "request-changes", "request_changes"];

#[derive(Debug, Args)]
pub(crate) struct DecideArgs {
    /// The pending job's uid (with --all: the verdict)
    #[arg(value_name = "UID")]
    pub(crate) uid: String,
    /// approve, reject or request-changes
    #[arg(value_name = "VERDICT", value_parser = VERDICTS)]
    pub(crate) verdict: Option<String>,
    /// Why (required for reject and request-changes; shown to the requester)
    #[arg(long, value_name = "TEXT")]
    pub(crate) rationale: Option<String>,
    /// Refuse if the job's signature is no longer this (what you reviewed)
    #[arg(long, value_name = "SIGNATURE", conflicts_with = "all")]
    pub(crate) signature: Option<String>,
    #[command(flatten)]
    pub(crate) at: StatusArg,
    /// Decide every pending job the filters select: `decide --all [FILTERS] reject|request-changes
    /// --rationale TEXT` (approving needs each job's signature: decide them one by one, or in the
    /// web UI)
    #[arg(long)]
    pub(crate) all: bool,
    /// With --all: jobs whose sender's email contains this (case-insensitive)
    #[arg(long, value_name = "EMAIL", requires = "all")]
    pub(crate) sender: Option<String>,
    /// With --all: jobs whose name contains this (case-insensitive)
    #[arg(long, value_name = "TEXT", requires = "all")]
    pub(crate) name: Option<String>,
    /// With --all: only jobs the rules flag
    #[arg(long, requires = "all")]
    pub(crate) flagged: bool,
    /// With --all: only jobs created at least this long ago (e.g. 90m, 36h, 7d, 2w)
    #[arg(long, value_name = "DURATION", requires = "all", value_parser = crate::service::bulk::parse_duration)]
    pub(crate) older_than: Option<chrono::Duration>,
    /// With --all: decide more than 10 jobs without asking
    #[arg(long, requires = "all")]
    pub(crate) yes: bool,
    /// With --all: print the result as JSON
    #[arg(long, requires = "all")]
    pub(crate) json: bool,
}
