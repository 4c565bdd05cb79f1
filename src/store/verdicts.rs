//! Reviewers' verdict files: `verdicts/<email>/<uid>.json` in the app data folder, which each
//! user can write only under their own email (the folder's `syft.pub.yaml` uses
//! `{{.UserEmail}}`, so the folder name is proven by the server's permission check), and the
//! answers written back beside them in `verdicts/<email>/answers/<uid>.json` (readable by that
//! reviewer only). Reading is tolerant and size-capped: whatever a file holds becomes a reason.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::attestation::Attestation;
use crate::core::email;
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue;
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

/// The folder, inside the app data folder.
pub const DIR: &str = "verdicts";
/// Where answers go inside a reviewer's folder (and, for stray files, inside `verdicts/`).
pub const ANSWERS: &str = "answers";
/// Verdict files are read up to this size; bigger ones are refused unread.
const MAX_SIZE: u64 = 16 * 1024;
/// At most this many files are looked at in one pass (the rest wait for the next one), so one
/// pass holds at most a few tens of MiB whatever is written here.
const MAX_FILES: usize = 2_000;

pub fn dir(layout: &Layout) -> PathBuf {
    layout.app_data.join(DIR)
}

/// What a reviewer writes (the `reviewer` field and the attestation are optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictFile {
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    pub signature: String,
    /// Who wrote it, as they say; refused when it is not the folder's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// One file found under `verdicts/`, with what could be made of it.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    /// The reviewer folder's email, or why the file is not in one.
    pub folder: std::result::Result<String, String>,
    /// The job's uid (from `<uid>.json`), or why the name is not one.
    pub uid: std::result::Result<String, String>,
    /// SHA-256 of the content (empty when unread).
    pub sha256: String,
    pub content: std::result::Result<VerdictFile, String>,
}

impl Found {
    /// Where this file's answer goes.
    pub fn answer_path(&self, layout: &Layout) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        match (&self.folder, self.path.parent()) {
            (Ok(_), Some(parent)) => parent.join(ANSWERS).join(format!("{stem}.json")),
            _ => dir(layout)
                .join(ANSWERS)
                .join(format!("{stem}.answer.json")),
        }
    }
}

/// The answer written back for one verdict file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub uid: String,
    /// `counted` (waiting for more approvals), `applied` (the job was decided) or `refused`.
    pub status: AnswerStatus,
    pub reason: String,
    /// The content answered (a changed file is answered again).
    pub verdict_sha256: String,
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    Counted,
    Applied,
    Refused,
}

impl AnswerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerStatus::Counted => "counted",
            AnswerStatus::Applied => "applied",
            AnswerStatus::Refused => "refused",
        }
    }
}

/// `verdicts/syft.pub.yaml`: each user may write and read `<their email>/*.json`, and read the
/// answers in `<their email>/answers/`; nobody else sees anything.
pub fn verdicts_permfile() -> PermFile {
    let user = || vec!["USER".to_string()];
    PermFile {
        rules: vec![
            Rule::new(
                "{{.UserEmail}}/*.json",
                Access {
                    write: user(),
                    read: user(),
                    ..Access::default()
                },
            ),
            Rule::new(
                format!("{{{{.UserEmail}}}}/{ANSWERS}/*.json"),
                Access {
                    read: user(),
                    ..Access::default()
                },
            ),
        ],
        ..PermFile::default()
    }
}

/// Creates `verdicts/` with its permission file (put back when changed by hand).
pub fn ensure_folder(layout: &Layout) -> Result<()> {
    let d = dir(layout);
    fs::create_dir_all(&d).map_err(|e| Error::io("create folder", &d, e))?;
    let path = d.join(permfile::FILE_NAME);
    let existed = path.exists();
    let mut sync = Sync::batch();
    let changed = permfile::write_if_changed(&path, &verdicts_permfile(), &mut sync)?;
    sync.commit()?;
    if changed && existed {
        log::warn!(
            "{} had been changed; it is rewritten so that each reviewer can write only in the folder named with their own email",
            path.display()
        );
    }
    Ok(())
}

