//! The trusted-code signature v1 (SPEC §5) and the file hashes shown to users.
//!
//! The signature is SHA-256 over canonical JSON of the job's name, description, sorted tags and
//! the SHA-256 of every code file. Permission files and sync markers are left out because SyftBox
//! and queue clients add them; links and special files make a job ineligible for code trust.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::core::fingerprint::fingerprint;
use crate::core::hash_cache::{self, FileKey, FileRead};
use crate::core::visible;
use crate::error::{Error, Result};

/// A job with more files than this is not evaluated for code trust (it is flagged instead).
pub const MAX_FILES: usize = 10_000;
/// Nor is one with more code than this.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;

/// File names that are never part of a job's code: permission files and sync markers.
pub fn is_excluded(name: &str) -> bool {
    matches!(
        name,
        "syft.pub.yaml" | "syftperm.yaml" | "_.syftperm" | ".syftkeep"
    ) || name.contains("syftrejected")
        || name.contains("syftconflict")
        || name.contains(".conflict.")
        || name.contains(".rejected.")
        || name.contains(".syft.tmp.")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeFile {
    /// Relative to `code/`, with `/` separators.
    pub path: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
}

/// What was found under a job's `code/` folder.
#[derive(Debug, Clone, Default)]
pub struct CodeScan {
    /// Sorted by path.
    pub files: Vec<CodeFile>,
    /// Reasons the code cannot be trusted as it is (links, special files, odd names, size).
    pub problems: Vec<String>,
    /// Whether every code file was hashed (not when a cap, a sparse file or the deadline stopped
    /// the reading): only then is there a signature.
    pub complete: bool,
    /// Every entry the walk met, when it met them all: the content checks
    /// (the content checks of `queue::content`) take them instead of walking the code again.
    pub(crate) walked: Option<Vec<Walked>>,
}

/// One entry under `code/` as the signature walk met it.
#[derive(Debug, Clone)]
pub(crate) struct Walked {
    /// Relative to `code/`.
    pub(crate) rel: PathBuf,
    pub(crate) kind: WalkedKind,
}

#[derive(Debug, Clone)]
pub(crate) enum WalkedKind {
    /// A folder, a link, a special file, or a file that could not be looked at.
    Other,
    /// A regular file: its link count, length and identity as the walk saw them, whether the
    /// signature leaves it out, and the invisible characters its hashing read found (once it was
    /// read).
    File {
        nlink: u64,
        len: u64,
        key: FileKey,
        excluded: bool,
        text: Option<visible::Found>,
    },
}

impl CodeScan {
    pub fn file_set(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }
}

/// How long reading one job's code may take; a job whose code takes longer is flagged as too
/// slow to read instead of holding up every job behind it.
pub const READ_BUDGET: Duration = Duration::from_secs(10);
/// Entries (files and folders) walked under `code/` before giving up on a job.
pub const MAX_ENTRIES: usize = 4 * MAX_FILES;
/// A file at least this long is sparse when its allocated blocks cover less than
/// 1/[`SPARSE_RATIO`] of its length: cheap to create, as slow to read as real data.
const SPARSE_MIN: u64 = 1 << 20;
const SPARSE_RATIO: u64 = 8;

thread_local! {
    /// A deadline set by the caller for every scan made on this thread (an API request).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with every [`scan_code`] on this thread finishing by `deadline` at the latest, so a
/// request that reviews many jobs takes bounded time as a whole.
pub fn with_read_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

/// Lists and hashes every code file under `code_dir`, within [`READ_BUDGET`].
pub fn scan_code(code_dir: &Path) -> Result<CodeScan> {
    let mut deadline = Instant::now() + READ_BUDGET;
    if let Some(d) = DEADLINE.with(Cell::get) {
        deadline = deadline.min(d);
    }
    scan_code_until(code_dir, deadline)
}

/// A regular code file found by the walk, with its `lstat`.
struct Listed {
    rel: String,
    path: PathBuf,
    meta: std::fs::Metadata,
    /// Its place in [`CodeScan::walked`].
    walked: usize,
}

/// Lists and hashes every code file under `code_dir`, stopping at `deadline`. Sizes and counts
/// are checked from the listing before any file is read: a job over a cap is flagged at once and
/// nothing of it is hashed.
pub fn scan_code_until(code_dir: &Path, deadline: Instant) -> Result<CodeScan> {
    // The walk's own `lstat` of `code_dir` (its first entry) says whether it is a real folder.
    let mut walk = walkdir::WalkDir::new(code_dir)
        .follow_links(false)
        .into_iter();
    match walk.next() {
        Some(Ok(root)) if root.file_type().is_dir() => {}
        Some(Err(e)) => {
            let e = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk error"));
            return Err(Error::io("read", code_dir, e));
        }
        _ => {
            return Err(Error::invalid(
                format!("{} is not a folder", code_dir.display()),
                "a job's code must be a real folder named code/",
            ));
        }
    }
    let mut scan = CodeScan {
        complete: true,
        ..CodeScan::default()
    };
    let mut walked = Vec::new();
    let Some(listed) = list_code(code_dir, walk, deadline, &mut scan, &mut walked) else {
        scan.complete = false;
        return Ok(scan);
    };
    let total = listed
        .iter()
        .fold(0u64, |t, f| t.saturating_add(f.meta.len()));
    if total > MAX_TOTAL_BYTES {
        scan.problems.push(format!(
            "code/ holds {total} bytes, more than the {MAX_TOTAL_BYTES}-byte cap; it was not read"
        ));
        scan.complete = false;
        scan.walked = Some(walked);
        return Ok(scan);
    }
    for f in listed {
        let (len, on_disk) = (f.meta.len(), f.meta.blocks().saturating_mul(512));
        if len >= SPARSE_MIN && on_disk.saturating_mul(SPARSE_RATIO) < len {
            scan.problems.push(format!(
                "code/{} is a sparse file ({len} bytes long, {on_disk} bytes on disk); it was not read",
                f.rel
            ));
            scan.complete = false;
            continue;
        }
        // A file whose `lstat` names a read remembered is not even opened: the key is the one
        // an open would give (the same inode, times and size), and nothing is read.
        let remembered = hash_cache::get(&FileKey::of(&f.meta)).map(|r| (r, f.meta.len()));
        let read = match remembered {
            Some(r) => Some(r),
            None => hash_until(&f.path, deadline)?,
        };
        let Some((read, size)) = read else {
            scan.problems.push(too_slow(&f.rel));
            scan.complete = false;
            break;
        };
        if let Some(Walked {
            kind: WalkedKind::File { text, .. },
            ..
        }) = walked.get_mut(f.walked)
        {
            *text = Some(read.text);
        }
        scan.files.push(CodeFile {
            path: f.rel,
            sha256: hex(&read.digest),
            size,
        });
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    scan.walked = Some(walked);
    Ok(scan)
}

fn too_slow(at: &str) -> String {
    format!(
        "code/ was too slow to read: it was not read in full within {} s (stopped at code/{at})",
        READ_BUDGET.as_secs()
    )
}

/// Walks `code_dir` without reading any file. `None` (with the problem recorded) when a cap or
/// the deadline is reached first.
/// Every entry met goes to `walked`, for the content checks.
/// `walk` is an unsorted walk of `code_dir` (sorting makes walkdir read a whole folder before the
/// caps can stop it) whose first entry, `code_dir` itself, was taken.
fn list_code(
    code_dir: &Path,
    walk: walkdir::IntoIter,
    deadline: Instant,
    scan: &mut CodeScan,
    walked: &mut Vec<Walked>,
) -> Option<Vec<Listed>> {
    let mut listed = Vec::new();
    for (n, entry) in walk.enumerate() {
        if n >= MAX_ENTRIES {
            scan.problems.push(format!(
                "code/ holds more than {MAX_ENTRIES} files and folders; it was not read"
            ));
            return None;
        }
        if n % 256 == 255 && Instant::now() >= deadline {
            scan.problems.push(format!(
                "code/ was too slow to read: it could not even be listed within {} s",
                READ_BUDGET.as_secs()
            ));
            return None;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                scan.problems
                    .push(format!("cannot read part of code/: {e}"));
                scan.complete = false;
                continue;
            }
        };
        let rel = entry.path().strip_prefix(code_dir).unwrap_or(entry.path());
        let at = walked.len();
        walked.push(Walked {
            rel: rel.to_path_buf(),
            kind: WalkedKind::Other,
        });
        let Some(rel_str) = rel.to_str() else {
            scan.problems.push(format!(
                "code/{} has a file name that is not UTF-8",
                rel.to_string_lossy()
            ));
            scan.complete = false;
            continue;
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            scan.problems.push(format!(
                "code/{rel_str} is a symbolic link (to {target}); jobs with links are never auto-approved"
            ));
            continue;
        }
        if !ft.is_file() {
            scan.problems.push(format!(
                "code/{rel_str} is not a regular file (a device, socket or pipe)"
            ));
            continue;
        }
        if is_excluded(&name) {
            if let Ok(m) = entry.metadata() {
                walked[at].kind = WalkedKind::File {
                    nlink: m.nlink(),
                    len: m.len(),
                    key: FileKey::of(&m),
                    excluded: true,
                    text: None,
                };
            }
            continue;
        }
        if listed.len() >= MAX_FILES {
            scan.problems.push(format!(
                "code/ holds more than {MAX_FILES} files; it was not read"
            ));
            return None;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                scan.problems
                    .push(format!("cannot read part of code/: {e}"));
                scan.complete = false;
                continue;
            }
        };
        walked[at].kind = WalkedKind::File {
            nlink: meta.nlink(),
            len: meta.len(),
            key: FileKey::of(&meta),
            excluded: false,
            text: None,
        };
        listed.push(Listed {
            rel: rel_str.replace(std::path::MAIN_SEPARATOR, "/"),
            path: entry.path().to_path_buf(),
            meta,
            walked: at,
        });
    }
    Some(listed)
}

/// The SHA-256 of a regular file and the invisible characters in its text, from one read (or
/// from the cache when the file is unchanged since it was last read), with its length; `None`
/// when `deadline` passed before it was read in full.
fn hash_until(path: &Path, deadline: Instant) -> Result<Option<(FileRead, u64)>> {
    let (mut file, meta) = crate::durable::open_regular(path)?;
    let before = FileKey::of(&meta);
    if let Some(read) = hash_cache::get(&before) {
        return Ok(Some((read, meta.len())));
    }
    let started = SystemTime::now();
    let mut hasher = Sha256::new();
    let mut text = visible::FileText::new();
    let mut buf = vec![0u8; 64 * 1024];
    // While the whole file fits in `buf`, its text is held there unscanned: once hashed, text
    // already scanned under the same digest is not scanned again (a burst's jobs carry the same
    // files). A larger file is scanned as it is read.
    let mut held: Option<usize> = Some(0);
    let mut size = 0u64;
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let start = match held {
            Some(h) if h == buf.len() => {
                text.feed(&buf);
                held = None;
                0
            }
            Some(h) => h,
            None => 0,
        };
        let n = match file.read(&mut buf[start..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let chunk = &buf[start..start + n];
        hasher.update(chunk);
        match held.as_mut() {
            Some(h) => *h += n,
            None => text.feed(chunk),
        }
        size = size.saturating_add(n as u64);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let text = match held {
        Some(h) => hash_cache::text_of(&digest, || {
            text.feed(&buf[..h]);
            text.finish()
        }),
        None => text.finish(),
    };
    let read = FileRead { digest, text };
    if let Ok(after) = file.metadata() {
        hash_cache::put(&before, &FileKey::of(&after), started, read.clone());
    }
    Ok(Some((read, size)))
}

fn hex(digest: &[u8; 32]) -> String {
    // By table: `write!` per byte was a visible share of a review's CPU.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Hashes a regular file without following links (the file may be swapped for a link between
/// listing and opening; that is refused here).
pub fn hash_regular_file(path: &Path) -> Result<(String, u64)> {
    let (mut file, _) = crate::durable::open_regular(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher).map_err(|e| Error::io("read", path, e))?;
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// `sha256:<64 hex>` of a file, as the `hash` command prints and rules compare.
pub fn prefixed_file_hash(path: &Path) -> Result<String> {
    Ok(format!("sha256:{}", hash_regular_file(path)?.0))
}

/// The canonical document the v1 signature hashes. Fields are in sorted order.
#[derive(Serialize)]
struct Canonical<'a> {
    code_files: BTreeMap<&'a str, &'a str>,
    description: &'a str,
    name: &'a str,
    tags: Vec<&'a str>,
}

/// Signature v1 of a job.
pub fn signature_v1(name: &str, description: &str, tags: &[String], files: &[CodeFile]) -> String {
    let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    let canonical = Canonical {
        code_files: files
            .iter()
            .map(|f| (f.path.as_str(), f.sha256.as_str()))
            .collect(),
        description,
        name,
        tags,
    };
    let json =
        crate::core::canonical::to_vec(&canonical).expect("canonical JSON always serializes");
    format!("{:x}", Sha256::digest(&json))
}

/// True for a 64-character lower-case hex string.
pub fn is_signature(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads a file's text for display if it is small UTF-8.
pub fn read_text(path: &Path, limit: u64) -> Option<String> {
    let (f, meta) = crate::durable::open_regular(path).ok()?;
    if meta.len() > limit {
        return None;
    }
    let mut buf = Vec::new();
    f.take(limit).read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::metadata::Metadata;
    use std::path::PathBuf;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/signature")
    }

    fn sign(job: &Path) -> String {
        let m = Metadata::read(job).unwrap().meta;
        let scan = scan_code(&job.join("code")).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        signature_v1(&m.name, &m.description, &m.tags, &scan.files)
    }

    #[test]
    fn spec_test_vectors() {
        assert_eq!(
            sign(&vectors().join("job1")),
            "7eae1d2503de7ecf65a6e2f49d7f6ca7a19b298a6f00cae1d789ef434bdf4906"
        );
        assert_eq!(
            sign(&vectors().join("job2")),
            "4adb3198f7eb86b13e2c55e9b760ac8c9f4d7c0c3216f68a55131f09e0f212e5"
        );
    }

    #[test]
    fn every_byte_of_every_file_counts() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(code.join("lib")).unwrap();
        std::fs::write(code.join("run.sh"), "echo hi\n").unwrap();
        std::fs::write(code.join("lib/a.py"), "x = 1\n").unwrap();
        let base = scan_code(&code).unwrap();
        let sig = signature_v1("n", "", &[], &base.files);
        std::fs::write(code.join("lib/a.py"), "x = 2\n").unwrap();
        let changed = scan_code(&code).unwrap();
        assert_ne!(signature_v1("n", "", &[], &changed.files), sig);
        // Permission files and sync markers do not count.
        std::fs::write(code.join("lib/a.py"), "x = 1\n").unwrap();
        std::fs::write(code.join("syft.pub.yaml"), "rules: []").unwrap();
        std::fs::write(code.join("a.py.syftconflict.1"), "junk").unwrap();
        assert_eq!(
            signature_v1("n", "", &[], &scan_code(&code).unwrap().files),
            sig
        );
        // Tag order does not count; tag content does.
        let t1 = signature_v1("n", "", &["a".into(), "b".into()], &base.files);
        let t2 = signature_v1("n", "", &["b".into(), "a".into()], &base.files);
        assert_eq!(t1, t2);
    }

    #[test]
    fn links_and_special_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("run.sh"), "echo hi\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", code.join("data")).unwrap();
        nix::unistd::mkfifo(&code.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let scan = scan_code(&code).unwrap();
        assert_eq!(scan.files.len(), 1);
        assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
        assert!(scan.problems.iter().any(|p| p.contains("symbolic link")));
    }

    #[test]
    fn caps_sparse_files_and_the_deadline_stop_reading_before_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("run.sh"), "echo hi\n").unwrap();
        let big = std::fs::File::create(code.join("data.bin")).unwrap();
        // Sparse and under the total cap: skipped, the rest is read, and there is no signature.
        big.set_len(64 << 20).unwrap();
        let scan = scan_code(&code).unwrap();
        assert!(!scan.complete);
        assert_eq!(scan.file_set().collect::<Vec<_>>(), ["run.sh"]);
        assert!(
            scan.problems[0].contains("sparse file"),
            "{:?}",
            scan.problems
        );
        // Over the total cap: nothing is read at all.
        big.set_len(MAX_TOTAL_BYTES + 1).unwrap();
        let scan = scan_code(&code).unwrap();
        assert!(!scan.complete && scan.files.is_empty());
        assert!(scan.problems[0].contains("cap"), "{:?}", scan.problems);
        drop(big);
        std::fs::remove_file(code.join("data.bin")).unwrap();
        let late = scan_code_until(&code, Instant::now()).unwrap();
        assert!(!late.complete);
        assert!(
            late.problems[0].contains("too slow to read"),
            "{:?}",
            late.problems
        );
        assert!(scan_code(&code).unwrap().complete);
    }

    /// The text findings of each file, as the content checks get them.
    fn texts(scan: &CodeScan) -> Vec<(String, visible::Found)> {
        let mut out: Vec<_> = scan
            .walked
            .iter()
            .flatten()
            .filter_map(|w| match &w.kind {
                WalkedKind::File {
                    text: Some(found), ..
                } => Some((w.rel.to_string_lossy().into_owned(), found.clone())),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn invisible_characters_are_found_in_small_and_large_files_alike() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        let trojan = "if ok:\n    x = 1 # \u{202e} }\n";
        // Two files of the same content (the second one's text comes by digest), one larger
        // than the read buffer with the character after it, one with its character cut by the
        // buffer's end.
        std::fs::write(code.join("a.py"), trojan).unwrap();
        std::fs::write(code.join("b.py"), trojan).unwrap();
        let mut big = "x = 0\n".repeat(20_000);
        big.push_str(trojan);
        std::fs::write(code.join("c.py"), &big).unwrap();
        let mut cut = "y".repeat(64 * 1024 - 1);
        cut.push('\u{2066}');
        std::fs::write(code.join("d.py"), &cut).unwrap();
        std::fs::write(code.join("run.sh"), "echo hi\n").unwrap();
        let found = texts(&scan_code(&code).unwrap());
        let count = |name: &str| found.iter().find(|(n, _)| n == name).unwrap().1.0;
        assert_eq!(
            (count("a.py"), count("b.py"), count("c.py"), count("d.py")),
            (1, 1, 1, 1),
            "{found:?}"
        );
        assert_eq!(count("run.sh"), 0);
        assert_eq!(found[0].1, found[1].1);
        let line = |name: &str| found.iter().find(|(n, _)| n == name).unwrap().1.1[0].line;
        assert_eq!((line("a.py"), line("c.py"), line("d.py")), (2, 20_002, 1));
    }

    #[test]
    fn signature_shape() {
        assert!(is_signature(&"a".repeat(64)));
        assert!(!is_signature(&"A".repeat(64)));
        assert!(!is_signature("../../etc"));
    }
}
