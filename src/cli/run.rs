//! `run` (the default command): the daemon, with the web UI beside it.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::args::{Cli, RunArgs};
use super::common::overrides;
use super::demo;
use crate::daemon::live::Live;
use crate::daemon::watcher::Msg;
use crate::daemon::{Daemon, Options};
use crate::error::{Error, Result};
use crate::store::appdata;
use crate::store::lock::InstanceLock;
use crate::syftbox::{self, Layout};
use crate::web::WebServer;

pub(crate) fn run(cli: &Cli, args: &RunArgs) -> Result<()> {
    let id = match syftbox::discover(&overrides(cli))? {
        Some(id) => id,
        None => {
            let id = demo::prepare(&args.demo_dir)?;
            log::info!(
                "no SyftBox config found: running on the demo datasite {} (owner {}). \
                 Manage it from another terminal after `export SYFTBOX_CLIENT_CONFIG_PATH={}`",
                id.data_dir.display(),
                id.email,
                id.source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            id
        }
    };
    let layout = Layout::new(&id);
    // Secrets and locks must never be readable by others, whatever the caller's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    appdata::ensure_state(&layout)?;
    let _lock = InstanceLock::acquire(&layout.state, &layout.datasite)?;
    log::info!(
        "syft-reviewer {} for {} (datasite {})",
        env!("CARGO_PKG_VERSION"),
        layout.email,
        layout.datasite.display()
    );
    let opts = Options {
        settle: Duration::from_millis(args.settle_ms),
        rescan: Duration::from_secs(args.rescan_secs),
        once: args.once,
    };
    let (tx, rx) = mpsc::sync_channel(crate::daemon::watcher::QUEUE);
    if !args.once {
        let stop = tx.clone();
        ctrlc::set_handler(move || {
            let _ = stop.send(Msg::Shutdown);
        })
        .map_err(|e| Error::invalid("could not install the signal handler", e.to_string()))?;
    }
    let live = Arc::new(Live::default());
    let web = if args.once || args.no_web {
        None
    } else {
        let port = args.port.unwrap_or_else(crate::syftbox::default_port);
        match WebServer::start(&layout, live.clone(), args.bind, port) {
            Ok(w) => Some(w),
            // Deciding jobs matters more than the UI: keep going without it.
            Err(e) => {
                log::error!("the web UI is not available: {e}");
                None
            }
        }
    };
    if web.is_none() {
        live.index.set_unread();
    }
    let ui_url = web
        .as_ref()
        .map(|w| format!("http://127.0.0.1:{}/", w.addr.port()));
    let result = Daemon::new(layout, opts)?
        .with_live(live)
        .with_ui_url(ui_url)
        .run(tx, rx);
    if let Some(w) = web {
        w.shutdown();
    }
    result
}
