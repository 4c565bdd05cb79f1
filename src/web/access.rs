//! Who may use the web server besides holders of the API token. On Linux over loopback the
//! kernel tells us the local user behind each connection and only the daemon's own uid is
//! served, so the owner's browser needs nothing extra. Where that is not possible (other
//! systems, or a `--bind` address beyond loopback) a browser needs a session: `syft-reviewer ui`
//! writes a one-time login token into the private state folder and prints a link; visiting it
//! turns the token into an HttpOnly, SameSite=Strict cookie.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::peer;
use super::response::Response;
use super::server::Head;
use crate::durable;
use crate::error::{Error, Result};
use crate::store::secret;

/// How long a login link printed by `syft-reviewer ui` stays valid.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept at once; the oldest is dropped beyond this, so memory stays bounded.
const MAX_SESSIONS: usize = 32;
/// Where the running web server says where it is and how to log in.
const WEB_FILE: &str = "web.json";
const LOGIN_DIR: &str = "login";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only connections from this local user (loopback on Linux).
    Uid(u32),
    /// Only browsers holding a session from a login link.
    Session,
}

pub(crate) struct Access {
    pub mode: Mode,
    login_dir: PathBuf,
    cookie: String,
    sessions: Mutex<Vec<(String, Instant)>>,
}

impl Access {
    pub fn new(state: &Path, loopback_only: bool, port: u16) -> Access {
        let mode = if loopback_only && peer::available() {
            Mode::Uid(nix::unistd::geteuid().as_raw())
        } else {
            Mode::Session
        };
        let login_dir = state.join(LOGIN_DIR);
        // Links printed for an earlier run are void.
        let _ = std::fs::remove_dir_all(&login_dir);
        Access {
            mode,
            login_dir,
            cookie: format!("syft_reviewer_session_{port}"),
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// Tells `syft-reviewer ui` where the server is and whether it needs a login link.
    pub fn publish(&self, state: &Path, url: &str) {
        let doc = json!({"url": url, "login": self.mode == Mode::Session});
        if let Err(e) =
            durable::write_atomic(&state.join(WEB_FILE), doc.to_string().as_bytes(), 0o600)
        {
            log::warn!("could not record the web UI's address for `syft-reviewer ui`: {e}");
        }
    }

    /// Refuses a request that comes neither from the owner's uid nor with a session.
    pub fn check(&self, head: &Head) -> std::result::Result<(), Response> {
        match self.mode {
            Mode::Uid(owner) => {
                let uid = *head
                    .conn
                    .uid
                    .get_or_init(|| peer::uid_of(head.conn.peer, head.conn.local));
                match uid {
                    Some(u) if u == owner => Ok(()),
                    Some(u) => Err(Response::error(
                        403,
                        format!(
                            "requests from local user uid {u} are refused: this reviewer serves only its owner (uid {owner})"
                        ),
                        "use the datasite owner's account, or send Authorization: Bearer <the api-token file in the private state folder>",
                    )),
                    None => Err(Response::error(
                        403,
                        "the local user behind this connection could not be identified",
                        "connect over loopback as the datasite owner, or send Authorization: Bearer <the api-token file in the private state folder>",
                    )),
                }
            }
            Mode::Session => {
                if head.path == "/login" || self.has_session(head) {
                    return Ok(());
                }
                Err(Response::error(
                    403,
                    "this page needs a login",
                    "run `syft-reviewer ui` as the datasite owner and open the link it prints, or send Authorization: Bearer <the api-token file in the private state folder>",
                ))
            }
        }
    }

    fn has_session(&self, head: &Head) -> bool {
        let Some(value) = head.header("Cookie").and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == self.cookie)
                .map(|(_, v)| v.trim().to_string())
        }) else {
            return false;
        };
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|(_, until)| *until > now);
        sessions.iter().any(|(s, _)| secret::same(s, &value))
    }

    /// `GET /login?token=...`: redeems a one-time token for a session cookie.
    pub fn login(&self, query: &str) -> Response {
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !redeem(&self.login_dir, &token) {
            return Response::error(
                403,
                "this login link is not valid: it was used already, has expired, or was never issued",
                "run `syft-reviewer ui` again for a new link",
            );
        }
        let session = secret::random_hex::<32>();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if sessions.len() >= MAX_SESSIONS {
                sessions.remove(0);
            }
            sessions.push((session.clone(), Instant::now() + SESSION_TTL));
        }
        log::info!("web UI: a login link was used; a new browser session starts");
        Response::new(303, "text/plain; charset=utf-8", b"logged in\n".to_vec())
            .with_header("Location", "/")
            .with_header(
                "Set-Cookie",
                format!(
                    "{}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                    self.cookie,
                    SESSION_TTL.as_secs()
                ),
            )
    }
}

fn token_file(dir: &Path, token: &str) -> Option<PathBuf> {
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| dir.join(format!("{:x}", Sha256::digest(token.as_bytes()))))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Consumes a token: true only for the one caller that deleted its unexpired file.
fn redeem(dir: &Path, token: &str) -> bool {
    let Some(path) = token_file(dir, token) else {
        return false;
    };
    let Ok(bytes) = durable::read_capped(&path, 64) else {
        return false;
    };
    if std::fs::remove_file(&path).is_err() {
        return false;
    }
    String::from_utf8_lossy(&bytes)
        .trim()
        .parse::<u64>()
        .is_ok_and(|expires| now_secs() < expires)
}

/// `syft-reviewer ui`: prints the page's address, or a one-time login link to it where one is
/// needed, and with `open` opens it in the browser.
pub fn ui(state: &Path, open: bool) -> Result<()> {
    let link = ui_link(state)?;
    println!("{link}");
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        std::process::Command::new(opener)
            .arg(&link)
            .status()
            .map_err(|e| Error::invalid(format!("could not run {opener}"), e.to_string()))?;
    }
    Ok(())
}

fn ui_link(state: &Path) -> Result<String> {
    let doc: Value = durable::read_capped(&state.join(WEB_FILE), 4096)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            Error::invalid(
                "the web UI is not running",
                "start the reviewer (`syft-reviewer run`, without --no-web) and try again",
            )
        })?;
    let url = doc["url"].as_str().unwrap_or_default().to_string();
    let up = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !up {
        return Err(Error::invalid(
            format!("the web UI at {url} is not answering"),
            "start the reviewer (`syft-reviewer run`, without --no-web) and try again",
        ));
    }
    if doc["login"] != true {
        return Ok(url);
    }
    let dir = state.join(LOGIN_DIR);
    durable::ensure_private_dir(&dir, 0o700)?;
    prune_expired(&dir);
    let token = secret::random_hex::<32>();
    let path = token_file(&dir, &token)
        .ok_or_else(|| Error::invalid("could not make a login token", "try again"))?;
    let expires = now_secs().saturating_add(LOGIN_TTL.as_secs());
    durable::write_atomic(&path, format!("{expires}\n").as_bytes(), 0o600)?;
    Ok(format!("{url}login?token={token}"))
}

fn prune_expired(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let expired = durable::read_capped(&e.path(), 64)
            .ok()
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u64>().ok())
            .is_none_or(|t| t <= now_secs());
        if expired {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
