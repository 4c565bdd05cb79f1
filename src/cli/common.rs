//! What every command needs: the datasite's layout from the global flags, a job named by uid or
//! by folder, and job data escaped for the terminal.

use std::path::{Path, PathBuf};

use super::args::Cli;
use crate::error::{Error, Result};
use crate::queue::{Queue, Status};
use crate::syftbox::{self, Layout, Overrides};

pub(crate) fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        email: cli.email.clone(),
    }
}

pub(crate) fn layout(cli: &Cli) -> Result<Layout> {
    identity(cli).map(|id| Layout::new(&id))
}

pub(crate) fn identity(cli: &Cli) -> Result<syftbox::Identity> {
    match syftbox::discover(&overrides(cli))? {
        Some(id) => Ok(id),
        None => Err(Error::Config(format!(
            "no SyftBox client config found (looked at {}): pass --config FILE, or --data-dir DIR --email EMAIL, \
             or set SYFTBOX_CLIENT_CONFIG_PATH (for the demo: {})",
            syftbox::candidate_configs(None)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            "SYFTBOX_CLIENT_CONFIG_PATH=$PWD/demo/config.json"
        ))),
    }
}

/// The layout, with the app data folders in place (for commands that change stores).
pub(crate) fn store_layout(cli: &Cli) -> Result<Layout> {
    let l = layout(cli)?;
    crate::store::appdata::ensure_app_data(&l)?;
    Ok(l)
}

/// A uid in the queue (the copy in `status`, needed when the uid is in several status
/// folders), or a job folder.
pub(crate) fn resolve_job(l: &Layout, job: &str, status: Option<Status>) -> Result<PathBuf> {
    let p = Path::new(job);
    if status.is_none() && (p.join("metadata.json").exists() || p.join("code").is_dir()) {
        return Ok(p.to_path_buf());
    }
    crate::queue::copies::locate(&Queue::new(l.queue.clone()), job, status).map(|(_, dir)| dir)
}

/// Job data (names, emails, reasons, paths) as printed by every command: terminal controls and
/// invisible characters are shown as `⟨U+XXXX⟩`, never sent to the terminal.
pub(crate) fn term(s: &str) -> std::borrow::Cow<'_, str> {
    crate::core::visible::for_terminal(s)
}
