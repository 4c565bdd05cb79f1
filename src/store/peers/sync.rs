//! Bringing the peers in line with the files and the config, after every change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::core::config::Config;
use crate::error::Result;
use crate::store::peers::changes::Changes;
use crate::store::peers::domain::matching_domain;
use crate::store::peers::folders::{FILE_MODE, approved_dir, approved_listing};
use crate::store::peers::requests::{PeerRequest, ensure_requests_folder, read_requests};
use crate::store::peers::state::PeerStatus;
use crate::syftbox::Layout;

/// What a [`sync`] found that the owner should know (the daemon logs each line once).
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Files or datasets that could not be used, and failures.
    pub problems: Vec<String>,
    /// Requests waiting for the owner.
    pub waiting: Vec<String>,
}

/// Brings everything in line with the files and the config: approvals made or deleted by hand,
/// requests from approved domains, dataset grants, answers and permission files. Does nothing
/// that was already done, so it can run after every change.
pub fn sync(layout: &Layout, config: &Config, actor: &str) -> Result<Report> {
    let mut report = Report::default();
    if let Err(e) = ensure_requests_folder(layout) {
        report.problems.push(e.to_string());
    }
    let mut s = Changes::open(layout)?;
    let (listed, bad) = approved_listing(layout);
    for b in bad {
        report
            .problems
            .push(format!("ignored peers/approved/{}: {}", b.file, b.reason));
    }
    restore_modes(layout, &listed);
    follow_approved_files(&mut s, &listed)?;
    // Revocations whose grants could not all be removed yet.
    let unfinished = s
        .state
        .emails_where(|_, r| r.status == PeerStatus::Revoked && r.shared.values().any(|x| x.ours));
    for mail in unfinished {
        s.unshare_all(&mail, actor)?;
    }
    let (requests, bad) = read_requests(layout);
    for b in bad {
        report
            .problems
            .push(format!("ignored peers/requests/{}: {}", b.file, b.reason));
    }
    for req in requests.values() {
        answer_request(&mut s, config, req, actor, &mut report)?;
    }
    let datasets = &config.peers.auto_share_datasets;
    if !datasets.is_empty() {
        for mail in s
            .state
            .emails_where(|_, r| r.status == PeerStatus::Approved)
        {
            s.share_with(&mail, datasets, actor);
        }
    }
    s.write_answers(&requests)?;
    report.problems.append(&mut s.problems);
    Ok(report)
}

/// Approval files are private to the owner, whoever made them.
fn restore_modes(layout: &Layout, listed: &BTreeMap<String, String>) {
    for name in listed.values() {
        let path = approved_dir(layout).join(name);
        if let Ok(meta) = fs::symlink_metadata(&path)
            && meta.is_file()
            && meta.permissions().mode() & 0o777 != FILE_MODE
        {
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE));
        }
    }
}

/// Approval files deleted by hand revoke; files made by hand approve.
fn follow_approved_files(s: &mut Changes, listed: &BTreeMap<String, String>) -> Result<()> {
    let gone = s
        .state
        .emails_where(|m, r| r.status == PeerStatus::Approved && !listed.contains_key(m));
    for mail in gone {
        s.revoke(
            &mail,
            "filesystem",
            "its file in peers/approved/ was deleted directly",
        )?;
    }
    for mail in listed.keys() {
        if !s.state.is_approved(mail) {
            s.approve(
                mail,
                "filesystem",
                "its file in peers/approved/ was created directly",
                None,
            )?;
        }
    }
    Ok(())
}

/// Approves a new request from an approved domain; any other new request waits for the owner.
fn answer_request(
    s: &mut Changes,
    config: &Config,
    req: &PeerRequest,
    actor: &str,
    report: &mut Report,
) -> Result<()> {
    if let Some(note) = &req.note {
        report
            .problems
            .push(format!("peer request peers/requests/{}: {note}", req.file));
    }
    if req.email == s.layout.email || s.state.peers.contains_key(&req.email) {
        return Ok(());
    }
    let domain = if config.peers.enabled {
        matching_domain(&req.email, &config.peers.approved_domains)
    } else {
        None
    };
    match domain {
        Some(d) => {
            s.approve(
                &req.email,
                actor,
                &format!("peer request from an approved domain ({d})"),
                Some(&req.sha256),
            )?;
        }
        None => {
            let why = if config.peers.enabled {
                "its domain is not in peers.approved_domains"
            } else {
                "peers.enabled is false"
            };
            report.waiting.push(format!(
                "peer request from {} waits for you ({why}); approve it with `syft-reviewer peers approve {}`",
                req.email, req.email
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::peers::changes::revoke;
    use crate::store::peers::folders::{answers_dir, approved_listing, requests_dir};

    fn approved(l: &Layout) -> std::collections::BTreeSet<String> {
        approved_listing(l).0.into_keys().collect()
    }
    use crate::store::peers::listing::list;
    use crate::store::peers::sharing::has_grant;
    use crate::store::peers::state::State;
    use serde_json::Value;

    #[test]
    fn approve_revoke_and_hand_edits() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::in_test_dir(tmp.path());
        let data = l.datasite.join("data");
        fs::create_dir_all(&data).unwrap();
        let cfg = Config::parse(
            "peers:\n  enabled: true\n  approved_domains: [example.org]\n  auto_share_datasets: [data]\n",
        )
        .unwrap();
        ensure_requests_folder(&l).unwrap();
        fs::write(
            requests_dir(&l).join("bob@example.org.json"),
            r#"{"message":"hi"}"#,
        )
        .unwrap();
        fs::write(
            requests_dir(&l).join("eve@evil-example.org.json"),
            "not json",
        )
        .unwrap();
        let report = sync(&l, &cfg, "daemon").unwrap();
        assert_eq!(approved(&l), ["bob@example.org".to_string()].into());
        assert_eq!(report.waiting.len(), 1, "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("not valid JSON")));
        assert!(has_grant(&l, "data", "bob@example.org").unwrap());
        let answer: Value = serde_json::from_slice(
            &fs::read(answers_dir(&l).join("eve_at_evil-example_dot_org.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(answer["status"], "pending");
        let listing = list(&l).unwrap();
        assert_eq!(listing.approved[0].message.as_deref(), Some("hi"));
        assert_eq!(listing.approved[0].shared, vec!["data"]);
        assert_eq!(listing.pending[0].email, "eve@evil-example.org");

        // Revoked peers are not approved again by their domain.
        let r = revoke(&l, "bob@example.org", "cli").unwrap().unwrap();
        assert_eq!(r.unshared, vec!["data"]);
        assert!(!has_grant(&l, "data", "bob@example.org").unwrap());
        sync(&l, &cfg, "daemon").unwrap();
        assert!(approved(&l).is_empty());
        assert!(revoke(&l, "bob@example.org", "cli").unwrap().is_none());

        // A file made by hand approves; deleting it revokes and unshares.
        fs::write(approved_dir(&l).join("carol_at_other_dot_org"), "").unwrap();
        sync(&l, &cfg, "daemon").unwrap();
        assert!(has_grant(&l, "data", "carol@other.org").unwrap());
        fs::remove_file(approved_dir(&l).join("carol_at_other_dot_org")).unwrap();
        sync(&l, &cfg, "daemon").unwrap();
        assert!(!has_grant(&l, "data", "carol@other.org").unwrap());
        assert_eq!(
            State::load(&l).unwrap().peers["carol@other.org"].status,
            PeerStatus::Revoked
        );
    }
}
