//! What `audit show` and `audit export` may print: only entries that verify, never a line that
//! merely looks like one (a forged or unterminated last line, or anything after a break).

use std::io::{BufRead, BufReader};

use super::{AuditLog, Entry, Verification};

/// The verified entries, the verification, and how many other lines the chain file holds.
pub struct Shown {
    pub entries: Vec<Entry>,
    pub verification: Verification,
    pub unverified_lines: u64,
}

impl AuditLog {
    pub fn verified_entries(&self) -> Shown {
        let verification = self.verify(None);
        // Everything before the first break is linked and signed; a failure that is not about one
        // line (rollback, a bad checkpoint) still leaves those entries readable.
        let good = verification
            .first_break
            .unwrap_or(verification.entries)
            .min(verification.entries);
        let mut entries = Vec::new();
        let mut unverified_lines = 0u64;
        if let Ok(f) = std::fs::File::open(self.chain_path()) {
            for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
                let Ok(line) = line else { break };
                if (i as u64) < good
                    && let Ok(e) = serde_json::from_slice::<Entry>(&line)
                {
                    entries.push(e);
                } else if !line.is_empty() {
                    unverified_lines += 1;
                }
            }
        }
        Shown {
            entries,
            verification,
            unverified_lines,
        }
    }

    /// Prints the verified entries from `since` (an ISO time prefix) on as JSON lines, and on
    /// stderr how many other lines there are. Returns how many entries were printed.
    pub fn print_verified(&self, since: &str) -> usize {
        let shown = self.verified_entries();
        let mut printed = 0;
        for e in shown.entries.iter().filter(|e| e.time.as_str() >= since) {
            println!("{}", crate::core::visible::json_line(&e));
            printed += 1;
        }
        if shown.unverified_lines > 0 || !shown.verification.valid {
            eprintln!(
                "warning: only the {} verified entries are shown; {} other line(s) of the chain are not ({})",
                shown.entries.len(),
                shown.unverified_lines,
                shown.verification.reason
            );
        }
        printed
    }
}
