//! The web server on SyftBox's assigned port: the one-page UI (compiled in) and the JSON API.
//!
//! It binds 127.0.0.1 by default and only answers requests addressed to that address or
//! `localhost` with our port (a defence against DNS rebinding). State-changing requests must
//! carry the page's CSRF token or the API token from the private state folder, so a hostile web
//! page cannot drive the API. A few worker threads share one listener and hand each request to a
//! thread of its own (a stalled client blocks only that thread); they poll a stop flag so
//! shutdown completes quickly, and the daemon's decisions never wait for them.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::api::{Api, ApiError};
use crate::error::{Error, Result};
use crate::live::Live;
use crate::secret;
use crate::syftbox::Layout;

pub const MAX_BODY: usize = 1 << 20;
const WORKERS: usize = 4;
/// Requests being handled at once, beyond which the server answers 503.
const MAX_IN_FLIGHT: usize = 64;
const POLL: Duration = Duration::from_millis(200);
pub const CSRF_HEADER: &str = "X-CSRF-Token";

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const APP_CSS: &str = include_str!("web/app.css");
const OPENAPI: &str = include_str!("web/openapi.json");

/// The port SyftBox assigned, or 8002.
pub fn default_port() -> u16 {
    ["SYFTBOX_ASSIGNED_PORT", "SYFTBOX_APP_PORT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.trim().parse().ok()))
        .unwrap_or(8002)
}

struct Ctx {
    api: Api,
    csrf: String,
    token: String,
    allowed_hosts: Vec<String>,
    index: String,
    in_flight: AtomicUsize,
}

pub struct WebServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl WebServer {
    pub fn start(layout: &Layout, live: Arc<Live>, bind: IpAddr, port: u16) -> Result<WebServer> {
        let could_not = |e: &dyn std::fmt::Display| {
            Error::invalid(
                format!("could not listen on {bind}:{port}"),
                format!("{e}: is another program using the port? Choose another with --port"),
            )
        };
        let listener =
            std::net::TcpListener::bind(SocketAddr::new(bind, port)).map_err(|e| could_not(&e))?;
        tune_listener(&listener);
        let server = Server::from_listener(listener, None).map_err(|e| could_not(&e))?;
        let addr = server
            .server_addr()
            .to_ip()
            .unwrap_or(SocketAddr::new(bind, port));
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
        let ctx = Arc::new(Ctx {
            api: Api::new(layout.clone(), live, "web"),
            index: INDEX_HTML.replace("{{CSRF_TOKEN}}", &csrf),
            csrf,
            token,
            allowed_hosts,
            in_flight: AtomicUsize::new(0),
        });
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..WORKERS)
            .map(|i| {
                let (server, stop, ctx) = (server.clone(), stop.clone(), ctx.clone());
                std::thread::Builder::new()
                    .name(format!("web-{i}"))
                    .spawn(move || worker(&server, &stop, &ctx))
                    .expect("spawning a thread")
            })
            .collect();
        log::info!("web UI at http://{}", ctx.allowed_hosts[0]);
        Ok(WebServer {
            addr,
            stop,
            threads,
        })
    }

    /// Stops the workers (each notices within one poll interval).
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Ctx>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Socket options that accepted connections inherit from the listener. (Not SO_RCVTIMEO: on a
/// listener it makes `accept` time out, which ends tiny_http's accept loop.)
fn tune_listener(listener: &std::net::TcpListener) {
    use nix::sys::socket::{setsockopt, sockopt};
    // tiny_http writes a response through a 1 KiB buffer: without TCP_NODELAY Nagle's algorithm
    // holds the second segment of every larger answer until the client's delayed ACK, 40 ms
    // later.
    if let Err(e) = setsockopt(listener, sockopt::TcpNoDelay, &true) {
        log::warn!("web server: could not set TCP_NODELAY: {e}");
    }
}

fn worker(server: &Server, stop: &AtomicBool, ctx: &Arc<Ctx>) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(req)) => {
                // Each request is read and answered on its own thread: a client that sends its
                // body slowly (or never) must hold up neither other requests nor shutdown, which
                // only waits for these workers.
                if ctx.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
                    ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let e = ApiError::new(503, "the server is busy", "retry in a moment");
                    respond(req, e.status, "application/json", json_bytes(&e.body()));
                    continue;
                }
                let guard = InFlight(ctx.clone());
                let spawned = std::thread::Builder::new()
                    .name("web-request".into())
                    .spawn(move || {
                        let outcome =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                handle(&guard.0, req)
                            }));
                        if outcome.is_err() {
                            log::error!("a web request handler panicked; the server keeps running");
                        }
                    });
                if let Err(e) = spawned {
                    log::warn!("web server: could not start a request thread: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("web server: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn handle(ctx: &Ctx, mut req: Request) {
    let method = req.method().clone();
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let answer = check_and_route(ctx, &mut req, &method, path, query);
    let status = match &answer {
        Ok((s, ..)) => *s,
        Err(e) => e.status,
    };
    if status >= 500 {
        log::error!("{method} {path}: {status}");
    } else {
        log::debug!("{method} {path}: {status}");
    }
    let (status, content_type, body) = match answer {
        Ok(a) => a,
        Err(e) => (e.status, "application/json", json_bytes(&e.body())),
    };
    respond(req, status, content_type, body);
}

fn respond(req: Request, status: u16, content_type: &str, body: Vec<u8>) {
    let mut resp = Response::from_data(body).with_status_code(status);
    for (k, v) in [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    ] {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = req.respond(resp);
}

type Answer = std::result::Result<(u16, &'static str, Vec<u8>), ApiError>;

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn check_and_route(
    ctx: &Ctx,
    req: &mut Request,
    method: &Method,
    path: &str,
    query: &str,
) -> Answer {
    match header(req, "Host") {
        Some(h)
            if ctx
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h.trim())) => {}
        Some(h) => {
            return Err(ApiError::new(
                403,
                format!("requests for host {h:?} are refused"),
                format!("open http://{}/ instead", ctx.allowed_hosts[0]),
            ));
        }
        None => {
            return Err(ApiError::new(
                400,
                "the request has no Host header",
                "send HTTP/1.1 with a Host header",
            ));
        }
    }
    let changes_state = match method {
        Method::Get | Method::Head => false,
        Method::Post | Method::Delete => true,
        other => {
            return Err(ApiError::new(
                405,
                format!("{other} is not supported"),
                "use GET, POST or DELETE",
            ));
        }
    };
    if changes_state {
        if let Some(origin) = header(req, "Origin") {
            let host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            if !ctx
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(host))
            {
                return Err(ApiError::new(
                    403,
                    format!("requests from origin {origin:?} are refused"),
                    "use the syft-reviewer page itself",
                ));
            }
        }
        let csrf_ok = header(req, CSRF_HEADER).is_some_and(|t| secret::same(t.trim(), &ctx.csrf));
        let bearer_ok = header(req, "Authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| secret::same(t.trim(), &ctx.token));
        if !csrf_ok && !bearer_ok {
            return Err(ApiError::new(
                403,
                format!("missing or wrong {CSRF_HEADER} header"),
                "use the web page, or send Authorization: Bearer <the api-token file in the private state folder>",
            ));
        }
    }
    let body = read_body(req)?;
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let is_get = matches!(method, Method::Get | Method::Head);
    match (is_get, path) {
        (true, "/" | "/index.html") => Ok((
            200,
            "text/html; charset=utf-8",
            ctx.index.clone().into_bytes(),
        )),
        (true, "/app.js") => Ok((
            200,
            "text/javascript; charset=utf-8",
            APP_JS.as_bytes().to_vec(),
        )),
        (true, "/app.css") => Ok((200, "text/css; charset=utf-8", APP_CSS.as_bytes().to_vec())),
        (true, "/health") => Ok((
            200,
            "application/json",
            json_bytes(&json!({"status": "ok"})),
        )),
        (true, "/api/openapi.json") => Ok((200, "application/json", OPENAPI.as_bytes().to_vec())),
        (true, "/metrics") => Ok((
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            ctx.api.metrics().into_bytes(),
        )),
        _ if segments.first().map(String::as_str) == Some("api") => {
            let m = if is_get { "GET" } else { method.as_str() };
            let r = ctx.api.handle(m, &segments, query, &body)?;
            Ok((r.status, "application/json", json_bytes(&r.body)))
        }
        (
            false,
            "/" | "/index.html" | "/app.js" | "/app.css" | "/health" | "/metrics"
            | "/api/openapi.json",
        ) => Err(ApiError::new(
            405,
            format!("{method} is not allowed on {path}"),
            "this resource is read-only",
        )),
        _ => Err(ApiError::new(
            404,
            format!("no such page: {path}"),
            "the UI is at /",
        )),
    }
}

fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, ApiError> {
    let too_big = || {
        ApiError::new(
            413,
            format!("the request body is larger than {MAX_BODY} bytes"),
            "send less data at once",
        )
    };
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| {
            ApiError::new(
                400,
                format!("could not read the request body: {e}"),
                "retry the request",
            )
        })?;
    if body.len() > MAX_BODY {
        return Err(too_big());
    }
    Ok(body)
}
