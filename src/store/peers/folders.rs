//! The `peers/` folders in the owner's datasite (modes, paths) and the approved peers' files in
//! `peers/approved/`, one per peer, like the allowlist.

use std::collections::BTreeMap;
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
    let not_file = "not a regular file (links and folders are not entries)";
    for name in file_names(entries.flatten(), not_file) {
        let name = match name {
            Ok(n) => n,
            Err(b) => {
                bad.push(b);
                continue;
            }
        };
        match email::decode(&name) {
            Ok(mail) => {
                found.insert(mail, name);
            }
            Err(e) => bad.push(BadFile {
                file: name,
                reason: e.to_string(),
            }),
        }
    }
    (found, bad)
}

/// The names of the regular files among `entries`, in their order, skipping names sync ignores
/// and hidden ones; what is not usable (a name that is not UTF-8, or not a regular file, which
/// `not_file` explains) comes as a [`BadFile`] in its place.
pub(super) fn file_names(
    entries: impl IntoIterator<Item = fs::DirEntry>,
    not_file: &str,
) -> impl Iterator<Item = std::result::Result<String, BadFile>> {
    let not_file = not_file.to_string();
    entries.into_iter().filter_map(move |entry| {
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            return Some(Err(BadFile {
                file: raw.to_string_lossy().into_owned(),
                reason: "the file name is not UTF-8".into(),
            }));
        };
        if is_excluded(name) || name.starts_with('.') {
            return None;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            return Some(Err(BadFile {
                file: name.to_string(),
                reason: not_file.clone(),
            }));
        }
        Some(Ok(name.to_string()))
    })
}