/// True for a path under `verdicts/` that may be a verdict (not an answer, a permission file or
/// a temporary file): the daemon looks again when one changes.
pub fn is_vote_path(layout: &Layout, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(dir(layout)) else {
        return false;
    };
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    !parts.is_empty()
        && !parts.iter().any(|p| p == ANSWERS)
        && parts
            .last()
            .is_some_and(|n| n != permfile::FILE_NAME && !durable::is_temp_name(n))
}

/// Every file under `verdicts/` but answers and permission files, sorted by path.
pub fn scan(layout: &Layout) -> Vec<Found> {
    let root = dir(layout);
    let mut found = Vec::new();
    for entry in sorted(&root) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            found.push(stray(path, "it is not inside a reviewer's folder"));
            continue;
        }
        let folder = match email::normalize(&name) {
            Ok(e) if e == name => Ok(e),
            Ok(_) | Err(_) => Err(format!(
                "its folder {name:?} is not a lower-case email address"
            )),
        };
        for inner in sorted(&path) {
            if found.len() >= MAX_FILES {
                return found;
            }
            let iname = inner.file_name().to_string_lossy().into_owned();
            if skipped(&iname) {
                continue;
            }
            if inner.file_type().is_ok_and(|t| !t.is_file()) {
                found.push(stray(
                    inner.path(),
                    "it is not a file directly inside a reviewer's folder",
                ));
                continue;
            }
            found.push(read_one(inner.path(), folder.clone(), &iname));
        }
        if found.len() >= MAX_FILES {
            break;
        }
    }
    found
}

/// The verdict files on job `uid` only: `<folder>/<uid>.json` in each reviewer's folder.
pub fn scan_uid(layout: &Layout, uid: &str) -> Vec<Found> {
    if !queue::is_valid_uid(uid) {
        return Vec::new();
    }
    let name = format!("{uid}.json");
    let mut found = Vec::new();
    for entry in sorted(&dir(layout)) {
        let folder = entry.file_name().to_string_lossy().into_owned();
        if skipped(&folder) || !email::is_valid(&folder) {
            continue;
        }
        let path = entry.path().join(&name);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            found.push(read_one(path, Ok(folder), &name));
        }
    }
    found
}

fn skipped(name: &str) -> bool {
    name == ANSWERS
        || name == permfile::FILE_NAME
        || name.starts_with('.')
        || durable::is_temp_name(name)
}

fn sorted(dir: &Path) -> Vec<fs::DirEntry> {
    let mut v: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map(|r| r.flatten().take(MAX_FILES).collect())
        .unwrap_or_default();
    v.sort_by_key(|e| e.file_name());
    v
}

fn stray(path: PathBuf, why: &str) -> Found {
    Found {
        path,
        folder: Err(why.to_string()),
        uid: Err(why.to_string()),
        sha256: String::new(),
        content: Err(why.to_string()),
    }
}

fn read_one(path: PathBuf, folder: std::result::Result<String, String>, name: &str) -> Found {
    let uid = match name.strip_suffix(".json") {
        Some(u) if queue::is_valid_uid(u) => Ok(u.to_string()),
        _ => Err(format!("{name:?} is not named <job uid>.json")),
    };
    let (sha256, content) = match durable::read_capped(&path, MAX_SIZE) {
        Ok(bytes) => (
            format!("{:x}", Sha256::digest(&bytes)),
            serde_json::from_slice::<VerdictFile>(&bytes).map_err(|e| {
                format!(
                    "it is not a verdict like {{\"verdict\": \"approve\", \"signature\": \"...\", \"rationale\": \"...\"}} ({e})"
                )
            }),
        ),
        Err(e) => (String::new(), Err(format!("it cannot be read: {e}"))),
    };
    Found {
        path,
        folder,
        uid,
        sha256,
        content,
    }
}

