//! Telling the world about decisions: the `hooks.on_decision` command and `notify.smtp` mail.
//!
//! A [`Notifier`] is built from the config in force and reconfigured when `config.yaml` changes.
//! It never decides anything and never holds a decision up: hooks and mail each run on their
//! own worker thread behind a bounded queue (when a queue is full the notification is logged and
//! dropped), hooks are killed when their timeout passes, and mail is retried with backoff. The
//! daemon registers its notifier, so verdicts given through the API in the same process go
//! through it; a verdict given in another process (the `decide` command, the MCP server) is
//! announced from that process with a one-shot notifier that it waits for, within a time limit.

pub mod hooks;

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use crate::core::config::{Config, HooksConfig, SmtpConfig};
use crate::core::policy::{Disposition, Method, Recorded};
use crate::store::decision_log::Record;
use crate::syftbox::Layout;

/// Notifications that may wait for each worker before new ones are dropped.
const QUEUE: usize = 64;
/// Tries per mail, and the wait before the second one (doubled after each failure).
const MAIL_ATTEMPTS: u32 = 3;
const MAIL_BACKOFF: Duration = Duration::from_secs(1);
/// The limit on each SMTP command (connecting included).
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a process that announces one verdict waits for its mail.
const ONE_SHOT_MAIL: Duration = Duration::from_secs(20);

/// A decision as hooks receive it on stdin (one JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub uid: String,
    pub name: Option<String>,
    pub requester: Option<String>,
    /// approved, rejected, changes_requested, expired, sent_back, or for jobs that start waiting
    /// for the owner: waiting, flagged.
    pub outcome: Recorded<Disposition>,
    /// allowlist, trusted_code, rules, human; null for expiry and waiting jobs.
    pub method: Option<Recorded<Method>>,
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
            outcome: e.outcome.clone(),
            method: e.method.clone(),
            signature: e.signature.clone(),
            reasons: e.reasons.clone(),
            actor: actor.to_string(),
            time: e.time.clone(),
        }
    }

    /// Whether this is a job starting to wait for the owner rather than a decision.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.outcome.known(),
            Some(Disposition::Waiting | Disposition::Flagged)
        )
    }
}

struct HookJob {
    command: String,
    timeout: Duration,
    decision: Decision,
}

struct MailJob {
    smtp: SmtpConfig,
    to: String,
    subject: String,
    body: String,
    uid: String,
}

#[derive(Default)]
struct Settings {
    hooks: HooksConfig,
    smtp: Option<SmtpConfig>,
    ui_url: Option<String>,
}

/// Uids already announced as waiting (once per job, across restarts).
#[derive(Default)]
struct Announced {
    path: Option<PathBuf>,
    uids: HashSet<String>,
}

