//! The app's folders: the app data folder in the datasite (created from `app_data_template/` on
//! first start, with a one-time import of the original Python app's data) and the private state
//! folder outside `datasites/` (locks, the move journal, secrets).

use std::fs;
use std::path::Path;

use crate::core::email;
use crate::core::signature;
use crate::durable;
use crate::error::{Error, Result};
use crate::store::allowlist::{self, Allowlist};
use crate::store::history::RecordDir;
use crate::store::permfile;
use crate::syftbox::Layout;

/// `app_data_template/`, compiled in so the binary works wherever it is installed.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "syft.pub.yaml",
        include_str!("../../app_data_template/syft.pub.yaml"),
    ),
    (
        "config.yaml",
        include_str!("../../app_data_template/config.yaml"),
    ),
    (
        "allowlist/andrew_at_openmined_dot_org",
        include_str!("../../app_data_template/allowlist/andrew_at_openmined_dot_org"),
    ),
];

/// Creates the private state folder (0700).
pub fn ensure_state(layout: &Layout) -> Result<()> {
    durable::ensure_private_dir(&layout.state, 0o700)
}

/// Makes sure the app data folder exists and is private; returns true on first start.
pub fn ensure_app_data(layout: &Layout) -> Result<bool> {
    ensure_state(layout)?;
    if !layout.datasite.is_dir() {
        return Err(Error::Config(format!(
            "the datasite {} does not exist: is SyftBox set up for {} (check data_dir in the client config)?",
            layout.datasite.display(),
            layout.email
        )));
    }
    let first = !layout.app_data.exists();
    let legacy = first && layout.legacy_app_data.is_dir();
    fs::create_dir_all(&layout.app_data)
        .map_err(|e| Error::io("create folder", &layout.app_data, e))?;
    for (rel, content) in TEMPLATE {
        let target = layout.app_data.join(rel);
        let is_allowlist = rel.starts_with("allowlist/");
        if target.exists() || (is_allowlist && (!first || legacy)) {
            continue;
        }
        if let Some(parent) = target.parent() {
            let mode = if is_allowlist {
                allowlist::DIR_MODE
            } else {
                0o755
            };
            durable::ensure_private_dir(parent, mode).or_else(|_| {
                fs::create_dir_all(parent).map_err(|e| Error::io("create folder", parent, e))
            })?;
        }
        let mode = if is_allowlist {
            allowlist::FILE_MODE
        } else {
            0o644
        };
        durable::write_atomic(&target, content.as_bytes(), mode)?;
    }
    durable::ensure_private_dir(&layout.allowlist_dir(), allowlist::DIR_MODE)?;
    if legacy {
        import_legacy(layout)?;
    }
    let list = Allowlist::new(layout);
    list.sync_permissions(&list.load()?)?;
    // Peer requests: each user may write only the file named with their own email.
    crate::store::peers::ensure_requests_folder(layout)?;
    // Reviewers' verdicts: each user may write only in the folder named with their own email.
    crate::store::verdicts::ensure_folder(layout)?;
    Ok(first)
}

/// Imports the original app's allowlist, trusted code and history, once.
fn import_legacy(layout: &Layout) -> Result<()> {
    let src = &layout.legacy_app_data;
    log::info!("importing the original app's data from {}", src.display());
    let list = Allowlist::new(layout);
    if let Ok(entries) = fs::read_dir(src.join("allowlist")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == permfile::FILE_NAME || durable::is_temp_name(&name) {
                continue;
            }
            match email::decode(&name) {
                Ok(mail) => {
                    list.add(&mail)?;
                }
                Err(e) => log::warn!("not imported: {e}"),
            }
        }
    }
    for sub in ["trusted_code", "job_history"] {
        let Ok(entries) = fs::read_dir(src.join(sub)) else {
            continue;
        };
        let dest = RecordDir {
            dir: layout.app_data.join(sub),
        };
        fs::create_dir_all(&dest.dir).map_err(|e| Error::io("create folder", &dest.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sig) = name
                .strip_suffix(".json")
                .filter(|s| signature::is_signature(s))
            else {
                continue;
            };
            if dest.path(sig).exists() {
                continue;
            }
            match durable::read_capped(&entry.path(), 64 << 20) {
                Ok(bytes) if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() => {
                    durable::write_atomic(&dest.path(sig), &bytes, 0o644)?;
                }
                _ => log::warn!(
                    "not imported: {} is not a JSON record",
                    entry.path().display()
                ),
            }
        }
    }
    Ok(())
}

