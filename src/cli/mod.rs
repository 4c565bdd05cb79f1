//! The command line: argument parsing (clap) and one function per command. Commands that change
//! stores are safe while the daemon runs: they take the store locks and the daemon sees the
//! change through its watcher.

pub mod demo;
mod keys;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::core::signature;
use crate::daemon::live::Live;
use crate::daemon::watcher::Msg;
use crate::daemon::{Daemon, Options};
use crate::error::{Error, Result};
use crate::queue::metadata::Metadata;
use crate::queue::review::{self, Trust};
use crate::queue::{Queue, Status};
use crate::store::allowlist::Allowlist;
use crate::store::appdata;
use crate::store::decision_log::DecisionLog;
use crate::store::lock::InstanceLock;
use crate::store::trusted::TrustedCode;
use crate::syftbox::{self, Identity, Layout, Overrides};
use crate::web::{self, WebServer};
use std::sync::Arc;

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
pub struct Cli {
    /// SyftBox client config file (default: $SYFTBOX_CLIENT_CONFIG_PATH, ~/.syftbox/config.json, ~/.config/syftbox/config.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SyftBox data folder (overrides the config's data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The datasite owner's email (overrides the config's email)
    #[arg(long, global = true, value_name = "EMAIL")]
    pub email: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reviewer (the default): decide pending jobs as they arrive
    Run(RunArgs),
    /// Print `sha256:<hex>` of each file, as rules compare them
    Hash {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the trusted-code signature of a job folder
    Signature {
        #[arg(value_name = "JOB_DIR")]
        job_dir: PathBuf,
    },
    /// Dry run: what would happen to a job, and why
    Explain {
        /// A job uid in the queue, or a job folder
        #[arg(value_name = "UID|JOB_DIR")]
        job: String,
        #[command(flatten)]
        at: StatusArg,
        /// Print JSON
        #[arg(long)]
        json: bool,
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
    /// Decide a pending job yourself: approve, reject or request-changes
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
        #[command(flatten)]
        at: StatusArg,
    },
    /// Check a job against the rule sets of config.yaml, condition by condition
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Check and read the signed audit chain
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the Model Context Protocol on stdin/stdout (tools approvals.list, approvals.explain, approvals.decide)
    Mcp,
    /// Print the address of the running web UI; where the UI needs a login (not on this
    /// machine's loopback under Linux), a one-time login link valid for 10 minutes
    Ui {
        /// Also open it in the browser (xdg-open, or open on macOS)
        #[arg(long)]
        open: bool,
    },
    /// Write a job into an owner's queue as a requester's client would (for demos and tests)
    /// Prove a job folder is yours: sign it with your SyftBox identity key (syft-crypto's), for
    /// owners who require proven senders
    Attest {
        #[arg(value_name = "JOB_DIR")]
        job: PathBuf,
        /// The key file (syft-crypto's pvt.jwks.json; default: the one your SyftBox config implies)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Your SyftBox identity key: make one (as syft-crypto does) or show it
    #[command(subcommand)]
    Keys(KeysCommand),
    Submit {
        /// Folder with the job's code (must contain run.sh)
        #[arg(value_name = "CODE_DIR")]
        code: PathBuf,
        /// The requester's email
        #[arg(long)]
        from: String,
        /// The owner to send it to (default: this datasite's owner)
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "Demo job")]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the identity key file and publish did.json, exactly as syft-crypto does
    Init {
        /// Replace existing keys (owners who pinned the old key must pin the new one)
        #[arg(long)]
        force: bool,
    },
    /// Print the published key's DID and fingerprint
    Show {
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Decide what is pending now, then exit
    #[arg(long)]
    pub once: bool,
    /// Quiet time (ms) a job folder needs before it is read
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub settle_ms: u64,
    /// Seconds between safety-net rescans of the queue
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rescan_secs: u64,
    /// Where to create the demo datasite when no SyftBox config exists
    #[arg(long, default_value = "demo", value_name = "DIR")]
    pub demo_dir: PathBuf,
    /// Port of the web UI (default: $SYFTBOX_ASSIGNED_PORT, else 8002)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address the web UI listens on; anything but loopback exposes it without TLS, and browsers
    /// then log in with the link `syft-reviewer ui` prints
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: std::net::IpAddr,
    /// Do not start the web UI
    #[arg(long)]
    pub no_web: bool,
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Add senders to the allowlist (or re-pin them), pinning each one's published identity key
    Add {
        #[arg(required = true)]
        emails: Vec<String>,
        /// Whether jobs must carry a proof made with the pinned key (default: required when
        /// the sender has published a key, optional when not)
        #[arg(long, value_parser = ["required", "optional"])]
        proof: Option<String>,
    },
    /// Remove senders from the allowlist
    Remove {
        #[arg(required = true)]
        emails: Vec<String>,
    },
    /// List the allowlist (and report files that are not valid entries)
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// List approved peers, pending peer requests and revoked peers
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve a peer (with or without a request) and share the auto_share_datasets with them
    Approve {
        // Not `email`: that is the global owner flag's id.
        #[arg(value_name = "EMAIL")]
        peer: String,
    },
    /// Revoke a peer and remove the read grants syft-reviewer added for them
    Revoke {
        #[arg(value_name = "EMAIL")]
        peer: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Show each rule set's conditions and whether the job meets them
    Check {
        /// A job uid in the queue, or a job folder
        #[arg(value_name = "UID|JOB_DIR")]
        job: String,
        #[command(flatten)]
        at: StatusArg,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Which copy of a uid is meant, when it is in several status folders.
#[derive(Debug, Args)]
pub struct StatusArg {
    /// The status folder of the job (needed when its uid is in several)
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<Status>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
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
        #[arg(long, value_name = "TIME")]
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
pub enum TrustCommand {
    /// Mark code as trusted: a signature from the history, or a job in the queue with --job
    Add {
        /// A signature from `trust list --history`
        #[arg(required_unless_present = "job", conflicts_with = "job")]
        signature: Option<String>,
        /// A job uid in the queue, or a job folder
        #[arg(long, value_name = "UID|JOB_DIR")]
        job: Option<String>,
        /// With --job: the status folder of the job (needed when its uid is in several)
        #[arg(long, value_name = "STATUS", value_parser = parse_status, requires = "job")]
        status: Option<Status>,
    },
    /// Stop trusting a signature
    Remove { signature: String },
    /// List trusted code (or, with --history, jobs seen completing)
    List {
        #[arg(long)]
        history: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(s: &str) -> std::result::Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("unknown status {s:?}; use one of pending, approved, running, completed, failed, rejected, timedout")
    })
}

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let is_run = matches!(cli.command, None | Some(Command::Run(_)));
    let default_level = if is_run { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        // Log lines carry job names, senders and file names: escaped like every other output,
        // so an owner tailing the log sees no terminal escapes and no forged lines.
        .format(|buf, record| {
            writeln!(
                buf,
                "[{} {:<5}] {}",
                buf.timestamp(),
                record.level(),
                term(&record.args().to_string())
            )
        })
        .init();
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", term(&e.to_string()));
            1
        }
    }
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        email: cli.email.clone(),
    }
}

fn layout(cli: &Cli) -> Result<Layout> {
    identity(cli).map(|id| Layout::new(&id))
}

fn identity(cli: &Cli) -> Result<syftbox::Identity> {
    match syftbox::discover(&overrides(cli))? {
        Some(id) => Ok(id),
        None => Err(Error::Config(format!(
            "no SyftBox client config found (looked at {}): pass --config FILE, or --data-dir DIR --email EMAIL, \
             or set SYFTBOX_CLIENT_CONFIG_PATH (for the demo: {})",
            syftbox::candidate_configs(None)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            "SYFTBOX_CLIENT_CONFIG_PATH=$PWD/demo/config.json"
        ))),
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match &cli.command {
        None => {
            let defaults =
                RunArgs::augment_args(clap::Command::new("run")).get_matches_from(["run"]);
            let args = RunArgs::from_arg_matches(&defaults).expect("run's defaults parse");
            run(&cli, &args)
        }
        Some(Command::Run(args)) => run(&cli, args),
        Some(Command::Hash { files }) => {
            for f in files {
                println!("{}  {}", signature::prefixed_file_hash(f)?, f.display());
            }
            Ok(())
        }
        Some(Command::Signature { job_dir }) => {
            let m = Metadata::read(job_dir)?;
            let scan = signature::scan_code(&job_dir.join("code"))?;
            for p in &scan.problems {
                eprintln!("warning: {}", term(p));
            }
            println!(
                "{}",
                signature::signature_v1(
                    &m.meta.name,
                    &m.meta.description,
                    &m.meta.tags,
                    &scan.files
                )
            );
            Ok(())
        }
        Some(Command::Explain { job, at, json }) => explain(&cli, job, at.status, *json),
        Some(Command::Allow(cmd)) => allow(&cli, cmd),
        Some(Command::Trust(cmd)) => trust(&cli, cmd),
        Some(Command::Peers(cmd)) => peers(&cli, cmd),
        Some(Command::Jobs { status, json }) => jobs(&cli, *status, *json),
        Some(Command::Status { json }) => status(&cli, *json),
        Some(Command::Decide {
            uid,
            verdict,
            rationale,
            signature,
            at,
        }) => {
            let l = layout(&cli)?;
            let req = crate::queue::gate::RulingRequest {
                verdict: verdict.clone(),
                rationale: rationale.clone(),
                signature: signature.clone(),
                status: at.status,
                signature_required: false,
            };
            let d = crate::queue::gate::decide(&l, uid, &req, "cli", None)?;
            println!(
                "job {} is now {} ({})",
                term(&d.uid),
                d.status,
                d.verdict.as_str()
            );
            Ok(())
        }
        Some(Command::Audit(cmd)) => audit(&cli, cmd),
        Some(Command::Rules(RulesCommand::Check { job, at, json })) => {
            rules_check(&cli, job, at.status, *json)
        }
        Some(Command::Mcp) => {
            let l = layout(&cli)?;
            appdata::ensure_app_data(&l)?;
            let stdin = std::io::stdin();
            crate::mcp::serve(&l, stdin.lock(), std::io::stdout().lock())
                .map_err(|e| Error::io("serve MCP on", "stdio", e))
        }
        Some(Command::Ui { open }) => web::ui(&layout(&cli)?.state, *open),
        Some(Command::Attest { job, key }) => keys::attest(&identity(&cli)?, job, key.as_deref()),
        Some(Command::Keys(KeysCommand::Init { force })) => keys::init(&identity(&cli)?, *force),
        Some(Command::Keys(KeysCommand::Show { key })) => {
            keys::show(&identity(&cli)?, key.as_deref())
        }
        Some(Command::Submit {
            code,
            from,
            to,
            name,
            description,
            tags,
        }) => {
            let l = layout(&cli)?;
            let to = to.clone().unwrap_or_else(|| l.email.clone());
            let target = Layout::new(&Identity {
                data_dir: l.data_dir.clone(),
                email: crate::core::email::normalize(&to)?,
                source: None,
            });
            let uid = demo::submit(
                &Queue::new(target.queue),
                code,
                from,
                &to,
                name,
                description,
                tags,
                Status::Pending,
            )?;
            println!("{uid}");
            Ok(())
        }
    }
}

fn run(cli: &Cli, args: &RunArgs) -> Result<()> {
    let id = match syftbox::discover(&overrides(cli))? {
        Some(id) => id,
        None => {
            let id = demo::prepare(&args.demo_dir)?;
            log::info!(
                "no SyftBox config found: running on the demo datasite {} (owner {}). \
                 Manage it from another terminal after `export SYFTBOX_CLIENT_CONFIG_PATH={}`",
                id.data_dir.display(),
                id.email,
                id.source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            id
        }
    };
    let layout = Layout::new(&id);
    // Secrets and locks must never be readable by others, whatever the caller's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    appdata::ensure_state(&layout)?;
    let _lock = InstanceLock::acquire(&layout.state, &layout.datasite)?;
    log::info!(
        "syft-reviewer {} for {} (datasite {})",
        env!("CARGO_PKG_VERSION"),
        layout.email,
        layout.datasite.display()
    );
    let opts = Options {
        settle: Duration::from_millis(args.settle_ms),
        rescan: Duration::from_secs(args.rescan_secs),
        once: args.once,
    };
    let (tx, rx) = mpsc::channel();
    if !args.once {
        let stop = tx.clone();
        ctrlc::set_handler(move || {
            let _ = stop.send(Msg::Shutdown);
        })
        .map_err(|e| Error::invalid("could not install the signal handler", e.to_string()))?;
    }
    let live = Arc::new(Live::default());
    let web = if args.once || args.no_web {
        None
    } else {
        let port = args.port.unwrap_or_else(crate::syftbox::default_port);
        match WebServer::start(&layout, live.clone(), args.bind, port) {
            Ok(w) => Some(w),
            // Deciding jobs matters more than the UI: keep going without it.
            Err(e) => {
                log::error!("the web UI is not available: {e}");
                None
            }
        }
    };
    let ui_url = web
        .as_ref()
        .map(|w| format!("http://127.0.0.1:{}/", w.addr.port()));
    let result = Daemon::new(layout, opts)?
        .with_live(live)
        .with_ui_url(ui_url)
        .run(tx, rx);
    if let Some(w) = web {
        w.shutdown();
    }
    result
}

/// A uid in the queue (the copy in `status`, needed when the uid is in several status
/// folders), or a job folder.
fn resolve_job(l: &Layout, job: &str, status: Option<Status>) -> Result<PathBuf> {
    let p = Path::new(job);
    if status.is_none() && (p.join("metadata.json").exists() || p.join("code").is_dir()) {
        return Ok(p.to_path_buf());
    }
    crate::queue::copies::locate(&Queue::new(l.queue.clone()), job, status).map(|(_, dir)| dir)
}

/// Job data (names, emails, reasons, paths) as printed by every command: terminal controls and
/// invisible characters are shown as `⟨U+XXXX⟩`, never sent to the terminal.
fn term(s: &str) -> std::borrow::Cow<'_, str> {
    crate::core::visible::for_terminal(s)
}

fn explain(cli: &Cli, job: &str, status: Option<Status>, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let dir = resolve_job(&l, job, status)?;
    let trust = Trust::load(&l)?;
    let r = review::review(&dir, &l.email, &trust);
    let ex = r.explanation();
    if json {
        println!("{}", crate::core::visible::json_pretty(&ex));
        return Ok(());
    }
    println!(
        "job {} \"{}\" from {}",
        term(ex.uid),
        term(ex.name.unwrap_or("?")),
        term(ex.requester.unwrap_or("?"))
    );
    println!("folder:    {}", term(&ex.path));
    println!("signature: {}", ex.signature.unwrap_or("(none)"));
    println!("would:     {}", ex.would);
    for reason in &ex.reasons {
        println!("  - {}", term(reason));
    }
    Ok(())
}

fn rules_check(cli: &Cli, job: &str, status: Option<Status>, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let dir = resolve_job(&l, job, status)?;
    let trust = Trust::load(&l)?;
    if let Some(e) = &trust.config_error {
        return Err(Error::invalid("config.yaml cannot be used", e.clone()));
    }
    let ins = crate::queue::inspect(&dir, &l.email);
    let (Some(m), Some(scan)) = (&ins.meta, &ins.scan) else {
        return Err(Error::invalid(
            format!("job {job} cannot be checked"),
            ins.problems.join("; "),
        ));
    };
    let sender = m.meta.requester_email.to_lowercase();
    let files = scan
        .files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    let checks: Vec<crate::core::config::RuleCheck> = trust
        .config
        .rule_sets()
        .iter()
        .map(|r| crate::core::config::check_rule(r, &sender, trust.peers.contains(&sender), &files))
        .collect();
    if json {
        println!("{}", crate::core::visible::json_pretty(&checks));
        return Ok(());
    }
    if checks.is_empty() {
        println!(
            "no rule set is enabled (jobs.enabled is false in {})",
            l.config_file().display()
        );
    }
    for c in &checks {
        println!(
            "rule set {:?}: {}",
            c.name,
            if c.matches() {
                "MATCHES"
            } else {
                "does not match"
            }
        );
        for cond in &c.conditions {
            println!(
                "  [{}] {}",
                if cond.ok { "ok" } else { "no" },
                term(&cond.what)
            );
        }
    }
    for p in ins.problems.iter().chain(&ins.findings.code_doubts) {
        println!(
            "note: the job is flagged, so no rule approves it: {}",
            term(p)
        );
    }
    Ok(())
}

fn audit(cli: &Cli, cmd: &AuditCommand) -> Result<()> {
    let l = layout(cli)?;
    let log = crate::store::audit::AuditLog::new(&l);
    match cmd {
        AuditCommand::Verify { public_key } => {
            let key = match public_key {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
                    Some(crate::store::audit::parse_public_key(&text).ok_or_else(|| {
                        Error::invalid(
                            format!("{} is not an Ed25519 public key", p.display()),
                            "it should hold ed25519:<64 hex>",
                        )
                    })?)
                }
            };
            let v = log.verify(key);
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            if !v.valid {
                return Err(Error::invalid("the audit chain does not verify", v.reason));
            }
        }
        AuditCommand::Show => log.print_verified(""),
        AuditCommand::Export { since } => log.print_verified(since.as_deref().unwrap_or("")),
        AuditCommand::ResetAnchor { yes } => println!("{}", log.reset_anchor_confirmed(*yes)?),
    }
    Ok(())
}

fn allow(cli: &Cli, cmd: &AllowCommand) -> Result<()> {
    let l = layout(cli)?;
    appdata::ensure_app_data(&l)?;
    let list = Allowlist::new(&l);
    let _changing = crate::store::audit::change_lock(&l)?;
    match cmd {
        AllowCommand::Add { emails, proof } => {
            let mode = proof
                .as_deref()
                .and_then(crate::core::attestation::ProofMode::parse);
            for e in emails {
                let mail = crate::core::email::normalize(e)?;
                let before = crate::store::pin::of(&l, &mail);
                let added = list.add(&mail)?;
                let p = crate::store::pin::pin_published(&l, &mail, mode)?;
                // The pin is part of the entry: said with the addition, or on its own when an
                // existing entry's pin changes.
                let pin_note = || {
                    vec![format!(
                        "proof {}, key {}",
                        p.pin.proof.as_str(),
                        p.pin.key.as_deref().unwrap_or("none")
                    )]
                };
                let default_pin = p.pin.key.is_none() && p.pin.proof == Default::default();
                if added {
                    crate::store::audit::record_change(
                        &l,
                        "allowlist.add",
                        "cli",
                        crate::store::audit::Subject::Email(&mail),
                        if default_pin { vec![] } else { pin_note() },
                    );
                    println!("added {mail}");
                } else {
                    if before.as_ref().map(|b| (&b.proof, &b.key))
                        != Some((&p.pin.proof, &p.pin.key))
                    {
                        crate::store::audit::record_change(
                            &l,
                            "allowlist.pin",
                            "cli",
                            crate::store::audit::Subject::Email(&mail),
                            pin_note(),
                        );
                    }
                    println!("{mail} is already in the allowlist");
                }
                match (&p.pin.key, &p.no_key) {
                    (Some(k), _) => println!(
                        "pinned {mail}'s identity key {k}; proof {}",
                        p.pin.proof.as_str()
                    ),
                    (None, why) => println!(
                        "{mail} has published no identity key ({}); proof {}: {}",
                        why.as_deref().unwrap_or("none found"),
                        p.pin.proof.as_str(),
                        if p.pin.proof == crate::core::attestation::ProofMode::Required {
                            "unsigned jobs claiming this address wait; the key of their first proven job is pinned"
                        } else {
                            "their unsigned jobs are approved, labelled unverified; anyone can claim this address"
                        }
                    ),
                }
            }
            eprintln!(
                "note: a job's sender address is declared by whoever wrote the job; anyone can claim it"
            );
        }
        AllowCommand::Remove { emails } => {
            for e in emails {
                let mail = crate::core::email::normalize(e)?;
                if list.remove(&mail)? {
                    crate::store::audit::record_change(
                        &l,
                        "allowlist.remove",
                        "cli",
                        crate::store::audit::Subject::Email(&mail),
                        vec![],
                    );
                    println!("removed {mail}");
                } else {
                    return Err(Error::not_found(
                        format!("{mail} in the allowlist"),
                        "see `syft-reviewer allow list`",
                    ));
                }
            }
        }
        AllowCommand::List { json } => {
            let listing = list.load()?;
            for (name, why) in &listing.invalid {
                eprintln!("warning: allowlist/{name} is ignored: {why}");
            }
            if *json {
                let emails: Vec<&String> = listing.entries.keys().collect();
                println!(
                    "{}",
                    serde_json::json!({"emails": emails, "invalid": listing.invalid.iter().map(|(n, w)| serde_json::json!({"file": n, "reason": w})).collect::<Vec<_>>()})
                );
            } else {
                for mail in listing.entries.keys() {
                    println!("{mail}");
                }
            }
        }
    }
    Ok(())
}

fn peers(cli: &Cli, cmd: &PeersCommand) -> Result<()> {
    let l = layout(cli)?;
    appdata::ensure_app_data(&l)?;
    match cmd {
        PeersCommand::List { json } => {
            let listing = crate::store::peers::list(&l)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listing).unwrap_or_default()
                );
                return Ok(());
            }
            for b in &listing.invalid {
                eprintln!("warning: peers/{} is ignored: {}", b.file, b.reason);
            }
            if listing.approved.is_empty()
                && listing.pending.is_empty()
                && listing.revoked.is_empty()
            {
                println!(
                    "no peers and no peer requests (requests arrive in {})",
                    crate::store::peers::requests_dir(&l).display()
                );
            }
            for p in &listing.approved {
                let mut line = format!("approved  {}", p.email);
                if let (Some(at), Some(by)) = (&p.at, &p.by) {
                    line.push_str(&format!("  (by {by} at {at})"));
                }
                if !p.shared.is_empty() {
                    line.push_str(&format!("  shared: {}", p.shared.join(", ")));
                }
                println!("{line}");
            }
            for r in &listing.pending {
                match &r.message {
                    Some(m) => println!("pending   {}  {m:?}", r.email),
                    None => println!("pending   {}", r.email),
                }
            }
            for p in &listing.revoked {
                println!(
                    "revoked   {}  (by {} at {})",
                    p.email,
                    p.by.as_deref().unwrap_or("?"),
                    p.at.as_deref().unwrap_or("?")
                );
            }
        }
        PeersCommand::Approve { peer } => {
            let _changing = crate::store::audit::change_lock(&l)?;
            let config = match crate::core::config::Config::load(&l.config_file()) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!(
                        "warning: {e}\nno dataset is shared now; the running daemon shares them with the config it has in force"
                    );
                    None
                }
            };
            let a = crate::store::peers::approve(&l, config.as_ref(), peer, "cli")?;
            if a.approved {
                println!("approved peer {}", a.email);
            } else {
                println!("{} is already an approved peer", a.email);
            }
            for ds in &a.shared {
                println!("shared {ds} with {}", a.email);
            }
            for p in &a.problems {
                eprintln!("warning: {p}");
            }
        }
        PeersCommand::Revoke { peer } => {
            let _changing = crate::store::audit::change_lock(&l)?;
            let Some(r) = crate::store::peers::revoke(&l, peer, "cli")? else {
                return Err(Error::not_found(
                    format!("{} among the approved peers", peer.trim().to_lowercase()),
                    "see `syft-reviewer peers list`",
                ));
            };
            println!("revoked peer {}", r.email);
            for ds in &r.unshared {
                println!("removed {}'s read access to {ds}", r.email);
            }
            for p in &r.problems {
                eprintln!("warning: {p}");
            }
        }
    }
    Ok(())
}