pub struct Notifier {
    owner: String,
    settings: Mutex<Settings>,
    hooks: Mutex<Option<SyncSender<HookJob>>>,
    mail: Mutex<Option<SyncSender<MailJob>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    running: hooks::Running,
    /// Set when [`Notifier::close`] gives up: the workers drop what is still queued.
    stop: Arc<AtomicBool>,
    announced: Mutex<Announced>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Notifier {
    /// A notifier for the datasite `owner` (the default mail recipient), with its two workers.
    pub fn new(owner: &str, config: &Config) -> Notifier {
        let running = hooks::Running::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (hook_tx, hook_rx) = mpsc::sync_channel(QUEUE);
        let (mail_tx, mail_rx) = mpsc::sync_channel(QUEUE);
        let mut workers = Vec::new();
        let (r, halt) = (running.clone(), stop.clone());
        match std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || hook_worker(hook_rx, r, halt))
        {
            Ok(h) => workers.push(h),
            Err(e) => log::error!("could not start the hook worker: {e}"),
        }
        let halt = stop.clone();
        match std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || mail_worker(mail_rx, halt))
        {
            Ok(h) => workers.push(h),
            Err(e) => log::error!("could not start the mail worker: {e}"),
        }
        let n = Notifier {
            owner: owner.to_string(),
            settings: Mutex::new(Settings::default()),
            hooks: Mutex::new(Some(hook_tx)),
            mail: Mutex::new(Some(mail_tx)),
            workers: Mutex::new(workers),
            running,
            stop,
            announced: Mutex::new(Announced::default()),
        };
        n.configure(config);
        n
    }

    /// Takes the hooks and mail settings of `config` for the notifications from now on.
    pub fn configure(&self, config: &Config) {
        let mut s = lock(&self.settings);
        s.hooks = config.hooks.clone();
        s.smtp = config.notify.smtp.clone();
    }

    /// The web UI's address, for the mails' "how to decide" lines.
    pub fn set_ui_url(&self, url: Option<String>) {
        lock(&self.settings).ui_url = url;
    }

    /// Whether anything would be sent for a decision (or, with `pending`, a waiting job).
    pub fn is_active(&self, pending: bool) -> bool {
        let s = lock(&self.settings);
        s.hooks.on_decision.is_some()
            || s.smtp
                .as_ref()
                .is_some_and(|m| if pending { m.on_pending } else { m.on_decision })
    }

    /// Remembers in `path` which waiting jobs were announced, so each is announced once even
    /// across restarts. Uids no longer in `still_pending` are forgotten.
    pub fn track_announced(&self, path: PathBuf, still_pending: &[String]) {
        let keep: HashSet<&String> = still_pending.iter().collect();
        let uids: HashSet<String> = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| keep.contains(&l.to_string()))
            .map(str::to_owned)
            .collect();
        let mut text: String = uids.iter().map(|u| format!("{u}\n")).collect();
        if uids.is_empty() {
            text.clear();
        }
        if let Err(e) = crate::durable::write_atomic(&path, text.as_bytes(), 0o600) {
            log::warn!("could not write {}: {e}", path.display());
        }
        *lock(&self.announced) = Announced {
            path: Some(path),
            uids,
        };
    }

    /// A job started waiting for the owner: announced once per job (hook and `on_pending` mail).
    pub fn pending(&self, d: Decision) {
        if !self.is_active(true) {
            return;
        }
        {
            let mut a = lock(&self.announced);
            if !a.uids.insert(d.uid.clone()) {
                return;
            }
            if let Some(path) = &a.path {
                let written = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(format!("{}\n", d.uid).as_bytes()));
                if let Err(e) = written {
                    log::warn!("could not write {}: {e}", path.display());
                }
            }
        }
        self.send(d, true);
    }

    /// A decision was made (or a job expired): hook and `on_decision` mail.
    pub fn decision(&self, d: Decision) {
        self.send(d, false);
    }

    fn send(&self, d: Decision, pending: bool) {
        let (hook, mail) = {
            let s = lock(&self.settings);
            let hook = s.hooks.on_decision.clone().map(|command| HookJob {
                command,
                timeout: Duration::from_secs(s.hooks.timeout_seconds.max(1)),
                decision: d.clone(),
            });
            let mail = s
                .smtp
                .as_ref()
                .filter(|m| if pending { m.on_pending } else { m.on_decision })
                .map(|m| {
                    let (subject, body) = compose(&d, pending, s.ui_url.as_deref());
                    MailJob {
                        to: m.to.clone().unwrap_or_else(|| self.owner.clone()),
                        smtp: m.clone(),
                        subject,
                        body,
                        uid: d.uid.clone(),
                    }
                });
            (hook, mail)
        };
        if let Some(job) = hook {
            enqueue(&self.hooks, job, "hooks.on_decision", &d.uid);
        }
        if let Some(job) = mail {
            enqueue(&self.mail, job, "the mail", &d.uid);
        }
    }

    /// Stops taking notifications and waits up to `within` for the queued ones; a hook still
    /// running then is killed. Returns whether everything queued was done.
    pub fn close(&self, within: Duration) -> bool {
        lock(&self.hooks).take();
        lock(&self.mail).take();
        let deadline = Instant::now() + within;
        let mut workers = lock(&self.workers);
        while workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let done = workers.iter().all(JoinHandle::is_finished);
        if done {
            for w in workers.drain(..) {
                let _ = w.join();
            }
        } else {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(pgid) = *lock(&self.running) {
                hooks::kill_group(pgid);
            }
            log::warn!(
                "stopping with notifications still queued or in progress (hooks or mail were not done within {} s)",
                within.as_secs()
            );
        }
        done
    }

    /// How long a process that announces one verdict should wait for its notifications.
    fn one_shot_budget(&self) -> Duration {
        let s = lock(&self.settings);
        let mut t = Duration::ZERO;
        if s.hooks.on_decision.is_some() {
            t += Duration::from_secs(s.hooks.timeout_seconds) + Duration::from_secs(1);
        }
        if s.smtp.is_some() {
            t = t.max(ONE_SHOT_MAIL);
        }
        t
    }
}

