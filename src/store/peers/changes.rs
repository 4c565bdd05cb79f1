//! A change to the peers under the `peers` store lock: approving, revoking, sharing and the
//! answers, each step saved to the state file and audited; the owner's approve and revoke.

use std::collections::BTreeMap;
use std::fs;

use serde::Serialize;
use serde_json::{Value, json};

use crate::core::attestation::Pin;
use crate::core::config::Config;
use crate::core::email;
use crate::core::signature::is_excluded;
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::store::audit::{self, AuditEvent, Subject};
use crate::store::lock::StoreLock;
use crate::store::peers::folders::{
    DIR_MODE, FILE_MODE, answers_dir, approved_dir, approved_listing,
};
use crate::store::peers::requests::{PeerRequest, REQUEST_MAX, read_requests};
use crate::store::peers::sharing::{ensure_grant, has_grant, recently_changed, remove_grant};
use crate::store::peers::state::{PeerRecord, PeerStatus, Share, State, now};
use crate::store::permfile::{self, PermFile};
use crate::store::pin;
use crate::syftbox::Layout;

/// Who changes a peer's status, and why.
struct StatusChange<'a> {
    mail: &'a str,
    actor: &'a str,
    reason: &'a str,
    request_sha256: Option<String>,
}

/// A change in progress: the `peers` store lock and the state, saved after each step.
pub(super) struct Changes<'a> {
    pub(super) layout: &'a Layout,
    pub(super) state: State,
    saved: State,
    pub(super) problems: Vec<String>,
    _lock: StoreLock,
}

impl<'a> Changes<'a> {
    pub(super) fn open(layout: &'a Layout) -> Result<Changes<'a>> {
        let lock = StoreLock::acquire(&layout.state, "peers")?;
        let state = State::load(layout)?;
        Ok(Changes {
            layout,
            saved: state.clone(),
            state,
            problems: Vec::new(),
            _lock: lock,
        })
    }

    fn save(&mut self) -> Result<()> {
        if self.state == self.saved {
            return Ok(());
        }
        self.state.save(self.layout)?;
        self.saved = self.state.clone();
        Ok(())
    }

    /// Stores the approval (file and record); returns false when both were already there.
    pub(super) fn approve(
        &mut self,
        mail: &str,
        actor: &str,
        reason: &str,
        request_sha: Option<&str>,
    ) -> Result<bool> {
        let listed = approved_listing(self.layout).0.contains_key(mail);
        if listed && self.state.is_approved(mail) {
            return Ok(false);
        }
        if !listed {
            let dir = approved_dir(self.layout);
            durable::ensure_private_dir(&dir, DIR_MODE)?;
            // The peer's published key is pinned with the approval, as `allow add` pins a
            // sender's: `peers_only` rules ask for jobs proven with it.
            let (pin, _) = pin::published(self.layout, mail, None);
            let mut body = json!({"email": mail, "added_at": now(), "status": "active",
                "proof": pin.proof.as_str()});
            if let (Some(key), Some(at)) = (&pin.key, &pin.pinned_at) {
                body["key"] = key.as_str().into();
                body["pinned_at"] = at.as_str().into();
            }
            durable::write_atomic(
                &dir.join(email::encode(mail)?),
                body.to_string().as_bytes(),
                FILE_MODE,
            )?;
        }
        let change = StatusChange {
            mail,
            actor,
            reason,
            request_sha256: request_sha.map(str::to_owned),
        };
        self.set_status(PeerStatus::Approved, AuditEvent::PeerApprove, change)?;
        log::info!("approved peer {mail} ({actor}: {reason})");
        Ok(true)
    }

    /// Removes the approval, the grants this app added, and records the revocation. `None` when
    /// `mail` was not an approved peer.
    pub(super) fn revoke(
        &mut self,
        mail: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<Vec<String>>> {
        let dir = approved_dir(self.layout);
        let mut removed = false;
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if email::decode(&name).ok().as_deref() == Some(mail) {
                    fs::remove_file(entry.path())
                        .map_err(|e| Error::io("remove", entry.path(), e))?;
                    removed = true;
                }
            }
        }
        if removed {
            durable::fsync_dir(&dir)?;
        }
        if !removed && !self.state.is_approved(mail) {
            return Ok(None);
        }
        let change = StatusChange {
            mail,
            actor,
            reason,
            request_sha256: self
                .state
                .peers
                .get(mail)
                .and_then(|r| r.request_sha256.clone()),
        };
        self.set_status(PeerStatus::Revoked, AuditEvent::PeerRevoke, change)?;
        log::info!("revoked peer {mail} ({actor}: {reason})");
        let unshared = self.unshare_all(mail, actor)?;
        Ok(Some(unshared))
    }

