//! The HTTP/1.1 server under the web UI: connections, request framing and the limits that keep
//! one client from hurting the others or the process.
//!
//! A request head is capped in size and header count and parsed with `httparse`; the
//! [`Handler`] sees it before any body is read and may refuse it. A body is read only when its
//! declared (or, for chunked bodies, running) length is within [`MAX_BODY`]. Every refusal is
//! answered with `Connection: close` and the connection is closed after a bounded drain, so no
//! declared length ever makes us read or allocate more than the cap. Connections are capped well
//! below the open-file limit (idle ones are closed first to make room), every read and write has
//! a deadline, and accept errors (EMFILE...) are logged once per burst and backed off from,
//! never ending the listener; a listener thread that dies anyway is restarted.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

pub const MAX_BODY: usize = 1 << 20;
/// A request line and headers larger than this are refused (431).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A chunk-size or trailer line longer than this is malformed.
const MAX_LINE: usize = 1024;
/// Requests being handled at once, beyond which the server answers 503.
const MAX_IN_FLIGHT: usize = 64;
/// How often blocked reads and the listener look at the stop flag.
const TICK: Duration = Duration::from_millis(200);
/// A kept-alive connection with no new request is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request head must arrive within this of its first byte (slowloris).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole body must arrive within this of its head.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a refusal, what the client already sent is discarded for at most this long (and at
/// most [`MAX_BODY`] bytes), so that closing does not reset the connection before the client
/// has read the answer.
const LINGER: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    ),
];

/// A request line and headers, before the body is read.
pub(crate) struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    pub conn: Arc<Peer>,
}

impl Head {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Who is at the other end of a connection.
pub(crate) struct Peer {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The local user behind the connection, looked up once (None: unknown).
    pub uid: OnceLock<Option<u32>>,
}

pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// The JSON `{error, hint}` every refusal carries.
    pub fn error(status: u16, what: impl Into<String>, hint: impl Into<String>) -> Response {
        let body = json!({"error": what.into(), "hint": hint.into()});
        Response::new(
            status,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What the server asks of the application.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Decides from the head alone whether the request may go on; a refusal is sent and the
    /// connection closed without reading the body.
    fn admit(&self, head: &Head) -> Result<(), Response>;
    /// Answers an admitted request whose body was read in full.
    fn respond(&self, head: &Head, body: Vec<u8>) -> Response;
}

/// Raises the soft open-file limit to the hard one, so the connection cap and the daemon's own
/// files have room; returns the soft limit in force.
pub(crate) fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                log::info!("raised the open-file limit from {soft} to {hard}");
                hard
            }
            Err(e) => {
                log::warn!("could not raise the open-file limit from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            log::warn!("could not read the open-file limit: {e}");
            1024
        }
    }
}

/// Connections kept open at once: a quarter of the open-file limit, so the daemon's own files
/// never run short because of clients.
pub(crate) fn connection_cap(open_files: u64) -> usize {
    usize::try_from(open_files / 4)
        .unwrap_or(usize::MAX)
        .clamp(4, 512)
}

struct Entry {
    stream: Arc<TcpStream>,
    /// Waiting for the first byte of a request (may be closed to make room).
    idle: Arc<AtomicBool>,
}

