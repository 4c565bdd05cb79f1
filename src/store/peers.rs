//! Peers (filesystem-native): who may send jobs under `peers_only` rules, and who may read the
//! datasets the owner shares automatically.
//!
//! - A peer request is a file `peers/requests/<email>.json` that the requester writes into the
//!   owner's datasite. The folder's `syft.pub.yaml` (kept by [`ensure_requests_folder`]) lets each
//!   user write only the file named with their own email (`{{.UserEmail}}.json`), so the SyftBox
//!   server's permission check proves who wrote it: identity comes from the file name alone, never
//!   from the content (an optional `{"message": ...}`). The encoded form
//!   (`bob_at_uni_dot_edu.json`) is accepted too; only the owner can write such names.
//! - Approved peers are one file each in `peers/approved/<encoded email>` (0600, folder 0700),
//!   like the allowlist. Files made or deleted by hand count: a deleted file revokes the peer.
//! - Each requester and peer can read its answer `peers/answers/<encoded email>.json`
//!   (`{"email","status":"approved"|"pending"|"revoked","at"}`) and nobody else's.
//! - Approved peers get read access to the `auto_share_datasets` folders: the peer is added to
//!   the read list of the folder's catch-all rule (`pattern: '**'`, appended when missing) in its
//!   `syft.pub.yaml`; every other rule and field is kept.
//! - A private state file (`peers.json` in the state folder) records who was approved or revoked,
//!   by whom, and which grants this app added (dataset + peer). So nothing is approved or shared
//!   twice, a revoked peer is never approved again by its domain (only by hand), and revoking
//!   removes exactly the grants the app added. A grant the app added that disappears (an edit by
//!   hand) while the peer is approved and the dataset still configured is logged and re-added.
//!
//! Every function that changes something must be called with [`audit::change_lock`] held; each
//! takes the `peers` store lock itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::core::config::Config;
use crate::core::signature::is_excluded;
use crate::core::{email, rel_path};
use crate::durable::{self, Sync};
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::audit::{self, Subject};
use crate::store::lock::StoreLock;
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;
/// The pattern that lets each user write only the request named with their own email.
pub const USER_TEMPLATE: &str = "{{.UserEmail}}.json";
/// Request files are read up to this size; the content of bigger ones is ignored.
const REQUEST_MAX: u64 = 64 * 1024;
/// Messages are cut to this many characters for display.
const MESSAGE_MAX: usize = 1000;
const PERM_MAX: u64 = 1 << 20;
/// A dataset permission file changed by hand this recently may still be being written: a grant
/// missing from it is re-added only once it has been quiet this long.
const HAND_EDIT_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

pub fn peers_dir(layout: &Layout) -> PathBuf {
    layout.app_data.join("peers")
}

pub fn approved_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("approved")
}

pub fn requests_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("requests")
}

pub fn answers_dir(layout: &Layout) -> PathBuf {
    peers_dir(layout).join("answers")
}

fn state_path(layout: &Layout) -> PathBuf {
    layout.state.join("peers.json")
}

fn now() -> String {
    metadata::format_naive(&metadata::now_naive())
}

// ------------------------------------------------------------------------------ domains

/// The configured domain that `mail`'s domain (the part after `@`, lower-cased) equals exactly,
/// if any. `evil-example.org`, `sub.example.org` and `example.org.evil.com` do not match
/// `example.org`.
pub fn matching_domain(mail: &str, domains: &[String]) -> Option<String> {
    let (_, domain) = mail.trim().rsplit_once('@')?;
    let domain = domain.to_lowercase();
    if domain.is_empty() {
        return None;
    }
    domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_lowercase())
        .find(|d| *d == domain)
}

// ------------------------------------------------------------------------------ state

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerStatus {
    Approved,
    Revoked,
}

/// One read grant on a dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub at: String,
    /// True when syft-reviewer added the grant (and so removes it on revocation); false when
    /// the peer could already read the folder.
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub status: PeerStatus,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    /// Dataset folder (relative to the datasite) -> its grant.
    #[serde(default)]
    pub shared: BTreeMap<String, Share>,
}

/// What was done for whom, keyed by the peer's email.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub peers: BTreeMap<String, PeerRecord>,
}

impl State {
    pub fn load(layout: &Layout) -> Result<State> {
        let path = state_path(layout);
        match durable::read_capped(&path, 64 << 20) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(
                    format!("{} is not a valid peer state file ({e})", path.display()),
                    "restore it from a backup; without it syft-reviewer forgets which grants it added and which peers were revoked",
                )
            }),
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => Ok(State::default()),
            Err(e) => Err(e),
        }
    }

    fn is_approved(&self, mail: &str) -> bool {
        self.peers
            .get(mail)
            .is_some_and(|r| r.status == PeerStatus::Approved)
    }
}

// ------------------------------------------------------------------------------ reading

/// A file in `peers/` that is not used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadFile {
    pub file: String,
    pub reason: String,
}

/// A peer request: the identity is the file name, proven by the server's permission check.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub email: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// SHA-256 of the file's content (empty when it could not be read).
    pub sha256: String,
    /// Why the content was ignored, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The email a request file name stands for: `<email>.json`, or the encoded form.
