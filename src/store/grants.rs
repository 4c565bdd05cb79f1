//! Reviewers' read access to pending jobs: their emails added to the read lists of a job's own
//! `syft.pub.yaml` files (every other rule, grant and unknown field kept), and taken back when
//! the job is decided or the reviewer leaves the groups. What was added is remembered in the
//! private state folder (`reviewer-grants/<uid>.json`), so only those grants are ever withdrawn:
//! a reader the requester named stays a reader.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::{self, Queue, Status};
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

/// The rule added to a job's top permission file so reviewers can read files no rule covers.
const ALL: &str = "**";
/// Permission files deeper than this in a job folder are left alone.
const MAX_DEPTH: usize = 8;
const MAX_RECORD: u64 = 1 << 20;

/// One read grant this app added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
struct Grant {
    /// The permission file, relative to the job folder.
    file: String,
    pattern: String,
    email: String,
    /// The rule itself was added (removed again once it grants nothing).
    #[serde(default)]
    added_rule: bool,
}

fn records_dir(layout: &Layout) -> PathBuf {
    layout.state.join("reviewer-grants")
}

fn record_path(layout: &Layout, uid: &str) -> PathBuf {
    records_dir(layout).join(format!("{uid}.json"))
}

fn read_record(layout: &Layout, uid: &str) -> Vec<Grant> {
    durable::read_capped(&record_path(layout, uid), MAX_RECORD)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_record(layout: &Layout, uid: &str, grants: &[Grant]) -> Result<()> {
    let path = record_path(layout, uid);
    if grants.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path, e))
            }
            _ => Ok(()),
        };
    }
    durable::ensure_private_dir(&records_dir(layout), 0o700)?;
    let text = serde_json::to_vec(grants).unwrap_or_default();
    durable::write_atomic(&path, &text, 0o600)
}

/// [`sync`] under the queue lock, so no move of the job happens in between.
pub fn sync_locked(
    layout: &Layout,
    uid: &str,
    job_dir: &Path,
    wanted: &BTreeSet<String>,
) -> Result<bool> {
    // Nothing granted and nobody to grant: no lock, no walk (datasites without reviewers).
    if wanted.is_empty() && !record_path(layout, uid).exists() {
        return Ok(false);
    }
    let _queue = crate::store::lock::StoreLock::acquire(&layout.state, "queue")?;
    if !job_dir.is_dir() {
        return Ok(false);
    }
    sync(layout, uid, job_dir, wanted)
}

/// Makes the reviewers who can read job `uid` (in `job_dir`) exactly `wanted`, as far as this
/// app's own grants go. Returns true when a permission file changed. The caller holds the
/// queue lock.
pub fn sync(layout: &Layout, uid: &str, job_dir: &Path, wanted: &BTreeSet<String>) -> Result<bool> {
    let before = read_record(layout, uid);
    let mut kept: Vec<Grant> = Vec::new();
    let mut changed = false;
    let mut sync = Sync::batch();
    for (rel, path) in permission_files(job_dir) {
        let Ok(mut perm) = PermFile::read(&path) else {
            // A file this app cannot read is left as it is, with its grants remembered.
            kept.extend(before.iter().filter(|g| g.file == rel).cloned());
            continue;
        };
        let mine: Vec<&Grant> = before.iter().filter(|g| g.file == rel).collect();
        let mut touched = withdraw(&mut perm, &mine, wanted, &mut kept);
        touched |= add(&mut perm, &rel, wanted, &mine, &mut kept);
        if touched {
            permfile::write_if_changed(&path, &perm, &mut sync)?;
            changed = true;
        }
    }
    sync.commit()?;
    kept.sort();
    kept.dedup();
    if kept != before {
        write_record(layout, uid, &kept)?;
    }
    Ok(changed)
}

/// Removes the recorded grants of readers no longer wanted; keeps the others in `kept`.
fn withdraw(
    perm: &mut PermFile,
    mine: &[&Grant],
    wanted: &BTreeSet<String>,
    kept: &mut Vec<Grant>,
) -> bool {
    let mut touched = false;
    for g in mine {
        if wanted.contains(&g.email) || (g.email.is_empty() && !wanted.is_empty()) {
            kept.push((*g).clone());
            continue;
        }
        for r in perm.rules.iter_mut().filter(|r| r.pattern == g.pattern) {
            let n = r.access.read.len();
            r.access.read.retain(|e| e != &g.email);
            touched |= r.access.read.len() != n;
        }
        if g.added_rule {
            let n = perm.rules.len();
            perm.rules.retain(|r| {
                !(r.pattern == g.pattern
                    && r.access.read.is_empty()
                    && r.access.write.is_empty()
                    && r.access.admin.is_empty())
            });
            touched |= perm.rules.len() != n;
        }
    }
    touched
}