    /// Records a peer's new status, saves the state and audits `event`. The grants recorded for
    /// the peer stay: those a failed revocation could not remove yet are still ours.
    fn set_status(&mut self, status: PeerStatus, event: AuditEvent, c: StatusChange) -> Result<()> {
        let shared = self
            .state
            .peers
            .remove(c.mail)
            .map(|r| r.shared)
            .unwrap_or_default();
        self.state.peers.insert(
            c.mail.to_string(),
            PeerRecord {
                status,
                at: now(),
                by: c.actor.to_string(),
                reason: c.reason.to_string(),
                request_sha256: c.request_sha256,
                shared,
            },
        );
        self.save()?;
        audit::record_change(
            self.layout,
            event,
            c.actor,
            Subject::Email(c.mail),
            vec![c.reason.to_string()],
        );
        Ok(())
    }

    /// Removes the grants this app added for a revoked peer; what fails stays recorded (and is
    /// retried at the next sync).
    pub(super) fn unshare_all(&mut self, mail: &str, actor: &str) -> Result<Vec<String>> {
        let Some(rec) = self.state.peers.get_mut(mail) else {
            return Ok(Vec::new());
        };
        let mut unshared = Vec::new();
        let mut left = BTreeMap::new();
        for (ds, share) in std::mem::take(&mut rec.shared) {
            if !share.ours {
                continue;
            }
            match remove_grant(self.layout, &ds, mail) {
                Ok(true) => {
                    audit::record_change(
                        self.layout,
                        AuditEvent::PeerUnshare,
                        actor,
                        Subject::Email(mail),
                        vec![format!("dataset {ds}")],
                    );
                    log::info!("removed {mail}'s read access to {ds}");
                    unshared.push(ds);
                }
                Ok(false) => {}
                Err(e) => {
                    self.problems.push(format!(
                        "could not remove {mail}'s read access to {ds} (retrying later): {e}"
                    ));
                    left.insert(ds, share);
                }
            }
        }
        if let Some(rec) = self.state.peers.get_mut(mail) {
            rec.shared = left;
        }
        self.save()?;
        Ok(unshared)
    }

