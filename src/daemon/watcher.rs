//! Filesystem watching. Events are only hints that something under a path changed: the daemon
//! re-reads what they point at, re-walks everything on overflow or watcher errors, and rescans on
//! a timer as well. Targets that do not exist yet are watched through their nearest existing
//! parent until they appear.
//!
//! Recursive targets (the `pending/` tree) are watched by [`TreeWatch`], not by the `notify`
//! crate: `notify` scans every watched path each time a watched folder is moved away, which made
//! a burst of N approvals cost O(N^2) and kept a core busy. Non-recursive targets use `notify`.
//! Their number of watched folders is capped, so a flood of job folders costs bounded memory.

mod folders;

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, Flag, MetadataKind, ModifyKind, RemoveKind,
    RenameMode,
};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::backlog::Outbox;
use crate::error::{Error, Result};
use folders::Folders;

/// Messages for the daemon's loop.
#[derive(Debug)]
pub enum Msg {
    Fs(notify::Result<notify::Event>),
    Shutdown,
}

/// Messages waiting for the daemon's loop at most (`sync_channel`'s bound). While a batch runs
/// a burst's events would otherwise pile up in memory, a few hundred bytes each. Past it, the
/// watches hold one event per path, bounded, and read on (see `backlog`).
pub const QUEUE: usize = 4096;

pub struct Watcher {
    inner: RecommendedWatcher,
    outbox: Outbox,
    /// The recursive targets.
    tree: TreeWatch,
    targets: Vec<(PathBuf, RecursiveMode)>,
    /// path -> mode, as currently registered with the OS
    active: HashMap<PathBuf, RecursiveMode>,
    /// The targets not registered (watched through a stand-in parent), kept as `active`
    /// changes: every event is checked against them, and they are most often none.
    inactive: Vec<PathBuf>,
    /// Where to stop looking for a stand-in parent (never watch above the data folder).
    top: PathBuf,
    pub last_error: Option<String>,
}

const LIMIT_HINT: &str = "the inotify watch limit is reached: raise it with \
`sudo sysctl fs.inotify.max_user_watches=524288` (and add that line to /etc/sysctl.conf); \
until then changes are picked up by the periodic rescan";

impl Watcher {
    pub fn new(tx: SyncSender<Msg>, top: PathBuf) -> Result<Watcher> {
        let outbox = Outbox::new(tx);
        let tree = TreeWatch::new(outbox.clone()).map_err(|e| Error::Watch {
            path: top.clone(),
            message: describe(&e),
        })?;
        let forward = outbox.clone();
        // Their thread also serves the daemon's changes of watches: it must never wait.
        let inner = notify::recommended_watcher(move |ev| {
            let _ = forward.send([ev]);
        })
        .map_err(|e| Error::Watch {
            path: top.clone(),
            message: describe(&e),
        })?;
        Ok(Watcher {
            inner,
            outbox,
            tree,
            targets: Vec::new(),
            active: HashMap::new(),
            inactive: Vec::new(),
            top,
            last_error: None,
        })
    }

    pub fn add_target(&mut self, path: PathBuf, recursive: bool) {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        self.inactive.push(path.clone());
        self.targets.push((path, mode));
    }

    /// True when `path` is (under) a stand-in parent rather than a real target, meaning a
    /// target may have just been created and [`refresh`](Watcher::refresh) should run.
    pub fn is_stand_in_event(&self, path: &Path) -> bool {
        self.inactive
            .iter()
            .any(|t| t.starts_with(path) || path.starts_with(t))
    }