pub fn request_email(name: &str) -> Result<String> {
    let hint = "peer requests are named <your email>.json, e.g. bob@uni.edu.json";
    let Some(stem) = name.strip_suffix(".json") else {
        return Err(Error::invalid(
            format!("{name:?} does not end in .json"),
            hint,
        ));
    };
    if stem.contains('@') {
        if stem.trim() != stem {
            return Err(Error::invalid(
                format!("{name:?} has spaces around the email"),
                hint,
            ));
        }
        email::normalize(stem)
    } else {
        email::decode(stem)
    }
}

/// Approved peers (email -> file name), and files that are not valid entries.
pub fn approved_listing(layout: &Layout) -> (BTreeMap<String, String>, Vec<BadFile>) {
    let mut found = BTreeMap::new();
    let mut bad = Vec::new();
    let Ok(entries) = fs::read_dir(approved_dir(layout)) else {
        return (found, bad);
    };
    for entry in entries.flatten() {
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            bad.push(BadFile {
                file: raw.to_string_lossy().into_owned(),
                reason: "the file name is not UTF-8".into(),
            });
            continue;
        };
        if is_excluded(name) || name.starts_with('.') {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            bad.push(BadFile {
                file: name.to_string(),
                reason: "not a regular file (links and folders are not entries)".into(),
            });
            continue;
        }
        match email::decode(name) {
            Ok(mail) => {
                found.insert(mail, name.to_string());
            }
            Err(e) => bad.push(BadFile {
                file: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }
    (found, bad)
}

/// The approved peers (file names that do not decode to an email are ignored).
pub fn approved(layout: &Layout) -> BTreeSet<String> {
    approved_listing(layout).0.into_keys().collect()
}

/// The request files (email -> request), and files that are not requests.
pub fn read_requests(layout: &Layout) -> (BTreeMap<String, Request>, Vec<BadFile>) {
    let mut found = BTreeMap::new();
    let mut bad = Vec::new();
    let dir = requests_dir(layout);
    let Ok(entries) = fs::read_dir(&dir) else {
        return (found, bad);
    };
    let mut entries: Vec<fs::DirEntry> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            bad.push(BadFile {
                file: raw.to_string_lossy().into_owned(),
                reason: "the file name is not UTF-8".into(),
            });
            continue;
        };
        if is_excluded(name) || name.starts_with('.') {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            bad.push(BadFile {
                file: name.to_string(),
                reason: "not a regular file".into(),
            });
            continue;
        }
        let mail = match request_email(name) {
            Ok(m) => m,
            Err(e) => {
                bad.push(BadFile {
                    file: name.to_string(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if found.contains_key(&mail) {
            continue;
        }
        let (message, sha256, note) = read_request_content(&dir.join(name));
        found.insert(
            mail.clone(),
            Request {
                email: mail,
                file: name.to_string(),
                message,
                sha256,
                note,
            },
        );
    }
    (found, bad)
}

/// The optional message of a request, the content's SHA-256, and why the content was ignored.
fn read_request_content(path: &Path) -> (Option<String>, String, Option<String>) {
    if fs::symlink_metadata(path).is_ok_and(|m| m.len() > REQUEST_MAX) {
        return (
            None,
            String::new(),
            Some(format!(
                "its content is larger than {} KiB, so it is ignored",
                REQUEST_MAX / 1024
            )),
        );
    }
    let bytes = match durable::read_capped(path, REQUEST_MAX) {
        Ok(b) => b,
        Err(e) => {
            return (
                None,
                String::new(),
                Some(format!("its content is ignored: {e}")),
            );
        }
    };
    let sha = format!("{:x}", Sha256::digest(&bytes));
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (None, sha, None);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => match m.get("message") {
            None | Some(Value::Null) => (None, sha, None),
            Some(Value::String(s)) => (Some(clean_message(s)), sha, None),
            Some(_) => (
                None,
                sha,
                Some("its message is not a string, so it is ignored".into()),
            ),
        },
        Ok(_) => (
            None,
            sha,
            Some(
                r#"its content is not a JSON object like {"message": "..."}, so it is ignored"#
                    .into(),
            ),
        ),
        Err(e) => (
            None,
            sha,
            Some(format!(
                "its content is not valid JSON ({e}), so it is ignored"
            )),
        ),
    }
}

/// A message for display: control characters (terminal escapes) replaced, length capped.
fn clean_message(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_MAX)
        .collect();
    if s.chars().count() > MESSAGE_MAX {
        out.push('…');
    }
    out
}

// ------------------------------------------------------------------------------ listing

#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub email: String,
    pub at: Option<String>,
    pub by: Option<String>,
    pub reason: Option<String>,
    /// Dataset folders whose read grant syft-reviewer added for this peer.
    pub shared: Vec<String>,
    pub message: Option<String>,
}

/// Approved peers, pending requests, revoked peers, and files that are not used.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub approved: Vec<PeerView>,
    pub pending: Vec<Request>,
    pub revoked: Vec<PeerView>,
    pub invalid: Vec<BadFile>,
}

/// Reads everything; changes nothing.
pub fn list(layout: &Layout) -> Result<Listing> {
    let state = State::load(layout)?;
    let (listed, bad_approved) = approved_listing(layout);
    let (requests, bad_requests) = read_requests(layout);
    let view = |mail: &str| {
        let rec = state.peers.get(mail);
        PeerView {
            email: mail.to_string(),
            at: rec.map(|r| r.at.clone()),
            by: rec.map(|r| r.by.clone()),
            reason: rec.map(|r| r.reason.clone()),
            shared: rec
                .map(|r| {
                    r.shared
                        .iter()
                        .filter(|(_, s)| s.ours)
                        .map(|(d, _)| d.clone())
                        .collect()
                })
                .unwrap_or_default(),
            message: requests.get(mail).and_then(|r| r.message.clone()),
        }
    };
    let approved = listed.keys().map(|m| view(m)).collect();
    let revoked = state
        .peers
        .iter()
        .filter(|(m, r)| r.status == PeerStatus::Revoked && !listed.contains_key(*m))
        .map(|(m, _)| view(m))
        .collect();
    let pending = requests
        .values()
        .filter(|r| {
            r.email != layout.email
                && !listed.contains_key(&r.email)
                && !state.peers.contains_key(&r.email)
        })
        .cloned()
        .collect();
    let mut invalid: Vec<BadFile> = bad_approved
        .into_iter()
        .map(|b| BadFile {
            file: format!("approved/{}", b.file),
            reason: b.reason,
        })
        .collect();
    invalid.extend(bad_requests.into_iter().map(|b| BadFile {
        file: format!("requests/{}", b.file),
        reason: b.reason,
    }));
    Ok(Listing {
        approved,
        pending,
        revoked,
        invalid,
    })
}

// ------------------------------------------------------------------------------ permission files

/// `peers/requests/syft.pub.yaml`: each user may write (and read) only `<their email>.json`.
pub fn requests_permfile() -> PermFile {
    PermFile {
        terminal: None,
        rules: vec![Rule {
            pattern: USER_TEMPLATE.into(),
            access: Access {
                admin: Vec::new(),
                write: vec!["USER".into()],
                read: vec!["USER".into()],
            },
        }],
    }
}

/// Creates `peers/requests/` and writes its `syft.pub.yaml` unless it already says exactly that
/// (a file changed by hand is put back). Returns true when the file was written.
pub fn ensure_requests_folder(layout: &Layout) -> Result<bool> {
    let dir = requests_dir(layout);
    durable::ensure_private_dir(&peers_dir(layout), DIR_MODE)?;
    durable::ensure_private_dir(&dir, DIR_MODE)?;
    let path = dir.join(permfile::FILE_NAME);
    let existed = path.exists();
    let mut sync = Sync::batch();
    let changed = permfile::write_if_changed(&path, &requests_permfile(), &mut sync)?;
    sync.commit()?;
    if changed && existed {
        log::warn!(
            "{} had been changed; it is rewritten so that each user can write only the request named with their own email",
            path.display()
        );
    }
    Ok(changed)
}

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

/// A permission file as a generic YAML document (so unknown fields survive an edit); `None` when
/// there is none.
fn read_perm_doc(path: &Path) -> Result<Option<Value>> {
    let hint = "fix it by hand; syft-reviewer leaves it unchanged until then";
    let bytes = match durable::read_capped(path, PERM_MAX) {
        Ok(b) => b,
        Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", path.display()), hint))?;
    if text.trim().is_empty() {
        return Ok(Some(json!({"rules": []})));
    }
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| {
        Error::invalid(
            format!(
                "{} is not a valid permission file ({})",
                path.display(),
                e.to_string().lines().next().unwrap_or("")
            ),
            hint,
        )
    })?;
    if !doc.is_object() {
        return Err(Error::invalid(
            format!("{} is not a mapping with `rules`", path.display()),
            hint,
        ));
    }
    Ok(Some(doc))
}

fn write_perm_doc(path: &Path, doc: &Value) -> Result<()> {
    let yaml = serde_saphyr::to_string(doc).map_err(|e| {
        Error::invalid(
            format!("could not write {}: {e}", path.display()),
            "report this",
        )
    })?;
    durable::write_atomic(path, yaml.as_bytes(), 0o644)
}

/// The catch-all rule (`pattern: '**'`) of a permission document, if it has one.
fn catch_all(doc: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    doc.get_mut("rules")?
        .as_array_mut()?
        .iter_mut()
        .find(|r| r.get("pattern").and_then(Value::as_str) == Some("**"))?
        .as_object_mut()
}

fn lists_reader(rule: &serde_json::Map<String, Value>, mail: &str) -> bool {
    rule.get("access")
        .and_then(|a| a.get("read"))
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(mail)))
        })
}

