//! The [`Notifier`]: hooks and mail each on their own worker thread behind a bounded queue, so
//! a notification never holds a decision up.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::announce::decision::Decision;
use crate::announce::hooks;
use crate::announce::mail::{self, MailJob};
use crate::core::config::{Config, HooksConfig, SmtpConfig};
use crate::queue::uid::Uid;

/// Notifications that may wait for each worker before new ones are dropped.
const QUEUE: usize = 64;
/// How long a process that announces one verdict waits for its mail.
const ONE_SHOT_MAIL: Duration = Duration::from_secs(20);

struct HookJob {
    command: String,
    timeout: Duration,
    decision: Decision,
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
    /// One per waiting job announced: compact uids (a flood of strangers' jobs is all here).
    uids: HashSet<Uid>,
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
            .spawn(move || mail::mail_worker(mail_rx, halt))
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
        // A queue's listing comes sorted: looked up in place rather than copied into a set.
        let unsorted: Option<HashSet<&str>> = (!still_pending.is_sorted())
            .then(|| still_pending.iter().map(String::as_str).collect());
        let keep = |l: &str| match &unsorted {
            Some(set) => set.contains(l),
            None => still_pending
                .binary_search_by(|p| p.as_str().cmp(l))
                .is_ok(),
        };
        let uids: HashSet<Uid> = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| keep(l))
            .map(Uid::new)
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
            if !a.uids.insert(Uid::new(&d.uid)) {
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

    /// A job started waiting ([`Notifier::pending`]) or was decided ([`Notifier::decision`]).
    pub(crate) fn announce(&self, d: Decision) {
        if d.is_pending() {
            self.pending(d);
        } else {
            self.decision(d);
        }
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
                    let (subject, body) = mail::compose(&d, pending, s.ui_url.as_deref());
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
    pub(crate) fn one_shot_budget(&self) -> Duration {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        n.pending(Decision::sample("waiting"));
        n.pending(Decision::sample("waiting"));
        assert!(n.close(Duration::from_secs(5)));
        let n = Notifier::new("o@example.org", &cfg);
        n.track_announced(path.clone(), &pending);
        n.pending(Decision::sample("waiting"));
        n.decision(Decision::sample("approved"));
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
            n.decision(Decision::sample("approved"));
        }
        assert!(start.elapsed() < Duration::from_millis(500));
        // Closing gives up at its deadline and kills the hook in flight.
        assert!(!n.close(Duration::from_millis(200)));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
