//! Crash-safe application of decisions to the queue.
//!
//! A decision is a folder move plus a metadata rewrite. Before moving, an intent is written to the
//! private state folder; after moving, the job is locked (its permission files lose every write
//! grant), evaluated again where it now sits, and only then is its metadata rewritten and the
//! intent removed. A crash at any point leaves an intent that [`Mover::recover`] completes or
//! undoes, so a job always ends in exactly one status folder with matching metadata, and nothing
//! is approved that was not evaluated as it stands.
//!
//! The intents of one batch share one journal file, written and removed once: a burst of
//! thousands of jobs costs a handful of journal writes instead of one file per job.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::queue::review::{self, Review, Trust};
use crate::queue::{Queue, Status};
use crate::store::permfile;
use crate::syftbox::Layout;

/// How a move must be justified again after it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The policy must still approve the job, with the same signature.
    Policy,
    /// The job's signature must be the one the decision was made on.
    Signature,
    /// Nothing to check (expiry: the job's content does not matter).
    Nothing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub uid: String,
    pub from: Status,
    pub to: Status,
    pub signature: Option<String>,
    pub check: Check,
    #[serde(default)]
    pub error_message: Option<String>,
    pub at: String,
}

/// What happened to one job.
#[derive(Debug)]
pub enum Applied {
    /// Moved, locked and rewritten.
    Done,
    /// Not moved, or moved back to `pending/`, because it changed; the reason says how.
    SentBack(String),
    /// Nothing was changed for this job.
    Failed(Error),
}

#[derive(Debug, Clone)]
pub struct Mover {
    queue: Queue,
    owner: String,
    journal: PathBuf,
    open: Arc<Mutex<Open>>,
}

/// The journal files this process wrote whose decisions are not all recorded yet.
#[derive(Debug, Default)]
struct Open {
    /// file -> the uids in it still to be settled
    files: HashMap<PathBuf, HashSet<String>>,
    /// uid -> its file
    owner: HashMap<String, PathBuf>,
    /// Files of settled batches that could not be removed (the journal folder was read-only, for
    /// example): removed again at every [`Mover::settled`], instead of lingering until a restart
    /// records their decisions a second time.
    unremoved: Vec<PathBuf>,
}

impl Open {
    /// Marks `uid` settled; returns its file once nothing in it is left to settle.
    fn settle(&mut self, uid: &str) -> Option<PathBuf> {
        let file = self.owner.remove(uid)?;
        let left = self.files.get_mut(&file)?;
        left.remove(uid);
        if left.is_empty() {
            self.files.remove(&file);
            return Some(file);
        }
        None
    }
}

/// Journal file names are unique across processes (the CLI and the API move jobs too) and runs.
fn batch_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "batch-{}-{nanos}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A journal file holds a batch's intents; a lone intent is the format of earlier versions.
#[derive(Deserialize)]
#[serde(untagged)]
enum JournalFile {
    Batch(Vec<Intent>),
    One(Intent),
}

/// Large enough for a batch of many thousands of intents, small enough to refuse garbage.
const MAX_JOURNAL_FILE: u64 = 256 << 20;

/// syft-code-queue's permission file for status folders other than `pending/`.
const STATUS_DIR_PERMS: &str = "rules:\n- pattern: '**'\n  access:\n    read:\n    - '*'\n";

impl Mover {
    pub fn new(layout: &Layout) -> Mover {
        Mover {
            queue: Queue::new(layout.queue.clone()),
            owner: layout.email.clone(),
            journal: layout.state.join("moves"),
            open: Arc::default(),
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every journal file with the intents in it; unreadable files are `Err` with their path.
    fn journal_files(&self) -> Vec<(PathBuf, Option<Vec<Intent>>)> {
        let Ok(entries) = fs::read_dir(&self.journal) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.to_string_lossy().contains(durable::TMP_MARKER))
            .map(|path| {
                let intents = durable::read_capped(&path, MAX_JOURNAL_FILE)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<JournalFile>(&b).ok())
                    .map(|f| match f {
                        JournalFile::Batch(v) => v,
                        JournalFile::One(i) => vec![i],
                    });
                (path, intents)
            })
            .collect()
    }