    /// Registers every target that exists, and a stand-in parent for each that does not.
    /// Returns false if something could not be watched (the reason is in `last_error`).
    pub fn refresh(&mut self) -> bool {
        let mut wanted: HashMap<PathBuf, RecursiveMode> = HashMap::new();
        for (target, mode) in &self.targets {
            if target.is_dir() {
                wanted.insert(target.clone(), *mode);
            } else {
                let mut p = target.parent();
                while let Some(dir) = p {
                    if dir.is_dir() || dir == self.top {
                        if dir.is_dir() {
                            wanted
                                .entry(dir.to_path_buf())
                                .or_insert(RecursiveMode::NonRecursive);
                        }
                        break;
                    }
                    p = dir.parent();
                }
            }
        }
        let stale: Vec<(PathBuf, RecursiveMode)> = self
            .active
            .iter()
            .filter(|(p, m)| {
                wanted.get(*p) != Some(*m)
                    || !p.is_dir()
                    || (**m == RecursiveMode::Recursive && !self.tree.has_root(p))
            })
            .map(|(p, m)| (p.clone(), *m))
            .collect();
        for (p, mode) in stale {
            if mode == RecursiveMode::Recursive {
                self.tree.remove_root(&p);
            } else {
                let _ = self.inner.unwatch(&p);
            }
            self.active.remove(&p);
        }
        let mut ok = true;
        for (path, mode) in wanted {
            if self.active.contains_key(&path) {
                continue;
            }
            let added = if mode == RecursiveMode::Recursive {
                self.tree.add_root(&path)
            } else {
                self.inner.watch(&path, mode)
            };
            match added {
                Ok(()) => {
                    self.active.insert(path, mode);
                }
                Err(e) => {
                    let msg = format!("could not watch {}: {}", path.display(), describe(&e));
                    log::error!("{msg}");
                    self.last_error = Some(msg);
                    ok = false;
                }
            }
        }
        if ok {
            self.last_error = None;
        }
        self.inactive = self
            .targets
            .iter()
            .filter(|(t, _)| !self.active.contains_key(t))
            .map(|(t, _)| t.clone())
            .collect();
        ok
    }

    /// Hands over the events that wait for room, before the loop waits for events itself.
    pub fn flush(&self) {
        let _ = self.outbox.flush();
    }

    pub fn healthy(&self) -> bool {
        self.last_error.is_none()
    }

    /// Watches inside `dir`, a folder below a recursive target, if it is not (a job folder
    /// that arrived when there was no room, found changed by a rescan).
    pub fn rewatch(&mut self, dir: &Path) {
        self.tree.rewatch(dir);
    }
}

/// At most this many folders are watched recursively. In a flood beyond it, new job folders
/// are not watched inside (their arrival still is, from their parent): the periodic rescan's
/// fingerprints catch later changes, and the watches' memory stays bounded.
const MAX_TREE_WATCHES: usize = 16_384;

