//! SyftBox permission files (`syft.pub.yaml`, SPEC §2): the one model of them, reading, writing,
//! and the three kinds this app produces (a private folder, the allowlist's one-file-per-reader
//! rules, and approved jobs locked so the requester can no longer change them).
//!
//! Fields the server may know and this app does not are kept (`other`), so a file edited here
//! (a dataset shared with a peer) loses nothing; the files this app generates carry none.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::durable::{self, Sync};
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "syft.pub.yaml";
/// Permission files are small; anything bigger is not one we will parse.
const MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PermFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<bool>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Fields other than `terminal` and `rules`, as written.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub pattern: String,
    #[serde(default)]
    pub access: Access,
    /// Fields other than `pattern` and `access`, as written.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub read: Vec<String>,
    /// Fields other than `admin`, `write` and `read`, as written.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Rule {
    pub fn new(pattern: impl Into<String>, access: Access) -> Rule {
        Rule {
            pattern: pattern.into(),
            access,
            other: Map::new(),
        }
    }
}

impl PermFile {
    pub fn parse(text: &str) -> Result<PermFile> {
        PermFile::from_yaml(text).map_err(|why| Error::invalid("not a valid syft.pub.yaml", why))
    }

    /// The file's content, or the first line of why it is not a permission file. An empty file
    /// has no rules.
    pub fn from_yaml(text: &str) -> std::result::Result<PermFile, String> {
        if text.trim().is_empty() {
            return Ok(PermFile::default());
        }
        serde_saphyr::from_str(text)
            .map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
    }

    pub fn read(path: &Path) -> Result<PermFile> {
        let bytes = durable::read_capped(path, MAX_SIZE)?;
        PermFile::parse(&String::from_utf8_lossy(&bytes))
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a permission file always serializes")
    }

    /// A folder nobody but the owner can read.
    pub fn private() -> PermFile {
        PermFile {
            rules: vec![Rule::new("**", Access::default())],
            ..PermFile::default()
        }
    }

    /// One rule per file: each reader may read the file of that name, nothing else.
    pub fn one_reader_per_file<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> PermFile {
        let mut rules: Vec<Rule> = entries
            .into_iter()
            .map(|(file, reader)| {
                Rule::new(
                    file,
                    Access {
                        read: vec![reader.to_string()],
                        ..Access::default()
                    },
                )
            })
            .collect();
        rules.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        PermFile {
            rules,
            ..PermFile::default()
        }
    }

    /// The same rules with all write and admin grants turned into read grants: whoever could
    /// change the files may still read them, but only the owner can change them now. Fields this
    /// app does not know are left out: a locked job says nothing it did not check.
    pub fn read_only(&self) -> PermFile {
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut read = r.access.read.clone();
                for user in r.access.write.iter().chain(&r.access.admin) {
                    if !read.contains(user) {
                        read.push(user.clone());
                    }
                }
                Rule::new(
                    r.pattern.clone(),
                    Access {
                        read,
                        ..Access::default()
                    },
                )
            })
            .collect();
        PermFile {
            terminal: self.terminal,
            rules,
            ..PermFile::default()
        }
    }

    /// True when no rule grants write or admin to anyone.
    pub fn is_read_only(&self) -> bool {
        self.rules
            .iter()
            .all(|r| r.access.write.is_empty() && r.access.admin.is_empty())
    }
}

/// Writes `perm` to `path` unless the file already says exactly that, so that regenerating it
/// in reaction to a filesystem event does not trigger another event.
pub fn write_if_changed(path: &Path, perm: &PermFile, sync: &mut Sync) -> Result<bool> {
    let yaml = perm.to_yaml();
    if std::fs::read(path).ok().as_deref() == Some(yaml.as_bytes()) {
        return Ok(false);
    }
    durable::write_atomic_with(path, yaml.as_bytes(), 0o644, sync)?;
    Ok(true)
}

/// Makes the permission file at `path` grant nobody write or admin (see
/// [`PermFile::read_only`]; an unreadable one is replaced by [`PermFile::private`]), written
/// only if that changes it. Returns whether it was written.
pub fn lock_read_only(path: &Path, sync: &mut Sync) -> Result<bool> {
    // Read once: the bytes parsed are the bytes compared with the locked form.
    let locked = match durable::read_capped(path, MAX_SIZE) {
        Ok(bytes) => {
            let locked = locked_form(&bytes);
            if bytes == *locked {
                return Ok(false);
            }
            locked
        }
        Err(_) => PermFile::private().to_yaml().into_bytes().into(),
    };
    durable::write_atomic_with(path, &locked, 0o644, sync)?;
    Ok(true)
}

