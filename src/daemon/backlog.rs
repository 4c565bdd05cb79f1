//! Watcher events waiting for room in the daemon's channel. While a batch runs the loop reads
//! no events. If the tree watch waited for it, the kernel's queue (16,384 events by default)
//! would overflow in a burst; if the `notify` watches dropped what does not fit, as they must
//! not wait, each drop would cost a rescan. Both cost a comparison of the whole queue. So what
//! cannot be handed over yet waits here, one entry per path (a later event on the same path
//! replaces the earlier one: events are hints that a path changed, and the daemon re-reads what
//! they point at), and the watches read on. The loop takes what waits before it waits itself.
//! Bounded: past [`MAX_HELD`] paths it asks for a rescan and lets go of what it held, which the
//! rescan covers.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use notify::event::{AccessKind, AccessMode, Flag};
use notify::{Event, EventKind};

use super::watcher::Msg;

/// Paths held at most (about 100 bytes each).
pub(super) const MAX_HELD: usize = 32_768;
/// Watch errors held at most: any of them asks for a rescan, so the rest add nothing.
const MAX_ERRORS: usize = 8;

/// The watches' way into the daemon's loop: straight into its channel when there is room and
/// nothing waits, held otherwise. Never waits.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: SyncSender<Msg>,
    held: Arc<Mutex<Backlog>>,
}

impl Outbox {
    pub(super) fn new(tx: SyncSender<Msg>) -> Outbox {
        Outbox {
            tx,
            held: Arc::new(Mutex::new(Backlog::new(MAX_HELD))),
        }
    }

    /// Hands `events` over in order, or holds them.
    pub(super) fn send(
        &self,
        events: impl IntoIterator<Item = notify::Result<Event>>,
    ) -> Result<(), Closed> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for ev in events {
            if !held.is_empty() {
                held.push(ev);
                continue;
            }
            match self.tx.try_send(Msg::Fs(ev)) {
                Ok(()) => {}
                Err(TrySendError::Full(Msg::Fs(ev))) => held.push(ev),
                Err(TrySendError::Full(Msg::Shutdown)) => {}
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
        held.forward(&self.tx)
    }

    /// Hands over what waits, as far as there is room.
    pub(super) fn flush(&self) -> Result<(), Closed> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_empty() {
            return Ok(());
        }
        held.forward(&self.tx)
    }
}

/// Events waiting for room, in the order their paths first changed.
pub(super) struct Backlog {
    order: VecDeque<Arc<Path>>,
    /// The kind of the latest event on each path in `order`.
    kinds: HashMap<Arc<Path>, EventKind>,
    errors: VecDeque<notify::Error>,
    /// A rescan is to be asked for before anything held is handed over.
    rescan: bool,
    max: usize,
    /// Paths let go when the bound was reached, since the start (for the log).
    pub(super) overflows: u64,
}

/// An event the daemon's loop ignores: a file opened, read or closed without writing.
fn is_read(kind: EventKind) -> bool {
    matches!(kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write))
}

/// The daemon's loop is gone.
pub(super) struct Closed;

