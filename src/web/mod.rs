//! The web server on SyftBox's assigned port: the one-page UI (compiled in) and the JSON API.
//!
//! It binds 127.0.0.1 by default and only answers requests addressed to that address or
//! `localhost` with our port (a defence against DNS rebinding). Only the datasite owner is
//! served: on loopback under Linux the local user behind each connection must be the daemon's
//! own, elsewhere a browser needs a session from `syft-reviewer ui`'s login link ([`access`]);
//! the API token from the private state folder works in both cases. State-changing requests
//! must also carry the page's CSRF token (or the API token), so a hostile web page in the
//! owner's own browser cannot drive the API. The HTTP layer and its limits are in [`server`].

mod access;
pub mod api;
mod peer;
mod request;
mod response;
mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::daemon::live::Live;
use crate::error::{Error, Result};
use crate::store::secret;
use crate::syftbox::Layout;
use crate::web::api::{Api, ApiError};

use access::Access;
pub use access::ui;
pub use request::MAX_BODY;
use response::Response;
use server::Head;

pub const CSRF_HEADER: &str = "X-CSRF-Token";

const INDEX_HTML: &str = include_str!("index.html");
const OPENAPI: &str = include_str!("openapi.json");

const JS: &str = "text/javascript; charset=utf-8";

/// The page's static files, compiled in, by path. `/app.js` is the entry ES module; it imports
/// the others by these paths (relative to it), so a module is served exactly where it is named.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("app.css"),
    ),
    ("/app.js", JS, include_str!("app.js")),
    ("/ages.js", JS, include_str!("ages.js")),
    ("/allowlist.js", JS, include_str!("allowlist.js")),
    ("/bulk.js", JS, include_str!("bulk.js")),
    ("/client.js", JS, include_str!("client.js")),
    ("/decide.js", JS, include_str!("decide.js")),
    ("/decisions.js", JS, include_str!("decisions.js")),
    (
        "/diff.css",
        "text/css; charset=utf-8",
        include_str!("diff.css"),
    ),
    ("/diff.js", JS, include_str!("diff.js")),
    ("/dom.js", JS, include_str!("dom.js")),
    ("/format.js", JS, include_str!("format.js")),
    ("/notices.js", JS, include_str!("notices.js")),
    ("/peers.js", JS, include_str!("peers.js")),
    ("/pending.js", JS, include_str!("pending.js")),
    ("/polling.js", JS, include_str!("polling.js")),
    ("/state.js", JS, include_str!("state.js")),
    ("/status.js", JS, include_str!("status.js")),
    ("/tabs.js", JS, include_str!("tabs.js")),
    ("/trusted.js", JS, include_str!("trusted.js")),
    ("/visible.js", JS, include_str!("visible.js")),
    ("/votes.js", JS, include_str!("votes.js")),
    ("/widgets.js", JS, include_str!("widgets.js")),
];

/// The content type and body of the static file at `path`.
fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, ctype, body)| (ctype, body))
}

struct Ctx {
    api: Api,
    csrf: String,
    token: String,
    allowed_hosts: Vec<String>,
    index: String,
    access: Access,
}

pub struct WebServer {
    pub addr: SocketAddr,
    server: server::Server,
}

