//! The summaries a page of jobs showed, kept (a bounded number) and shown again while nothing they
//! were made from has changed: the job folder (every entry's name, size, times, inode and mode),
//! the other status folders holding its uid, the sender's `did.json` and peer pin, and the stores
//! and rules ([`Trust`], whose allowlist stamp covers the allowlist pins). A poll of the Pending
//! tab then costs a look at each folder instead of reading, hashing and checking every job again.
//!
//! A folder with an entry changed in the last seconds is read each time (as the hash cache does):
//! a second change within the filesystem's timestamp granularity would not show in its times. A
//! summary is kept only if the daemon's index saw the same sender; what a decision acts on is
//! checked again by the gate anyway (the signature the owner saw).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use super::jobs::Summary;
use crate::core::signature::MAX_ENTRIES;
use crate::queue::review::Trust;
use crate::queue::{Queue, Status};

/// Summaries per generation: at most twice this many are held (a few kB each), whatever the
/// size of the queue.
const GENERATION: usize = 1_024;
/// Seconds an entry must have been left alone before a summary of its folder is kept.
const QUIET_SECS: i64 = 2;

#[derive(Default)]
struct Generations {
    young: HashMap<PathBuf, (u64, Summary)>,
    old: HashMap<PathBuf, (u64, Summary)>,
}

static CACHE: LazyLock<Mutex<Generations>> = LazyLock::new(Default::default);

fn cache() -> std::sync::MutexGuard<'static, Generations> {
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a page's summaries depend on beyond each job: the stores and rules in force.
pub(crate) fn trust_state(trust: &Trust) -> u64 {
    let mut h = DefaultHasher::new();
    let a = &trust.allowlist;
    (&a.entries, &a.invalid, a.stamp).hash(&mut h);
    let mut trusted: Vec<&String> = trust.trusted.iter().collect();
    trusted.sort();
    trusted.hash(&mut h);
    // The config has no maps: its debug form is the same for the same config.
    format!("{:?}", trust.config).hash(&mut h);
    (&trust.config_error, &trust.invalid, &trust.peers).hash(&mut h);
    h.finish()
}

/// The state of what a summary of the pending job `dir` (uid `uid`, sent by `sender` as the index
/// has it) is made from, or `None` when it must be read afresh (an entry changed too recently, the
/// folder is too large to look at cheaply, or it cannot be listed).
pub(crate) fn state(
    queue: &Queue,
    dir: &Path,
    uid: &str,
    sender: Option<&str>,
    trust: &Trust,
    trust_state: u64,
) -> Option<u64> {
    let now = now_secs()?;
    let (mut sum, mut count, mut newest) = (0u64, 0usize, i64::MIN);
    let mut note = |path: &Path, m: &std::fs::Metadata| {
        let mut h = DefaultHasher::new();
        path.hash(&mut h);
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
            .hash(&mut h);
        (m.ino(), m.mode(), m.nlink()).hash(&mut h);
        // Entries are summed in any order: the same set gives the same state.
        sum = sum.wrapping_add(h.finish());
        newest = newest.max(m.mtime()).max(m.ctime());
    };
    let root = std::fs::symlink_metadata(dir).ok()?;
    note(dir, &root);
    // Each entry is looked at relative to its open folder (`DirEntry::metadata`), not by its
    // whole path: the path lookups were most of the cost.
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).ok()? {
            let entry = entry.ok()?;
            let m = entry.metadata().ok()?;
            count += 1;
            if count > MAX_ENTRIES {
                return None;
            }
            let path = entry.path();
            note(&path, &m);
            if m.is_dir() {
                folders.push(path);
            }
        }
    }
    if newest.saturating_add(QUIET_SECS) >= now {
        return None;
    }
    let mut h = DefaultHasher::new();
    (sum, count, trust_state).hash(&mut h);
    for s in Status::ALL.iter().filter(|s| **s != Status::Pending) {
        std::fs::symlink_metadata(queue.job_dir(*s, uid))
            .is_ok()
            .hash(&mut h);
    }
    let sender = sender.map(str::to_lowercase);
    sender.hash(&mut h);
    if let (Some(s), Some(places)) = (&sender, &trust.proofs) {
        let mut files = vec![crate::store::identity::did_path(&places.data_dir, s)];
        files.extend(trust.peers.get(s).map(|f| places.peers_dir.join(f)));
        for f in files {
            std::fs::symlink_metadata(&f)
                .ok()
                .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ctime_nsec(), m.ino()))
                .hash(&mut h);
        }
    }
    Some(h.finish())
}

