//! The SHA-256 of code files already read, so an unchanged file is never hashed twice (the
//! daemon, the post-move check and every `GET /api/v1/jobs` look at the same files).
//!
//! A file is known by its device, inode, size, modification and change times (nanoseconds):
//! writing to a file, renaming it over another or setting its times back all change the change
//! time, which nobody but the kernel sets. The cache holds a fixed number of entries whatever the
//! size of the queue: two generations, the older one dropped when the newer is full, so recently
//! used entries survive and memory stays bounded.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Entries per generation (at most twice this many are held, about 100 bytes each).
const GENERATION: usize = 16_384;

/// A file changed this recently may change again within the timestamp granularity of its
/// filesystem without its times moving: it is hashed each time until it has been quiet this long.
const QUIET: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    pub(crate) fn of(m: &Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether the file has been left alone long enough, before `now`, to be remembered.
    fn quiet_at(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let newest = self.mtime.0.max(self.ctime.0);
        newest.saturating_add(i64::try_from(QUIET.as_secs()).unwrap_or(i64::MAX)) < now
    }
}

#[derive(Default)]
struct Generations {
    young: HashMap<FileKey, [u8; 32]>,
    old: HashMap<FileKey, [u8; 32]>,
}

static CACHE: Mutex<Option<Generations>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Generations) -> R) -> R {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Generations::default))
}

/// The digest of the file with this key, if it was hashed before.
pub(crate) fn get(key: &FileKey) -> Option<[u8; 32]> {
    with(|g| {
        if let Some(d) = g.young.get(key) {
            return Some(*d);
        }
        let d = g.old.remove(key)?;
        insert_young(g, *key, d);
        Some(d)
    })
}

/// Remembers a digest read from a file that had `before` when it was opened and `after` once
/// read; nothing is remembered if the file changed meanwhile or too recently (see [`QUIET`]).
pub(crate) fn put(before: &FileKey, after: &FileKey, started: SystemTime, digest: [u8; 32]) {
    if before != after || !before.quiet_at(started) {
        return;
    }
    with(|g| insert_young(g, *before, digest));
}

fn insert_young(g: &mut Generations, key: FileKey, digest: [u8; 32]) {
    if g.young.len() >= GENERATION {
        g.old = std::mem::take(&mut g.young);
    }
    g.young.insert(key, digest);
}

/// How many digests are held (never more than twice [`GENERATION`]).
#[cfg(test)]
fn len() -> usize {
    with(|g| g.young.len() + g.old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            size: 3,
            mtime: (1, 0),
            ctime: (1, 0),
        }
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let now = SystemTime::now();
        for i in 0..(3 * GENERATION as u64) {
            put(&key(i), &key(i), now, [1; 32]);
            // The first key is used all along and survives every turnover.
            assert!(get(&key(0)).is_some(), "lost at {i}");
        }
        assert!(len() <= 2 * GENERATION);
    }

    #[test]
    fn changed_or_recent_files_are_not_remembered() {
        let now = SystemTime::now();
        let mut after = key(u64::MAX);
        after.ctime.1 = 5;
        put(&key(u64::MAX), &after, now, [2; 32]);
        assert!(get(&key(u64::MAX)).is_none());
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut fresh = key(u64::MAX - 1);
        fresh.ctime = (secs, 0);
        put(&fresh, &fresh, now, [3; 32]);
        assert!(get(&fresh).is_none());
    }
}
