//! Sharing dataset folders with approved peers: adding, checking and removing their read grant.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::core::rel_path;
use crate::error::{Error, Result};
use crate::store::peers::permissions::{
    add_reader, lets_read, new_dataset_perm, read_perm, remove_reader, terminal_ancestor,
    write_perm,
};
use crate::store::permfile;
use crate::syftbox::Layout;

/// A dataset permission file changed by hand this recently may still be being written: a grant
/// missing from it is re-added only once it has been quiet this long.
const HAND_EDIT_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// A dataset folder from the config, checked: a real folder inside the datasite, outside this
/// app's own data (whose permission files the app regenerates).
fn dataset_dir(layout: &Layout, rel: &str) -> Result<PathBuf> {
    let hint = "fix peers.auto_share_datasets in config.yaml (folders relative to your datasite)";
    if rel_path::check(rel).is_err() {
        return Err(Error::invalid(
            format!("dataset {rel:?} is not a relative path"),
            hint,
        ));
    }
    let dir = layout.datasite.join(rel);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::invalid(
                format!(
                    "dataset {} is not a folder (links are not followed)",
                    dir.display()
                ),
                hint,
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::not_found(
                format!("dataset folder {}", dir.display()),
                "create it, or fix peers.auto_share_datasets in config.yaml",
            ));
        }
        Err(e) => return Err(Error::io("stat", &dir, e)),
    }
    let real = fs::canonicalize(&dir).map_err(|e| Error::io("resolve", &dir, e))?;
    let site = fs::canonicalize(&layout.datasite)
        .map_err(|e| Error::io("resolve", &layout.datasite, e))?;
    if !real.starts_with(&site) {
        return Err(Error::invalid(
            format!("dataset {} is outside your datasite", dir.display()),
            hint,
        ));
    }
    if fs::canonicalize(&layout.app_data).is_ok_and(|app| real.starts_with(app)) {
        return Err(Error::invalid(
            format!(
                "dataset {} is inside syft-reviewer's own folder, whose permission files it manages",
                dir.display()
            ),
            hint,
        ));
    }
    Ok(dir)
}

/// True when the dataset's permission file lets `mail` read through its catch-all rule.
pub fn has_grant(layout: &Layout, dataset: &str, mail: &str) -> Result<bool> {
    let dir = dataset_dir(layout, dataset)?;
    let Some(perm) = read_perm(&dir.join(permfile::FILE_NAME))? else {
        return Ok(false);
    };
    Ok(lets_read(&perm, mail))
}

/// Gives `mail` read access to a dataset folder; returns false when it was already there.
pub fn ensure_grant(layout: &Layout, dataset: &str, mail: &str) -> Result<bool> {
    let dir = dataset_dir(layout, dataset)?;
    let path = dir.join(permfile::FILE_NAME);
    let mut perm = match read_perm(&path)? {
        Some(p) => p,
        None => new_dataset_perm(layout, &dir),
    };
    let added = add_reader(&mut perm, mail);
    if added {
        write_perm(&path, &perm)?;
    }
    if let Some(t) = terminal_ancestor(layout, &dir) {
        log::warn!(
            "{} has `terminal: true`, so the SyftBox server ignores {}: sharing {dataset} has no effect until that changes",
            t.display(),
            path.display()
        );
    }
    Ok(added)
}

/// True when the dataset's permission file changed in the last [`HAND_EDIT_SETTLE`].
pub(super) fn recently_changed(layout: &Layout, dataset: &str) -> bool {
    fs::symlink_metadata(layout.datasite.join(dataset).join(permfile::FILE_NAME))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < HAND_EDIT_SETTLE)
}

/// Takes `mail`'s read access to a dataset folder away again; returns whether it was there.
pub fn remove_grant(layout: &Layout, dataset: &str, mail: &str) -> Result<bool> {
    let dir = layout.datasite.join(dataset);
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let path = dir.join(permfile::FILE_NAME);
    let Some(mut perm) = read_perm(&path)? else {
        return Ok(false);
    };
    if !remove_reader(&mut perm, mail) {
        return Ok(false);
    }
    write_perm(&path, &perm)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::permfile::PermFile;

    #[test]
    fn new_dataset_file_keeps_the_catch_all_access_from_above() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::in_test_dir(tmp.path());
        let public = l.datasite.join("public");
        fs::create_dir_all(public.join("census")).unwrap();
        fs::write(
            public.join("syft.pub.yaml"),
            "rules:\n- pattern: '**'\n  access:\n    read: ['*']\n",
        )
        .unwrap();
        assert!(ensure_grant(&l, "public/census", "bob@x.org").unwrap());
        let p = PermFile::read(&public.join("census/syft.pub.yaml")).unwrap();
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.rules[0].access.read, vec!["*", "bob@x.org"]);
        assert!(!ensure_grant(&l, "public/census", "bob@x.org").unwrap());
        assert!(remove_grant(&l, "public/census", "bob@x.org").unwrap());
        let p = PermFile::read(&public.join("census/syft.pub.yaml")).unwrap();
        assert_eq!(p.rules[0].access.read, vec!["*"]);
        assert!(ensure_grant(&l, "public/missing", "bob@x.org").is_err());
        assert!(
            ensure_grant(&l, "app_data/syft_reviewer_allowlist", "bob@x.org").is_err(),
            "the app's own folder is never shared"
        );
    }
}
