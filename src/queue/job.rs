//! What is known about one job folder before any decision: the inspection and what the content
//! checks found in it. Types only; `queue::inspect` fills them in.

use std::path::PathBuf;

use serde::Serialize;

use crate::core::signature::CodeScan;
use crate::core::visible::{HITS_KEPT, Hit};
use crate::queue::metadata::Metadata;

/// Everything known about one job folder, before any decision.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The folder name.
    pub uid: String,
    pub dir: PathBuf,
    pub meta: Option<Metadata>,
    pub scan: Option<CodeScan>,
    pub signature: Option<String>,
    /// Why the job cannot be auto-approved as it is (malformed, links, missing run.sh...).
    pub problems: Vec<String>,
    /// Why this folder is not a job for this owner at all (then it is left alone).
    pub ignored: Option<String>,
    /// What the content checks (`queue::content`) found beyond `problems`.
    pub findings: Findings,
}

impl Inspection {
    pub fn requester(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.meta.requester_email.as_str())
    }
    pub fn name(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.meta.name.as_str())
    }
}

/// What the checks found beyond the inspection's problems.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Why trusted code and rules may not approve the job (an allowlisted sender's still may).
    pub code_doubts: Vec<String>,
    /// Invisible characters, by place, for the owner's views.
    pub invisible: Vec<Invisible>,
}

/// Invisible characters in one place (a code file, a file name or a metadata field).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invisible {
    /// `code/<path>`, `file name code/<path>`, or the metadata field (`name`, `description`,
    /// `tags`, `requester_email`).
    pub place: String,
    /// How many there are in all; `hits` lists the first few.
    pub total: u64,
    pub hits: Vec<Hit>,
}

impl Findings {
    pub(crate) fn push_invisible(&mut self, place: &str, total: u64, hits: Vec<Hit>) {
        if total == 0 {
            return;
        }
        match self.invisible.iter_mut().find(|i| i.place == place) {
            Some(i) => {
                i.total += total;
                let room = HITS_KEPT.saturating_sub(i.hits.len());
                i.hits.extend(hits.into_iter().take(room));
            }
            None => self.invisible.push(Invisible {
                place: place.to_string(),
                total,
                hits,
            }),
        }
    }
}