    /// Shares each dataset with an approved peer unless that was done; re-adds a grant this app
    /// added that was removed since. Returns the datasets whose grant was added now.
    pub(super) fn share_with(
        &mut self,
        mail: &str,
        datasets: &[String],
        actor: &str,
    ) -> Vec<String> {
        let mut added = Vec::new();
        for ds in datasets {
            let Some(rec) = self.state.peers.get(mail) else {
                break;
            };
            if rec.status != PeerStatus::Approved {
                break;
            }
            let readded = match rec.shared.get(ds) {
                Some(s) if !s.ours => continue,
                Some(_) => match has_grant(self.layout, ds, mail) {
                    Ok(true) => continue,
                    // Retried at the next sync (every rescan) once the editor is done.
                    Ok(false) if recently_changed(self.layout, ds) => continue,
                    Ok(false) => true,
                    Err(e) => {
                        self.problems
                            .push(format!("could not check the sharing of {ds}: {e}"));
                        continue;
                    }
                },
                None => false,
            };
            match ensure_grant(self.layout, ds, mail) {
                Ok(true) => {
                    let mut reasons = vec![format!("dataset {ds}")];
                    if readded {
                        log::warn!(
                            "{mail}'s read access to {ds} was removed from its syft.pub.yaml by hand, but {mail} is an approved peer and {ds} is in peers.auto_share_datasets: re-added (revoke the peer or take the dataset out of the config to stop sharing it)"
                        );
                        reasons.push("re-added: the grant had been removed by hand".into());
                    } else {
                        log::info!("shared {ds} with peer {mail}");
                    }
                    audit::record_change(
                        self.layout,
                        AuditEvent::PeerShare,
                        actor,
                        Subject::Email(mail),
                        reasons,
                    );
                    if let Some(rec) = self.state.peers.get_mut(mail) {
                        rec.shared.insert(
                            ds.clone(),
                            Share {
                                at: now(),
                                ours: true,
                            },
                        );
                    }
                    added.push(ds.clone());
                }
                Ok(false) => {
                    if !readded {
                        log::info!(
                            "{mail} could already read {ds}; that grant is not syft-reviewer's and stays on revocation"
                        );
                        if let Some(rec) = self.state.peers.get_mut(mail) {
                            rec.shared.insert(
                                ds.clone(),
                                Share {
                                    at: now(),
                                    ours: false,
                                },
                            );
                        }
                    }
                }
                Err(e) => self
                    .problems
                    .push(format!("could not share {ds} with {mail}: {e}")),
            }
            if let Err(e) = self.save() {
                self.problems.push(e.to_string());
            }
        }
        added
    }

    /// Writes the answers (approved, revoked, pending), removes answers nobody needs, and
    /// regenerates the folder's `syft.pub.yaml` so each email reads only its own answer.
    pub(super) fn write_answers(&mut self, requests: &BTreeMap<String, PeerRequest>) -> Result<()> {
        let (listed, _) = approved_listing(self.layout);
        let mut want: BTreeMap<String, &str> = BTreeMap::new();
        for mail in listed.keys() {
            want.insert(mail.clone(), "approved");
        }
        for (mail, rec) in &self.state.peers {
            if rec.status == PeerStatus::Revoked {
                want.entry(mail.clone()).or_insert("revoked");
            }
        }
        for mail in requests.keys() {
            if *mail != self.layout.email {
                want.entry(mail.clone()).or_insert("pending");
            }
        }
        let dir = answers_dir(self.layout);
        if want.is_empty() && !dir.exists() {
            return Ok(());
        }
        durable::ensure_private_dir(&dir, DIR_MODE)?;
        let mut sync = Sync::batch();
        let mut files: Vec<(String, String)> = Vec::new();
        for (mail, status) in &want {
            let name = format!("{}.json", email::encode(mail)?);
            let path = dir.join(&name);
            let current: Option<Value> = durable::read_capped(&path, REQUEST_MAX)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let same = current
                .as_ref()
                .is_some_and(|v| v["email"] == mail.as_str() && v["status"] == *status);
            if !same {
                let body = json!({"email": mail, "status": status, "at": now()});
                durable::write_atomic_with(
                    &path,
                    body.to_string().as_bytes(),
                    FILE_MODE,
                    &mut sync,
                )?;
            }
            files.push((name, mail.clone()));
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if is_excluded(&name) || !name.ends_with(".json") {
                    continue;
                }
                if !files.iter().any(|(n, _)| *n == name)
                    && entry.file_type().is_ok_and(|t| t.is_file())
                {
                    fs::remove_file(entry.path())
                        .map_err(|e| Error::io("remove", entry.path(), e))?;
                    sync.add_dir(&dir);
                }
            }
        }
        let perm = PermFile::one_reader_per_file(
            files
                .iter()
                .map(|(name, mail)| (name.as_str(), mail.as_str())),
        );
        permfile::write_if_changed(&dir.join(permfile::FILE_NAME), &perm, &mut sync)?;
        sync.commit()
    }
}

/// The result of approving a peer by hand.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub email: String,
    /// False when the peer was already approved.
    pub approved: bool,
    /// Dataset folders shared with the peer now.
    pub shared: Vec<String>,
    /// The proof setting and identity key pinned for the peer.
    pub pin: Option<Pin>,
    /// Why no key is pinned (no published `did.json`, or an unreadable one).
    pub no_key: Option<String>,
    pub problems: Vec<String>,
}