fn enqueue<T>(tx: &Mutex<Option<SyncSender<T>>>, job: T, what: &str, uid: &str) {
    let tx = lock(tx);
    match tx.as_ref().map(|t| t.try_send(job)) {
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_))) => {
            log::warn!("too many notifications queued ({QUEUE}): {what} for job {uid} was dropped")
        }
        Some(Err(TrySendError::Disconnected(_))) | None => {
            log::warn!("notifications are stopped: {what} for job {uid} was dropped")
        }
    }
}

fn hook_worker(rx: Receiver<HookJob>, running: hooks::Running, stop: Arc<AtomicBool>) {
    for job in rx {
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        let d = &job.decision;
        let input = serde_json::to_vec(d).expect("decisions always serialize");
        let env = [
            ("SYFT_REVIEWER_UID", d.uid.as_str()),
            ("SYFT_REVIEWER_OUTCOME", d.outcome.as_str()),
        ];
        let started = Instant::now();
        let outcome = hooks::run(&job.command, &input, &env, job.timeout, Some(&running));
        match outcome.describe(job.timeout) {
            None => log::debug!(
                "hooks.on_decision ran for job {} ({}) in {} ms",
                d.uid,
                d.outcome,
                started.elapsed().as_millis()
            ),
            Some(why) => log::warn!(
                "hooks.on_decision failed for job {} ({}): {why}; the decision stands",
                d.uid,
                d.outcome
            ),
        }
    }
}

fn mail_worker(rx: Receiver<MailJob>, stop: Arc<AtomicBool>) {
    for job in rx {
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        let at = format!("{}:{}", job.smtp.host, job.smtp.port());
        let mut backoff = MAIL_BACKOFF;
        for attempt in 1..=MAIL_ATTEMPTS {
            match deliver(&job) {
                Ok(()) => {
                    log::info!(
                        "mailed {} about job {} through {at}: {}",
                        job.to,
                        job.uid,
                        job.subject
                    );
                    break;
                }
                Err(e) if e.retry && attempt < MAIL_ATTEMPTS => {
                    log::warn!(
                        "could not send mail about job {} through SMTP server {at} (attempt {attempt} of {MAIL_ATTEMPTS}): {}; retrying in {} s",
                        job.uid,
                        e.message,
                        backoff.as_secs()
                    );
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    backoff *= 2;
                }
                Err(e) => {
                    log::error!(
                        "could not send mail about job {} to {} through SMTP server {at}: {}; gave up after {attempt} attempt(s)",
                        job.uid,
                        job.to,
                        e.message
                    );
                    break;
                }
            }
        }
    }
}

struct MailError {
    message: String,
    /// Worth trying again (a network problem or a temporary refusal).
    retry: bool,
}