/// Adds `mail` to the read list of the catch-all rule, appending that rule when there is none.
/// Returns false when it is already there.
fn add_reader(doc: &mut Value, mail: &str) -> std::result::Result<bool, &'static str> {
    let obj = doc.as_object_mut().ok_or("it is not a mapping")?;
    let rules = obj
        .entry("rules")
        .or_insert_with(|| Value::Array(Vec::new()));
    if rules.is_null() {
        *rules = Value::Array(Vec::new());
    }
    if !rules.is_array() {
        return Err("its `rules` is not a list");
    }
    let Some(rule) = catch_all(doc) else {
        doc["rules"]
            .as_array_mut()
            .expect("checked above")
            .push(json!({"pattern": "**", "access": {"admin": [], "write": [], "read": [mail]}}));
        return Ok(true);
    };
    if lists_reader(rule, mail) {
        return Ok(false);
    }
    let access = rule.entry("access").or_insert_with(|| json!({}));
    if access.is_null() {
        *access = json!({});
    }
    let access = access
        .as_object_mut()
        .ok_or("the access of its '**' rule is not a mapping")?;
    let read = access.entry("read").or_insert_with(|| json!([]));
    if read.is_null() {
        *read = json!([]);
    }
    read.as_array_mut()
        .ok_or("the read list of its '**' rule is not a list")?
        .push(Value::String(mail.to_string()));
    Ok(true)
}