struct Shared {
    handler: Arc<dyn Handler>,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    max_conns: usize,
    in_flight: AtomicUsize,
    /// Set while the connection cap is reached, so the log says so once per burst.
    at_cap: AtomicBool,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes one connection that is waiting for a request; false if none is.
    fn evict_idle(&self) -> bool {
        let conns = self.conns();
        let victim = conns.values().find(|e| e.idle.load(Ordering::SeqCst));
        match victim {
            Some(e) => {
                // The owning thread sees end-of-file and unregisters it.
                e.idle.store(false, Ordering::SeqCst);
                let _ = e.stream.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

pub(crate) struct Server {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Server {
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        max_conns: usize,
    ) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            handler,
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            max_conns,
            in_flight: AtomicUsize::new(0),
            at_cap: AtomicBool::new(false),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("web-accept".into())
            .spawn(move || supervise(&listener, &sh))?;
        Ok(Server { shared, accept })
    }

    /// Stops accepting, wakes every connection thread (each ends within one tick) and returns
    /// once the listener is closed; handlers still running finish on their own.
    pub fn shutdown(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.accept.join();
        for e in self.shared.conns().values() {
            let _ = e.stream.shutdown(Shutdown::Both);
        }
    }
}

/// Runs the accept loop, restarting it if it ever panics: the UI must not vanish silently.
fn supervise(listener: &TcpListener, sh: &Arc<Shared>) {
    while !sh.stop.load(Ordering::SeqCst) {
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| accept_loop(listener, sh)));
        if run.is_err() {
            log::error!("web server: the listener failed; restarting it");
            std::thread::sleep(TICK);
        }
    }
}

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut failures: u64 = 0;
    let mut backoff = Duration::from_millis(10);
    while !sh.stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) == 0 {
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                if failures > 0 {
                    log::info!(
                        "web server: accepting connections again after {failures} failed attempts"
                    );
                    failures = 0;
                    backoff = Duration::from_millis(10);
                }
                open(sh, stream, peer);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                if failures == 0 {
                    log::error!(
                        "web server: cannot accept connections: {e}; {} open, the limit is {}; \
                         closing idle ones and retrying with back-off",
                        sh.conns().len(),
                        sh.max_conns
                    );
                }
                failures += 1;
                // Out of descriptors: an idle connection's is the one to give back.
                sh.evict_idle();
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Registers a new connection and gives it a thread, or answers 503 when there is no room.
fn open(sh: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let full = sh.conns().len() >= sh.max_conns;
    if full && !sh.evict_idle() {
        if !sh.at_cap.swap(true, Ordering::SeqCst) {
            log::warn!(
                "web server: {} connections are busy (the limit); answering 503 to new ones",
                sh.max_conns
            );
        }
        let busy = Response::error(503, "the server is busy", "retry in a moment");
        let _ = (&stream).write_all(&encode(&busy, false, false));
        let _ = stream.shutdown(Shutdown::Write);
        return;
    }
    if full {
        if !sh.at_cap.swap(true, Ordering::SeqCst) {
            log::warn!(
                "web server: {} connections are open (the limit); closing idle ones to make room",
                sh.max_conns
            );
        }
    } else if sh.conns().len() < sh.max_conns / 2 {
        sh.at_cap.store(false, Ordering::SeqCst);
    }
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let id = sh.next_id.fetch_add(1, Ordering::SeqCst);
    let stream = Arc::new(stream);
    let idle = Arc::new(AtomicBool::new(true));
    sh.conns().insert(
        id,
        Entry {
            stream: stream.clone(),
            idle: idle.clone(),
        },
    );
    let peer = Arc::new(Peer {
        peer,
        local,
        uid: OnceLock::new(),
    });
    let sh2 = sh.clone();
    let spawned = std::thread::Builder::new()
        .name("web-conn".into())
        .spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(&sh2, &stream, &idle, &peer)
            }));
            if run.is_err() {
                log::error!("web server: a connection handler panicked; the server keeps running");
            }
            sh2.conns().remove(&id);
        });
    if let Err(e) = spawned {
        log::warn!("web server: could not start a connection thread: {e}");
        sh.conns().remove(&id);
    }
}

/// Why reading stopped.
enum End {
    /// The client closed, went quiet too long, or the server is stopping: just close.
    Gone,
    /// Answer this and close.
    Refuse(Response),
}

fn bad(what: impl Into<String>, hint: &str) -> End {
    End::Refuse(Response::error(400, what, hint))
}

fn too_big() -> End {
    End::Refuse(Response::error(
        413,
        format!("the request body is larger than {MAX_BODY} bytes"),
        "send less data at once",
    ))
}

/// Buffered reading from one connection, with deadlines and the stop flag.
struct Input<'a> {
    s: &'a TcpStream,
    stop: &'a AtomicBool,
    buf: Vec<u8>,
}

