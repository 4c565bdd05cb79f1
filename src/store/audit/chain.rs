//! Appending to the chain: signed, linked entries in one durable write, the checkpoint after
//! them, and the repair of a torn last line left by a crash; reading entries back.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ed25519_dalek::SigningKey;

use super::{AuditLog, Checkpoint, Entry, Event, GENESIS};
use crate::durable;
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::store::audit::keys::sign_hex;
use crate::store::lock::StoreLock;

/// The last newline-terminated line of a file (without its newline), the offset just after it,
/// and the file's length. Reads backwards from the end in growing chunks.
pub(super) fn last_complete_line(path: &Path) -> io::Result<(Option<Vec<u8>>, u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut chunk: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.seek(SeekFrom::Start(start))?;
        (&mut f).take(len - start).read_to_end(&mut buf)?;
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            if start == 0 {
                return Ok((None, 0, len));
            }
            chunk *= 4;
            continue;
        };
        match buf[..end].iter().rposition(|b| *b == b'\n') {
            Some(begin) => {
                return Ok((
                    Some(buf[begin + 1..end].to_vec()),
                    start + end as u64 + 1,
                    len,
                ));
            }
            None if start == 0 => return Ok((Some(buf[..end].to_vec()), end as u64 + 1, len)),
            None => chunk *= 4,
        }
    }
}

impl AuditLog {
    pub(super) fn read_checkpoint(&self) -> Option<Checkpoint> {
        let bytes = durable::read_capped(&self.checkpoint_path(), 1 << 16).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Appends events durably, in one write and one fsync, under the audit lock (so the daemon and
    /// CLI commands never interleave), then rewrites the checkpoint. Returns the new entries.
    pub fn append(&self, events: &[Event]) -> Result<Vec<Entry>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.signing_key()?;
        let _guard = StoreLock::acquire(&self.state, "audit")?;
        let (count, head) = self.repair_and_head(&key)?;
        let anchored = self.anchor_for_append(count, &head)?;
        let mut prev = head;
        let mut out = Vec::with_capacity(events.len());
        let mut buf = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let mut e = Entry {
                seq: count + i as u64,
                time: metadata::format_naive(&metadata::now_naive()),
                body: ev.clone(),
                prev: prev.clone(),
                hash: String::new(),
                sig: String::new(),
            };
            e.hash = e.compute_hash();
            e.sig = sign_hex(&key, &e.hash);
            serde_json::to_writer(&mut buf, &e).expect("entries serialize");
            buf.push(b'\n');
            prev = e.hash.clone();
            out.push(e);
        }
        let path = self.chain_path();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io("append to", &path, e))?;
        // The chain is durable first: a checkpoint or anchor ahead of it would read as a cut
        // chain after a crash. Their own fsyncs are shared (one journal commit on ext4).
        let mut sync = durable::Sync::batch();
        self.write_checkpoint(&key, count + events.len() as u64, &prev, &mut sync)?;
        self.advance_anchor(anchored, count, &out, &mut sync)?;
        sync.commit()?;
        Ok(out)
    }

    fn write_checkpoint(
        &self,
        key: &SigningKey,
        size: u64,
        hash: &str,
        sync: &mut durable::Sync,
    ) -> Result<()> {
        let cp = Checkpoint {
            size,
            hash: hash.to_string(),
            sig: sign_hex(key, &Checkpoint::message(size, hash)),
        };
        durable::write_atomic_with(
            &self.checkpoint_path(),
            &serde_json::to_vec_pretty(&cp).expect("checkpoints serialize"),
            0o644,
            sync,
        )
    }

    /// Finds the number of entries and the head hash, cutting off a torn last line that no
    /// checkpoint ever acknowledged (a crash in the middle of an append).
    fn repair_and_head(&self, key: &SigningKey) -> Result<(u64, String)> {
        let path = self.chain_path();
        let (last, complete, len) = match last_complete_line(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, GENESIS.to_string())),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        // Entries number themselves, so the head is enough: no need to read the whole chain.
        let (count, head) = match &last {
            None => (0, GENESIS.to_string()),
            Some(l) => serde_json::from_slice::<Entry>(l)
                .map(|e| (e.seq + 1, e.hash))
                .map_err(|e| {
                    Error::invalid(
                        format!("the last entry of {} is not readable ({e})", path.display()),
                        "run `syft-reviewer audit verify` to find the damage",
                    )
                })?,
        };
        if complete < len {
            let acknowledged = self.read_checkpoint().map_or(0, |c| c.size);
            if count < acknowledged {
                return Err(Error::invalid(
                    format!(
                        "the last line of {} is torn but was acknowledged",
                        path.display()
                    ),
                    "the chain was damaged after the fact: run `syft-reviewer audit verify` and restore it from a backup",
                ));
            }
            log::warn!(
                "cutting off a torn last line of {} (a crash interrupted an append)",
                path.display()
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?;
            f.set_len(complete)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io("truncate", &path, e))?;
        }
        // A crash between the append and the checkpoint leaves the checkpoint behind.
        if count > 0
            && self
                .read_checkpoint()
                .is_none_or(|c| c.size != count || c.hash != head)
        {
            let mut sync = durable::Sync::batch();
            self.write_checkpoint(key, count, &head, &mut sync)?;
            sync.commit()?;
        }
        Ok((count, head))
    }

    /// Every stored entry, verified or not (tests look at what was written).
    #[cfg(test)]
    pub fn entries(&self) -> Vec<Entry> {
        fs::read(self.chain_path())
            .map(|d| {
                d.split(|b| *b == b'\n')
                    .filter_map(|l| serde_json::from_slice(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Entries appended after byte `offset` of the chain, and the new end offset.
    pub fn read_since(&self, offset: u64) -> (Vec<Entry>, u64) {
        self.read_since_where(offset, |_| true)
    }

    /// [`AuditLog::read_since`], parsing only the lines `keep` accepts: a burst of decisions
    /// costs a scan of its bytes, not one parsed entry each, to a reader after something else.
    pub fn read_since_where(&self, offset: u64, keep: impl Fn(&[u8]) -> bool) -> (Vec<Entry>, u64) {
        use std::io::{BufRead, Read, Seek, SeekFrom};
        let Ok(mut f) = fs::File::open(self.chain_path()) else {
            return (Vec::new(), 0);
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = if offset > len { 0 } else { offset };
        if f.seek(SeekFrom::Start(start)).is_err() {
            return (Vec::new(), len);
        }
        // Line by line: what was appended since may be many megabytes.
        let mut reader = io::BufReader::new(f.take(len - start));
        let (mut entries, mut end, mut line) = (Vec::new(), start, Vec::new());
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                // An unterminated last line is still being written: read it next time.
                Ok(_) if line.last() != Some(&b'\n') => break,
                Ok(n) => {
                    end += n as u64;
                    let l = &line[..line.len() - 1];
                    if keep(l)
                        && let Ok(e) = serde_json::from_slice(l)
                    {
                        entries.push(e);
                    }
                }
            }
        }
        (entries, end)
    }
}