fn trust(cli: &Cli, cmd: &TrustCommand) -> Result<()> {
    let l = layout(cli)?;
    appdata::ensure_app_data(&l)?;
    let store = TrustedCode::new(&l);
    let _changing = crate::store::audit::change_lock(&l)?;
    match cmd {
        TrustCommand::Add {
            signature: Some(sig),
            ..
        } => {
            let added = store.mark(sig)?;
            if added {
                crate::store::audit::record_change(
                    &l,
                    "trusted_code.mark",
                    "cli",
                    crate::store::audit::Subject::Signature(sig),
                    vec![],
                );
            }
            println!(
                "{} {sig}",
                if added { "trusted" } else { "already trusted:" }
            );
        }
        TrustCommand::Add {
            job: Some(job),
            status,
            ..
        } => {
            let rec =
                crate::store::history::record_for_job(&resolve_job(&l, job, *status)?, &l.email)?;
            let (sig, name) = (rec.signature.clone(), rec.name.clone());
            let added = store.mark_record(rec)?;
            if added {
                crate::store::audit::record_change(
                    &l,
                    "trusted_code.mark",
                    "cli",
                    crate::store::audit::Subject::Signature(&sig),
                    vec![format!("from job {job}")],
                );
            }
            println!(
                "{} {sig} (\"{}\")",
                if added { "trusted" } else { "already trusted:" },
                term(&name)
            );
        }
        TrustCommand::Add { .. } => unreachable!("clap requires a signature or --job"),
        TrustCommand::Remove { signature } => {
            if !store.unmark(signature)? {
                return Err(Error::not_found(
                    format!("trusted signature {signature}"),
                    "see `syft-reviewer trust list`",
                ));
            }
            crate::store::audit::record_change(
                &l,
                "trusted_code.unmark",
                "cli",
                crate::store::audit::Subject::Signature(signature),
                vec![],
            );
            println!("no longer trusted: {signature}");
        }
        TrustCommand::List { history, json } => {
            let rows: Vec<serde_json::Value> = if *history {
                crate::store::history::History::new(&l)
                    .list()?
                    .into_iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect()
            } else {
                store
                    .list()?
                    .into_iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect()
            };
            for row in &rows {
                if *json {
                    println!("{}", crate::core::visible::json_line(row));
                } else {
                    println!(
                        "{}  {}  ({} file(s), requested by {})",
                        term(row["signature"].as_str().unwrap_or("")),
                        term(row["name"].as_str().unwrap_or("")),
                        row["code_files"].as_array().map_or(0, |a| a.len()),
                        row["requesters"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .map(|s| term(&s).into_owned())
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

fn jobs(cli: &Cli, status: Option<Status>, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let q = Queue::new(l.queue.clone());
    let statuses: Vec<Status> = status
        .map(|s| vec![s])
        .unwrap_or_else(|| Status::ALL.to_vec());
    for s in statuses {
        for uid in q.list(s) {
            let dir = q.job_dir(s, &uid);
            let m = Metadata::read(&dir).ok();
            let (name, from, created) = match &m {
                Some(m) => (
                    m.meta.name.clone(),
                    m.meta.requester_email.clone(),
                    m.doc
                        .get("created_at")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                ),
                None => ("(unreadable metadata)".into(), String::new(), String::new()),
            };
            if json {
                println!(
                    "{}",
                    crate::core::visible::json_line(
                        &serde_json::json!({"uid": uid, "status": s, "name": name, "requester": from, "created_at": created})
                    )
                );
            } else {
                println!(
                    "{}  {:<9}  {:<30}  {}",
                    term(&uid),
                    s.as_str(),
                    term(&from),
                    term(&name)
                );
            }
        }
    }
    Ok(())
}

fn status(cli: &Cli, json: bool) -> Result<()> {
    let l = layout(cli)?;
    let q = Queue::new(l.queue.clone());
    let trust = Trust::load(&l)?;
    let running = InstanceLock::is_held(&l.state);
    let counts: serde_json::Map<String, serde_json::Value> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), q.list(*s).len().into()))
        .collect();
    let recent = DecisionLog::new(&l).tail(5);
    let unexplained = crate::daemon::bypass::unexplained_now(&l);
    let v = serde_json::json!({
        "owner": l.email,
        "datasite": l.datasite,
        "queue": l.queue,
        "app_data": l.app_data,
        "state": l.state,
        "daemon_running": running,
        "jobs": counts,
        "allowlisted_senders": trust.allowlist.entries.len(),
        "trusted_code": trust.trusted.len(),
        "ignored_store_files": trust.invalid,
        "config_error": trust.config_error,
        "rule_sets": trust.config.rule_sets().iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "recent_decisions": recent,
        "unexplained_jobs": unexplained,
    });
    if json {
        println!("{}", crate::core::visible::json_pretty(&v));
        return Ok(());
    }
    println!("owner:     {}", l.email);
    println!("datasite:  {}", l.datasite.display());
    println!("queue:     {}", l.queue.display());
    println!("app data:  {}", l.app_data.display());
    println!(
        "daemon:    {}",
        if running { "running" } else { "not running" }
    );
    println!(
        "jobs:      {}",
        Status::ALL
            .iter()
            .map(|s| format!("{} {}", counts[s.as_str()], s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "trust:     {} allowlisted sender(s), {} trusted code pattern(s)",
        trust.allowlist.entries.len(),
        trust.trusted.len()
    );
    println!(
        "rules:     {}",
        if trust.config_error.is_some() {
            "unknown: config.yaml is invalid (a running daemon keeps the rules it loaded before)"
                .to_string()
        } else if trust.config.rule_sets().is_empty() {
            "off".to_string()
        } else {
            trust
                .config
                .rule_sets()
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if let Some(e) = &trust.config_error {
        println!("warning:   {e}");
    }
    for bad in &trust.invalid {
        println!("warning:   ignored {bad}");
    }
    for u in &unexplained {
        println!(
            "ALERT:     job {} is in {}/ but {} (left as it is; find out who put it there)",
            u.uid.escape_debug(),
            u.status,
            u.why.escape_debug()
        );
    }
    for d in recent {
        println!(
            "recent:    {} {} {} ({})",
            term(&d.time),
            term(d.outcome.as_str()),
            term(&d.uid),
            term(&d.reasons.first().cloned().unwrap_or_default())
        );
    }
    Ok(())
}