/// Removes `mail` from the read list of the catch-all rule; returns whether it was there.
fn remove_reader(doc: &mut Value, mail: &str) -> bool {
    let Some(read) = catch_all(doc)
        .and_then(|r| r.get_mut("access"))
        .and_then(|a| a.get_mut("read"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = read.len();
    read.retain(|u| !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(mail)));
    read.len() != before
}

/// True when the dataset's permission file lets `mail` read through its catch-all rule.
pub fn has_grant(layout: &Layout, dataset: &str, mail: &str) -> Result<bool> {
    let dir = dataset_dir(layout, dataset)?;
    let Some(mut doc) = read_perm_doc(&dir.join(permfile::FILE_NAME))? else {
        return Ok(false);
    };
    Ok(catch_all(&mut doc).is_some_and(|r| lists_reader(r, mail)))
}

/// Gives `mail` read access to a dataset folder; returns false when it was already there.
pub fn ensure_grant(layout: &Layout, dataset: &str, mail: &str) -> Result<bool> {
    let dir = dataset_dir(layout, dataset)?;
    let path = dir.join(permfile::FILE_NAME);
    let mut doc = match read_perm_doc(&path)? {
        Some(d) => d,
        None => new_dataset_doc(layout, &dir),
    };
    let added = add_reader(&mut doc, mail).map_err(|why| {
        Error::invalid(
            format!("{}: {why}", path.display()),
            "fix it by hand; syft-reviewer leaves it unchanged until then",
        )
    })?;
    if added {
        write_perm_doc(&path, &doc)?;
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

/// A new permission file for a folder that had none. The nearest permission file above it
/// governed the folder until now; its catch-all access is carried over so that nobody who could
/// read the folder loses access. (Other rules above cannot be carried over: they are reported.)
fn new_dataset_doc(layout: &Layout, dir: &Path) -> Value {
    let mut rules = Vec::new();
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            break;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(mut doc)) = read_perm_doc(&path) {
            if let Some(rule) = catch_all(&mut doc) {
                let mut access = rule.get("access").cloned().unwrap_or_else(|| json!({}));
                if !access.is_object() {
                    access = json!({});
                }
                for key in ["admin", "write", "read"] {
                    if access.get(key).is_none_or(Value::is_null) {
                        access[key] = json!([]);
                    }
                }
                rules.push(json!({"pattern": "**", "access": access}));
            }
            let others = doc.get("rules").and_then(Value::as_array).map_or(0, |r| {
                r.iter()
                    .filter(|r| r.get("pattern").and_then(Value::as_str) != Some("**"))
                    .count()
            });
            if others > 0 {
                log::warn!(
                    "{} is created; it now governs {} instead of {}, whose rules other than '**' do not carry over: check it",
                    dir.join(permfile::FILE_NAME).display(),
                    dir.display(),
                    path.display()
                );
            }
            break;
        }
        if d == layout.datasite {
            break;
        }
        p = d.parent();
    }
    json!({ "rules": rules })
}

/// A permission file above `dir` (in the datasite) that stops the server looking further down.
fn terminal_ancestor(layout: &Layout, dir: &Path) -> Option<PathBuf> {
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            return None;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(doc)) = read_perm_doc(&path)
            && doc.get("terminal").and_then(Value::as_bool) == Some(true)
        {
            return Some(path);
        }
        p = d.parent();
    }
    None
}

/// True when the dataset's permission file changed in the last [`HAND_EDIT_SETTLE`].
fn recently_changed(layout: &Layout, dataset: &str) -> bool {
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
    let Some(mut doc) = read_perm_doc(&path)? else {
        return Ok(false);
    };
    if !remove_reader(&mut doc, mail) {
        return Ok(false);
    }
    write_perm_doc(&path, &doc)?;
    Ok(true)
}

// ------------------------------------------------------------------------------ changes

/// A change in progress: the `peers` store lock and the state, saved after each step.
struct Session<'a> {
    layout: &'a Layout,
    state: State,
    saved: State,
    problems: Vec<String>,
    _lock: StoreLock,
}

