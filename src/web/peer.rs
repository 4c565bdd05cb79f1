//! Which local user is behind a loopback TCP connection, from the kernel's socket tables
//! (`/proc/net/tcp` and `/proc/net/tcp6` on Linux): the client's socket is the row whose local
//! address is our peer and whose remote address is our own, and its uid column is its owner.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// The tables are read line by line; this bounds one read on a machine with many sockets.
const MAX_TABLE: u64 = 64 << 20;
const TIME_WAIT: &str = "06";

/// Whether the socket tables can be read here (Linux with /proc).
pub(crate) fn available() -> bool {
    cfg!(target_os = "linux") && std::path::Path::new(TABLES[0]).is_file()
}

/// The uid owning the client end of the connection `peer` -> `local`; None when no such row
/// exists (the caller refuses then).
pub(crate) fn uid_of(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    use std::io::{BufRead, BufReader, Read};
    let (peer, local) = (canonical(peer), canonical(local));
    for table in TABLES {
        let Ok(f) = std::fs::File::open(table) else {
            continue;
        };
        for line in BufReader::new(f.take(MAX_TABLE)).lines().skip(1) {
            let Ok(line) = line else { break };
            if let Some(uid) = row_uid(&line, peer, local) {
                return Some(uid);
            }
        }
    }
    None
}

/// `sl local rem st tx:rx tr:when retrnsmt uid ...`: the uid when local and rem match.
fn row_uid(line: &str, want_local: SocketAddr, want_remote: SocketAddr) -> Option<u32> {
    let mut cols = line.split_whitespace();
    let _sl = cols.next()?;
    let local = parse_addr(cols.next()?)?;
    let remote = parse_addr(cols.next()?)?;
    let state = cols.next()?;
    if local != want_local || remote != want_remote || state == TIME_WAIT {
        return None;
    }
    let uid = cols.nth(3)?;
    uid.parse().ok()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel prints each 32-bit
/// word of the address as a number in the host's byte order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(w, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_matched_by_both_ends_and_give_the_uid() {
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:8002".parse().unwrap();
        let ip = if cfg!(target_endian = "little") {
            "0100007F"
        } else {
            "7F000001"
        };
        let row = format!(
            "   3: {ip}:9C40 {ip}:1F42 01 00000000:00000000 00:00000000 00000000  1001        0 12345 1 0 20 4 30 10 -1"
        );
        assert_eq!(row_uid(&row, client, server), Some(1001));
        // Our own end of the same connection is not the client's.
        assert_eq!(row_uid(&row, server, client), None);
        let waiting = row.replace(" 01 ", " 06 ");
        assert_eq!(row_uid(&waiting, client, server), None);
        assert_eq!(row_uid("garbage", client, server), None);
    }

    #[test]
    fn this_process_is_found_behind_its_own_loopback_connection() {
        if !available() {
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(
            uid_of(peer, s.local_addr().unwrap()),
            Some(nix::unistd::geteuid().as_raw())
        );
    }
}
