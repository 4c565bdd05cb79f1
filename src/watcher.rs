//! Filesystem watching. Events are only hints that something under a path changed: the daemon
//! re-reads what they point at, re-walks everything on overflow or watcher errors, and rescans on
//! a timer as well. Targets that do not exist yet are watched through their nearest existing
//! parent until they appear.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::error::{Error, Result};

/// Messages for the daemon's loop.
#[derive(Debug)]
pub enum Msg {
    Fs(notify::Result<notify::Event>),
    Shutdown,
}

pub struct Watcher {
    inner: RecommendedWatcher,
    targets: Vec<(PathBuf, RecursiveMode)>,
    /// path -> mode, as currently registered with the OS
    active: HashMap<PathBuf, RecursiveMode>,
    /// Where to stop looking for a stand-in parent (never watch above the data folder).
    top: PathBuf,
    pub last_error: Option<String>,
}

const LIMIT_HINT: &str = "the inotify watch limit is reached: raise it with \
`sudo sysctl fs.inotify.max_user_watches=524288` (and add that line to /etc/sysctl.conf); \
until then changes are picked up by the periodic rescan";

impl Watcher {
    pub fn new(tx: Sender<Msg>, top: PathBuf) -> Result<Watcher> {
        let inner = notify::recommended_watcher(move |ev| {
            let _ = tx.send(Msg::Fs(ev));
        })
        .map_err(|e| Error::Watch {
            path: top.clone(),
            message: describe(&e),
        })?;
        Ok(Watcher {
            inner,
            targets: Vec::new(),
            active: HashMap::new(),
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
        self.targets.push((path, mode));
    }

    /// True when `path` is (under) a stand-in parent rather than a real target, meaning a
    /// target may have just been created and [`refresh`](Watcher::refresh) should run.
    pub fn is_stand_in_event(&self, path: &Path) -> bool {
        self.targets
            .iter()
            .any(|(t, _)| !self.active.contains_key(t) && t.starts_with(path))
            || self
                .targets
                .iter()
                .any(|(t, _)| !self.active.contains_key(t) && path.starts_with(t))
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
        let stale: Vec<PathBuf> = self
            .active
            .iter()
            .filter(|(p, m)| wanted.get(*p) != Some(*m) || !p.is_dir())
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            let _ = self.inner.unwatch(&p);
            self.active.remove(&p);
        }
        let mut ok = true;
        for (path, mode) in wanted {
            if self.active.contains_key(&path) {
                continue;
            }
            match self.inner.watch(&path, mode) {
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
        ok
    }

    pub fn healthy(&self) -> bool {
        self.last_error.is_none()
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