impl<'a> Session<'a> {
    fn open(layout: &'a Layout) -> Result<Session<'a>> {
        let lock = StoreLock::acquire(&layout.state, "peers")?;
        let state = State::load(layout)?;
        Ok(Session {
            layout,
            saved: state.clone(),
            state,
            problems: Vec::new(),
            _lock: lock,
        })
    }

    fn save(&mut self) -> Result<()> {
        if self.state == self.saved {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.state).expect("the state serializes");
        durable::write_atomic(&state_path(self.layout), text.as_bytes(), FILE_MODE)?;
        self.saved = self.state.clone();
        Ok(())
    }

    /// Stores the approval (file and record); returns false when both were already there.
    fn approve(
        &mut self,
        mail: &str,
        actor: &str,
        reason: &str,
        request_sha: Option<&str>,
    ) -> Result<bool> {
        let listed = approved_listing(self.layout).0.contains_key(mail);
        if listed && self.state.is_approved(mail) {
            return Ok(false);
        }
        if !listed {
            let dir = approved_dir(self.layout);
            durable::ensure_private_dir(&dir, DIR_MODE)?;
            let body = json!({"email": mail, "added_at": now(), "status": "active"});
            durable::write_atomic(
                &dir.join(email::encode(mail)?),
                body.to_string().as_bytes(),
                FILE_MODE,
            )?;
        }
        // Grants a failed revocation could not remove yet stay recorded as ours.
        let shared = self
            .state
            .peers
            .remove(mail)
            .map(|r| r.shared)
            .unwrap_or_default();
        self.state.peers.insert(
            mail.to_string(),
            PeerRecord {
                status: PeerStatus::Approved,
                at: now(),
                by: actor.to_string(),
                reason: reason.to_string(),
                request_sha256: request_sha.map(str::to_owned),
                shared,
            },
        );
        self.save()?;
        audit::record_change(
            self.layout,
            "peer.approve",
            actor,
            Subject::Email(mail),
            vec![reason.to_string()],
        );
        log::info!("approved peer {mail} ({actor}: {reason})");
        Ok(true)
    }

    /// Removes the approval, the grants this app added, and records the revocation. `None` when
    /// `mail` was not an approved peer.
    fn revoke(&mut self, mail: &str, actor: &str, reason: &str) -> Result<Option<Vec<String>>> {
        let dir = approved_dir(self.layout);
        let mut removed = false;
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if email::decode(&name).ok().as_deref() == Some(mail) {
                    fs::remove_file(entry.path())
                        .map_err(|e| Error::io("remove", entry.path(), e))?;
                    removed = true;
                }
            }
        }
        if removed {
            durable::fsync_dir(&dir)?;
        }
        if !removed && !self.state.is_approved(mail) {
            return Ok(None);
        }
        let old = self.state.peers.remove(mail);
        self.state.peers.insert(
            mail.to_string(),
            PeerRecord {
                status: PeerStatus::Revoked,
                at: now(),
                by: actor.to_string(),
                reason: reason.to_string(),
                request_sha256: old.as_ref().and_then(|r| r.request_sha256.clone()),
                shared: old.map(|r| r.shared).unwrap_or_default(),
            },
        );
        self.save()?;
        audit::record_change(
            self.layout,
            "peer.revoke",
            actor,
            Subject::Email(mail),
            vec![reason.to_string()],
        );
        log::info!("revoked peer {mail} ({actor}: {reason})");
        let unshared = self.unshare_all(mail, actor)?;
        Ok(Some(unshared))
    }

    /// Removes the grants this app added for a revoked peer; what fails stays recorded (and is
    /// retried at the next sync).
    fn unshare_all(&mut self, mail: &str, actor: &str) -> Result<Vec<String>> {
        let Some(rec) = self.state.peers.get_mut(mail) else {
            return Ok(Vec::new());
        };
        let mut unshared = Vec::new();
        let mut left = BTreeMap::new();
        for (ds, share) in std::mem::take(&mut rec.shared) {
            if !share.ours {
                continue;
            }
            match remove_grant(self.layout, &ds, mail) {
                Ok(true) => {
                    audit::record_change(
                        self.layout,
                        "peer.unshare",
                        actor,
                        Subject::Email(mail),
                        vec![format!("dataset {ds}")],
                    );
                    log::info!("removed {mail}'s read access to {ds}");
                    unshared.push(ds);
                }
                Ok(false) => {}
                Err(e) => {
                    self.problems.push(format!(
                        "could not remove {mail}'s read access to {ds} (retrying later): {e}"
                    ));
                    left.insert(ds, share);
                }
            }
        }
        if let Some(rec) = self.state.peers.get_mut(mail) {
            rec.shared = left;
        }
        self.save()?;
        Ok(unshared)
    }

    /// Shares each dataset with an approved peer unless that was done; re-adds a grant this app
    /// added that was removed since. Returns the datasets whose grant was added now.
    fn share_with(&mut self, mail: &str, datasets: &[String], actor: &str) -> Vec<String> {
        let mut added = Vec::new();
        for ds in datasets {
            let Some(rec) = self.state.peers.get(mail) else {
                break;
            };
            if rec.status != PeerStatus::Approved {
                break;
            }
            let readded = match rec.shared.get(ds) {
                Some(s) if !s.ours => continue,
                Some(_) => match has_grant(self.layout, ds, mail) {
                    Ok(true) => continue,
                    // Retried at the next sync (every rescan) once the editor is done.
                    Ok(false) if recently_changed(self.layout, ds) => continue,
                    Ok(false) => true,
                    Err(e) => {
                        self.problems
                            .push(format!("could not check the sharing of {ds}: {e}"));
                        continue;
                    }
                },
                None => false,
            };
            match ensure_grant(self.layout, ds, mail) {
                Ok(true) => {
                    let mut reasons = vec![format!("dataset {ds}")];
                    if readded {
                        log::warn!(
                            "{mail}'s read access to {ds} was removed from its syft.pub.yaml by hand, but {mail} is an approved peer and {ds} is in peers.auto_share_datasets: re-added (revoke the peer or take the dataset out of the config to stop sharing it)"
                        );
                        reasons.push("re-added: the grant had been removed by hand".into());
                    } else {
                        log::info!("shared {ds} with peer {mail}");
                    }
                    audit::record_change(
                        self.layout,
                        "peer.share",
                        actor,
                        Subject::Email(mail),
                        reasons,
                    );
                    if let Some(rec) = self.state.peers.get_mut(mail) {
                        rec.shared.insert(
                            ds.clone(),
                            Share {
                                at: now(),
                                ours: true,
                            },
                        );
                    }
                    added.push(ds.clone());
                }
                Ok(false) => {
                    if !readded {
                        log::info!(
                            "{mail} could already read {ds}; that grant is not syft-reviewer's and stays on revocation"
                        );
                        if let Some(rec) = self.state.peers.get_mut(mail) {
                            rec.shared.insert(
                                ds.clone(),
                                Share {
                                    at: now(),
                                    ours: false,
                                },
                            );
                        }
                    }
                }
                Err(e) => self
                    .problems
                    .push(format!("could not share {ds} with {mail}: {e}")),
            }
            if let Err(e) = self.save() {
                self.problems.push(e.to_string());
            }
        }
        added
    }

    /// Writes the answers (approved, revoked, pending), removes answers nobody needs, and
    /// regenerates the folder's `syft.pub.yaml` so each email reads only its own answer.
    fn write_answers(&mut self, requests: &BTreeMap<String, Request>) -> Result<()> {
        let (listed, _) = approved_listing(self.layout);
        let mut want: BTreeMap<String, &str> = BTreeMap::new();
        for mail in listed.keys() {
            want.insert(mail.clone(), "approved");
        }
        for (mail, rec) in &self.state.peers {
            if rec.status == PeerStatus::Revoked {
                want.entry(mail.clone()).or_insert("revoked");
            }
        }
        for mail in requests.keys() {
            if *mail != self.layout.email {
                want.entry(mail.clone()).or_insert("pending");
            }
        }
        let dir = answers_dir(self.layout);
        if want.is_empty() && !dir.exists() {
            return Ok(());
        }
        durable::ensure_private_dir(&dir, DIR_MODE)?;
        let mut sync = Sync::batch();
        let mut files: Vec<(String, String)> = Vec::new();
        for (mail, status) in &want {
            let name = format!("{}.json", email::encode(mail)?);
            let path = dir.join(&name);
            let current: Option<Value> = durable::read_capped(&path, REQUEST_MAX)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let same = current
                .as_ref()
                .is_some_and(|v| v["email"] == mail.as_str() && v["status"] == *status);
            if !same {
                let body = json!({"email": mail, "status": status, "at": now()});
                durable::write_atomic_with(
                    &path,
                    body.to_string().as_bytes(),
                    FILE_MODE,
                    &mut sync,
                )?;
            }
            files.push((name, mail.clone()));
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if is_excluded(&name) || !name.ends_with(".json") {
                    continue;
                }
                if !files.iter().any(|(n, _)| *n == name)
                    && entry.file_type().is_ok_and(|t| t.is_file())
                {
                    fs::remove_file(entry.path())
                        .map_err(|e| Error::io("remove", entry.path(), e))?;
                    sync.add_dir(&dir);
                }
            }
        }
        let perm = PermFile::one_reader_per_file(
            files
                .iter()
                .map(|(name, mail)| (name.as_str(), mail.as_str())),
        );
        permfile::write_if_changed(&dir.join(permfile::FILE_NAME), &perm, &mut sync)?;
        sync.commit()
    }
}