    /// Moves a batch of pending jobs to `to`. `reviews` are the evaluations the decisions were
    /// made on; each job is evaluated again after its move with `trust`. The caller records the
    /// outcome and then calls [`Mover::settled`].
    pub fn apply(
        &self,
        decisions: &[(&Review, Status, Check, Option<String>)],
        trust: &Trust,
    ) -> Vec<(String, Applied)> {
        let mut results: Vec<(String, Applied)> = Vec::with_capacity(decisions.len());
        if let Err(e) = durable::ensure_private_dir(&self.journal, 0o700) {
            return decisions
                .iter()
                .map(|(r, ..)| (r.inspection.uid.clone(), Applied::Failed(clone_err(&e))))
                .collect();
        }
        let t0 = std::time::Instant::now();
        let mut sync = Sync::batch();
        let staged = self.stage(decisions, &mut results);
        if staged.is_empty() {
            return results;
        }
        if let Err(e) = self.journal_batch(&staged, &mut sync) {
            results.extend(
                staged
                    .into_iter()
                    .map(|i| (i.uid, Applied::Failed(clone_err(&e)))),
            );
            return results;
        }
        let t_journal = t0.elapsed();
        let moved = self.rename_all(staged, &mut sync, &mut results);
        let t_renamed = t0.elapsed();
        if let Err(e) = sync.commit() {
            log::error!("{e}; the moves are completed at the next start");
        }
        let t_moved = t0.elapsed();
        // Jobs are independent folders: a large batch is finished on all cores, each worker
        // collecting the fsyncs it owes.
        let (done, owed) = crate::queue::par::map_with(&moved, |intent, sync: &mut Sync| {
            (intent.uid.clone(), self.finish(intent, trust, sync))
        });
        for o in owed {
            sync.absorb(o);
        }
        // The intents stay until the caller has recorded the decisions ([`Mover::settled`]), so a
        // crash before that is seen, and recorded, by `recover` at the next start.
        let t_finished = t0.elapsed();
        if let Err(e) = sync.commit() {
            log::error!("{e}; the moves are completed at the next start");
        }
        log::debug!(
            "applied {} decision(s): journal {:?}, renames {:?}, their sync {:?}, lock+check+rewrite {:?}, final sync {:?}",
            done.len(),
            t_journal,
            t_renamed - t_journal,
            t_moved - t_renamed,
            t_finished - t_moved,
            t0.elapsed() - t_finished
        );
        results.extend(done);
        results
    }

    /// The intents of the decisions that can be made; the others go to `results` as failed.
    fn stage(
        &self,
        decisions: &[(&Review, Status, Check, Option<String>)],
        results: &mut Vec<(String, Applied)>,
    ) -> Vec<Intent> {
        let at = metadata::format_naive(&metadata::now_naive());
        let mut staged = Vec::with_capacity(decisions.len());
        // Each target status folder is made sure of once per batch, not once per job: a burst's
        // approvals all go to approved/.
        let mut ready: Vec<Status> = Vec::new();
        for (review, to, check, error_message) in decisions {
            let intent = Intent {
                uid: review.inspection.uid.clone(),
                from: Status::Pending,
                to: *to,
                signature: review.inspection.signature.clone(),
                check: *check,
                error_message: error_message.clone(),
                at: at.clone(),
            };
            let target = self.queue.job_dir(intent.to, &intent.uid);
            // Checked before journaling: an intent must never name a folder this move did not make,
            // or recovery would "complete" a job that was decided before.
            if target.exists() {
                results.push((
                    intent.uid,
                    Applied::Failed(Error::invalid(
                        format!("{} already exists", target.display()),
                        "a job with this uid was already decided; the pending copy is left as it is",
                    )),
                ));
                continue;
            }
            if !ready.contains(to) {
                if let Err(e) = self.ensure_status_dir(*to) {
                    results.push((intent.uid, Applied::Failed(e)));
                    continue;
                }
                ready.push(*to);
            }
            staged.push(intent);
        }
        staged
    }

    /// Writes the batch's intents to one journal file, durably, before anything moves.
    fn journal_batch(&self, staged: &[Intent], sync: &mut Sync) -> Result<()> {
        let file = self.journal.join(batch_name());
        let body = serde_json::to_vec(staged).expect("intents serialize");
        let written =
            durable::write_atomic_with(&file, &body, 0o600, sync).and_then(|()| sync.commit());
        if let Err(e) = written {
            let _ = fs::remove_file(&file);
            return Err(e);
        }
        let mut open = self.lock_open();
        for i in staged {
            open.owner.insert(i.uid.clone(), file.clone());
        }
        open.files
            .insert(file, staged.iter().map(|i| i.uid.clone()).collect());
        Ok(())
    }