fn deliver(job: &MailJob) -> Result<(), MailError> {
    let fixed = |message: String| MailError {
        message,
        retry: false,
    };
    let message = build_message(&job.smtp.from, &job.to, &job.subject, &job.body).map_err(fixed)?;
    let transport = transport(&job.smtp).map_err(fixed)?;
    transport.send(&message).map(|_| ()).map_err(|e| MailError {
        retry: !e.is_permanent(),
        message: e.to_string(),
    })
}

fn build_message(from: &str, to: &str, subject: &str, body: &str) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("notify.smtp.from {from:?}: {e}"))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the recipient {to:?}: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(None)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| format!("could not build the mail: {e}"))
}

/// How the SMTP connection is secured, from `notify.smtp.security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS; refused if the server cannot upgrade.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption (a local relay).
    None,
}

impl Security {
    pub fn of(s: &SmtpConfig) -> Security {
        match s.security.as_str() {
            "tls" => Security::Tls,
            "none" => Security::None,
            _ => Security::StartTls,
        }
    }
}

/// The password for `notify.smtp.username`, from the variable named by `password_env`.
fn credentials(s: &SmtpConfig) -> Result<Option<Credentials>, String> {
    let Some(user) = &s.username else {
        return Ok(None);
    };
    let var = s.password_env.as_deref().unwrap_or("");
    match std::env::var(var) {
        Ok(pw) => Ok(Some(Credentials::new(user.clone(), pw))),
        Err(_) => Err(format!(
            "notify.smtp.password_env names {var:?}, which is not set in syft-reviewer's environment"
        )),
    }
}

/// The SMTP transport for `s`: its security, port, credentials and a timeout.
pub fn transport(s: &SmtpConfig) -> Result<SmtpTransport, String> {
    let tls_err = |e: lettre::transport::smtp::Error| format!("TLS set-up for {}: {e}", s.host);
    let builder = match Security::of(s) {
        Security::StartTls => SmtpTransport::starttls_relay(&s.host).map_err(tls_err)?,
        Security::Tls => SmtpTransport::relay(&s.host).map_err(tls_err)?,
        Security::None => SmtpTransport::builder_dangerous(&s.host),
    };
    let mut builder = builder.port(s.port()).timeout(Some(SMTP_TIMEOUT));
    if let Some(c) = credentials(s)? {
        builder = builder.credentials(c);
    }
    Ok(builder.build())
}

/// Text for a subject line: one line, no control characters, not too long.
fn clean(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one = one.trim();
    if one.chars().count() > max {
        format!("{}...", one.chars().take(max).collect::<String>())
    } else {
        one.to_string()
    }
}

fn outcome_words(outcome: &Recorded<Disposition>) -> String {
    match outcome.known() {
        Some(Disposition::Waiting) => "waiting for you".into(),
        Some(Disposition::Flagged) => "flagged, waiting for you".into(),
        Some(Disposition::SentBack) => "sent back for a new review".into(),
        _ => outcome.as_str().replace('_', " "),
    }
}

/// The subject and plain-text body of a mail about `d`.
pub fn compose(d: &Decision, pending: bool, ui_url: Option<&str>) -> (String, String) {
    let name = clean(d.name.as_deref().unwrap_or("(no name)"), 80);
    let from = clean(d.requester.as_deref().unwrap_or("(unknown sender)"), 120);
    let words = outcome_words(&d.outcome);
    let subject = format!("[syft-reviewer] job \"{name}\" from {from}: {words}");
    let mut body = format!("Job \"{name}\" from {from}: {words}.\n\n");
    body.push_str(&format!("uid:       {}\n", d.uid));
    if let Some(sig) = &d.signature {
        body.push_str(&format!("signature: {sig}\n"));
    }
    if !pending {
        let how = d
            .method
            .as_ref()
            .map_or("-", Recorded::as_str)
            .replace('_', " ");
        body.push_str(&format!("by:        {} ({how})\n", d.actor));
    }
    body.push_str(&format!("time:      {}\n", d.time));
    if !d.reasons.is_empty() {
        body.push_str("\nReasons:\n");
        for r in &d.reasons {
            body.push_str(&format!("- {}\n", clean(r, 500)));
        }
    }
    body.push('\n');
    if pending {
        if let Some(url) = ui_url {
            body.push_str(&format!(
                "Review it in the Pending tab at {url} or from a terminal:\n"
            ));
        } else {
            body.push_str("Review it from a terminal:\n");
        }
        body.push_str(&format!("  syft-reviewer explain {}\n", d.uid));
        let sig = d
            .signature
            .as_deref()
            .map(|s| format!(" --signature {s}"))
            .unwrap_or_default();
        body.push_str(&format!("  syft-reviewer decide {} approve{sig}\n", d.uid));
        body.push_str(&format!(
            "  syft-reviewer decide {} reject --rationale \"why\"\n",
            d.uid
        ));
    } else {
        body.push_str("Nothing to do: this is for your information.");
        if let Some(url) = ui_url {
            body.push_str(&format!(" Every decision is in the Decisions tab at {url}"));
        }
        body.push_str(" and in `syft-reviewer audit show`.\n");
    }
    (subject, body)
}

