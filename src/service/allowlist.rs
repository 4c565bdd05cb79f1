//! The trusted-sender allowlist: add, remove, replace, check and list.

use serde::Serialize;

use crate::core::attestation::{ProofMode, ProofView};
use crate::core::email;
use crate::error::Result;
use crate::store::allowlist::Allowlist;
use crate::store::audit::{self, Actor, AuditEvent, Subject};
use crate::store::pin::{self, Pinned};
use crate::syftbox::Layout;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Added {
    pub(crate) email: String,
    /// False when the sender was already in the allowlist.
    pub(crate) added: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Removed {
    pub(crate) email: String,
    /// False when the sender was not in the allowlist (nothing changed).
    pub(crate) removed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Replaced {
    pub(crate) emails: Vec<String>,
    pub(crate) added: usize,
    pub(crate) removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) email: String,
    pub(crate) allowlisted: bool,
}

/// A file of the allowlist folder that is not a valid entry, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ignored {
    pub(crate) file: String,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Listing {
    pub(crate) emails: Vec<String>,
    /// The same senders with their proof mode and how far their pinned key holds.
    pub(crate) entries: Vec<Entry>,
    pub(crate) invalid: Vec<Ignored>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entry {
    pub(crate) email: String,
    /// `required` or `optional`.
    pub(crate) mode: ProofMode,
    pub(crate) pinned_at: Option<String>,
    pub(crate) proof: ProofView,
}

pub(crate) fn remove(layout: &Layout, actor: &Actor, input: &str) -> Result<Removed> {
    let remove = Allowlist::remove;
    let (email, removed) = change(layout, actor, input, AuditEvent::AllowlistRemove, remove)?;
    Ok(Removed { email, removed })
}

/// A sender added (or already listed) with their published identity key pinned.
#[derive(Debug, Clone)]
pub(crate) struct AddedPinned {
    pub(crate) added: Added,
    pub(crate) pinned: Pinned,
}

/// Adds a sender and pins the identity key they publish (`mode` as asked, else required when a
/// key is published). The pin is part of the entry: recorded with the addition, or on its own
/// when an existing entry's pin changes.
pub(crate) fn add_pinned(
    layout: &Layout,
    actor: &Actor,
    input: &str,
    mode: Option<ProofMode>,
) -> Result<AddedPinned> {
    let _changing = audit::change_lock(layout)?;
    let mail = email::normalize(input)?;
    let list = Allowlist::new(layout);
    let before = pin::of(layout, &mail);
    let added = list.add(&mail)?;
    let p = pin::pin_published(layout, &mail, mode)?;
    let pin_note = || {
        vec![format!(
            "proof {}, key {}",
            p.pin.proof.as_str(),
            p.pin.key.as_deref().unwrap_or("none")
        )]
    };
    let default_pin = p.pin.key.is_none() && p.pin.proof == Default::default();
    let subject = Subject::Email(&mail);
    if added {
        let why = if default_pin { vec![] } else { pin_note() };
        audit::record_change(layout, AuditEvent::AllowlistAdd, actor, subject, why);
    } else if before.as_ref().map(|b| (&b.proof, &b.key)) != Some((&p.pin.proof, &p.pin.key)) {
        audit::record_change(layout, AuditEvent::AllowlistPin, actor, subject, pin_note());
    }
    Ok(AddedPinned {
        added: Added { email: mail, added },
        pinned: p,
    })
}

/// Applies `apply` to one sender under the change lock and records `event` if it changed
/// anything. Returns the normalised address and whether it changed.
fn change(
    layout: &Layout,
    actor: &Actor,
    input: &str,
    event: AuditEvent,
    apply: impl FnOnce(&Allowlist, &str) -> Result<bool>,
) -> Result<(String, bool)> {
    let _changing = audit::change_lock(layout)?;
    let mail = email::normalize(input)?;
    let changed = apply(&Allowlist::new(layout), &mail)?;
    if changed {
        record(layout, actor, event, &mail);
    }
    Ok((mail, changed))
}

/// Makes the allowlist exactly `emails`, recording each sender added and removed.
pub(crate) fn replace(layout: &Layout, actor: &Actor, emails: &[String]) -> Result<Replaced> {
    let _changing = audit::change_lock(layout)?;
    let list = Allowlist::new(layout);
    let before = list.load()?.entries;
    let (added, removed) = list.replace(emails)?;
    let after = list.load()?.entries;
    for mail in after.keys().filter(|m| !before.contains_key(*m)) {
        record(layout, actor, AuditEvent::AllowlistAdd, mail);
    }
    for mail in before.keys().filter(|m| !after.contains_key(*m)) {
        record(layout, actor, AuditEvent::AllowlistRemove, mail);
    }
    Ok(Replaced {
        emails: after.into_keys().collect(),
        added,
        removed,
    })
}

pub(crate) fn check(layout: &Layout, input: &str) -> Result<Check> {
    let mail = email::normalize(input)?;
    let allowlisted = Allowlist::new(layout).load()?.contains(&mail);
    Ok(Check {
        email: mail,
        allowlisted,
    })
}

pub(crate) fn list(layout: &Layout) -> Result<Listing> {
    let listing = Allowlist::new(layout).load()?;
    let entries = listing
        .entries
        .iter()
        .map(|(mail, file)| {
            let (pin, proof) =
                pin::standing_of_entry(layout, &layout.allowlist_dir().join(file), mail);
            Entry {
                email: mail.clone(),
                mode: pin.proof,
                pinned_at: pin.pinned_at.clone(),
                proof,
            }
        })
        .collect();
    Ok(Listing {
        entries,
        emails: listing.entries.into_keys().collect(),
        invalid: listing
            .invalid
            .into_iter()
            .map(|(file, reason)| Ignored { file, reason })
            .collect(),
    })
}

fn record(layout: &Layout, actor: &Actor, event: AuditEvent, mail: &str) {
    audit::record_change(layout, event, actor, Subject::Email(mail), vec![]);
}