impl Backlog {
    pub(super) fn new(max: usize) -> Backlog {
        Backlog {
            order: VecDeque::new(),
            kinds: HashMap::new(),
            errors: VecDeque::new(),
            rescan: false,
            max: max.max(1),
            overflows: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty() && self.errors.is_empty() && !self.rescan
    }

    /// Holds `ev` until there is room.
    pub(super) fn push(&mut self, ev: notify::Result<Event>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                if self.errors.len() < MAX_ERRORS {
                    self.errors.push_back(e);
                }
                return;
            }
        };
        if ev.need_rescan() {
            // Whatever waits is covered by the rescan: only what changes after it is news.
            self.overflow();
            return;
        }
        for path in ev.paths {
            if let Some(kind) = self.kinds.get_mut(path.as_path()) {
                // A read after a change must not hide the change: the loop ignores reads.
                if !is_read(ev.kind) {
                    *kind = ev.kind;
                }
                continue;
            }
            if self.order.len() >= self.max {
                self.overflows += 1;
                log::info!(
                    "{} changed paths wait for the daemon's loop: rescanning instead",
                    self.order.len()
                );
                self.overflow();
            }
            let path: Arc<Path> = Arc::from(path);
            self.kinds.insert(path.clone(), ev.kind);
            self.order.push_back(path);
        }
    }

    fn overflow(&mut self) {
        self.rescan = true;
        self.order = VecDeque::new();
        self.kinds = HashMap::new();
    }

    /// Hands over as much as there is room for, oldest first.
    pub(super) fn forward(&mut self, tx: &SyncSender<Msg>) -> Result<(), Closed> {
        while let Some(e) = self.errors.pop_front() {
            match tx.try_send(Msg::Fs(Err(e))) {
                Ok(()) => {}
                Err(TrySendError::Full(Msg::Fs(Err(e)))) => {
                    self.errors.push_front(e);
                    return Ok(());
                }
                Err(TrySendError::Full(_)) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
        if self.rescan {
            let ev = Event::new(EventKind::Other).set_flag(Flag::Rescan);
            match tx.try_send(Msg::Fs(Ok(ev))) {
                Ok(()) => self.rescan = false,
                Err(TrySendError::Full(_)) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
        while let Some(path) = self.order.front() {
            let kind = self.kinds.get(path).copied().unwrap_or(EventKind::Any);
            let ev = Event::new(kind).add_path(path.to_path_buf());
            match tx.try_send(Msg::Fs(Ok(ev))) {
                Ok(()) => {
                    if let Some(p) = self.order.pop_front() {
                        self.kinds.remove(&p);
                    }
                }
                Err(TrySendError::Full(_)) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
        if self.kinds.capacity() > 1024 {
            // Drained after a burst: its memory goes back.
            self.order = VecDeque::new();
            self.kinds = HashMap::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};
    use std::path::PathBuf;
    use std::sync::mpsc::{Receiver, sync_channel};

    fn ev(kind: EventKind, p: &str) -> notify::Result<Event> {
        Ok(Event::new(kind).add_path(PathBuf::from(p)))
    }

    fn drain(rx: &Receiver<Msg>) -> Vec<(bool, EventKind, Vec<PathBuf>)> {
        let mut out = Vec::new();
        while let Ok(Msg::Fs(Ok(e))) = rx.try_recv() {
            out.push((e.need_rescan(), e.kind, e.paths));
        }
        out
    }

    const TO: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::To));
    const FROM: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::From));
    const NEW: EventKind = EventKind::Create(CreateKind::File);

    #[test]
    fn held_events_are_handed_over_one_per_path_with_the_latest_kind_and_none_lost() {
        let (tx, rx) = sync_channel(2);
        let mut b = Backlog::new(100);
        for (k, p) in [(TO, "/q/a"), (TO, "/q/b"), (NEW, "/q/c"), (FROM, "/q/a")] {
            b.push(ev(k, p));
        }
        b.forward(&tx).ok();
        // Room for two: the rest waits, and a later event on a waiting path joins it.
        b.push(ev(TO, "/q/c"));
        assert_eq!(
            drain(&rx),
            vec![
                (false, FROM, vec![PathBuf::from("/q/a")]),
                (false, TO, vec![PathBuf::from("/q/b")]),
            ]
        );
        b.forward(&tx).ok();
        assert_eq!(drain(&rx), vec![(false, TO, vec![PathBuf::from("/q/c")])]);
        assert!(b.is_empty());
    }

    #[test]
    fn a_read_after_a_change_does_not_hide_the_change() {
        let (tx, rx) = sync_channel(10);
        let mut b = Backlog::new(10);
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        b.push(ev(NEW, "/s/allow"));
        b.push(ev(opened, "/s/allow"));
        b.push(ev(written, "/s/trust"));
        b.push(ev(opened, "/s/trust"));
        b.forward(&tx).ok();
        assert_eq!(
            drain(&rx),
            vec![
                (false, NEW, vec![PathBuf::from("/s/allow")]),
                (false, written, vec![PathBuf::from("/s/trust")]),
            ]
        );
    }

    #[test]
    fn past_its_bound_the_backlog_asks_for_a_rescan_and_keeps_what_follows() {
        let (tx, rx) = sync_channel(100);
        let mut b = Backlog::new(3);
        for p in ["/q/1", "/q/2", "/q/3", "/q/4", "/q/5"] {
            b.push(ev(TO, p));
        }
        b.forward(&tx).ok();
        let got = drain(&rx);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0, "the rescan comes first: {got:?}");
        assert_eq!(got[1].2, vec![PathBuf::from("/q/4")]);
        assert_eq!(got[2].2, vec![PathBuf::from("/q/5")]);
        assert_eq!(b.overflows, 1);

        // The kernel's own overflow: what waits is covered by the rescan.
        let (tx, rx) = sync_channel(100);
        b.push(ev(TO, "/q/6"));
        b.push(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        b.push(ev(TO, "/q/7"));
        b.forward(&tx).ok();
        let got = drain(&rx);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].0);
        assert_eq!(got[1].2, vec![PathBuf::from("/q/7")]);
    }

    #[test]
    fn errors_go_first_and_a_closed_loop_is_reported() {
        let (tx, rx) = sync_channel(1);
        let mut b = Backlog::new(10);
        b.push(ev(TO, "/q/a"));
        b.push(Err(notify::Error::generic("boom")));
        assert!(b.forward(&tx).is_ok());
        assert!(matches!(rx.try_recv(), Ok(Msg::Fs(Err(_)))));
        assert!(b.forward(&tx).is_ok());
        assert!(matches!(rx.try_recv(), Ok(Msg::Fs(Ok(_)))));
        drop(rx);
        b.push(ev(TO, "/q/b"));
        assert!(b.forward(&tx).is_err());
    }
}