/// Daemons' notifiers by state folder, so that verdicts given in their process use them.
static REGISTRY: Mutex<Vec<(PathBuf, Weak<Notifier>)>> = Mutex::new(Vec::new());

/// Makes `n` the notifier for verdicts given in this process on the datasite of `layout`.
pub fn register(layout: &Layout, n: &Arc<Notifier>) {
    let mut r = lock(&REGISTRY);
    r.retain(|(state, w)| w.strong_count() > 0 && state != &layout.state);
    r.push((layout.state.clone(), Arc::downgrade(n)));
}

fn registered(state: &Path) -> Option<Arc<Notifier>> {
    lock(&REGISTRY)
        .iter()
        .find(|(s, _)| s == state)
        .and_then(|(_, w)| w.upgrade())
}

/// Announces a decision made outside the daemon's own loop (a verdict, an expiry). Call it
/// after the queue lock is released: without a registered notifier (the `decide` command, the
/// MCP server) it runs the hook and sends the mail from this process and waits for them, within
/// the hook's timeout and a limit for the mail.
pub fn announce(layout: &Layout, d: Decision) {
    if let Some(n) = registered(&layout.state) {
        n.decision(d);
        return;
    }
    let config = match Config::load(&layout.config_file()) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("no hook or mail for job {}: {e}", d.uid);
            return;
        }
    };
    if config.hooks.on_decision.is_none()
        && config.notify.smtp.as_ref().is_none_or(|s| !s.on_decision)
    {
        return;
    }
    let n = Notifier::new(&layout.email, &config);
    n.set_ui_url(Some(format!(
        "http://127.0.0.1:{}/",
        crate::syftbox::default_port()
    )));
    n.decision(d);
    n.close(n.one_shot_budget());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(outcome: &str) -> Decision {
        Decision {
            uid: "u-1".into(),
            name: Some("Count\nrows".into()),
            requester: Some("r@example.org".into()),
            outcome: Disposition::parse(outcome).unwrap().into(),
            method: Some(Method::TrustedCode.into()),
            signature: Some("ab".repeat(32)),
            reasons: vec!["the code is trusted".into()],
            actor: "daemon".into(),
            time: "2026-01-01T00:00:00".into(),
        }
    }

    fn smtp(security: &str, extra: &str) -> SmtpConfig {
        Config::parse(&format!(
            "notify:\n  smtp:\n    host: localhost\n    security: {security}\n    from: r@example.org\n{extra}"
        ))
        .unwrap()
        .notify
        .smtp
        .unwrap()
    }

    #[test]
    fn subjects_and_bodies() {
        let (s, b) = compose(&decision("approved"), false, Some("http://127.0.0.1:8002/"));
        assert_eq!(
            s,
            "[syft-reviewer] job \"Count rows\" from r@example.org: approved"
        );
        assert!(b.contains("uid:       u-1"), "{b}");
        assert!(b.contains("by:        daemon (trusted code)"), "{b}");
        assert!(b.contains("- the code is trusted"), "{b}");
        let (s, b) = compose(&decision("waiting"), true, None);
        assert!(s.ends_with(": waiting for you"), "{s}");
        assert!(
            b.contains("syft-reviewer decide u-1 approve --signature abab"),
            "{b}"
        );
        assert!(
            b.contains("syft-reviewer decide u-1 reject --rationale"),
            "{b}"
        );
        let (s, _) = compose(&decision("changes_requested"), false, None);
        assert!(s.ends_with(": changes requested"), "{s}");
        assert_eq!(clean(&"x".repeat(100), 80).len(), 83);
    }

    #[test]
    fn decisions_serialize_with_every_field() {
        let v = serde_json::to_value(decision("rejected")).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "uid",
                "name",
                "requester",
                "outcome",
                "method",
                "signature",
                "reasons",
                "actor",
                "time"
            ]
        );
    }

    #[test]
    fn transport_choices() {
        assert_eq!(Security::of(&smtp("starttls", "")), Security::StartTls);
        assert_eq!(Security::of(&smtp("tls", "")), Security::Tls);
        assert_eq!(Security::of(&smtp("none", "")), Security::None);
        for sec in ["starttls", "tls", "none"] {
            assert!(transport(&smtp(sec, "")).is_ok(), "{sec}");
        }
        // Credentials come from the environment variable, never from the file.
        let with_user = smtp(
            "none",
            "    username: me\n    password_env: SYFT_REVIEWER_TEST_NO_SUCH_VAR\n",
        );
        let err = transport(&with_user).err().unwrap();
        assert!(err.contains("SYFT_REVIEWER_TEST_NO_SUCH_VAR"), "{err}");
        assert!(credentials(&smtp("none", "")).unwrap().is_none());
    }

    #[test]
    fn messages_refuse_bad_addresses() {
        assert!(build_message("r@example.org", "o@example.org", "s", "b").is_ok());
        assert!(build_message("r@example.org", "not an address", "s", "b").is_err());
    }

    #[test]
    fn waiting_jobs_are_announced_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("announced.txt");
        let log = dir.path().join("hook.log");
        let cfg = Config::parse(&format!(
            "hooks:\n  on_decision: 'cat >> {}; echo >> {}'\n",
            log.display(),
            log.display()
        ))
        .unwrap();
        let pending = vec!["u-1".to_string()];
        let n = Notifier::new("o@example.org", &cfg);
        n.track_announced(path.clone(), &pending);
        n.pending(decision("waiting"));
        n.pending(decision("waiting"));
        assert!(n.close(Duration::from_secs(5)));
        let n = Notifier::new("o@example.org", &cfg);
        n.track_announced(path.clone(), &pending);
        n.pending(decision("waiting"));
        n.decision(decision("approved"));
        assert!(n.close(Duration::from_secs(5)));
        let lines: Vec<Decision> = fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let outcomes: Vec<&str> = lines.iter().map(|d| d.outcome.as_str()).collect();
        assert_eq!(outcomes, ["waiting", "approved"]);
        // A job no longer pending is forgotten.
        let n = Notifier::new("o@example.org", &cfg);
        n.track_announced(path.clone(), &[]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        n.close(Duration::from_secs(1));
    }

    #[test]
    fn a_hanging_hook_does_not_hold_up_the_caller() {
        let cfg =
            Config::parse("hooks:\n  on_decision: 'sleep 30'\n  timeout_seconds: 1\n").unwrap();
        let n = Notifier::new("o@example.org", &cfg);
        let start = Instant::now();
        for _ in 0..(QUEUE + 10) {
            n.decision(decision("approved"));
        }
        assert!(start.elapsed() < Duration::from_millis(500));
        // Closing gives up at its deadline and kills the hook in flight.
        assert!(!n.close(Duration::from_millis(200)));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
