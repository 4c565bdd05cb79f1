//! The SHA-256 of code files already read, and the invisible characters in their text (both come
//! from one read), so an unchanged file is never read twice (the
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

/// Entries per generation (at most twice this many are held, about 130 bytes each, plus the few
/// invisible characters kept per file that has any). A batch of the daemon (at most 1,024 jobs)
/// reads its files twice, in the review and in the check after the move, so two generations of
/// this size hold a batch of jobs of up to sixteen files (a lookup never turns the generations
/// over); more files only cost a second read.
/// Each generation is allocated whole once (2 MB each), never grown by doubling.
const GENERATION: usize = 8_192;

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
    pub(crate) fn quiet_at(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let newest = self.mtime.0.max(self.ctime.0);
        newest.saturating_add(i64::try_from(QUIET.as_secs()).unwrap_or(i64::MAX)) < now
    }
}

struct Generations<V> {
    young: HashMap<FileKey, V>,
    old: HashMap<FileKey, V>,
    /// Entries per generation.
    size: usize,
}

/// Facts computed from a file's bytes, remembered by [`FileKey`] in two bounded generations.
pub(crate) struct FileCache<V> {
    inner: Mutex<Option<Generations<V>>>,
    size: usize,
}

impl<V: Clone> FileCache<V> {
    /// A cache of two generations of `size` entries each.
    pub(crate) const fn new(size: usize) -> FileCache<V> {
        FileCache {
            inner: Mutex::new(None),
            size,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Generations<V>) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(|| Generations {
            young: HashMap::with_capacity(self.size),
            old: HashMap::new(),
            size: self.size,
        }))
    }

    /// What was computed from the file with this key, if it was read before.
    pub(crate) fn get(&self, key: &FileKey) -> Option<V> {
        self.with(|g| {
            if let Some(v) = g.young.get(key) {
                return Some(v.clone());
            }
            if g.young.len() >= g.size {
                // Moving it to a full young generation would turn the generations over and drop
                // the old one, with the entries the rest of a batch is about to look up (the
                // check after the move reads the files in the order the review did).
                return g.old.get(key).cloned();
            }
            let v = g.old.remove(key)?;
            g.insert_young(*key, v.clone());
            Some(v)
        })
    }

    /// Remembers what was computed from a file that had `before` when it was opened and `after`
    /// once read; nothing is remembered if the file changed meanwhile or too recently (see
    /// [`QUIET`]).
    pub(crate) fn put(&self, before: &FileKey, after: &FileKey, started: SystemTime, value: V) {
        if before != after || !before.quiet_at(started) {
            return;
        }
        self.with(|g| g.insert_young(*before, value));
    }

    /// Gives both generations back, for a daemon gone idle after a flood: the files of a flood's
    /// jobs are not read again soon, and the next read allocates the newer generation again.
    pub(crate) fn drop_all(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.with(|g| g.young.len() + g.old.len())
    }
}

impl<V> Generations<V> {
    fn insert_young(&mut self, key: FileKey, value: V) {
        if self.young.len() >= self.size {
            // The old generation's table is reused for the new one: no allocation, no growth.
            std::mem::swap(&mut self.old, &mut self.young);
            self.young.clear();
            self.young.reserve(self.size);
        }
        self.young.insert(key, value);
    }
}

/// What one read of a code file found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileRead {
    pub(crate) digest: [u8; 32],
    pub(crate) text: crate::core::visible::Found,
}

static DIGESTS: FileCache<FileRead> = FileCache::new(GENERATION);

/// Empties the file hash cache (see [`FileCache::drop_all`]).
pub(crate) fn shrink() {
    DIGESTS.drop_all();
}

/// What was found in the file with this key, if it was read before.
pub(crate) fn get(key: &FileKey) -> Option<FileRead> {
    DIGESTS.get(key)
}

/// Remembers what a read found (see [`FileCache::put`]).
pub(crate) fn put(before: &FileKey, after: &FileKey, started: SystemTime, read: FileRead) {
    DIGESTS.put(before, after, started, read)
}

/// Text findings by the SHA-256 of the bytes they were found in: they depend on the bytes alone,
/// and the digest names the bytes as surely as the signature relies on. Distinct contents
/// remembered, forgotten all at once beyond that (a few hundred kilobytes at most: few files
/// hold invisible characters, and each keeps at most five).
const TEXTS_KEPT: usize = 4096;
static TEXTS: ByDigest<crate::core::visible::Found> = ByDigest::new(TEXTS_KEPT);

/// The text findings of content with this digest: remembered ones, or `scan()`'s.
pub(crate) fn text_of(
    digest: &[u8; 32],
    scan: impl FnOnce() -> crate::core::visible::Found,
) -> crate::core::visible::Found {
    TEXTS.get_or(digest, scan)
}

/// Facts that depend on a content's bytes alone, remembered by its SHA-256 (the digest names
/// the bytes as surely as the signature relies on); past `kept` distinct contents, all are
/// forgotten at once.
pub(crate) struct ByDigest<V> {
    inner: Mutex<Option<HashMap<[u8; 32], V>>>,
    kept: usize,
}

impl<V: Clone> ByDigest<V> {
    pub(crate) const fn new(kept: usize) -> ByDigest<V> {
        ByDigest {
            inner: Mutex::new(None),
            kept,
        }
    }

    /// What is remembered for `digest`, or `compute()`'s answer, then remembered. Computed
    /// without the lock held: jobs are reviewed on several threads at once.
    pub(crate) fn get_or(&self, digest: &[u8; 32], compute: impl FnOnce() -> V) -> V {
        let lock = || self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = lock().as_ref().and_then(|m| m.get(digest).cloned()) {
            return v;
        }
        let v = compute();
        let mut guard = lock();
        let m = guard.get_or_insert_with(HashMap::new);
        if m.len() >= self.kept {
            m.clear();
        }
        m.insert(*digest, v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(byte: u8) -> FileRead {
        FileRead {
            digest: [byte; 32],
            text: (0, Vec::new()),
        }
    }

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
            put(&key(i), &key(i), now, read(1));
            // The first key is used all along and survives every turnover.
            assert!(get(&key(0)).is_some(), "lost at {i}");
        }
        assert!(DIGESTS.len() <= 2 * GENERATION);
    }

    #[test]
    fn a_batch_larger_than_a_generation_is_found_again_whole() {
        // A cache of its own: the other tests turn the shared one over meanwhile.
        let cache = FileCache::new(GENERATION);
        let n = GENERATION as u64 + GENERATION as u64 / 4;
        let now = SystemTime::now();
        for i in 0..n {
            cache.put(&key(i), &key(i), now, read(4));
        }
        let found = (0..n).filter(|i| cache.get(&key(*i)).is_some()).count();
        assert_eq!(found as u64, n);
        assert!(cache.len() <= 2 * GENERATION);
    }

    #[test]
    fn changed_or_recent_files_are_not_remembered() {
        let now = SystemTime::now();
        let mut after = key(u64::MAX);
        after.ctime.1 = 5;
        put(&key(u64::MAX), &after, now, read(2));
        assert!(get(&key(u64::MAX)).is_none());
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut fresh = key(u64::MAX - 1);
        fresh.ctime = (secs, 0);
        put(&fresh, &fresh, now, read(3));
        assert!(get(&fresh).is_none());
    }
}