/// The result of approving a peer by hand.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub email: String,
    /// False when the peer was already approved.
    pub approved: bool,
    /// Dataset folders shared with the peer now.
    pub shared: Vec<String>,
    pub problems: Vec<String>,
}

/// Approves a peer by hand (with or without a request) and, with a config, shares its datasets.
pub fn approve(
    layout: &Layout,
    config: Option<&Config>,
    input: &str,
    actor: &str,
) -> Result<Approval> {
    let mail = email::normalize(input)?;
    if mail == layout.email {
        return Err(Error::invalid(
            "the datasite owner cannot be their own peer",
            "give someone else's email",
        ));
    }
    let mut s = Session::open(layout)?;
    let (requests, _) = read_requests(layout);
    let sha = requests.get(&mail).map(|r| r.sha256.as_str());
    let approved = s.approve(&mail, actor, "approved by hand", sha)?;
    let shared = match config {
        Some(c) => s.share_with(&mail, &c.peers.auto_share_datasets, actor),
        None => Vec::new(),
    };
    s.write_answers(&requests)?;
    Ok(Approval {
        email: mail,
        approved,
        shared,
        problems: s.problems,
    })
}

/// The result of revoking a peer.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    pub email: String,
    /// Dataset folders whose grant was removed.
    pub unshared: Vec<String>,
    pub problems: Vec<String>,
}