impl WebServer {
    pub fn start(layout: &Layout, live: Arc<Live>, bind: IpAddr, port: u16) -> Result<WebServer> {
        let could_not = |e: &dyn std::fmt::Display| {
            Error::invalid(
                format!("could not listen on {bind}:{port}"),
                format!("{e}: is another program using the port? Choose another with --port"),
            )
        };
        let open_files = server::raise_open_file_limit();
        let listener =
            std::net::TcpListener::bind(SocketAddr::new(bind, port)).map_err(|e| could_not(&e))?;
        let addr = listener.local_addr().map_err(|e| could_not(&e))?;
        let token = secret::api_token(&layout.state)?;
        let csrf = secret::random_hex::<16>();
        let p = addr.port();
        let mut allowed_hosts = vec![
            format!("127.0.0.1:{p}"),
            format!("localhost:{p}"),
            format!("[::1]:{p}"),
        ];
        if !bind.is_loopback() && !bind.is_unspecified() {
            allowed_hosts.push(SocketAddr::new(bind, p).to_string());
        }
        let access = Access::new(&layout.state, bind.is_loopback(), p);
        let url = if bind.is_loopback() || bind.is_unspecified() {
            format!("http://{}/", allowed_hosts[0])
        } else {
            format!("http://{}/", SocketAddr::new(bind, p))
        };
        let ctx = Arc::new(Ctx {
            api: Api::new(layout.clone(), live, crate::store::audit::Actor::Web),
            index: INDEX_HTML.replace("{{CSRF_TOKEN}}", &csrf),
            csrf,
            token,
            allowed_hosts,
            access,
        });
        let max_conns = server::connection_cap(open_files);
        let server =
            server::Server::start(listener, ctx.clone(), max_conns).map_err(|e| could_not(&e))?;
        ctx.access.publish(&layout.state, &url);
        match ctx.access.mode {
            access::Mode::Uid(uid) => {
                log::info!(
                    "web UI at {url} (for local user uid {uid} only; up to {max_conns} connections)"
                )
            }
            access::Mode::Session => log::info!(
                "web UI at {url} (reachable beyond this user's loopback: browsers log in with the link `syft-reviewer ui` prints; up to {max_conns} connections)"
            ),
        }
        Ok(WebServer { addr, server })
    }

    /// Stops the server (well within a second).
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

fn refusal(e: ApiError) -> Response {
    Response::error(e.status, e.error, e.hint)
}

fn bearer_ok(ctx: &Ctx, head: &Head) -> bool {
    head.header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| secret::same(t.trim(), &ctx.token))
}

impl server::Handler for Ctx {
    fn admit(&self, head: &Head) -> std::result::Result<(), Response> {
        admit(self, head).inspect_err(|r| {
            log::debug!("{} {}: {} (refused)", head.method, head.path, r.status);
        })
    }

    fn respond(&self, head: &Head, body: Vec<u8>) -> Response {
        let mut resp = match route(self, head, &body) {
            Ok(r) => r,
            Err(e) => refusal(e),
        };
        if resp.status == 405 {
            resp = with_allow(self, head, resp);
        }
        if resp.status >= 500 {
            log::error!("{} {}: {}", head.method, head.path, resp.status);
        } else {
            log::debug!("{} {}: {}", head.method, head.path, resp.status);
        }
        resp
    }
}

/// The checks made on the head alone, before any body is read.
fn admit(ctx: &Ctx, head: &Head) -> std::result::Result<(), Response> {
    match head.header("Host") {
        Some(h)
            if ctx
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h.trim())) => {}
        Some(h) => {
            return Err(Response::error(
                403,
                format!("requests for host {h:?} are refused"),
                format!("open http://{}/ instead", ctx.allowed_hosts[0]),
            ));
        }
        None => {
            return Err(Response::error(
                400,
                "the request has no Host header",
                "send HTTP/1.1 with a Host header",
            ));
        }
    }
    // OPTIONS changes nothing and says only which methods a path takes.
    let is_get = matches!(head.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let bearer = bearer_ok(ctx, head);
    // /health tells nothing but "ok", and liveness probes have no credentials.
    if !(bearer || is_get && head.path == "/health") {
        ctx.access.check(head)?;
    }
    match head.method.as_str() {
        "GET" | "HEAD" | "OPTIONS" => return Ok(()),
        "POST" | "DELETE" => {}
        other => {
            let refused = Response::error(
                405,
                format!("{other} is not supported"),
                "see the Allow header, or /api/openapi.json",
            );
            return Err(with_allow(ctx, head, refused));
        }
    }
    if let Some(origin) = head.header("Origin") {
        let host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if !ctx
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host))
        {
            return Err(Response::error(
                403,
                format!("requests from origin {origin:?} are refused"),
                "use the syft-reviewer page itself",
            ));
        }
    }
    let csrf_ok = head
        .header(CSRF_HEADER)
        .is_some_and(|t| secret::same(t.trim(), &ctx.csrf));
    if !csrf_ok && !bearer {
        return Err(Response::error(
            403,
            format!("missing or wrong {CSRF_HEADER} header"),
            "use the web page, or send Authorization: Bearer <the api-token file in the private state folder>",
        ));
    }
    Ok(())
}