    /// Renames each job folder to its new status; returns the intents of the jobs moved (the
    /// others go to `results` as failed, their intents settled).
    fn rename_all(
        &self,
        staged: Vec<Intent>,
        sync: &mut Sync,
        results: &mut Vec<(String, Applied)>,
    ) -> Vec<Intent> {
        let mut moved = Vec::new();
        let mut unmoved = Vec::new();
        for intent in staged {
            let from = self.queue.job_dir(intent.from, &intent.uid);
            let to = self.queue.job_dir(intent.to, &intent.uid);
            match durable::rename_with(&from, &to, sync) {
                Ok(()) => moved.push(intent),
                Err(e) => {
                    unmoved.push(intent.uid.clone());
                    results.push((intent.uid, Applied::Failed(e)));
                }
            }
        }
        // Nothing was done for these, so there is nothing to record: their intents go now.
        self.settled(&unmoved);
        moved
    }

    /// Completes or undoes every move that a crash interrupted.
    pub fn recover(&self, trust: &Trust) -> Vec<(String, Applied)> {
        let mut out = Vec::new();
        durable::remove_stale_temps(&self.journal);
        let mut sync = Sync::batch();
        let mut finished = Vec::new();
        for (path, intents) in self.journal_files() {
            let Some(intents) = intents else {
                // Journal files are written atomically: an unreadable one is damaged or not ours,
                // and names no move that could be completed.
                log::warn!("removing {}: not a journal file", path.display());
                finished.push(path);
                continue;
            };
            for intent in intents {
                let moved_to = self.queue.job_dir(intent.to, &intent.uid);
                if moved_to.is_dir() {
                    // The crash may have cut one of `finish`'s writes short.
                    remove_own_temps(&moved_to);
                    let outcome = self.finish(&intent, trust, &mut sync);
                    log::info!(
                        "completed an interrupted move of job {}: {outcome:?}",
                        intent.uid
                    );
                    out.push((intent.uid.clone(), outcome));
                }
            }
            finished.push(path);
        }
        if let Err(e) = sync.commit() {
            log::error!("{e}");
            return out;
        }
        for path in finished {
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                log::error!("could not remove {}: {e}", path.display());
            }
        }
        out
    }

    /// After the move: lock the job, check it is still what was decided, rewrite its metadata.
    fn finish(&self, intent: &Intent, trust: &Trust, sync: &mut Sync) -> Applied {
        let dir = self.queue.job_dir(intent.to, &intent.uid);
        if intent.to == Status::Approved
            && let Err(e) = lock_permissions(&dir, sync)
        {
            return self.send_back(intent, format!("could not lock its permissions: {e}"), sync);
        }
        let again: Review = review::review(&dir, &self.owner, trust);
        let sig = again.inspection.signature.clone();
        let still_ok = match intent.check {
            Check::Policy => again.approves() && sig == intent.signature,
            Check::Signature => sig == intent.signature,
            Check::Nothing => true,
        };
        if !still_ok {
            let why = if sig != intent.signature {
                format!(
                    "its files changed while it was being approved (signature {} became {})",
                    intent.signature.as_deref().unwrap_or("none"),
                    sig.as_deref().unwrap_or("none")
                )
            } else {
                "the rules no longer approve it".to_string()
            };
            return self.send_back(intent, why, sync);
        }
        let Some(mut meta) = again.inspection.meta else {
            return self.send_back(intent, "its metadata became unreadable".into(), sync);
        };
        meta.set_status(intent.to.as_str(), intent.error_message.as_deref());
        match meta.write(&dir, sync) {
            Ok(()) => Applied::Done,
            Err(e) => self.send_back(intent, format!("could not rewrite its metadata: {e}"), sync),
        }
    }

    fn send_back(&self, intent: &Intent, why: String, sync: &mut Sync) -> Applied {
        let here = self.queue.job_dir(intent.to, &intent.uid);
        let back = self.queue.job_dir(intent.from, &intent.uid);
        if back.exists() {
            log::error!(
                "job {} changed during its move and {} exists too: both are left for the owner",
                intent.uid,
                back.display()
            );
        } else if let Err(e) = durable::rename_with(&here, &back, sync) {
            log::error!("could not move job {} back: {e}", intent.uid);
        }
        Applied::SentBack(why)
    }

    /// Forgets the intents of moves whose decisions are recorded; a journal file goes when every
    /// intent in it is settled.
    pub fn settled<'a>(&self, uids: impl IntoIterator<Item = &'a String>) {
        let mut open = self.lock_open();
        let mut done = std::mem::take(&mut open.unremoved);
        for uid in uids {
            done.extend(open.settle(uid));
        }
        for path in done {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    log::error!(
                        "could not remove the journal of finished moves, {}: {e}; retrying after the next decision",
                        path.display()
                    );
                    open.unremoved.push(path);
                }
                _ => {}
            }
        }
    }

    fn ensure_status_dir(&self, s: Status) -> Result<()> {
        let dir = self.queue.status_dir(s);
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        let perm = dir.join(permfile::FILE_NAME);
        if !perm.exists() {
            durable::write_atomic(&perm, STATUS_DIR_PERMS.as_bytes(), 0o644)?;
        }
        Ok(())
    }

    /// Jobs with an intent in the journal: a move in progress (possibly by another process), or
    /// one a crash interrupted that [`Mover::recover`] has not completed yet. Only such moves
    /// may leave a job whose metadata disagrees with its folder; any other job outside
    /// `pending/` is left exactly as it is found (the status folders are not repaired by hand).
    pub fn in_flight(&self) -> HashSet<String> {
        self.journal_files()
            .into_iter()
            .flat_map(|(_, i)| i.unwrap_or_default())
            .map(|i| i.uid)
            .collect()
    }
}

