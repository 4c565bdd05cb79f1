//! Mail about decisions and waiting jobs (`notify.smtp`): composing it, and the worker that
//! sends it, retrying with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use crate::announce::decision::Decision;
use crate::core::config::SmtpConfig;

/// Tries per mail, and the wait before the second one (doubled after each failure).
const MAIL_ATTEMPTS: u32 = 3;
const MAIL_BACKOFF: Duration = Duration::from_secs(1);
/// The limit on each SMTP command (connecting included).
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) struct MailJob {
    pub(crate) smtp: SmtpConfig,
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) uid: String,
}

pub(crate) fn mail_worker(rx: Receiver<MailJob>, stop: Arc<AtomicBool>) {
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
pub(crate) enum Security {
    /// Plain connection upgraded with STARTTLS; refused if the server cannot upgrade.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption (a local relay).
    None,
}

impl Security {
    pub(crate) fn of(s: &SmtpConfig) -> Security {
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
pub(crate) fn transport(s: &SmtpConfig) -> Result<SmtpTransport, String> {
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

fn outcome_words(outcome: &str) -> String {
    match outcome {
        "waiting" => "waiting for you".into(),
        "flagged" => "flagged, waiting for you".into(),
        "changes_requested" => "changes requested".into(),
        "sent_back" => "sent back for a new review".into(),
        other => other.replace('_', " "),
    }
}

/// The subject and plain-text body of a mail about `d`.
pub(crate) fn compose(d: &Decision, pending: bool, ui_url: Option<&str>) -> (String, String) {
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
        let how = d.method.as_deref().unwrap_or("-").replace('_', " ");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Config;

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
        let (s, b) = compose(
            &Decision::sample("approved"),
            false,
            Some("http://127.0.0.1:8002/"),
        );
        assert_eq!(
            s,
            "[syft-reviewer] job \"Count rows\" from r@example.org: approved"
        );
        assert!(b.contains("uid:       u-1"), "{b}");
        assert!(b.contains("by:        daemon (trusted code)"), "{b}");
        assert!(b.contains("- the code is trusted"), "{b}");
        let (s, b) = compose(&Decision::sample("waiting"), true, None);
        assert!(s.ends_with(": waiting for you"), "{s}");
        assert!(
            b.contains("syft-reviewer decide u-1 approve --signature abab"),
            "{b}"
        );
        assert!(
            b.contains("syft-reviewer decide u-1 reject --rationale"),
            "{b}"
        );
        let (s, _) = compose(&Decision::sample("changes_requested"), false, None);
        assert!(s.ends_with(": changes requested"), "{s}");
        assert_eq!(clean(&"x".repeat(100), 80).len(), 83);
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
}
