//! Reading one request from a connection: the head (parsed with `httparse`, capped in size and
//! header count), how its body is framed, and the body itself, read only within [`MAX_BODY`]
//! (a declared length above it is refused before reading; a chunked body is cut off as soon as
//! its running length passes it). Ambiguous framing is refused, never guessed.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::server::Response;

pub const MAX_BODY: usize = 1 << 20;
/// A request line and headers larger than this are refused (431).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A chunk-size or trailer line longer than this is malformed.
const MAX_LINE: usize = 1024;

/// A kept-alive connection with no new request is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request head must arrive within this of its first byte (slowloris).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Why reading stopped.
pub(super) enum End {
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
pub(super) struct Input<'a> {
    pub s: &'a TcpStream,
    pub stop: &'a AtomicBool,
    pub buf: Vec<u8>,
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

    pub(super) fn take(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, End> {
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
    pub(super) fn head(&mut self, idle: &AtomicBool, conn: &Arc<Peer>) -> Result<Head, End> {
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

pub(super) enum Framing {
    Length(usize),
    Chunked,
}

/// How the body is delimited; ambiguous framing (the stuff of request smuggling) is refused.
pub(super) fn framing(head: &Head) -> Result<Framing, End> {
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

pub(super) fn read_chunked(input: &mut Input<'_>, deadline: Instant) -> Result<Vec<u8>, End> {
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
