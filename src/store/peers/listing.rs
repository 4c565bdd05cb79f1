//! The peers listing for the CLI and the API: approved, pending, revoked, and unused files.

use serde::Serialize;

use crate::core::attestation::{ProofMode, ProofView};
use crate::error::Result;
use crate::store::peers::folders::{BadFile, approved_dir, approved_listing};
use crate::store::peers::requests::{PeerRequest, read_requests};
use crate::store::peers::state::{PeerStatus, State};
use crate::store::pin;
use crate::syftbox::Layout;

#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub email: String,
    pub at: Option<String>,
    pub by: Option<String>,
    pub reason: Option<String>,
    /// Dataset folders whose read grant syft-reviewer added for this peer.
    pub shared: Vec<String>,
    pub message: Option<String>,
    /// For an approved peer: their proof mode and how far their pinned key holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ProofMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofView>,
}

/// Approved peers, pending requests, revoked peers, and files that are not used.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub approved: Vec<PeerView>,
    pub pending: Vec<PeerRequest>,
    pub revoked: Vec<PeerView>,
    pub invalid: Vec<BadFile>,
}

/// Reads everything; changes nothing.
pub fn list(layout: &Layout) -> Result<Listing> {
    let state = State::load(layout)?;
    let (listed, bad_approved) = approved_listing(layout);
    let (requests, bad_requests) = read_requests(layout);
    let view = |mail: &str| {
        let rec = state.peers.get(mail);
        PeerView {
            email: mail.to_string(),
            at: rec.map(|r| r.at.clone()),
            by: rec.map(|r| r.by.clone()),
            reason: rec.map(|r| r.reason.clone()),
            shared: rec
                .map(|r| {
                    r.shared
                        .iter()
                        .filter(|(_, s)| s.ours)
                        .map(|(d, _)| d.clone())
                        .collect()
                })
                .unwrap_or_default(),
            message: requests.get(mail).and_then(|r| r.message.clone()),
            mode: None,
            proof: None,
        }
    };
    let approved = listed
        .iter()
        .map(|(m, file)| {
            let (pin, proof) = pin::standing_of_entry(layout, &approved_dir(layout).join(file), m);
            PeerView {
                mode: Some(pin.proof),
                proof: Some(proof),
                ..view(m)
            }
        })
        .collect();
    let revoked = state
        .peers
        .iter()
        .filter(|(m, r)| r.status == PeerStatus::Revoked && !listed.contains_key(*m))
        .map(|(m, _)| view(m))
        .collect();
    let pending = requests
        .values()
        .filter(|r| {
            r.email != layout.email
                && !listed.contains_key(&r.email)
                && !state.peers.contains_key(&r.email)
        })
        .cloned()
        .collect();
    let mut invalid: Vec<BadFile> = bad_approved
        .into_iter()
        .map(|b| BadFile {
            file: format!("approved/{}", b.file),
            reason: b.reason,
        })
        .collect();
    invalid.extend(bad_requests.into_iter().map(|b| BadFile {
        file: format!("requests/{}", b.file),
        reason: b.reason,
    }));
    Ok(Listing {
        approved,
        pending,
        revoked,
        invalid,
    })
}