/// The answer now at `path`, if any.
pub fn read_answer(path: &Path) -> Option<Answer> {
    let bytes = durable::read_capped(path, MAX_SIZE).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes an answer unless the same one (time aside) is already there. Returns true when
/// written, so the caller logs each answer once.
pub fn write_answer(path: &Path, answer: &Answer) -> Result<bool> {
    if let Some(old) = read_answer(path)
        && old.status == answer.status
        && old.reason == answer.reason
        && old.verdict_sha256 == answer.verdict_sha256
    {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create folder", parent, e))?;
    }
    let text = serde_json::to_string_pretty(answer).unwrap_or_default();
    durable::write_atomic(path, text.as_bytes(), 0o644)?;
    Ok(true)
}

/// Where a reviewer writes their verdict on the owner's job `uid` (in the owner's datasite, as
/// synced to the reviewer).
pub fn verdict_path(data_dir: &Path, owner: &str, reviewer: &str, uid: &str) -> PathBuf {
    owner_dir(data_dir, owner)
        .join(reviewer.to_lowercase())
        .join(format!("{uid}.json"))
}

/// The owner's `verdicts/` folder as synced to anyone's SyftBox.
pub fn owner_dir(data_dir: &Path, owner: &str) -> PathBuf {
    data_dir
        .join("datasites")
        .join(owner.to_lowercase())
        .join("app_data")
        .join(crate::syftbox::APP_NAME)
        .join(DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_with_their_folder_as_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::in_test_dir(tmp.path());
        ensure_folder(&l).unwrap();
        let uid = "0a1b2c3d-0000-4000-8000-000000000001";
        let d = dir(&l);
        fs::create_dir_all(d.join("alice@x.org/answers")).unwrap();
        fs::create_dir_all(d.join("Bob@X.org")).unwrap();
        fs::write(
            d.join(format!("alice@x.org/{uid}.json")),
            r#"{"verdict":"approve","signature":"s"}"#,
        )
        .unwrap();
        fs::write(d.join("alice@x.org/answers/x.json"), "{}").unwrap();
        fs::write(d.join("alice@x.org/my notes.json"), "{}").unwrap();
        fs::write(d.join(format!("Bob@X.org/{uid}.json")), "{}").unwrap();
        fs::write(d.join("loose.json"), "{}").unwrap();
        let found = scan(&l);
        assert_eq!(found.len(), 4, "{found:?}");
        let a = found
            .iter()
            .find(|f| f.path.ends_with(format!("alice@x.org/{uid}.json")))
            .unwrap();
        assert_eq!(a.folder.as_deref(), Ok("alice@x.org"));
        assert_eq!(a.uid.as_deref(), Ok(uid));
        assert_eq!(a.content.as_ref().unwrap().verdict, "approve");
        assert!(found.iter().any(
            |f| f.path.ends_with("Bob@X.org/".to_string() + uid + ".json") && f.folder.is_err()
        ));
        assert!(
            found
                .iter()
                .any(|f| f.path.ends_with("my notes.json") && f.uid.is_err())
        );
        assert!(
            found
                .iter()
                .any(|f| f.path.ends_with("loose.json") && f.folder.is_err())
        );
        assert!(is_vote_path(&l, &d.join(format!("alice@x.org/{uid}.json"))));
        assert!(!is_vote_path(&l, &d.join("alice@x.org/answers/x.json")));
        assert!(!is_vote_path(&l, &d.join("syft.pub.yaml")));
        let one = scan_uid(&l, uid);
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!(one[0].folder.as_deref(), Ok("alice@x.org"));
        let yaml = verdicts_permfile().to_yaml();
        assert!(yaml.contains("{{.UserEmail}}/*.json"), "{yaml}");
        assert!(yaml.contains("{{.UserEmail}}/answers/*.json"), "{yaml}");
    }
}
