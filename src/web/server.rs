//! The HTTP/1.1 server under the web UI: connections, answers and the limits that keep one
//! client from hurting the others or the process (reading a request is in `request`).
//!
//! The [`Handler`] sees each request head before any body is read and may refuse it. Every
//! refusal is answered with `Connection: close` and the connection is closed after a bounded
//! drain, so no declared length ever makes us read or allocate more than the cap. Bodies are
//! read only inside one of [`MAX_IN_FLIGHT`] request slots. Connections are capped well
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

use super::request::{End, Framing, Input, MAX_BODY, framing, read_chunked};
pub(crate) use super::request::{Head, Peer};
use super::response::Response;

/// Requests being handled at once, beyond which the server answers 503.
const MAX_IN_FLIGHT: usize = 64;
/// How often blocked reads and the listener look at the stop flag.
const TICK: Duration = Duration::from_millis(200);
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
        let head = match input.head(idle, conn).and_then(|head| {
            // The application's refusals come first: each says what is wrong with the request
            // itself, whatever body it announces.
            sh.handler.admit(&head).map_err(End::Refuse)?;
            Ok((framing(&head)?, head))
        }) {
            Ok(h) => h,
            Err(End::Gone) => return,
            Err(End::Refuse(resp)) => return refuse(s, &resp),
        };
        let (framing, head) = head;
        // The slot is taken before the body is read: bodies in memory are bounded by
        // MAX_IN_FLIGHT x MAX_BODY, whatever the number of connections.
        if sh.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            sh.in_flight.fetch_sub(1, Ordering::SeqCst);
            return refuse(
                s,
                &Response::error(503, "the server is busy", "retry in a moment"),
            );
        }
        let guard = InFlight(&sh.in_flight);
        if head
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            let _ = (&*s).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let deadline = Instant::now() + BODY_TIMEOUT;
        let body = match framing {
            Framing::Length(n) => input.take(n, deadline),
            Framing::Chunked => read_chunked(&mut input, deadline),
        };
        let body = match body {
            Ok(b) => b,
            Err(End::Gone) => return,
            Err(End::Refuse(resp)) => {
                drop(guard);
                return refuse(s, &resp);
            }
        };
        let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sh.handler.respond(&head, body)
        }))
        .unwrap_or_else(|_| {
            log::error!("a web request handler panicked; the server keeps running");
            Response::error(500, "the request failed", "see the syft-reviewer log")
        });
        drop(guard);
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