/// The folder `dir` was created, or moved where it is, within the last [`QUIET_SECS`] (or
/// cannot be looked at).
pub(crate) fn just_arrived(dir: &Path) -> bool {
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return true;
    };
    now_secs().is_none_or(|now| m.ctime().saturating_add(QUIET_SECS) >= now)
}

/// Seconds since the epoch, as file times count them.
fn now_secs() -> Option<i64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// The summary kept for `dir` in `state`.
pub(crate) fn get(dir: &Path, state: u64) -> Option<Summary> {
    let mut c = cache();
    if let Some((s, summary)) = c.young.get(dir) {
        return (*s == state).then(|| summary.clone());
    }
    let (s, summary) = c.old.remove(dir)?;
    if s != state {
        return None;
    }
    put_in(&mut c, dir.to_path_buf(), state, summary.clone());
    Some(summary)
}

/// Keeps `summary` of `dir`, made from `state`.
pub(crate) fn put(dir: &Path, state: u64, summary: Summary) {
    put_in(&mut cache(), dir.to_path_buf(), state, summary);
}

fn put_in(c: &mut Generations, dir: PathBuf, state: u64, summary: Summary) {
    if c.young.len() >= GENERATION && !c.young.contains_key(&dir) {
        c.old = std::mem::take(&mut c.young);
    }
    c.young.insert(dir, (state, summary));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(uid: &str) -> Summary {
        Summary {
            uid: uid.into(),
            status: Status::Pending,
            name: None,
            requester: None,
            description: None,
            tags: Vec::new(),
            created_at: None,
            timeout_seconds: None,
            expires_at: None,
            signature: None,
            verdict: None,
            reasons: Vec::new(),
            warnings: Vec::new(),
            proof: None,
            being_reviewed: false,
        }
    }

    #[test]
    fn a_summary_is_shown_again_only_in_the_same_state_and_memory_is_bounded() {
        let dir = Path::new("/nonexistent/shown-test/a");
        put(dir, 1, summary("a"));
        assert_eq!(get(dir, 1).map(|s| s.uid), Some("a".to_string()));
        assert!(get(dir, 2).is_none());
        for i in 0..3 * GENERATION {
            put(
                &PathBuf::from(format!("/nonexistent/shown-test/{i}")),
                0,
                summary("x"),
            );
        }
        let c = cache();
        assert!(c.young.len() <= GENERATION && c.old.len() <= GENERATION);
    }

    #[test]
    fn a_quiet_folder_has_a_state_that_any_change_moves() {
        let tmp = tempfile::tempdir().unwrap();
        let queue = Queue::new(tmp.path().to_path_buf());
        let dir = queue.job_dir(Status::Pending, "u1");
        std::fs::create_dir_all(dir.join("code")).unwrap();
        std::fs::write(dir.join("code/run.sh"), "echo hi\n").unwrap();
        let trust = Trust::default();
        let t = trust_state(&trust);
        let now = || state(&queue, &dir, "u1", Some("a@x.org"), &trust, t);
        assert_eq!(now(), None, "changed just now: read afresh");
        std::thread::sleep(std::time::Duration::from_secs(QUIET_SECS as u64 + 1));
        let quiet = now();
        assert!(quiet.is_some());
        assert_eq!(now(), quiet, "the same folder, the same state");
        assert_ne!(state(&queue, &dir, "u1", Some("b@x.org"), &trust, t), quiet);
        assert_ne!(
            state(&queue, &dir, "u1", Some("a@x.org"), &trust, t ^ 1),
            quiet
        );
        std::fs::create_dir_all(queue.job_dir(Status::Rejected, "u1")).unwrap();
        assert_ne!(now(), quiet, "a copy in another status folder");
        std::fs::remove_dir(queue.job_dir(Status::Rejected, "u1")).unwrap();
        assert_eq!(now(), quiet);
        std::fs::write(dir.join("code/run.sh"), "echo ho\n").unwrap();
        assert_eq!(now(), None, "changed just now: read afresh");
    }
}
