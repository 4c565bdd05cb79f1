//! One uid in several status folders (uid shadowing, SPEC §8). Anyone can write `pending/U` for
//! a uid `U` that is already completed (the completed job is visible to everyone), with other
//! code. Such a uid is ambiguous: commands that take a uid refuse it unless told which status
//! folder they mean, and the pending copy is flagged so that nothing approves it automatically.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::core::fingerprint;
use crate::error::{Error, Result};
use crate::queue::job::Inspection;
use crate::queue::layout::{Queue, Status, is_valid_uid};
use crate::queue::metadata::Metadata;

/// The status and queue root of a job folder that sits in a status folder.
fn location(dir: &Path) -> Option<(Status, &Path)> {
    let parent = dir.parent()?;
    let status = Status::parse(parent.file_name()?.to_str()?)?;
    Some((status, parent.parent()?))
}

/// Every status folder of `queue` that holds a folder named `uid`, in [`Status::ALL`] order.
pub(crate) fn copies(queue: &Queue, uid: &str) -> Vec<(Status, PathBuf)> {
    copies_knowing(queue, uid, None)
}

/// [`copies`], with whether the copy in one status folder is a folder already known.
fn copies_knowing(
    queue: &Queue,
    uid: &str,
    known: Option<(Status, bool)>,
) -> Vec<(Status, PathBuf)> {
    if !is_valid_uid(uid) {
        return Vec::new();
    }
    Status::ALL
        .into_iter()
        .map(|s| (s, queue.job_dir(s, uid)))
        .filter(|(s, d)| match known {
            Some((k, is_dir)) if k == *s => is_dir,
            _ => d.is_dir(),
        })
        .collect()
}

/// `completed/U ("Weekly stats" from bob@x.org)`, as the owner needs to tell copies apart.
fn describe(status: Status, dir: &Path) -> String {
    let uid = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match Metadata::read(dir) {
        Ok(m) => format!(
            "{status}/{uid} ({:?} from {})",
            m.meta.name, m.meta.requester_email
        ),
        Err(_) => format!("{status}/{uid} (unreadable metadata)"),
    }
}

/// Where copies of a uid are: a job folder and the copies found beside it.
type Copies = (PathBuf, Vec<(Status, PathBuf)>);

thread_local! {
    /// The copies [`fingerprint_then`] found, for the review it runs on this thread.
    static FOUND: RefCell<Option<Copies>> = const { RefCell::new(None) };
}

/// Flags a pending job whose uid is also in another status folder.
pub(crate) fn flag(ins: &mut Inspection) {
    let Some((Status::Pending, root)) = location(&ins.dir) else {
        return;
    };
    let found = FOUND
        .with(|f| f.borrow_mut().take())
        .filter(|(dir, _)| *dir == ins.dir)
        .map(|(_, found)| found);
    let found = found.unwrap_or_else(|| copies(&Queue::new(root.to_path_buf()), &ins.uid));
    for (status, dir) in found {
        if status == Status::Pending {
            continue;
        }
        ins.problems.push(format!(
            "uid {} is also in {}: one uid in two status folders is ambiguous (a command naming it \
             could act on the other copy), so this pending copy is never approved automatically; \
             decide it yourself with --status pending, or reject it",
            ins.uid,
            describe(status, &dir)
        ));
    }
}

/// The job a command means by `uid`: the copy in `status` when given, else the only copy. A uid
/// in several status folders is refused with each copy named.
pub fn locate(queue: &Queue, uid: &str, status: Option<Status>) -> Result<(Status, PathBuf)> {
    let found = copies(queue, uid);
    if let Some(want) = status {
        return found.into_iter().find(|(s, _)| *s == want).ok_or_else(|| {
            Error::absent(
                format!("job {uid:?} is not in {want}/"),
                "see `syft-reviewer jobs` for where each job is",
            )
        });
    }
    match found.len() {
        0 => Err(Error::not_found(
            format!("job {uid:?}"),
            "give a uid from `syft-reviewer jobs`, or the path of a job folder",
        )),
        1 => Ok(found.into_iter().next().expect("one copy")),
        _ => Err(Error::invalid(
            format!(
                "job uid {uid} is in {} status folders: {}",
                found.len(),
                found
                    .iter()
                    .map(|(s, d)| describe(*s, d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "say which copy you mean with --status STATUS (CLI) or status=STATUS (API, MCP); \
             a pending copy of a uid that is already elsewhere was written by someone else",
        )),
    }
}

/// [`fingerprint::fingerprint`] of a job folder plus which other status folders hold its
/// uid, so a flagged copy is evaluated again when the other copy goes (and only then).
pub fn fingerprint(dir: &Path) -> u64 {
    fingerprint_and_copies(dir).0
}

/// [`fingerprint`], which other status folders hold the uid, and whether `dir` is a folder (or
/// a link to one), as the fingerprint's `lstat` of it says.
fn fingerprint_and_copies(dir: &Path) -> (u64, Vec<(Status, PathBuf)>, bool) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let (fp, meta) = fingerprint::fingerprint_and_root(dir);
    fp.hash(&mut h);
    // The fingerprint's walk has just looked at this folder: only a link needs a second look
    // (a copy is a folder, or a link to one, as `Path::is_dir` says).
    let is_dir = match &meta {
        Some(m) if !m.file_type().is_symlink() => m.is_dir(),
        Some(_) => dir.is_dir(),
        None => false,
    };
    let mut found = Vec::new();
    if let (Some((status, root)), Some(uid)) =
        (location(dir), dir.file_name().and_then(|n| n.to_str()))
    {
        found = copies_knowing(&Queue::new(root.to_path_buf()), uid, Some((status, is_dir)));
        for (status, _) in &found {
            status.hash(&mut h);
        }
    }
    (h.finish(), found, is_dir)
}

/// The [`fingerprint`] of `dir`, then `review(fingerprint)`, whose copy check ([`flag`]) uses the
/// copies the fingerprint just found instead of looking in every status folder a second time.
/// `None` when `dir` is not a folder (gone, for one): the fingerprint's walk says so, without
/// a look of its own.
pub fn fingerprint_then<R>(dir: &Path, review: impl FnOnce(u64) -> R) -> Option<R> {
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            FOUND.with(|f| f.borrow_mut().take());
        }
    }
    let (fp, found, is_dir) = fingerprint_and_copies(dir);
    if !is_dir {
        return None;
    }
    FOUND.with(|f| *f.borrow_mut() = Some((dir.to_path_buf(), found)));
    let _forget = Forget;
    Some(review(fp))
}
