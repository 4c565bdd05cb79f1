//! The trusted-sender allowlist (SPEC §4): one file per email in `allowlist/`, private modes, and
//! a `syft.pub.yaml` that lets each listed email read its own file and nothing else.
//!
//! The folder itself is the truth: files made or deleted by hand count as soon as they appear.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::json;

use crate::core::email;
use crate::core::signature::is_excluded;
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::lock::StoreLock;
use crate::store::permfile::{self, PermFile};
use crate::syftbox::Layout;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

/// What the allowlist folder holds right now.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// email -> file name
    pub entries: BTreeMap<String, String>,
    /// File names that do not decode to a valid email, with the reason.
    pub invalid: Vec<(String, String)>,
    /// Changes whenever an entry file changes (its pin is read when a job needs it, so the
    /// daemon re-evaluates pending jobs when this moves).
    pub stamp: u64,
}

impl Listing {
    pub fn contains(&self, email: &str) -> bool {
        self.entries.contains_key(&email.to_lowercase())
    }
}

#[derive(Debug, Clone)]
pub struct Allowlist {
    dir: PathBuf,
    state: PathBuf,
}

impl Allowlist {
    pub fn new(layout: &Layout) -> Allowlist {
        Allowlist {
            dir: layout.allowlist_dir(),
            state: layout.state.clone(),
        }
    }

