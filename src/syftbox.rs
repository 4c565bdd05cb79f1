//! SyftBox conventions: finding the client config, and every path the app reads or writes.

use std::env;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::email;
use crate::durable;
use crate::error::{Error, Result};

/// The folder name of our data under `<datasite>/app_data/`.
pub const APP_NAME: &str = "syft_reviewer_allowlist";
/// The folder the original Python app wrote, imported once.
pub const LEGACY_APP_NAME: &str = "syft-reviewer-allowlist";
/// The queue's app name (syft-code-queue).
pub const QUEUE_APP_NAME: &str = "code-queue";

/// The parts of the client's `config.json` that we use.
#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    /// Legacy name of `data_dir`.
    sync_folder: Option<PathBuf>,
    email: Option<String>,
}

/// Where the owner's data is and who the owner is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub data_dir: PathBuf,
    pub email: String,
    /// The config file this came from, if any.
    pub source: Option<PathBuf>,
}

/// How the user pointed us at SyftBox on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub email: Option<String>,
}

/// Config files to try, in the SPEC's order. `None` from the flag/env means "not given".
pub fn candidate_configs(flag: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = flag {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = env::var_os("SYFTBOX_CLIENT_CONFIG_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(home) = env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        out.push(home.join(".syftbox/config.json"));
        out.push(home.join(".config/syftbox/config.json"));
    }
    out
}

/// Finds the owner's identity. Returns `Ok(None)` only when nothing was given and no default
/// config exists, which is when `run` offers the demo datasite.
pub fn discover(over: &Overrides) -> Result<Option<Identity>> {
    // A mistyped --data-dir would otherwise show an empty queue and change nothing, silently.
    if let Some(dir) = over.data_dir.as_deref().filter(|d| !d.is_dir()) {
        return Err(Error::Config(format!(
            "--data-dir {}: no such folder; give the SyftBox folder that holds datasites/ \
             (the data_dir of your SyftBox config)",
            dir.display()
        )));
    }
    if let (Some(dir), Some(mail)) = (&over.data_dir, &over.email) {
        return Ok(Some(Identity {
            data_dir: absolute(dir),
            email: email::normalize(mail)?,
            source: None,
        }));
    }
    let explicit = over.config.is_some()
        || env::var_os("SYFTBOX_CLIENT_CONFIG_PATH").is_some_and(|p| !p.is_empty());
    let candidates = candidate_configs(over.config.as_deref());
    for candidate in &candidates {
        let alt = candidate.with_file_name("client_config.json");
        let chosen = if candidate.is_file() {
            candidate.clone()
        } else if alt.is_file() {
            alt
        } else {
            continue;
        };
        let mut id = load(&chosen)?;
        if let Some(dir) = &over.data_dir {
            id.data_dir = absolute(dir);
        }
        if let Some(mail) = &over.email {
            id.email = email::normalize(mail)?;
        }
        return Ok(Some(id));
    }
    if explicit || over.data_dir.is_some() || over.email.is_some() {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::Config(format!(
            "no SyftBox client config at {} (nor a client_config.json beside it): \
             pass --config FILE, or both --data-dir DIR and --email EMAIL",
            looked.join(", ")
        )));
    }
    Ok(None)
}