/// The locked form of a permission file's bytes: what [`lock_read_only`] writes for them. It
/// depends on the bytes alone (a file that is not a permission file locks to
/// [`PermFile::private`]), so it is remembered by their SHA-256: every job a client sends
/// carries the same few files, and parsing and printing their YAML was most of the lock's CPU.
/// A file already in its locked form maps to itself and is then recognised without a parse.
fn locked_form(bytes: &[u8]) -> std::sync::Arc<[u8]> {
    use crate::core::hash_cache::ByDigest;
    use sha2::Digest;
    use std::sync::Arc;
    /// Distinct contents remembered, forgotten all at once beyond that, and the largest file
    /// remembered: at most about 2 MB (a locked form grows by at most the users it moves to
    /// `read`), whatever the queue holds.
    const KEPT: usize = 128;
    const LARGEST: usize = 8 * 1024;
    static FORMS: ByDigest<Arc<[u8]>> = ByDigest::new(KEPT);
    let compute = || -> Arc<[u8]> {
        PermFile::parse(&String::from_utf8_lossy(bytes))
            .map_or_else(|_| PermFile::private(), |p| p.read_only())
            .to_yaml()
            .into_bytes()
            .into()
    };
    if bytes.len() > LARGEST {
        return compute();
    }
    FORMS.get_or(&sha2::Sha256::digest(bytes).into(), compute)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What syft-perm 0.2.0 writes for a job's code files.
    const CLIENT_WRITTEN: &str = "rules:
- pattern: run.sh
  access:
    read:
    - do@x.org
    - ds@y.org
    write:
    - ds@y.org
    admin:
    - ds@y.org
- pattern: '**'
  access:
    read:
    - '*'
    write:
    - '*'
";

    #[test]
    fn read_only_keeps_readers_and_drops_writers() {
        let p = PermFile::parse(CLIENT_WRITTEN).unwrap();
        assert!(!p.is_read_only());
        let locked = p.read_only();
        assert!(locked.is_read_only());
        assert_eq!(locked.rules[0].access.read, vec!["do@x.org", "ds@y.org"]);
        assert_eq!(locked.rules[1].access.read, vec!["*"]);
        let again = PermFile::parse(&locked.to_yaml()).unwrap();
        assert_eq!(again, locked);
    }

    #[test]
    fn keeps_terminal_flag_and_parses_flow_style() {
        let p = PermFile::parse(
            "terminal: true\nrules:\n  - pattern: 'a.csv'\n    access: {admin: [], write: [], read: ['b@x.org']}\n",
        )
        .unwrap();
        assert_eq!(p.terminal, Some(true));
        assert_eq!(p.rules[0].access.read, vec!["b@x.org"]);
        assert!(PermFile::parse(&p.to_yaml()).unwrap().terminal == Some(true));
    }

    #[test]
    fn rejects_garbage() {
        assert!(PermFile::parse("rules: {not: [a list").is_err());
        assert_eq!(PermFile::parse("").unwrap(), PermFile::default());
    }

    #[test]
    fn generated_files_are_written_as_before() {
        // Bytes compared with the files already on disk: a change would rewrite them all.
        assert_eq!(
            PermFile::private().to_yaml(),
            "rules:\n- pattern: \"**\"\n  access:\n    admin: []\n    write: []\n    read: []\n"
        );
        assert_eq!(
            PermFile::one_reader_per_file([("b.json", "b@x.org"), ("a.json", "a@x.org")]).to_yaml(),
            "rules:\n- pattern: a.json\n  access:\n    admin: []\n    write: []\n    read:\n    - a@x.org\n- pattern: b.json\n  access:\n    admin: []\n    write: []\n    read:\n    - b@x.org\n"
        );
        assert_eq!(
            PermFile::parse(CLIENT_WRITTEN)
                .unwrap()
                .read_only()
                .to_yaml(),
            "rules:\n- pattern: run.sh\n  access:\n    admin: []\n    write: []\n    read:\n    - do@x.org\n    - ds@y.org\n- pattern: \"**\"\n  access:\n    admin: []\n    write: []\n    read:\n    - \"*\"\n"
        );
        assert_eq!(
            PermFile::parse("terminal: true\nrules: []\n")
                .unwrap()
                .to_yaml(),
            "terminal: true\nrules: []\n"
        );
        assert_eq!(PermFile::default().to_yaml(), "rules: []\n");
    }

    #[test]
    fn locking_the_same_content_again_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let locked = PermFile::parse(CLIENT_WRITTEN)
            .unwrap()
            .read_only()
            .to_yaml();
        let hostile = "rules: [{pattern: x, access: {write: ['*']}}\n#!/bin/sh\n";
        // Twice each: the second time the locked form is the remembered one.
        for round in 0..2 {
            let mut sync = Sync::batch();
            let (a, b, c) = (
                dir.path().join(format!("a{round}")),
                dir.path().join(format!("b{round}")),
                dir.path().join(format!("c{round}")),
            );
            std::fs::write(&a, CLIENT_WRITTEN).unwrap();
            std::fs::write(&b, &locked).unwrap();
            std::fs::write(&c, hostile).unwrap();
            assert!(lock_read_only(&a, &mut sync).unwrap(), "round {round}");
            assert!(!lock_read_only(&b, &mut sync).unwrap(), "round {round}");
            assert!(lock_read_only(&c, &mut sync).unwrap(), "round {round}");
            sync.commit().unwrap();
            assert_eq!(std::fs::read_to_string(&a).unwrap(), locked);
            assert_eq!(std::fs::read_to_string(&b).unwrap(), locked);
            assert_eq!(
                std::fs::read_to_string(&c).unwrap(),
                PermFile::private().to_yaml()
            );
            // Locked once, a file is left alone.
            assert!(!lock_read_only(&a, &mut sync).unwrap());
        }
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = "version: 2\nrules:\n- pattern: '**'\n  access:\n    read: ['*']\n    own: [o@x.org]\n  note: {why: shared}\n";
        let p = PermFile::parse(text).unwrap();
        assert_eq!(p.other["version"], 2);
        assert_eq!(p.rules[0].other["note"]["why"], "shared");
        assert_eq!(p.rules[0].access.other["own"][0], "o@x.org");
        let again = PermFile::parse(&p.to_yaml()).unwrap();
        assert_eq!(again, p);
        // A locked job keeps only what was checked.
        let locked = p.read_only();
        assert!(locked.other.is_empty());
        assert!(locked.rules[0].other.is_empty() && locked.rules[0].access.other.is_empty());
    }
}