/// Adds the wanted readers to every rule's read list (and, in the job's top file, a `**` rule
/// for files no rule covers); records what was added in `kept`.
fn add(
    perm: &mut PermFile,
    rel: &str,
    wanted: &BTreeSet<String>,
    mine: &[&Grant],
    kept: &mut Vec<Grant>,
) -> bool {
    let mut touched = false;
    if rel == permfile::FILE_NAME
        && !wanted.is_empty()
        && !perm.rules.iter().any(|r| r.pattern == ALL)
    {
        perm.rules.push(Rule::new(ALL, Access::default()));
        kept.push(Grant {
            file: rel.to_string(),
            pattern: ALL.into(),
            email: String::new(),
            added_rule: true,
        });
        touched = true;
    }
    let ours: BTreeSet<String> = mine
        .iter()
        .copied()
        .chain(kept.iter().filter(|g| g.file == rel))
        .filter(|g| g.added_rule)
        .map(|g| g.pattern.clone())
        .collect();
    for r in &mut perm.rules {
        let added_rule = ours.contains(&r.pattern);
        let open = r.access.read.iter().any(|e| e == "*");
        for email in wanted {
            if open && !added_rule {
                continue;
            }
            if !r.access.read.contains(email) {
                r.access.read.push(email.clone());
                touched = true;
            } else if !mine
                .iter()
                .any(|g| g.pattern == r.pattern && &g.email == email)
            {
                // Already a reader by someone else's grant: not ours to withdraw.
                continue;
            }
            kept.push(Grant {
                file: rel.to_string(),
                pattern: r.pattern.clone(),
                email: email.clone(),
                added_rule,
            });
        }
    }
    touched
}

/// The job's own permission files (relative path, path), top first.
fn permission_files(job_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = WalkDir::new(job_dir)
        .follow_links(false)
        .max_depth(MAX_DEPTH)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.file_name() == permfile::FILE_NAME)
        .filter_map(|e| {
            let rel = e.path().strip_prefix(job_dir).ok()?.to_str()?.to_string();
            Some((rel, e.path().to_path_buf()))
        })
        .take(256)
        .collect();
    out.sort_by_key(|(rel, _)| (rel.matches('/').count(), rel.clone()));
    out
}

/// Takes back every grant on job `uid`, wherever it now is (the caller holds the queue lock).
pub fn withdraw_all(layout: &Layout, uid: &str) {
    if !record_path(layout, uid).exists() {
        return;
    }
    let queue = Queue::new(layout.queue.clone());
    let Some((_, dir)) = queue.find(uid) else {
        // The job is gone: so are its permission files.
        let _ = write_record(layout, uid, &[]);
        return;
    };
    match sync(layout, uid, &dir, &BTreeSet::new()) {
        Ok(true) => log::info!("reviewers' read access to job {uid} withdrawn (it is decided)"),
        Ok(false) => {}
        Err(e) => log::error!("could not withdraw reviewers' read access to job {uid}: {e}"),
    }
}

/// Takes back the grants on every job that is no longer pending (takes the queue lock).
pub fn sweep_decided(layout: &Layout) {
    let queue = Queue::new(layout.queue.clone());
    let Ok(entries) = fs::read_dir(records_dir(layout)) else {
        return;
    };
    let _queue = match crate::store::lock::StoreLock::acquire(&layout.state, "queue") {
        Ok(g) => g,
        Err(e) => {
            log::error!("could not withdraw reviewers' read access to decided jobs: {e}");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(uid) = name
            .strip_suffix(".json")
            .filter(|u| queue::is_valid_uid(u))
        else {
            continue;
        };
        if !queue.job_dir(Status::Pending, uid).is_dir() {
            withdraw_all(layout, uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: &str = "rules:\n- pattern: metadata.json\n  access:\n    read: [owner@x.org, ds@y.org]\n    write: [ds@y.org]\n  note: kept\n";
    const CODE: &str = "rules:\n- pattern: run.sh\n  access:\n    read: [owner@x.org, ds@y.org, bob@x.org]\n    write: [ds@y.org]\n";

    #[test]
    fn grants_are_added_and_only_ours_withdrawn() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::in_test_dir(tmp.path());
        let job = tmp.path().join("job");
        fs::create_dir_all(job.join("code")).unwrap();
        fs::write(job.join("syft.pub.yaml"), TOP).unwrap();
        fs::write(job.join("code/syft.pub.yaml"), CODE).unwrap();
        let wanted: BTreeSet<String> = ["alice@x.org", "bob@x.org"].map(String::from).into();
        assert!(sync(&l, "u1", &job, &wanted).unwrap());
        let top = PermFile::read(&job.join("syft.pub.yaml")).unwrap();
        assert_eq!(
            top.rules[0].access.read,
            ["owner@x.org", "ds@y.org", "alice@x.org", "bob@x.org"]
        );
        assert_eq!(top.rules[0].access.write, ["ds@y.org"]);
        assert_eq!(top.rules[0].other["note"], "kept");
        assert_eq!(top.rules[1].pattern, "**");
        assert_eq!(top.rules[1].access.read, ["alice@x.org", "bob@x.org"]);
        assert!(
            !sync(&l, "u1", &job, &wanted).unwrap(),
            "a second sync changes nothing"
        );
        // Alice leaves the group: her grants go, bob's own earlier read grant on run.sh stays.
        let only_bob: BTreeSet<String> = ["bob@x.org"].map(String::from).into();
        assert!(sync(&l, "u1", &job, &only_bob).unwrap());
        let code = PermFile::read(&job.join("code/syft.pub.yaml")).unwrap();
        assert_eq!(
            code.rules[0].access.read,
            ["owner@x.org", "ds@y.org", "bob@x.org"]
        );
        sync(&l, "u1", &job, &BTreeSet::new()).unwrap();
        let top = PermFile::read(&job.join("syft.pub.yaml")).unwrap();
        assert_eq!(top.rules.len(), 1);
        assert_eq!(top.rules[0].access.read, ["owner@x.org", "ds@y.org"]);
        let code = PermFile::read(&job.join("code/syft.pub.yaml")).unwrap();
        assert_eq!(
            code.rules[0].access.read,
            ["owner@x.org", "ds@y.org", "bob@x.org"]
        );
        assert!(!record_path(&l, "u1").exists());
    }
}
