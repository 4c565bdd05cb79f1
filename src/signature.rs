//! The trusted-code signature v1 (SPEC §5) and the file hashes shown to users.
//!
//! The signature is SHA-256 over canonical JSON of the job's name, description, sorted tags and
//! the SHA-256 of every code file. Permission files and sync markers are left out because SyftBox
//! and queue clients add them; links and special files make a job ineligible for code trust.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

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
}

impl CodeScan {
    pub fn file_set(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }
}

/// Lists and hashes every code file under `code_dir`.
pub fn scan_code(code_dir: &Path) -> Result<CodeScan> {
    let meta = std::fs::symlink_metadata(code_dir).map_err(|e| Error::io("read", code_dir, e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(
            format!("{} is not a folder", code_dir.display()),
            "a job's code must be a real folder named code/",
        ));
    }
    let mut scan = CodeScan::default();
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(code_dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                scan.problems
                    .push(format!("cannot read part of code/: {e}"));
                continue;
            }
        };
        let rel = entry.path().strip_prefix(code_dir).unwrap_or(entry.path());
        let Some(rel_str) = rel.to_str() else {
            scan.problems.push(format!(
                "code/{} has a file name that is not UTF-8",
                rel.to_string_lossy()
            ));
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
            continue;
        }
        if scan.files.len() >= MAX_FILES {
            scan.problems
                .push(format!("code/ holds more than {MAX_FILES} files"));
            break;
        }
        let (sha256, size) = hash_regular_file(entry.path())?;
        total += size;
        if total > MAX_TOTAL_BYTES {
            scan.problems
                .push(format!("code/ holds more than {MAX_TOTAL_BYTES} bytes"));
            break;
        }
        scan.files.push(CodeFile {
            path: rel_str.replace(std::path::MAIN_SEPARATOR, "/"),
            sha256,
            size,
        });
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
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
    let json = serde_json::to_vec(&canonical).expect("canonical JSON always serializes");
    format!("{:x}", Sha256::digest(&json))
}

/// True for a 64-character lower-case hex string.
pub fn is_signature(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A cheap summary of a job folder's state (names, sizes, times, inodes), used to tell whether
/// anything changed since it was last evaluated without hashing it again.
pub fn fingerprint(job_dir: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for entry in walkdir::WalkDir::new(job_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        entry.path().hash(&mut h);
        if let Ok(m) = entry.path().symlink_metadata() {
            (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.mode()).hash(&mut h);
        }
    }
    h.finish()
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
    use crate::metadata::Metadata;
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
    fn signature_shape() {
        assert!(is_signature(&"a".repeat(64)));
        assert!(!is_signature(&"A".repeat(64)));
        assert!(!is_signature("../../etc"));
    }
}