/// Removes the temporary files that this module's writes into a job folder (`metadata.json` at
/// its top, permission files anywhere in it) leave behind when the process is killed mid-write.
/// Only called on folders that the app itself is moving, never on `pending/` jobs,
/// whose temporary files may belong to the sync client.
fn remove_own_temps(job_dir: &Path) {
    let metadata_tmp = format!("{}{}", metadata::FILE_NAME, durable::TMP_MARKER);
    let perm_tmp = format!("{}{}", permfile::FILE_NAME, durable::TMP_MARKER);
    for entry in WalkDir::new(job_dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy();
        let ours =
            name.starts_with(&perm_tmp) || (entry.depth() == 1 && name.starts_with(&metadata_tmp));
        if ours && entry.file_type().is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => log::info!(
                    "removed {}, left by an interrupted write",
                    entry.path().display()
                ),
                Err(e) => log::warn!("could not remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Turns every write/admin grant in the job's own permission files into a read grant, so the
/// requester can still see the job but can no longer change the code that was approved.
pub fn lock_permissions(job_dir: &Path, sync: &mut Sync) -> Result<()> {
    for entry in WalkDir::new(job_dir).follow_links(false) {
        let entry = entry.map_err(|e| {
            Error::io(
                "read",
                job_dir,
                e.into_io_error()
                    .unwrap_or_else(|| io::Error::other("walk error")),
            )
        })?;
        if entry.file_type().is_file() && entry.file_name() == permfile::FILE_NAME {
            // An unreadable permission file might grant anything: it is replaced outright.
            permfile::lock_read_only(entry.path(), sync)?;
        }
    }
    Ok(())
}

fn clone_err(e: &Error) -> Error {
    Error::invalid("the batch could not be made durable", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syftbox::Identity;

    /// Found by the fault-injection test (tests/faults.rs): an intent whose removal failed while
    /// the journal folder was read-only stayed until the next start.
    #[test]
    fn a_journal_file_that_cannot_be_removed_is_removed_at_the_next_settle() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(&Identity {
            data_dir: tmp.path().to_path_buf(),
            email: "owner@x.org".into(),
            source: None,
        });
        let mover = Mover::new(&layout);
        let (a, b) = ("uid-a".to_string(), "uid-b".to_string());
        let file = mover.journal.join(batch_name());
        {
            let mut open = mover.lock_open();
            open.owner.insert(a.clone(), file.clone());
            open.owner.insert(b.clone(), file.clone());
            open.files
                .insert(file.clone(), [a.clone(), b.clone()].into_iter().collect());
        }
        // A non-empty folder in the file's place: removing it as a file fails, as root too.
        fs::create_dir_all(file.join("x")).unwrap();
        mover.settled([&a]);
        assert!(
            mover.lock_open().unremoved.is_empty(),
            "b is not settled yet"
        );
        mover.settled([&b]);
        assert!(file.exists());
        assert_eq!(mover.lock_open().unremoved, vec![file.clone()]);
        fs::remove_dir_all(&file).unwrap();
        fs::write(&file, "[]").unwrap();
        mover.settled(std::iter::empty());
        assert!(!file.exists(), "the file is removed at the next settle");
        assert!(mover.lock_open().unremoved.is_empty());
    }

    #[test]
    fn journal_files_of_earlier_versions_hold_one_intent() {
        let one = r#"{"uid":"u","from":"pending","to":"approved","signature":null,"check":"policy","at":"x"}"#;
        let Ok(JournalFile::One(i)) = serde_json::from_str::<JournalFile>(one) else {
            panic!("a lone intent is read");
        };
        assert_eq!(i.uid, "u");
        let batch = format!("[{one},{one}]");
        let Ok(JournalFile::Batch(v)) = serde_json::from_str::<JournalFile>(&batch) else {
            panic!("a batch is read");
        };
        assert_eq!(v.len(), 2);
    }
}
