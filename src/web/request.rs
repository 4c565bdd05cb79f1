//! Reading one request from a connection: the head (parsed with `httparse`, capped in size and
//! header count), how its body is framed, and the body itself, read only within [`MAX_BODY`]
//! (a declared length above it is refused before reading; a chunked body is cut off as soon as
//! its running length passes it). Ambiguous framing is refused, never guessed.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::response::Response;

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
                    Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => {
                        let head = to_head(&req, conn)?;
                        self.buf.drain(..n);
                        return Ok(head);
                    }
                    Ok(_) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// Feeds `bytes` to a real connection and reads one request as the server does: the
    /// status of the refusal, 0 when the connection just ended, or the body read.
    fn read(bytes: &[u8]) -> Result<Vec<u8>, u16> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let bytes = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = c.write_all(&bytes);
            let _ = c.shutdown(std::net::Shutdown::Write);
            c
        });
        let stop = AtomicBool::new(false);
        let conn = Arc::new(Peer {
            peer,
            local: s.local_addr().unwrap(),
            uid: OnceLock::new(),
        });
        let mut input = Input {
            s: &s,
            stop: &stop,
            buf: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let out = input
            .head(&AtomicBool::new(true), &conn)
            .and_then(|head| match framing(&head)? {
                Framing::Length(n) => input.take(n, deadline),
                Framing::Chunked => read_chunked(&mut input, deadline),
            })
            .map_err(|e| match e {
                End::Gone => 0,
                End::Refuse(r) => r.status,
            });
        drop(writer.join());
        out
    }

    #[test]
    fn bodies_are_read_within_the_cap_and_refused_beyond_it() {
        let h = "POST / HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(
            read(format!("{h}Content-Length: 3\r\n\r\nabc").as_bytes()),
            Ok(b"abc".to_vec())
        );
        assert_eq!(
            read(format!("{h}Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: 1\r\n\r\n").as_bytes()),
            Ok(b"abcd".to_vec())
        );
        assert_eq!(
            read(format!("{h}Content-Length: 1048577\r\n\r\n").as_bytes()),
            Err(413)
        );
        assert_eq!(
            read(format!("{h}Content-Length: 99999999999999999999999\r\n\r\n").as_bytes()),
            Err(400)
        );
        assert_eq!(
            read(format!("{h}Content-Length: -1\r\n\r\n").as_bytes()),
            Err(400)
        );
        assert_eq!(
            read(format!("{h}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx").as_bytes()),
            Ok(b"x".to_vec())
        );
        assert_eq!(
            read(format!("{h}Transfer-Encoding: gzip\r\n\r\n").as_bytes()),
            Err(400)
        );
        assert_eq!(
            read(format!("{h}Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n").as_bytes()),
            Err(400)
        );
        assert_eq!(
            read(format!("{h}Transfer-Encoding: chunked\r\n\r\n100001\r\n").as_bytes()),
            Err(413)
        );
        assert_eq!(
            read(format!("{h}Transfer-Encoding: chunked\r\n\r\nzz\r\n").as_bytes()),
            Err(400)
        );
        assert_eq!(
            read(format!("{h}X: {}\r\n\r\n", "a".repeat(MAX_HEAD)).as_bytes()),
            Err(431)
        );
        assert_eq!(read(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Ok(Vec::new()));
        assert_eq!(read(b"GET / HTTP/1.1\r\nHost"), Err(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_bytes_make_the_reader_panic(
            head in "[A-Z]{1,6} /[a-z?=&%]{0,8} HTTP/1\\.[01]\r\n",
            headers in proptest::collection::vec("(Content-Length|Transfer-Encoding|Host|X): [ -~]{0,24}\r\n", 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut req = head.into_bytes();
            for h in headers {
                req.extend_from_slice(h.as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(&body);
            let _ = read(&req);
        }
    }
}
