//! Telling the world about decisions: the `hooks.on_decision` command and `notify.smtp` mail.
//!
//! A [`Notifier`] is built from the config in force and reconfigured when `config.yaml` changes.
//! It never decides anything and never holds a decision up: hooks and mail each run on their
//! own worker thread behind a bounded queue (when a queue is full the notification is logged and
//! dropped), hooks are killed when their timeout passes, and mail is retried with backoff. The
//! daemon hands its notifier to the web server, so verdicts given through the API in the same
//! process go through it; a verdict given in another process (the `decide` command, the MCP
//! server) is announced from that process with a one-shot notifier that it waits for, within a
//! time limit.

mod decision;
pub(crate) mod hooks;
mod mail;
mod notifier;

pub use decision::Decision;
pub use notifier::Notifier;

use crate::core::config::Config;
use crate::syftbox::Layout;

/// Announces a decision made outside the daemon's own loop (a verdict, an expiry) to the
/// daemon's `notifier`. Call it after the queue lock is released: without a notifier (the
/// `decide` command, the MCP server) it runs the hook and sends the mail from this process and
/// waits for them, within the hook's timeout and a limit for the mail.
pub fn announce(layout: &Layout, notifier: Option<&Notifier>, d: Decision) {
    if let Some(n) = notifier {
        n.decision(d);
        return;
    }
    let Some(n) = one_shot(layout, &format!("job {}", d.uid)) else {
        return;
    };
    n.decision(d);
    n.close(n.one_shot_budget());
}

/// A notifier for decisions made outside the daemon, `None` when the config asks for no hook
/// and no mail on decisions. The caller closes it within its `one_shot_budget`. `what` names the
/// decisions in the warning about a config that cannot be read.
pub(crate) fn one_shot(layout: &Layout, what: &str) -> Option<Notifier> {
    let config = match Config::load(&layout.config_file()) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("no hook or mail for {what}: {e}");
            return None;
        }
    };
    if config.hooks.on_decision.is_none()
        && config.notify.smtp.as_ref().is_none_or(|s| !s.on_decision)
    {
        return None;
    }
    let n = Notifier::new(&layout.email, &config);
    n.set_ui_url(Some(format!(
        "http://127.0.0.1:{}/",
        crate::syftbox::default_port()
    )));
    Some(n)
}
