//! A cheap summary of a job folder (names, sizes, times, inodes: no file is read), to tell
//! whether anything changed since it was last evaluated, and the `lstat`s it takes, kept for the
//! review that follows it on the same thread so that the code is looked at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::core::signature::MAX_ENTRIES;

/// A cheap summary of a job folder's state (names, sizes, times, inodes), used to tell whether
/// anything changed since it was last evaluated without hashing it again.
pub fn fingerprint(job_dir: &Path) -> u64 {
    fingerprint_and_root(job_dir).0
}

/// [`fingerprint`] and the `lstat` of `job_dir` itself that it took (`None` if there was none),
/// for callers that would look at the folder again.
pub(crate) fn fingerprint_and_root(job_dir: &Path) -> (u64, Option<std::fs::Metadata>) {
    fingerprint_walk(job_dir, &mut |_, _| {})
}

/// [`fingerprint_and_root`], handing each `lstat` it takes to `seen`.
fn fingerprint_walk(
    job_dir: &Path,
    seen: &mut dyn FnMut(&Path, &std::fs::Metadata),
) -> (u64, Option<std::fs::Metadata>) {
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
            seen(entry.path(), m);
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

/// `lstat`s kept at most: a job's code is a few files; a hostile one with thousands is looked at
/// twice rather than held in memory.
const KEPT_MAX: usize = 1024;

/// A job's `code/` and the `lstat`s of it and of what is in it, in the order a walk met them.
type Kept = (PathBuf, VecDeque<(PathBuf, std::fs::Metadata)>);

thread_local! {
    /// The `lstat`s a [`fingerprint_keeping_stats`] took under a job's `code/`, in the order its
    /// walk met them, for the scan of that `code/` that follows it on this thread.
    static KEPT: RefCell<Option<Kept>> =
        const { RefCell::new(None) };
}

/// [`fingerprint_and_root`], keeping the `lstat`s it takes of `job_dir/code` and what is in it
/// for the next [`scan_code`](crate::core::signature::scan_code) of that folder on this thread (until [`forget_stats`]): the review
/// that follows a fingerprint then walks the code without looking at each file a second time.
/// Only for a review that runs at once; the check after a move takes its own.
pub(crate) fn fingerprint_keeping_stats(job_dir: &Path) -> (u64, Option<std::fs::Metadata>) {
    let code = job_dir.join("code");
    let mut kept = VecDeque::new();
    let out = fingerprint_walk(job_dir, &mut |path, meta| {
        if kept.len() < KEPT_MAX && path.starts_with(&code) {
            kept.push_back((path.to_path_buf(), meta.clone()));
        }
    });
    KEPT.with(|k| *k.borrow_mut() = Some((code, kept)));
    out
}

/// Drops what [`fingerprint_keeping_stats`] kept on this thread.
pub(crate) fn forget_stats() {
    KEPT.with(|k| k.borrow_mut().take());
}

/// The kept `lstat` of `path` if it is the next one kept for `code_dir` (walks of one folder
/// meet its entries in the same order); `None` sends the caller to the file system.
pub(crate) fn kept_stat(code_dir: &Path, path: &Path) -> Option<std::fs::Metadata> {
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        let (dir, queue) = k.as_mut()?;
        if dir != code_dir || queue.front().is_none_or(|(p, _)| p != path) {
            return None;
        }
        queue.pop_front().map(|(_, m)| m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::signature;

    #[test]
    fn a_scan_after_a_fingerprint_that_kept_its_stats_finds_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        let code = job.join("code");
        std::fs::create_dir_all(code.join("lib")).unwrap();
        std::fs::write(job.join("metadata.json"), "{}").unwrap();
        std::fs::write(code.join("run.sh"), "echo hi\n").unwrap();
        std::fs::write(code.join("lib/a.py"), "x = 1\n").unwrap();
        std::fs::write(code.join("syft.pub.yaml"), "rules: []\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", code.join("data")).unwrap();
        let plain = signature::scan_code(&code).unwrap();
        let fp = fingerprint_keeping_stats(&job).0;
        assert_eq!(fp, fingerprint(&job));
        let kept = signature::scan_code(&code).unwrap();
        forget_stats();
        assert_eq!(kept.files, plain.files);
        assert_eq!(kept.problems, plain.problems);
        assert_eq!(
            kept.walked.unwrap().len(),
            plain.walked.unwrap().len(),
            "every entry is met"
        );
        // Kept for one job, never used for another folder.
        fingerprint_keeping_stats(&job);
        let other = dir.path().join("other/code");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("run.sh"), "echo other\n").unwrap();
        let scan = signature::scan_code(&other).unwrap();
        forget_stats();
        assert_eq!(scan.file_set().collect::<Vec<_>>(), ["run.sh"]);
        assert_ne!(scan.files[0].sha256, plain.files[1].sha256);
    }
}
