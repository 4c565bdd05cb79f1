//! Peer requests: files `peers/requests/<email>.json` each user can write only under their own
//! email (the folder's `syft.pub.yaml`), read here with their optional message.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::core::email;
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::store::peers::folders::{BadFile, DIR_MODE, file_names, peers_dir, requests_dir};
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

/// The pattern that lets each user write only the request named with their own email.
pub const USER_TEMPLATE: &str = "{{.UserEmail}}.json";
/// Request files are read up to this size; the content of bigger ones is ignored.
pub(super) const REQUEST_MAX: u64 = 64 * 1024;
/// Messages are cut to this many characters for display.
const MESSAGE_MAX: usize = 1000;

/// A peer request: the identity is the file name, proven by the server's permission check.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRequest {
    pub email: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// SHA-256 of the file's content (empty when it could not be read).
    pub sha256: String,
    /// Why the content was ignored, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The email a request file name stands for: `<email>.json`, or the encoded form.
pub fn request_email(name: &str) -> Result<String> {
    let hint = "peer requests are named <your email>.json, e.g. bob@uni.edu.json";
    let Some(stem) = name.strip_suffix(".json") else {
        return Err(Error::invalid(
            format!("{name:?} does not end in .json"),
            hint,
        ));
    };
    if stem.contains('@') {
        if stem.trim() != stem {
            return Err(Error::invalid(
                format!("{name:?} has spaces around the email"),
                hint,
            ));
        }
        email::normalize(stem)
    } else {
        email::decode(stem)
    }
}

/// The request files (email -> request), and files that are not requests.
pub fn read_requests(layout: &Layout) -> (BTreeMap<String, PeerRequest>, Vec<BadFile>) {
    let mut found = BTreeMap::new();
    let mut bad = Vec::new();
    let dir = requests_dir(layout);
    let Ok(entries) = fs::read_dir(&dir) else {
        return (found, bad);
    };
    let mut entries: Vec<fs::DirEntry> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for name in file_names(entries, "not a regular file") {
        let name = match name {
            Ok(n) => n,
            Err(b) => {
                bad.push(b);
                continue;
            }
        };
        let mail = match request_email(&name) {
            Ok(m) => m,
            Err(e) => {
                bad.push(BadFile {
                    file: name,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if found.contains_key(&mail) {
            continue;
        }
        let (message, sha256, note) = read_request_content(&dir.join(&name));
        found.insert(
            mail.clone(),
            PeerRequest {
                email: mail,
                file: name,
                message,
                sha256,
                note,
            },
        );
    }
    (found, bad)
}

/// The optional message of a request, the content's SHA-256, and why the content was ignored.
fn read_request_content(path: &Path) -> (Option<String>, String, Option<String>) {
    if fs::symlink_metadata(path).is_ok_and(|m| m.len() > REQUEST_MAX) {
        return (
            None,
            String::new(),
            Some(format!(
                "its content is larger than {} KiB, so it is ignored",
                REQUEST_MAX / 1024
            )),
        );
    }
    let bytes = match durable::read_capped(path, REQUEST_MAX) {
        Ok(b) => b,
        Err(e) => {
            return (
                None,
                String::new(),
                Some(format!("its content is ignored: {e}")),
            );
        }
    };
    let sha = format!("{:x}", Sha256::digest(&bytes));
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (None, sha, None);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => match m.get("message") {
            None | Some(Value::Null) => (None, sha, None),
            Some(Value::String(s)) => (Some(clean_message(s)), sha, None),
            Some(_) => (
                None,
                sha,
                Some("its message is not a string, so it is ignored".into()),
            ),
        },
        Ok(_) => (
            None,
            sha,
            Some(
                r#"its content is not a JSON object like {"message": "..."}, so it is ignored"#
                    .into(),
            ),
        ),
        Err(e) => (
            None,
            sha,
            Some(format!(
                "its content is not valid JSON ({e}), so it is ignored"
            )),
        ),
    }
}

/// A message for display: control characters (terminal escapes) replaced, length capped.
fn clean_message(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_MAX)
        .collect();
    if s.chars().count() > MESSAGE_MAX {
        out.push('…');
    }
    out
}

/// `peers/requests/syft.pub.yaml`: each user may write (and read) only `<their email>.json`.
pub fn requests_permfile() -> PermFile {
    PermFile {
        rules: vec![Rule::new(
            USER_TEMPLATE,
            Access {
                write: vec!["USER".into()],
                read: vec!["USER".into()],
                ..Access::default()
            },
        )],
        ..PermFile::default()
    }
}

/// Creates `peers/requests/` and writes its `syft.pub.yaml` unless it already says exactly that
/// (a file changed by hand is put back). Returns true when the file was written.
pub fn ensure_requests_folder(layout: &Layout) -> Result<bool> {
    let dir = requests_dir(layout);
    durable::ensure_private_dir(&peers_dir(layout), DIR_MODE)?;
    durable::ensure_private_dir(&dir, DIR_MODE)?;
    let path = dir.join(permfile::FILE_NAME);
    let existed = path.exists();
    let mut sync = Sync::batch();
    let changed = permfile::write_if_changed(&path, &requests_permfile(), &mut sync)?;
    sync.commit()?;
    if changed && existed {
        log::warn!(
            "{} had been changed; it is rewritten so that each user can write only the request named with their own email",
            path.display()
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_give_the_identity() {
        assert_eq!(request_email("bob@uni.edu.json").unwrap(), "bob@uni.edu");
        assert_eq!(request_email("Bob@Uni.edu.json").unwrap(), "bob@uni.edu");
        assert_eq!(
            request_email("bob_at_uni_dot_edu.json").unwrap(),
            "bob@uni.edu"
        );
        assert_eq!(
            request_email("john__doe_at_x_dot_org.json").unwrap(),
            "john_doe@x.org"
        );
        for bad in [
            "bob@uni.edu",
            "bob@uni.edu.txt",
            " bob@uni.edu.json",
            "*@uni.edu.json",
            "bob.json",
            ".json",
            "syft.pub.yaml",
        ] {
            assert!(request_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_cleaned() {
        assert_eq!(clean_message("hi\x1b[31m\nthere"), "hi [31m there");
        assert_eq!(
            clean_message(&"x".repeat(5000)).chars().count(),
            MESSAGE_MAX + 1
        );
    }

    #[test]
    fn requests_permission_file_uses_the_user_template() {
        let yaml = requests_permfile().to_yaml();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back, requests_permfile(), "{yaml}");
        assert_eq!(back.rules.len(), 1);
        assert_eq!(back.rules[0].pattern, "{{.UserEmail}}.json");
        assert_eq!(back.rules[0].access.write, vec!["USER"]);
    }
}