/// Removes temporary files a crash left in the app's own folders.
pub fn clean_temps(layout: &Layout) {
    for dir in [
        layout.app_data.clone(),
        layout.allowlist_dir(),
        layout.trusted_dir(),
        layout.history_dir(),
        layout.app_data.join("audit"),
        crate::store::peers::approved_dir(layout),
        crate::store::peers::requests_dir(layout),
        crate::store::peers::answers_dir(layout),
        layout.state.clone(),
    ] {
        durable::remove_stale_temps(&dir);
    }
}

/// True when `path` is one of the app's own files that the daemon itself rewrites.
pub fn is_own_output(layout: &Layout, path: &Path) -> bool {
    // Called for every watcher event: the names are compared before any path is made.
    let Some(name) = path.file_name() else {
        return false;
    };
    durable::is_temp_name(&name.to_string_lossy())
        || (name == crate::syftbox::DECISION_LOG && path == layout.decision_log())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syftbox::Identity;

    fn layout(dir: &Path) -> Layout {
        let l = Layout::new(&Identity {
            data_dir: dir.to_path_buf(),
            email: "owner@x.org".into(),
            source: None,
        });
        fs::create_dir_all(&l.datasite).unwrap();
        l
    }

    #[test]
    fn first_start_uses_the_template() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        assert!(ensure_app_data(&l).unwrap());
        let listing = Allowlist::new(&l).load().unwrap();
        assert!(listing.contains("andrew@openmined.org"));
        assert!(l.app_data.join("syft.pub.yaml").is_file());
        let requests = crate::store::permfile::PermFile::read(
            &crate::store::peers::requests_dir(&l).join("syft.pub.yaml"),
        )
        .unwrap();
        assert_eq!(requests, crate::store::peers::requests_permfile());
        assert!(
            !ensure_app_data(&l).unwrap(),
            "second start is not a first start"
        );
    }

    #[test]
    fn imports_the_original_apps_data_once_instead_of_the_template() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        let old = &l.legacy_app_data;
        fs::create_dir_all(old.join("allowlist")).unwrap();
        fs::create_dir_all(old.join("trusted_code")).unwrap();
        fs::write(old.join("allowlist/john_doe_at_x_dot_org"), "{}").unwrap();
        fs::write(old.join("allowlist/garbage name"), "").unwrap();
        let sig = "a".repeat(64);
        fs::write(
            old.join(format!("trusted_code/{sig}.json")),
            r#"{"name":"n"}"#,
        )
        .unwrap();
        fs::write(old.join("trusted_code/not-a-sig.json"), "{}").unwrap();
        ensure_app_data(&l).unwrap();
        let listing = Allowlist::new(&l).load().unwrap();
        assert_eq!(
            listing.entries.keys().collect::<Vec<_>>(),
            vec!["john_doe@x.org"]
        );
        assert!(l.trusted_dir().join(format!("{sig}.json")).is_file());
        assert!(!l.trusted_dir().join("not-a-sig.json").exists());
        // Removing an imported entry sticks: the import does not run again.
        Allowlist::new(&l).remove("john_doe@x.org").unwrap();
        ensure_app_data(&l).unwrap();
        assert!(Allowlist::new(&l).load().unwrap().entries.is_empty());
    }
}