/// Approves a peer by hand (with or without a request) and, with a config, shares its datasets.
pub fn approve(
    layout: &Layout,
    config: Option<&Config>,
    input: &str,
    actor: &str,
) -> Result<Approval> {
    let mail = email::normalize(input)?;
    if mail == layout.email {
        return Err(Error::invalid(
            "the datasite owner cannot be their own peer",
            "give someone else's email",
        ));
    }
    let mut s = Changes::open(layout)?;
    let (requests, _) = read_requests(layout);
    let sha = requests.get(&mail).map(|r| r.sha256.as_str());
    let approved = s.approve(&mail, actor, "approved by hand", sha)?;
    let (pin, no_key) = repin(&s, &mail, actor)?;
    let shared = match config {
        Some(c) => s.share_with(&mail, &c.peers.auto_share_datasets, actor),
        None => Vec::new(),
    };
    s.write_answers(&requests)?;
    Ok(Approval {
        email: mail,
        approved,
        shared,
        pin,
        no_key,
        problems: s.problems,
    })
}

/// Approving an approved peer again pins the key they publish now (audited when it changes).
fn repin(s: &Changes, mail: &str, actor: &str) -> Result<(Option<Pin>, Option<String>)> {
    let Some(name) = approved_listing(s.layout).0.remove(mail) else {
        return Ok((None, None));
    };
    let path = approved_dir(s.layout).join(name);
    let (before, _) = pin::read(&path);
    let p = pin::pin_file(s.layout, &path, mail, None, FILE_MODE)?;
    if (before.proof, &before.key) != (p.pin.proof, &p.pin.key) {
        audit::record_change(
            s.layout,
            AuditEvent::PeerPin,
            actor,
            Subject::Email(mail),
            vec![format!(
                "proof {}, key {}",
                p.pin.proof.as_str(),
                p.pin.key.as_deref().unwrap_or("none")
            )],
        );
    }
    Ok((Some(p.pin), p.no_key))
}

/// The result of revoking a peer.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    pub email: String,
    /// Dataset folders whose grant was removed.
    pub unshared: Vec<String>,
    pub problems: Vec<String>,
}

/// Revokes a peer: its approval file goes, its answer says `revoked`, and the read grants this
/// app added are removed (other rules stay). `None` when it was not an approved peer.
pub fn revoke(layout: &Layout, input: &str, actor: &str) -> Result<Option<Revocation>> {
    let mail = email::normalize(input)?;
    let mut s = Changes::open(layout)?;
    let Some(unshared) = s.revoke(&mail, actor, "revoked by hand")? else {
        return Ok(None);
    };
    let (requests, _) = read_requests(layout);
    s.write_answers(&requests)?;
    Ok(Some(Revocation {
        email: mail,
        unshared,
        problems: s.problems,
    }))
}

/// Trust on first use for a peer approved before they published a key: the key of their first
/// proven job is pinned, so a later change is never followed silently. False when `mail` is not
/// an approved peer or a key is pinned already.
pub fn pin_first_key(layout: &Layout, mail: &str, fingerprint: &str) -> Result<bool> {
    let s = Changes::open(layout)?;
    let Some(name) = approved_listing(layout).0.remove(mail) else {
        return Ok(false);
    };
    let path = approved_dir(layout).join(name);
    let (mut pin, _) = pin::read(&path);
    if pin.key.is_some() {
        return Ok(false);
    }
    pin.key = Some(fingerprint.to_string());
    pin.pinned_at = Some(now());
    let mut sync = Sync::batch();
    pin::write(&path, &pin, FILE_MODE, &mut sync)?;
    sync.commit()?;
    audit::record_change(
        s.layout,
        AuditEvent::PeerPin,
        crate::store::audit::Actor::Daemon,
        Subject::Email(mail),
        vec![format!(
            "proof {}, key {fingerprint} (first proof)",
            pin.proof.as_str()
        )],
    );
    Ok(true)
}