impl Input<'_> {
    /// Reads at least one more byte before `deadline`.
    fn more(&mut self, deadline: Instant) -> Result<(), End> {
        let mut chunk = [0u8; 8192];
        loop {
            if self.stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return Err(End::Gone);
            }
            match (&*self.s).read(&mut chunk) {
                Ok(0) => return Err(End::Gone),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Err(End::Gone),
            }
        }
    }

    fn take(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, End> {
        while self.buf.len() < n {
            self.more(deadline)?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line (without the CRLF), at most `MAX_LINE` bytes.
    fn line(&mut self, deadline: Instant) -> Result<Vec<u8>, End> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(bad("a chunk line is too long", "send a valid chunked body"));
            }
            self.more(deadline)?;
        }
    }

    /// Reads and parses the next request head; `Gone` when the connection ends first.
    fn head(&mut self, idle: &AtomicBool, conn: &Arc<Peer>) -> Result<Head, End> {
        let idle_deadline = Instant::now() + IDLE_TIMEOUT;
        let mut head_deadline = None;
        loop {
            // Blank lines before a request are allowed (RFC 9112 2.2).
            let blank = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.buf.drain(..blank);
            if !self.buf.is_empty() {
                idle.store(false, Ordering::SeqCst);
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let head = to_head(&req, conn)?;
                        self.buf.drain(..n);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(End::Refuse(Response::error(
                            431,
                            format!("the request has more than {MAX_HEADERS} headers"),
                            "send fewer headers",
                        )));
                    }
                    Err(e) => return Err(bad(format!("malformed request: {e}"), "send HTTP/1.1")),
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(End::Refuse(Response::error(
                        431,
                        format!("the request head is larger than {MAX_HEAD} bytes"),
                        "send shorter headers",
                    )));
                }
            }
            let deadline = if self.buf.is_empty() {
                idle_deadline
            } else {
                *head_deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT)
            };
            self.more(deadline)?;
        }
    }
}

fn to_head(req: &httparse::Request<'_, '_>, conn: &Arc<Peer>) -> Result<Head, End> {
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(bad("malformed request line", "send HTTP/1.1"));
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut head = Head {
        method: method.to_string(),
        path: String::new(),
        query: String::new(),
        headers,
        conn: conn.clone(),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    head.path = path.to_string();
    head.query = query.to_string();
    if req.version == Some(0) {
        // HTTP/1.0: never kept alive.
        head.headers.push(("Connection".into(), "close".into()));
    }
    Ok(head)
}

enum Framing {
    Length(usize),
    Chunked,
}

/// How the body is delimited; ambiguous framing (the stuff of request smuggling) is refused.
fn framing(head: &Head) -> Result<Framing, End> {
    let te: Vec<&str> = head.headers_named("Transfer-Encoding").collect();
    let cl: Vec<&str> = head.headers_named("Content-Length").collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(bad(
                "the request has both Transfer-Encoding and Content-Length",
                "send one of them",
            ));
        }
        if te.len() == 1 && te[0].eq_ignore_ascii_case("chunked") {
            return Ok(Framing::Chunked);
        }
        return Err(bad(
            format!("unsupported Transfer-Encoding {:?}", te.join(", ")),
            "send the body with a Content-Length or chunked",
        ));
    }
    let mut length: Option<u64> = None;
    for v in cl {
        let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten();
        match (n, length) {
            (None, _) => {
                return Err(bad(
                    format!("invalid Content-Length {v:?}"),
                    "send a number of bytes",
                ));
            }
            (Some(n), Some(l)) if n != l => {
                return Err(bad("conflicting Content-Length headers", "send one"));
            }
            (Some(n), _) => length = Some(n),
        }
    }
    match length {
        None => Ok(Framing::Length(0)),
        Some(n) if n > MAX_BODY as u64 => Err(too_big()),
        Some(n) => Ok(Framing::Length(n as usize)),
    }
}

