//! The `peers/` folders in the owner's datasite (modes, paths) and the approved peers' files in
//! `peers/approved/`, one per peer, like the allowlist.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::core::email;
use crate::core::signature::is_excluded;
use crate::syftbox::Layout;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

pub fn peers_dir(layout: &Layout) -> PathBuf {
    layout.app_data.join("peers")
}

pub fn approved_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("approved")
}

pub fn requests_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("requests")
}

pub fn answers_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("answers")
}

/// A file in `peers/` that is not used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadFile {
    pub file: String,
    pub reason: String,
}

/// Approved peers (email -> file name), and files that are not valid entries.
pub fn approved_listing(layout: &Layout) -> (BTreeMap<String, String>, Vec<BadFile>) {
    let mut found = BTreeMap::new();
    let mut bad = Vec::new();
    let Ok(entries) = fs::read_dir(approved_dir(layout)) else {
        return (found, bad);
    };
    for entry in entries.flatten() {
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            bad.push(BadFile {
                file: raw.to_string_lossy().into_owned(),
                reason: "the file name is not UTF-8".into(),
            });
            continue;
        };
        if is_excluded(name) || name.starts_with('.') {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            bad.push(BadFile {
                file: name.to_string(),
                reason: "not a regular file (links and folders are not entries)".into(),
            });
            continue;
        }
        match email::decode(name) {
            Ok(mail) => {
                found.insert(mail, name.to_string());
            }
            Err(e) => bad.push(BadFile {
                file: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }
    (found, bad)
}

/// The approved peers (file names that do not decode to an email are ignored).
pub fn approved(layout: &Layout) -> BTreeSet<String> {
    approved_listing(layout).0.into_keys().collect()
}

/// A layout in `dir` with its state and app data folders, for the tests of these modules.
#[cfg(test)]
pub(super) fn test_layout(dir: &std::path::Path) -> Layout {
    let l = Layout::new(&crate::syftbox::Identity {
        data_dir: dir.to_path_buf(),
        email: "owner@x.org".into(),
        source: None,
    });
    fs::create_dir_all(&l.state).unwrap();
    fs::create_dir_all(&l.app_data).unwrap();
    l
}