    pub fn load(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(Error::io("read", &self.dir, e)),
        };
        for entry in entries.flatten() {
            let raw = entry.file_name();
            let Some(name) = raw.to_str() else {
                listing.invalid.push((
                    raw.to_string_lossy().into_owned(),
                    "the file name is not UTF-8".into(),
                ));
                continue;
            };
            if is_excluded(name) || name.starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_file() => {}
                _ => {
                    listing.invalid.push((
                        name.to_string(),
                        "not a regular file (links and folders are not entries)".into(),
                    ));
                    continue;
                }
            }
            match email::decode(name) {
                Ok(mail) => {
                    if let Ok(m) = entry.metadata() {
                        use std::hash::{Hash, Hasher};
                        use std::os::unix::fs::MetadataExt;
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        (name, m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(&mut h);
                        // Order-independent: read_dir order is arbitrary.
                        listing.stamp = listing.stamp.wrapping_add(h.finish());
                    }
                    listing.entries.insert(mail, name.to_string());
                }
                Err(e) => listing.invalid.push((name.to_string(), e.to_string())),
            }
        }
        Ok(listing)
    }

    /// Adds an email; returns false when it was already there.
    pub fn add(&self, input: &str) -> Result<bool> {
        let mail = email::normalize(input)?;
        let _guard = StoreLock::acquire(&self.state, "allowlist")?;
        durable::ensure_private_dir(&self.dir, DIR_MODE)?;
        let listing = self.load()?;
        if listing.contains(&mail) {
            return Ok(false);
        }
        let name = email::encode(&mail)?;
        let body = json!({
            "email": mail,
            "added_at": metadata::format_naive(&metadata::now_naive()),
            "status": "active",
        });
        let mut sync = Sync::batch();
        durable::write_atomic_with(
            &self.dir.join(name),
            body.to_string().as_bytes(),
            FILE_MODE,
            &mut sync,
        )?;
        self.sync_permissions_with(&self.load()?, &mut sync)?;
        sync.commit()?;
        Ok(true)
    }

    /// Removes an email (every file that decodes to it); returns false when it was not there.
    pub fn remove(&self, input: &str) -> Result<bool> {
        let mail = email::normalize(input)?;
        let _guard = StoreLock::acquire(&self.state, "allowlist")?;
        let mut found = false;
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", &self.dir, e)),
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if email::decode(&name).ok().as_deref() == Some(mail.as_str()) {
                fs::remove_file(entry.path()).map_err(|e| Error::io("remove", entry.path(), e))?;
                found = true;
            }
        }
        let mut sync = Sync::batch();
        sync.add_dir(&self.dir);
        self.sync_permissions_with(&self.load()?, &mut sync)?;
        sync.commit()?;
        Ok(found)
    }

    /// Replaces the whole list; returns (added, removed).
    pub fn replace(&self, emails: &[String]) -> Result<(usize, usize)> {
        let wanted: Vec<String> = emails
            .iter()
            .map(|e| email::normalize(e))
            .collect::<Result<_>>()?;
        let current = self.load()?;
        let mut removed = 0;
        for mail in current.entries.keys() {
            if !wanted.contains(mail) && self.remove(mail)? {
                removed += 1;
            }
        }
        let mut added = 0;
        for mail in &wanted {
            if self.add(mail)? {
                added += 1;
            }
        }
        Ok((added, removed))
    }

    /// Regenerates the folder's `syft.pub.yaml` and tightens file modes. Called after every
    /// change, including ones made by hand. Returns true when the permission file changed.
    pub fn sync_permissions(&self, listing: &Listing) -> Result<bool> {
        let _guard = StoreLock::acquire(&self.state, "allowlist")?;
        let mut sync = Sync::batch();
        let changed = self.sync_permissions_with(listing, &mut sync)?;
        sync.commit()?;
        Ok(changed)
    }

    fn sync_permissions_with(&self, listing: &Listing, sync: &mut Sync) -> Result<bool> {
        if !self.dir.is_dir() {
            return Ok(false);
        }
        durable::ensure_private_dir(&self.dir, DIR_MODE)?;
        for name in listing.entries.values() {
            let path = self.dir.join(name);
            if let Ok(meta) = fs::symlink_metadata(&path)
                && meta.is_file()
                && meta.permissions().mode() & 0o777 != FILE_MODE
            {
                fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE))
                    .map_err(|e| Error::io("set permissions on", &path, e))?;
            }
        }
        let perm = PermFile::one_reader_per_file(
            listing
                .entries
                .iter()
                .map(|(mail, name)| (name.as_str(), mail.as_str())),
        );
        permfile::write_if_changed(&self.dir.join(permfile::FILE_NAME), &perm, sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn layout(dir: &Path) -> Layout {
        Layout::in_test_dir(dir)
    }

    #[test]
    fn add_remove_and_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        let a = Allowlist::new(&l);
        assert!(a.add("Bob_Smith@X.org").unwrap());
        assert!(!a.add("bob_smith@x.org").unwrap());
        a.add("carol@y.org").unwrap();
        let file = l.allowlist_dir().join("bob__smith_at_x_dot_org");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(l.allowlist_dir())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let perm = PermFile::read(&l.allowlist_dir().join("syft.pub.yaml")).unwrap();
        assert_eq!(perm.rules.len(), 2);
        let bob = perm
            .rules
            .iter()
            .find(|r| r.pattern == "bob__smith_at_x_dot_org")
            .unwrap();
        assert_eq!(bob.access.read, vec!["bob_smith@x.org"]);
        assert!(perm.is_read_only());
        assert!(a.remove("BOB_smith@x.org").unwrap());
        assert!(!file.exists());
        let perm = PermFile::read(&l.allowlist_dir().join("syft.pub.yaml")).unwrap();
        assert_eq!(perm.rules.len(), 1);
    }

    #[test]
    fn hand_made_files_count_and_bad_names_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        fs::create_dir_all(l.allowlist_dir()).unwrap();
        fs::write(l.allowlist_dir().join("john_doe_at_x_dot_org"), "").unwrap();
        fs::write(l.allowlist_dir().join("not-an-email"), "").unwrap();
        fs::write(l.allowlist_dir().join("syft.pub.yaml"), "rules: []").unwrap();
        let listing = Allowlist::new(&l).load().unwrap();
        assert!(listing.contains("john_doe@x.org"));
        assert_eq!(listing.invalid.len(), 1);
        assert_eq!(listing.invalid[0].0, "not-an-email");
    }
}