/// Every method a path is served with (RFC 9110 `Allow`), `None` for a path that is not served.
fn allowed(ctx: &Ctx, path: &str) -> Option<Vec<&'static str>> {
    let page = asset(path).is_some()
        || matches!(
            path,
            "/" | "/index.html" | "/health" | "/metrics" | "/login" | "/api/openapi.json"
        );
    let mut methods = if page {
        vec!["GET", "HEAD"]
    } else if path.starts_with("/api/") {
        ctx.api.allowed(&segments(path))
    } else {
        Vec::new()
    };
    if methods.is_empty() {
        return None;
    }
    methods.push("OPTIONS");
    Some(methods)
}

/// Adds `Allow` to a 405, as RFC 9110 requires (a path served with nothing is a 404 instead).
fn with_allow(ctx: &Ctx, head: &Head, refused: Response) -> Response {
    match allowed(ctx, &head.path) {
        Some(methods) => refused.with_header("Allow", methods.join(", ")),
        None => Response::error(
            404,
            format!("no such page: {}", head.path),
            "the UI is at /",
        ),
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn route(ctx: &Ctx, head: &Head, body: &[u8]) -> std::result::Result<Response, ApiError> {
    let (method, path) = (head.method.as_str(), head.path.as_str());
    if method == "OPTIONS" {
        return match allowed(ctx, path) {
            Some(methods) => Ok(Response::new(204, "text/plain", Vec::new())
                .with_header("Allow", methods.join(", "))),
            None => Err(ApiError::new(
                404,
                format!("no such page: {path}"),
                "the UI is at /",
            )),
        };
    }
    let segments = segments(path);
    let is_get = matches!(method, "GET" | "HEAD");
    let text = |ct: &'static str, s: &str| Ok(Response::new(200, ct, s.as_bytes().to_vec()));
    if is_get && let Some((ctype, body)) = asset(path) {
        return text(ctype, body);
    }
    match (is_get, path) {
        (true, "/" | "/index.html") => text("text/html; charset=utf-8", &ctx.index),
        (true, "/health") => Ok(Response::new(
            200,
            "application/json",
            json_bytes(&json!({"status": "ok"})),
        )),
        (true, "/login") => Ok(ctx.access.login(&head.query)),
        (true, "/api/openapi.json") => text("application/json", OPENAPI),
        (true, "/metrics") => text(
            "text/plain; version=0.0.4; charset=utf-8",
            &ctx.api.metrics(),
        ),
        _ if segments.first().map(String::as_str) == Some("api") => {
            let m = if is_get { "GET" } else { method };
            let r = ctx.api.handle(m, &segments, &head.query, body)?;
            Ok(Response::new(
                r.status,
                "application/json",
                json_bytes(&r.body),
            ))
        }
        (false, p)
            if asset(p).is_some()
                || matches!(
                    p,
                    "/" | "/index.html" | "/health" | "/metrics" | "/login" | "/api/openapi.json"
                ) =>
        {
            Err(ApiError::new(
                405,
                format!("{method} is not allowed on {path}"),
                "this resource is read-only",
            ))
        }
        _ => Err(ApiError::new(
            404,
            format!("no such page: {path}"),
            "the UI is at /",
        )),
    }
}