/// Reads one client config file.
pub fn load(path: &Path) -> Result<Identity> {
    let bytes = durable::read_capped(path, 1 << 20)?;
    let raw: RawConfig = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "{} is not a valid SyftBox config ({e}): it must be JSON like \
             {{\"data_dir\": \"/home/me/SyftBox\", \"email\": \"me@example.org\"}}",
            path.display()
        ))
    })?;
    let data_dir = raw.data_dir.or(raw.sync_folder).ok_or_else(|| {
        Error::Config(format!(
            "{} has no \"data_dir\": add the path of your SyftBox folder",
            path.display()
        ))
    })?;
    let mail = raw.email.ok_or_else(|| {
        Error::Config(format!(
            "{} has no \"email\": add the email you log in to SyftBox with",
            path.display()
        ))
    })?;
    let data_dir = if data_dir.is_relative() {
        path.parent().unwrap_or(Path::new(".")).join(data_dir)
    } else {
        data_dir
    };
    Ok(Identity {
        data_dir,
        email: email::normalize(&mail)?,
        source: Some(path.to_path_buf()),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The decision log's file name, in the app data folder.
pub const DECISION_LOG: &str = "decisions.jsonl";

/// Every path the app uses, derived from the identity.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub email: String,
    /// `<data_dir>/datasites/<email>`
    pub datasite: PathBuf,
    /// `<datasite>/app_data/syft_reviewer_allowlist`
    pub app_data: PathBuf,
    /// `<datasite>/app_data/syft-reviewer-allowlist` (the original app's data)
    pub legacy_app_data: PathBuf,
    /// `<datasite>/app_data/code-queue/jobs`
    pub queue: PathBuf,
    /// Private, never synced: `<data_dir>/.syft_reviewer_allowlist`
    pub state: PathBuf,
}

impl Layout {
    pub fn new(id: &Identity) -> Layout {
        let datasite = id.data_dir.join("datasites").join(&id.email);
        let app_root = datasite.join("app_data");
        Layout {
            data_dir: id.data_dir.clone(),
            email: id.email.clone(),
            app_data: app_root.join(APP_NAME),
            legacy_app_data: app_root.join(LEGACY_APP_NAME),
            queue: app_root.join(QUEUE_APP_NAME).join("jobs"),
            state: id.data_dir.join(".syft_reviewer_allowlist"),
            datasite,
        }
    }

    pub fn allowlist_dir(&self) -> PathBuf {
        self.app_data.join("allowlist")
    }
    pub fn trusted_dir(&self) -> PathBuf {
        self.app_data.join("trusted_code")
    }
    pub fn history_dir(&self) -> PathBuf {
        self.app_data.join("job_history")
    }
    pub fn decision_log(&self) -> PathBuf {
        self.app_data.join(DECISION_LOG)
    }
    pub fn config_file(&self) -> PathBuf {
        self.app_data.join("config.yaml")
    }
}

#[cfg(test)]
impl Layout {
    /// The layout of `owner@x.org` with `dir` as data folder, its app data and state folders made.
    pub(crate) fn in_test_dir(dir: &Path) -> Layout {
        let l = Layout::new(&Identity {
            data_dir: dir.to_path_buf(),
            email: "owner@x.org".into(),
            source: None,
        });
        std::fs::create_dir_all(&l.state).unwrap();
        std::fs::create_dir_all(&l.app_data).unwrap();
        l
    }
}

/// The port SyftBox assigned, or 8002.
pub fn default_port() -> u16 {
    ["SYFTBOX_ASSIGNED_PORT", "SYFTBOX_APP_PORT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.trim().parse().ok()))
        .unwrap_or(8002)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_config_with_legacy_key_and_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"sync_folder":"/tmp/sb","email":"A@X.org","port":8080,"new_field":{"x":1}}"#,
        )
        .unwrap();
        let id = load(&p).unwrap();
        assert_eq!(id.data_dir, PathBuf::from("/tmp/sb"));
        assert_eq!(id.email, "a@x.org");
        let layout = Layout::new(&id);
        assert_eq!(
            layout.queue,
            PathBuf::from("/tmp/sb/datasites/a@x.org/app_data/code-queue/jobs")
        );
    }

    #[test]
    fn explicit_missing_config_falls_back_to_client_config_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("client_config.json"),
            r#"{"data_dir":"/d","email":"o@x.org"}"#,
        )
        .unwrap();
        let over = Overrides {
            config: Some(dir.path().join("config.json")),
            ..Overrides::default()
        };
        assert_eq!(discover(&over).unwrap().unwrap().email, "o@x.org");
        let over = Overrides {
            config: Some(dir.path().join("nope/config.json")),
            ..Overrides::default()
        };
        assert!(
            discover(&over)
                .unwrap_err()
                .to_string()
                .contains("--data-dir")
        );
    }
}
