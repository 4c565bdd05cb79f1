//! Crash-safe file writes and reads with size limits.
//!
//! Every durable change follows the same recipe: write `<name>.syft.tmp.<random>` in the target's
//! folder (SyftBox never syncs such names), fsync it, rename it over the target, fsync the folder.
//! [`Sync`] lets a burst of writes share their fsyncs.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Marker that SyftBox's default ignore list uses for temporary files; ours use it too.
pub const TMP_MARKER: &str = ".syft.tmp.";

/// Writes `data` to `path` atomically and durably (fsync of the file and its folder).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut sync = Sync::immediate();
    write_atomic_with(path, data, mode, &mut sync)?;
    sync.commit()
}

/// Like [`write_atomic`], but leaves the fsyncs to `sync`, so that many writes can share them.
pub fn write_atomic_with(path: &Path, data: &[u8], mode: u32, sync: &mut Sync) -> Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{name}{TMP_MARKER}"))
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    tmp.write_all(data)
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    if sync.immediate {
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io("fsync", tmp.path(), e))?;
    } else {
        sync.files.insert(path.to_path_buf());
    }
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, e.error))?;
    sync.dirs.insert(dir.to_path_buf());
    Ok(())
}

/// Renames `from` to `to` and records both folders for the next [`Sync::commit`].
pub fn rename_with(from: &Path, to: &Path, sync: &mut Sync) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io("move", from, e))?;
    sync.dirs.insert(parent(from).to_path_buf());
    sync.dirs.insert(parent(to).to_path_buf());
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a folder so that renames and new entries in it survive a power cut.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))
}

/// Pending fsyncs. Small batches fsync each file and folder; large ones flush the whole
/// filesystem once with `syncfs`, which is far cheaper than thousands of fsyncs.
#[derive(Debug, Default)]
pub struct Sync {
    immediate: bool,
    // Hashed, not ordered: a batch records thousands of paths, and ordering paths compares
    // them component by component (a few per cent of an approval's CPU); fsyncs need no order.
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

/// Above this many paths one `syncfs` beats individual fsyncs.
const SYNCFS_THRESHOLD: usize = 32;

impl Sync {
    /// A batch whose [`commit`](Sync::commit) does the fsyncs.
    pub fn batch() -> Sync {
        Sync::default()
    }

    fn immediate() -> Sync {
        Sync {
            immediate: true,
            ..Sync::default()
        }
    }

    pub fn add_dir(&mut self, dir: &Path) {
        self.dirs.insert(dir.to_path_buf());
    }

    /// Takes over what `other` still has to make durable.
    pub fn absorb(&mut self, other: Sync) {
        self.files.extend(other.files);
        self.dirs.extend(other.dirs);
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// Makes everything recorded so far durable.
    pub fn commit(&mut self) -> Result<()> {
        let files = std::mem::take(&mut self.files);
        let dirs = std::mem::take(&mut self.dirs);
        if files.len() + dirs.len() > SYNCFS_THRESHOLD
            && let Some(dir) = dirs.iter().next()
        {
            let f = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
            return nix::unistd::syncfs(&f)
                .map_err(|e| Error::io("syncfs", dir, io::Error::from(e)));
        }
        for file in &files {
            match File::open(file).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                // Replaced again or removed since: whoever did that owns its durability.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("fsync", file, e)),
            }
        }
        for dir in &dirs {
            match fsync_dir(dir) {
                Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => {}
                other => other?,
            }
        }
        Ok(())
    }
}

/// Opens a regular file for reading without following a symbolic link and without blocking on
/// a FIFO (a file may be swapped for either between listing and opening).
pub fn open_regular(path: &Path) -> Result<(File, fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid(
            format!("{} is not a regular file", path.display()),
            "only regular files are read; remove it or replace it with a regular file",
        ));
    }
    Ok((file, meta))
}

/// Reads a whole file, refusing files larger than `limit` bytes (without reading them).
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    read_opened(path, &file, &meta, limit)
}

/// [`read_capped`] of a file already opened by [`open_regular`] (whose `meta` it gave), for a
/// caller that needs the identity of exactly the file it reads.
pub(crate) fn read_opened(
    path: &Path,
    file: &File,
    meta: &fs::Metadata,
    limit: u64,
) -> Result<Vec<u8>> {
    if meta.len() > limit {
        return Err(too_large(path, meta.len(), limit));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > limit {
        return Err(too_large(path, buf.len() as u64, limit));
    }
    Ok(buf)
}

fn too_large(path: &Path, size: u64, limit: u64) -> Error {
    Error::invalid(
        format!(
            "{} is too large ({} bytes, the limit is {} bytes)",
            path.display(),
            size,
            limit
        ),
        "this file is ignored until it is replaced by a smaller one",
    )
}

/// Creates `dir` (and parents) with `mode`, and tightens the mode if the folder already exists.
pub fn ensure_private_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| Error::io("create folder", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| Error::io("stat", dir, e))?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions on", dir, e))?;
    }
    Ok(())
}

/// True for our own (and SyftBox's) temporary files, which are never content.
pub fn is_temp_name(name: &str) -> bool {
    name.contains(TMP_MARKER)
}

/// Removes temporary files that a crash left behind in `dir` (not recursive).
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some(name) = entry.file_name().to_str()
            && is_temp_name(name)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn read_capped_refuses_large_files_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(
            read_capped(&p, 99)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert_eq!(read_capped(&p, 100).unwrap().len(), 100);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_capped(&link, 1000).is_err());
    }
}
