//! Peers (filesystem-native): approved peers are stored like the allowlist, one file per email
//! under `peers/approved/`, and are what `peers_only` rules accept.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use crate::email;
use crate::syftbox::Layout;

pub fn peers_dir(layout: &Layout) -> PathBuf {
    layout.app_data.join("peers")
}

pub fn approved_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("approved")
}

pub fn requests_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("requests")
}

/// The approved peers (file names that do not decode to an email are ignored).
pub fn approved(layout: &Layout) -> BTreeSet<String> {
    fs::read_dir(approved_dir(layout))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| email::decode(&e.file_name().to_string_lossy()).ok())
                .collect()
        })
        .unwrap_or_default()
}