/// Recursive watches on one inotify instance, read by a thread of its own. Folders are indexed
/// by path in order, so the watches of a folder moved or deleted away are found by a range
/// lookup instead of a scan of every watch.
struct TreeWatch {
    inotify: Arc<Inotify>,
    state: Arc<Mutex<Tree>>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Tree {
    /// Each watched folder, by descriptor and by path.
    wds: Folders<WatchDescriptor>,
    roots: HashSet<PathBuf>,
    /// The room for watches ran out (and this was said).
    full: bool,
}

/// What the daemon needs to know about (opening and reading files are not among them).
fn tree_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

fn watch_error(e: Errno, path: &Path) -> notify::Error {
    match e {
        Errno::ENOSPC => notify::Error::new(notify::ErrorKind::MaxFilesWatch),
        Errno::ENOENT => notify::Error::new(notify::ErrorKind::PathNotFound),
        e => notify::Error::io(std::io::Error::from(e)),
    }
    .add_path(path.to_path_buf())
}

impl TreeWatch {
    fn new(tx: Outbox) -> notify::Result<TreeWatch> {
        let inotify = Arc::new(
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| notify::Error::io(std::io::Error::from(e)))?,
        );
        let state = Arc::new(Mutex::new(Tree::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (i, st, halt) = (inotify.clone(), state.clone(), stop.clone());
        std::thread::Builder::new()
            .name("tree-watch".into())
            .spawn(move || read_loop(&i, &st, &halt, &tx))
            .map_err(notify::Error::io)?;
        Ok(TreeWatch {
            inotify,
            state,
            stop,
        })
    }

    fn add_root(&self, root: &Path) -> notify::Result<()> {
        let mut tree = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mask = tree_mask() | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF;
        let wd = self
            .inotify
            .add_watch(root, mask)
            .map_err(|e| watch_error(e, root))?;
        tree.wds.insert(wd, root);
        tree.roots.insert(root.to_path_buf());
        let mut errors = Vec::new();
        tree.add_below(&self.inotify, root, &mut errors);
        match errors.into_iter().next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn remove_root(&self, root: &Path) {
        let mut tree = self.state.lock().unwrap_or_else(|e| e.into_inner());
        tree.remove_tree(&self.inotify, root);
        tree.roots.remove(root);
    }

    fn rewatch(&self, dir: &Path) {
        let mut tree = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let under_root = dir
            .parent()
            .is_some_and(|p| tree.wds.contains(p) && tree.roots.iter().any(|r| dir.starts_with(r)));
        if !under_root || tree.wds.contains(dir) {
            return;
        }
        let mut errors = Vec::new();
        tree.watch_folder(&self.inotify, dir, &mut errors);
        for e in errors.into_iter().filter_map(Result::err) {
            log::warn!("could not watch {}: {}", dir.display(), describe(&e));
        }
    }

    /// The root is watched and its watch is alive (it was not deleted or moved away).
    fn has_root(&self, root: &Path) -> bool {
        let tree = self.state.lock().unwrap_or_else(|e| e.into_inner());
        tree.roots.contains(root) && tree.wds.contains(root)
    }
}

impl Drop for TreeWatch {
    fn drop(&mut self) {
        // The reader polls with a timeout and stops when it sees this.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_loop(inotify: &Inotify, state: &Mutex<Tree>, stop: &AtomicBool, tx: &Outbox) {
    use nix::poll::{PollFd, PollFlags, poll};
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, 500u16) {
            Ok(n) if n > 0 => {}
            _ => continue,
        }
        let events = match inotify.read_events() {
            Ok(evs) => evs,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => {
                let _ = tx.send([Err(notify::Error::io(std::io::Error::from(e)))]);
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let mut out = Vec::with_capacity(events.len());
        {
            let mut tree = state.lock().unwrap_or_else(|e| e.into_inner());
            for ev in events {
                tree.translate(inotify, ev, &mut out);
            }
        }
        // Never waits for the loop: the kernel's queue is read on while events wait for room
        // (and the watches of folders moved away are removed before their later events come).
        if tx.send(out).is_err() {
            return;
        }
    }
}

impl Tree {
    /// Watches `dir` and every folder under it, while there is room ([`MAX_TREE_WATCHES`]).
    fn watch_folder(
        &mut self,
        inotify: &Inotify,
        dir: &Path,
        out: &mut Vec<notify::Result<Event>>,
    ) {
        if !self.room() {
            return;
        }
        match inotify.add_watch(dir, tree_mask()) {
            Ok(wd) => {
                self.wds.insert(wd, dir);
                self.add_below(inotify, dir, out);
            }
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(e) => out.push(Err(watch_error(e, dir))),
        }
    }

    /// Whether another folder may be watched; says so once when the room runs out.
    fn room(&mut self) -> bool {
        if self.wds.len() < MAX_TREE_WATCHES {
            self.full = false;
            return true;
        }
        if !self.full {
            self.full = true;
            log::warn!(
                "{} folders are watched: new job folders are not watched inside until the backlog \
                 shrinks (their arrival still is; the periodic rescan catches later changes)",
                self.wds.len()
            );
        }
        false
    }

    /// Watches every folder under `dir` (not `dir` itself), while there is room.
    fn add_below(&mut self, inotify: &Inotify, dir: &Path, out: &mut Vec<notify::Result<Event>>) {
        let mut walk = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .min_depth(1)
            .into_iter();
        while let Some(entry) = walk.next() {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_dir() {
                continue;
            }
            if !self.room() {
                // A folder left unwatched takes its subfolders with it.
                walk.skip_current_dir();
                continue;
            }
            match inotify.add_watch(entry.path(), tree_mask()) {
                Ok(wd) => self.wds.insert(wd, entry.path()),
                // Gone again, or replaced by a file: nothing to watch.
                Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => {
                    out.push(Err(watch_error(e, entry.path())));
                    if e == Errno::ENOSPC {
                        return;
                    }
                }
            }
        }
    }

    /// Forgets `dir` and every folder under it, removing their watches.
    fn remove_tree(&mut self, inotify: &Inotify, dir: &Path) {
        for wd in self.wds.remove_tree(dir) {
            // Fails harmlessly when the kernel already dropped it (folder deleted).
            let _ = inotify.rm_watch(wd);
        }
    }

    fn translate(
        &mut self,
        inotify: &Inotify,
        ev: InotifyEvent,
        out: &mut Vec<notify::Result<Event>>,
    ) {
        let m = ev.mask;
        if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            out.push(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
            return;
        }
        if m.contains(AddWatchFlags::IN_IGNORED) {
            // The kernel dropped the watch (its folder was deleted).
            self.wds.forget(ev.wd);
            return;
        }
        let Some(dir) = self.wds.path(ev.wd) else {
            return;
        };
        let path = match &ev.name {
            Some(n) => dir.join(n),
            None => dir.clone(),
        };
        let is_dir = m.contains(AddWatchFlags::IN_ISDIR);
        let kind = if m.contains(AddWatchFlags::IN_CREATE) {
            EventKind::Create(if is_dir {
                CreateKind::Folder
            } else {
                CreateKind::File
            })
        } else if m.contains(AddWatchFlags::IN_MOVED_TO) {
            EventKind::Modify(ModifyKind::Name(RenameMode::To))
        } else if m.intersects(AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_MOVE_SELF) {
            EventKind::Modify(ModifyKind::Name(RenameMode::From))
        } else if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_DELETE_SELF) {
            EventKind::Remove(if is_dir || ev.name.is_none() {
                RemoveKind::Folder
            } else {
                RemoveKind::File
            })
        } else if m.contains(AddWatchFlags::IN_CLOSE_WRITE) {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        } else if m.contains(AddWatchFlags::IN_MODIFY) {
            EventKind::Modify(ModifyKind::Data(DataChange::Any))
        } else if m.contains(AddWatchFlags::IN_ATTRIB) {
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))
        } else {
            EventKind::Other
        };
        if ev.name.is_some() && is_dir {
            if m.intersects(AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_DELETE) {
                self.remove_tree(inotify, &path);
            }
            if m.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                self.watch_folder(inotify, &path, out);
            }
        }
        if ev.name.is_none() && m.intersects(AddWatchFlags::IN_MOVE_SELF) {
            // A root moved away: its watches now point elsewhere.
            self.remove_tree(inotify, &dir);
        }
        out.push(Ok(Event::new(kind).add_path(path)));
    }
}