/// Revokes a peer: its approval file goes, its answer says `revoked`, and the read grants this
/// app added are removed (other rules stay). `None` when it was not an approved peer.
pub fn revoke(layout: &Layout, input: &str, actor: &str) -> Result<Option<Revocation>> {
    let mail = email::normalize(input)?;
    let mut s = Session::open(layout)?;
    let Some(unshared) = s.revoke(&mail, actor, "revoked by hand")? else {
        return Ok(None);
    };
    let (requests, _) = read_requests(layout);
    s.write_answers(&requests)?;
    Ok(Some(Revocation {
        email: mail,
        unshared,
        problems: s.problems,
    }))
}

/// What a [`sync`] found that the owner should know (the daemon logs each line once).
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Files or datasets that could not be used, and failures.
    pub problems: Vec<String>,
    /// Requests waiting for the owner.
    pub waiting: Vec<String>,
}

/// Brings everything in line with the files and the config: approvals made or deleted by hand,
/// requests from approved domains, dataset grants, answers and permission files. Does nothing
/// that was already done, so it can run after every change.
pub fn sync(layout: &Layout, config: &Config, actor: &str) -> Result<Report> {
    let mut report = Report::default();
    if let Err(e) = ensure_requests_folder(layout) {
        report.problems.push(e.to_string());
    }
    let mut s = Session::open(layout)?;
    let (listed, bad) = approved_listing(layout);
    for b in bad {
        report
            .problems
            .push(format!("ignored peers/approved/{}: {}", b.file, b.reason));
    }
    for name in listed.values() {
        let path = approved_dir(layout).join(name);
        if let Ok(meta) = fs::symlink_metadata(&path)
            && meta.is_file()
            && meta.permissions().mode() & 0o777 != FILE_MODE
        {
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE));
        }
    }
    // Approval files deleted by hand revoke; files made by hand approve.
    let gone: Vec<String> = s
        .state
        .peers
        .iter()
        .filter(|(m, r)| r.status == PeerStatus::Approved && !listed.contains_key(*m))
        .map(|(m, _)| m.clone())
        .collect();
    for mail in gone {
        s.revoke(
            &mail,
            "filesystem",
            "its file in peers/approved/ was deleted directly",
        )?;
    }
    for mail in listed.keys() {
        if !s.state.is_approved(mail) {
            s.approve(
                mail,
                "filesystem",
                "its file in peers/approved/ was created directly",
                None,
            )?;
        }
    }
    // Revocations whose grants could not all be removed yet.
    let unfinished: Vec<String> = s
        .state
        .peers
        .iter()
        .filter(|(_, r)| r.status == PeerStatus::Revoked && r.shared.values().any(|x| x.ours))
        .map(|(m, _)| m.clone())
        .collect();
    for mail in unfinished {
        s.unshare_all(&mail, actor)?;
    }
    let (requests, bad) = read_requests(layout);
    for b in bad {
        report
            .problems
            .push(format!("ignored peers/requests/{}: {}", b.file, b.reason));
    }
    for req in requests.values() {
        if let Some(note) = &req.note {
            report
                .problems
                .push(format!("peer request peers/requests/{}: {note}", req.file));
        }
        if req.email == layout.email || s.state.peers.contains_key(&req.email) {
            continue;
        }
        let domain = if config.peers.enabled {
            matching_domain(&req.email, &config.peers.approved_domains)
        } else {
            None
        };
        match domain {
            Some(d) => {
                s.approve(
                    &req.email,
                    actor,
                    &format!("peer request from an approved domain ({d})"),
                    Some(&req.sha256),
                )?;
            }
            None => {
                let why = if config.peers.enabled {
                    "its domain is not in peers.approved_domains"
                } else {
                    "peers.enabled is false"
                };
                report.waiting.push(format!(
                    "peer request from {} waits for you ({why}); approve it with `syft-reviewer peers approve {}`",
                    req.email, req.email
                ));
            }
        }
    }
    let datasets = &config.peers.auto_share_datasets;
    if !datasets.is_empty() {
        let peers: Vec<String> = s
            .state
            .peers
            .iter()
            .filter(|(_, r)| r.status == PeerStatus::Approved)
            .map(|(m, _)| m.clone())
            .collect();
        for mail in peers {
            s.share_with(&mail, datasets, actor);
        }
    }
    s.write_answers(&requests)?;
    report.problems.append(&mut s.problems);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syftbox::Identity;

    fn domains(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn domains_match_exactly() {
        let d = domains(&["example.org", "Uni.EDU"]);
        assert_eq!(
            matching_domain("bob@example.org", &d).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            matching_domain("Bob@EXAMPLE.org", &d).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            matching_domain("carol@uni.edu", &d).as_deref(),
            Some("uni.edu")
        );
        for lookalike in [
            "eve@evil-example.org",
            "eve@sub.example.org",
            "eve@example.org.evil.com",
            "eve@example.org.",
            "eve@xexample.org",
            "eve@example.or",
            "example.org@evil.com",
            "eve@evil.com@example.org.evil.com",
            "example.org",
            "eve@",
        ] {
            assert_eq!(matching_domain(lookalike, &d), None, "{lookalike}");
        }
        assert_eq!(matching_domain("bob@example.org", &[]), None);
    }

    #[test]
    fn request_names_give_the_identity() {
        assert_eq!(request_email("bob@uni.edu.json").unwrap(), "bob@uni.edu");
        assert_eq!(request_email("Bob@Uni.edu.json").unwrap(), "bob@uni.edu");
        assert_eq!(
            request_email("bob_at_uni_dot_edu.json").unwrap(),
            "bob@uni.edu"
        );
        assert_eq!(
            request_email("john__doe_at_x_dot_org.json").unwrap(),
            "john_doe@x.org"
        );
        for bad in [
            "bob@uni.edu",
            "bob@uni.edu.txt",
            " bob@uni.edu.json",
            "*@uni.edu.json",
            "bob.json",
            ".json",
            "syft.pub.yaml",
        ] {
            assert!(request_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_cleaned() {
        assert_eq!(clean_message("hi\x1b[31m\nthere"), "hi [31m there");
        assert_eq!(
            clean_message(&"x".repeat(5000)).chars().count(),
            MESSAGE_MAX + 1
        );
    }

    #[test]
    fn requests_permission_file_uses_the_user_template() {
        let yaml = requests_permfile().to_yaml();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back, requests_permfile(), "{yaml}");
        assert_eq!(back.rules.len(), 1);
        assert_eq!(back.rules[0].pattern, "{{.UserEmail}}.json");
        assert_eq!(back.rules[0].access.write, vec!["USER"]);
    }

    #[test]
    fn readers_are_added_once_and_other_rules_kept() {
        let mut doc: Value = serde_saphyr::from_str(
            "terminal: false\nrules:\n  - pattern: 'README.md'\n    access: {read: ['*']}\n    extra: kept\n",
        )
        .unwrap();
        assert_eq!(add_reader(&mut doc, "bob@x.org"), Ok(true));
        assert_eq!(add_reader(&mut doc, "BOB@x.org"), Ok(false));
        let yaml = serde_saphyr::to_string(&doc).unwrap();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back.terminal, Some(false));
        assert_eq!(back.rules.len(), 2, "{yaml}");
        assert_eq!(back.rules[0].pattern, "README.md");
        assert_eq!(back.rules[1].pattern, "**");
        assert_eq!(back.rules[1].access.read, vec!["bob@x.org"]);
        assert!(yaml.contains("extra: kept"), "{yaml}");
        assert!(remove_reader(&mut doc, "bob@x.org"));
        assert!(!remove_reader(&mut doc, "bob@x.org"));
        assert_eq!(doc["rules"][0]["access"]["read"], json!(["*"]));
    }

    fn layout(dir: &Path) -> Layout {
        let l = Layout::new(&Identity {
            data_dir: dir.to_path_buf(),
            email: "owner@x.org".into(),
            source: None,
        });
        fs::create_dir_all(&l.state).unwrap();
        fs::create_dir_all(&l.app_data).unwrap();
        l
    }

    #[test]
    fn new_dataset_file_keeps_the_catch_all_access_from_above() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
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

    #[test]
    fn approve_revoke_and_hand_edits() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        let data = l.datasite.join("data");
        fs::create_dir_all(&data).unwrap();
        let cfg = Config::parse(
            "peers:\n  enabled: true\n  approved_domains: [example.org]\n  auto_share_datasets: [data]\n",
        )
        .unwrap();
        ensure_requests_folder(&l).unwrap();
        fs::write(
            requests_dir(&l).join("bob@example.org.json"),
            r#"{"message":"hi"}"#,
        )
        .unwrap();
        fs::write(
            requests_dir(&l).join("eve@evil-example.org.json"),
            "not json",
        )
        .unwrap();
        let report = sync(&l, &cfg, "daemon").unwrap();
        assert_eq!(approved(&l), ["bob@example.org".to_string()].into());
        assert_eq!(report.waiting.len(), 1, "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("not valid JSON")));
        assert!(has_grant(&l, "data", "bob@example.org").unwrap());
        let answer: Value = serde_json::from_slice(
            &fs::read(answers_dir(&l).join("eve_at_evil-example_dot_org.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(answer["status"], "pending");
        let listing = list(&l).unwrap();
        assert_eq!(listing.approved[0].message.as_deref(), Some("hi"));
        assert_eq!(listing.approved[0].shared, vec!["data"]);
        assert_eq!(listing.pending[0].email, "eve@evil-example.org");

        // Revoked peers are not approved again by their domain.
        let r = revoke(&l, "bob@example.org", "cli").unwrap().unwrap();
        assert_eq!(r.unshared, vec!["data"]);
        assert!(!has_grant(&l, "data", "bob@example.org").unwrap());
        sync(&l, &cfg, "daemon").unwrap();
        assert!(approved(&l).is_empty());
        assert!(revoke(&l, "bob@example.org", "cli").unwrap().is_none());

        // A file made by hand approves; deleting it revokes and unshares.
        fs::write(approved_dir(&l).join("carol_at_other_dot_org"), "").unwrap();
        sync(&l, &cfg, "daemon").unwrap();
        assert!(has_grant(&l, "data", "carol@other.org").unwrap());
        fs::remove_file(approved_dir(&l).join("carol_at_other_dot_org")).unwrap();
        sync(&l, &cfg, "daemon").unwrap();
        assert!(!has_grant(&l, "data", "carol@other.org").unwrap());
        assert_eq!(
            State::load(&l).unwrap().peers["carol@other.org"].status,
            PeerStatus::Revoked
        );
    }
}