fn read_chunked(input: &mut Input<'_>, deadline: Instant) -> Result<Vec<u8>, End> {
    let mut body = Vec::new();
    loop {
        let line = input.line(deadline)?;
        let size = std::str::from_utf8(&line)
            .ok()
            .map(|l| l.split(';').next().unwrap_or("").trim())
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| bad("malformed chunk size", "send a valid chunked body"))?;
        if size == 0 {
            let mut trailer = 0usize;
            loop {
                let l = input.line(deadline)?;
                if l.is_empty() {
                    return Ok(body);
                }
                trailer += l.len();
                if trailer > MAX_LINE * 8 {
                    return Err(bad("the chunked trailer is too long", "send no trailer"));
                }
            }
        }
        if body.len().checked_add(size).is_none_or(|n| n > MAX_BODY) {
            return Err(too_big());
        }
        body.extend_from_slice(&input.take(size, deadline)?);
        if !input.take(2, deadline)?.eq(b"\r\n") {
            return Err(bad(
                "a chunk does not end with CRLF",
                "send a valid chunked body",
            ));
        }
    }
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves requests on one connection until it closes, fails or is refused.
fn serve(sh: &Shared, s: &TcpStream, idle: &AtomicBool, conn: &Arc<Peer>) {
    let _ = s.set_read_timeout(Some(TICK));
    let mut input = Input {
        s,
        stop: &sh.stop,
        buf: Vec::new(),
    };
    loop {
        idle.store(input.buf.is_empty(), Ordering::SeqCst);
        let read = input.head(idle, conn).and_then(|head| {
            // The application's refusals come first: each says what is wrong with the request
            // itself, whatever body it announces.
            sh.handler.admit(&head).map_err(End::Refuse)?;
            let framing = framing(&head)?;
            if head
                .header("Expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            {
                let _ = (&*s).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let deadline = Instant::now() + BODY_TIMEOUT;
            let body = match framing {
                Framing::Length(n) => input.take(n, deadline)?,
                Framing::Chunked => read_chunked(&mut input, deadline)?,
            };
            Ok((head, body))
        });
        let (head, body) = match read {
            Ok(r) => r,
            Err(End::Gone) => return,
            Err(End::Refuse(resp)) => return refuse(s, &resp),
        };
        if sh.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            sh.in_flight.fetch_sub(1, Ordering::SeqCst);
            return refuse(
                s,
                &Response::error(503, "the server is busy", "retry in a moment"),
            );
        }
        let resp = {
            let _guard = InFlight(&sh.in_flight);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sh.handler.respond(&head, body)
            }))
            .unwrap_or_else(|_| {
                log::error!("a web request handler panicked; the server keeps running");
                Response::error(500, "the request failed", "see the syft-reviewer log")
            })
        };
        let keep = !head
            .header("Connection")
            .is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            && !sh.stop.load(Ordering::SeqCst);
        let is_head = head.method == "HEAD";
        if (&*s).write_all(&encode(&resp, is_head, keep)).is_err() || !keep {
            return;
        }
    }
}

/// Answers with `Connection: close`, then closes after a bounded drain.
fn refuse(s: &TcpStream, resp: &Response) {
    if (&*s).write_all(&encode(resp, false, false)).is_err() {
        return;
    }
    let _ = s.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut left = MAX_BODY;
    let mut sink = [0u8; 8192];
    while left > 0 && Instant::now() < until {
        match (&*s).read(&mut sink) {
            Ok(0) => break,
            Ok(n) => left = left.saturating_sub(n),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The answer as bytes, written at once (one write: no Nagle delay between head and body).
fn encode(resp: &Response, is_head: bool, keep: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (k, v) in SECURITY_HEADERS {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in &resp.headers {
        // Values come from our own code, but a stray newline must never split a header.
        let v: String = v.chars().filter(|c| !c.is_control()).collect();
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(if keep {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut bytes = out.into_bytes();
    if !is_head {
        bytes.extend_from_slice(&resp.body);
    }
    bytes
}