/// A watcher error in words, with the fix for the watch limit.
pub fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => LIMIT_HINT.to_string(),
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(nix::libc::ENOSPC) => {
            LIMIT_HINT.to_string()
        }
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(nix::libc::EMFILE) => {
            "too many inotify instances: raise `fs.inotify.max_user_instances` with sysctl".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::mpsc::{Receiver, sync_channel};
    use std::time::{Duration, Instant};

    /// Every path reported until `want` shows up (or 5 s pass).
    fn until(rx: &Receiver<Msg>, want: &Path) -> Vec<PathBuf> {
        let end = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(Msg::Fs(Ok(ev))) = rx.recv_timeout(left) else {
                continue;
            };
            seen.extend(ev.paths);
            if seen.iter().any(|p| p == want) {
                break;
            }
        }
        seen
    }

    #[test]
    fn tree_watch_follows_folders_created_moved_in_and_moved_away() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pending");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(outside.join("job/code")).unwrap();
        let (tx, rx) = sync_channel(QUEUE);
        let tree = TreeWatch::new(Outbox::new(tx)).unwrap();
        tree.add_root(&root).unwrap();
        assert!(tree.has_root(&root));

        // A folder renamed in whole with a subfolder: files written later deep inside are seen.
        fs::rename(outside.join("job"), root.join("job")).unwrap();
        until(&rx, &root.join("job"));
        let deep = root.join("job/code/main.py");
        fs::write(&deep, "x").unwrap();
        assert!(
            until(&rx, &deep).contains(&deep),
            "a file in a moved-in subfolder"
        );

        // Created folder by folder, as a sync client does.
        fs::create_dir_all(root.join("b/c")).unwrap();
        let late = root.join("b/c/late.txt");
        // The watch on c may be added after c's creation: keep writing until it is seen.
        let mut seen = false;
        for _ in 0..20 {
            fs::write(&late, "y").unwrap();
            if until(&rx, &late).contains(&late) {
                seen = true;
                break;
            }
        }
        assert!(seen, "a file in a freshly created subfolder");

        // Moved away: its watches go, and nothing more is reported from it.
        fs::rename(root.join("job"), outside.join("gone")).unwrap();
        until(&rx, &root.join("job"));
        fs::write(outside.join("gone/code/after.py"), "z").unwrap();
        let marker = root.join("marker");
        fs::write(&marker, "m").unwrap();
        let after = until(&rx, &marker);
        assert!(
            after.iter().all(|p| !p.starts_with(&outside)),
            "events from a folder moved away: {after:?}"
        );
        let state = tree.state.lock().unwrap();
        assert!(state.wds.paths().iter().all(|p| p.starts_with(&root)));
    }
}
