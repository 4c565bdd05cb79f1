//! A cheap summary of a job folder (names, sizes, times, inodes: no file is read), to tell
//! whether anything changed since it was last evaluated.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::core::signature::MAX_ENTRIES;

/// A cheap summary of a job folder's state (names, sizes, times, inodes), used to tell whether
/// anything changed since it was last evaluated without hashing it again.
pub fn fingerprint(job_dir: &Path) -> u64 {
    fingerprint_and_root(job_dir).0
}

/// [`fingerprint`] and the `lstat` of `job_dir` itself that it took (`None` if there was none),
/// for callers that would look at the folder again.
pub(crate) fn fingerprint_and_root(job_dir: &Path) -> (u64, Option<std::fs::Metadata>) {
    // Entries are combined in any order (sorting would read a huge folder whole), and a folder
    // too big to list in full is flagged by the scan: its first entries tell changes apart.
    let mut sum = 0u64;
    let mut count = 0u64;
    let mut root = None;
    for entry in walkdir::WalkDir::new(job_dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES + 16)
    {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        entry.path().hash(&mut h);
        let meta = entry.path().symlink_metadata();
        if let Ok(m) = &meta {
            (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.mode()).hash(&mut h);
        }
        if entry.depth() == 0 {
            root = meta.ok();
        }
        sum = sum.wrapping_add(h.finish());
        count += 1;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (sum, count).hash(&mut h);
    (h.finish(), root)
}
