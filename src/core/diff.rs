//! What changed between two versions of a job's code: per file added, removed, renamed (an
//! identical hash under another path) or changed, with a unified line diff of text files and the
//! size and hash of the others, and the one-line summary the owner reads first. Pure: the caller
//! reads the files (with its caps) and says what each one holds.

use serde::Serialize;

use super::myers::{self, Op};

/// What the reader of one version of a file got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content<'a> {
    Text(&'a str),
    /// Not UTF-8.
    Binary,
    /// Over the size up to which files are diffed line by line.
    TooLarge,
    /// Not kept or not readable (a record without the text, the job's budget spent).
    Unavailable,
}

/// One file of one version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side<'a> {
    pub(crate) path: &'a str,
    pub(crate) sha256: &'a str,
    pub(crate) size: u64,
    pub(crate) content: Content<'a>,
}

/// How much one diff may cost and show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Lines of context around each change.
    pub(crate) context: usize,
    /// Steps of the line diff for one file, and for all the files together.
    pub(crate) file_work: u64,
    pub(crate) total_work: u64,
    /// Lines shown per file; a longer diff is cut (and says so).
    pub(crate) file_lines: usize,
}

pub(crate) const LIMITS: Limits = Limits {
    context: 3,
    file_work: 2_000_000,
    total_work: 8_000_000,
    file_lines: 2_000,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    Unchanged,
    Changed,
    Added,
    Removed,
    /// The same bytes under another path.
    Renamed,
}

/// Why a file diff has the lines it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Shown {
    /// Line by line.
    Lines,
    /// Nothing to show: the bytes are identical.
    Same,
    /// One side is not text: compared by size and hash.
    Binary,
    /// One side is over the size diffed by line: compared by size and hash.
    TooLarge,
    /// The line diff would cost more than its budget: compared by size and hash.
    TooDifferent,
    /// The old text was not kept: compared by size and hash.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Version {
    pub(crate) sha256: String,
    pub(crate) size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LineKind {
    Context,
    Added,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Line {
    pub(crate) kind: LineKind,
    /// 1-based line numbers in the old and the new version.
    pub(crate) old: Option<u32>,
    pub(crate) new: Option<u32>,
    /// Without its line break.
    pub(crate) text: String,
    /// False for a last line with no line break after it.
    pub(crate) eol: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Hunk {
    pub(crate) old_start: u32,
    pub(crate) old_lines: u32,
    pub(crate) new_start: u32,
    pub(crate) new_lines: u32,
    pub(crate) lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FileDiff {
    pub(crate) path: String,
    pub(crate) change: Change,
    /// The old path of a renamed file.
    pub(crate) from: Option<String>,
    pub(crate) old: Option<Version>,
    pub(crate) new: Option<Version>,
    /// Lines added and removed (for a file not diffed by line: none).
    pub(crate) added: Option<u64>,
    pub(crate) removed: Option<u64>,
    pub(crate) shown: Shown,
    pub(crate) hunks: Vec<Hunk>,
    /// More lines changed than [`Limits::file_lines`]: the hunks stop there.
    pub(crate) cut: bool,
}

/// The file diffs from `old` to `new`, in the new version's order, then removed files.
pub(crate) fn diff_files(old: &[Side], new: &[Side], limits: &Limits) -> Vec<FileDiff> {
    let mut work = limits.total_work;
    let old_by_path: std::collections::HashMap<&str, &Side> =
        old.iter().map(|s| (s.path, s)).collect();
    let new_paths: std::collections::HashSet<&str> = new.iter().map(|s| s.path).collect();
    // Old files gone from their path, which a new file may have moved.
    let mut gone: Vec<&Side> = old.iter().filter(|s| !new_paths.contains(s.path)).collect();
    let mut out = Vec::new();
    for n in new {
        let d = match old_by_path.get(n.path) {
            Some(o) => changed(o, n, limits, &mut work),
            None => match gone.iter().position(|g| g.sha256 == n.sha256) {
                Some(i) => {
                    let g = gone.remove(i);
                    FileDiff {
                        from: Some(g.path.to_string()),
                        old: Some(version(g)),
                        added: Some(0),
                        removed: Some(0),
                        ..file(n.path, Change::Renamed, None, Some(n), Shown::Same)
                    }
                }
                None => one_sided(n, Change::Added, limits, &mut work),
            },
        };
        out.push(d);
    }
    for g in gone {
        out.push(one_sided(g, Change::Removed, limits, &mut work));
    }
    out
}

fn version(s: &Side) -> Version {
    Version {
        sha256: s.sha256.to_string(),
        size: s.size,
    }
}

fn file(
    path: &str,
    change: Change,
    old: Option<&Side>,
    new: Option<&Side>,
    shown: Shown,
) -> FileDiff {
    FileDiff {
        path: path.to_string(),
        change,
        from: None,
        old: old.map(version),
        new: new.map(version),
        added: None,
        removed: None,
        shown,
        hunks: Vec::new(),
        cut: false,
    }
}

/// Why a side cannot be diffed by line.
fn not_text(c: Content) -> Option<Shown> {
    match c {
        Content::Text(_) => None,
        Content::Binary => Some(Shown::Binary),
        Content::TooLarge => Some(Shown::TooLarge),
        Content::Unavailable => Some(Shown::Unavailable),
    }
}

fn changed(o: &Side, n: &Side, limits: &Limits, work: &mut u64) -> FileDiff {
    if o.sha256 == n.sha256 {
        return FileDiff {
            added: Some(0),
            removed: Some(0),
            ..file(n.path, Change::Unchanged, Some(o), Some(n), Shown::Same)
        };
    }
    let (Content::Text(a), Content::Text(b)) = (o.content, n.content) else {
        let why = not_text(n.content)
            .filter(|w| *w != Shown::Unavailable)
            .or(not_text(o.content))
            .unwrap_or(Shown::Unavailable);
        return file(n.path, Change::Changed, Some(o), Some(n), why);
    };
    let mut d = file(n.path, Change::Changed, Some(o), Some(n), Shown::Lines);
    match text_diff(a, b, limits, work) {
        Some(t) => {
            (d.added, d.removed) = (Some(t.added), Some(t.removed));
            (d.hunks, d.cut) = (t.hunks, t.cut);
        }
        None => d.shown = Shown::TooDifferent,
    }
    d
}

/// An added or removed file: all its lines, when it is text.
fn one_sided(s: &Side, change: Change, limits: &Limits, work: &mut u64) -> FileDiff {
    let (old, new) = match change {
        Change::Removed => (Some(s), None),
        _ => (None, Some(s)),
    };
    let Content::Text(t) = s.content else {
        let why = not_text(s.content).unwrap_or(Shown::Unavailable);
        return file(s.path, change, old, new, why);
    };
    let mut d = file(s.path, change, old, new, Shown::Lines);
    let all = lines(t);
    *work = work.saturating_sub(all.len() as u64);
    let count = all.len() as u64;
    let removed = change == Change::Removed;
    let kind = if removed {
        LineKind::Removed
    } else {
        LineKind::Added
    };
    let shown: Vec<Line> = all
        .iter()
        .take(limits.file_lines)
        .enumerate()
        .map(|(i, raw)| {
            let (o, n) = if removed {
                (Some(i), None)
            } else {
                (None, Some(i))
            };
            line(kind, o, n, raw)
        })
        .collect();
    let n = u32::try_from(all.len()).unwrap_or(u32::MAX);
    let start = u32::from(n > 0);
    if !shown.is_empty() {
        d.hunks.push(Hunk {
            old_start: if removed { start } else { 0 },
            old_lines: if removed { n } else { 0 },
            new_start: if removed { 0 } else { start },
            new_lines: if removed { 0 } else { n },
            lines: shown,
        });
    }
    d.cut = all.len() > limits.file_lines;
    (d.added, d.removed) = if removed {
        (Some(0), Some(count))
    } else {
        (Some(count), Some(0))
    };
    d
}

pub(crate) struct TextDiff {
    pub(crate) hunks: Vec<Hunk>,
    pub(crate) added: u64,
    pub(crate) removed: u64,
    pub(crate) cut: bool,
}

/// Lines with their line break, so that a last line without one differs from one with it.
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

fn line(kind: LineKind, old: Option<usize>, new: Option<usize>, raw: &str) -> Line {
    let num = |i: Option<usize>| i.and_then(|i| u32::try_from(i + 1).ok());
    Line {
        kind,
        old: num(old),
        new: num(new),
        text: raw.strip_suffix('\n').unwrap_or(raw).to_string(),
        eol: raw.ends_with('\n'),
    }
}

/// The unified diff of two texts, or `None` when it would cost more than the budget left.
pub(crate) fn text_diff(a: &str, b: &str, limits: &Limits, work: &mut u64) -> Option<TextDiff> {
    let (la, lb) = (lines(a), lines(b));
    let mut budget = limits.file_work.min(*work);
    let before = budget;
    let ops = myers::diff(&la, &lb, &mut budget);
    *work -= before - budget;
    let ops = ops?;
    let added = ops.iter().filter(|o| **o == Op::Insert).count() as u64;
    let removed = ops.iter().filter(|o| **o == Op::Delete).count() as u64;
    // Positions (in a, in b) before each op.
    let mut pos = Vec::with_capacity(ops.len() + 1);
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        pos.push((i, j));
        match op {
            Op::Equal => (i, j) = (i + 1, j + 1),
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    pos.push((i, j));
    let mut hunks: Vec<Hunk> = Vec::new();
    let mut shown = 0usize;
    let mut cut = false;
    let mut idx = 0;
    while idx < ops.len() {
        if ops[idx] == Op::Equal {
            idx += 1;
            continue;
        }
        // A hunk: from `context` equal lines before the first change to `context` after the
        // last change that is closer than 2 * context to the next one.
        // (The previous hunk ended more than `context` before this change.)
        let first = idx.saturating_sub(limits.context);
        let mut end = idx;
        let mut k = idx;
        while k < ops.len() {
            if ops[k] != Op::Equal {
                end = k + 1;
                k += 1;
                continue;
            }
            let run = ops[k..].iter().take_while(|o| **o == Op::Equal).count();
            if k + run < ops.len() && run <= 2 * limits.context {
                k += run;
                continue;
            }
            break;
        }
        let last = (end + limits.context).min(ops.len());
        let (os, ns) = pos[first];
        let (oe, ne) = pos[last];
        let mut h = Hunk {
            old_start: u32::try_from(if oe > os { os + 1 } else { os }).unwrap_or(u32::MAX),
            old_lines: u32::try_from(oe - os).unwrap_or(u32::MAX),
            new_start: u32::try_from(if ne > ns { ns + 1 } else { ns }).unwrap_or(u32::MAX),
            new_lines: u32::try_from(ne - ns).unwrap_or(u32::MAX),
            lines: Vec::new(),
        };
        // Within each run of changes, removed lines come before added ones.
        let mut q = first;
        while q < last {
            if ops[q] == Op::Equal {
                let (oi, ni) = pos[q];
                h.lines
                    .push(line(LineKind::Context, Some(oi), Some(ni), la[oi]));
                q += 1;
                continue;
            }
            let r = q + ops[q..last].iter().take_while(|o| **o != Op::Equal).count();
            for p in q..r {
                if ops[p] == Op::Delete {
                    let oi = pos[p].0;
                    h.lines
                        .push(line(LineKind::Removed, Some(oi), None, la[oi]));
                }
            }
            for p in q..r {
                if ops[p] == Op::Insert {
                    let ni = pos[p].1;
                    h.lines.push(line(LineKind::Added, None, Some(ni), lb[ni]));
                }
            }
            q = r;
        }
        shown += h.lines.len();
        if shown > limits.file_lines {
            let over = shown - limits.file_lines;
            let keep = h.lines.len().saturating_sub(over);
            h.lines.truncate(keep);
            if !h.lines.is_empty() {
                hunks.push(h);
            }
            cut = true;
            break;
        }
        hunks.push(h);
        idx = last;
    }
    Some(TextDiff {
        hunks,
        added,
        removed,
        cut,
    })
}

/// A file as the summary names it: `a.py`.
fn quoted(p: &str) -> String {
    format!("`{p}`")
}

fn counts(d: &FileDiff) -> String {
    match (d.added, d.removed) {
        (Some(a), Some(r)) => format!("(+{a} -{r})"),
        _ => match (&d.old, &d.new) {
            (Some(o), Some(n)) if o.size != n.size => format!("({} -> {} bytes)", o.size, n.size),
            _ => "(same size, other bytes)".to_string(),
        },
    }
}

/// `what` is how the match is named ("trusted \"Count rows\""); `fields` the metadata that
/// differ ("the description"). "identical to trusted "Count rows" except `a.py` (+2 -1) and a
/// new file `net.py`".
pub(crate) fn summary(what: &str, fields: &[&str], files: &[FileDiff]) -> String {
    let mut parts: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    for d in files {
        parts.push(match d.change {
            Change::Unchanged => continue,
            Change::Changed => format!("{} {}", quoted(&d.path), counts(d)),
            Change::Added => format!("a new file {}", quoted(&d.path)),
            Change::Removed => format!("{} removed", quoted(&d.path)),
            Change::Renamed => format!(
                "{} renamed from {}",
                quoted(&d.path),
                quoted(d.from.as_deref().unwrap_or("?"))
            ),
        });
    }
    match parts.len() {
        0 => format!("identical to {what}"),
        1 => format!("identical to {what} except {}", parts[0]),
        n => format!(
            "identical to {what} except {} and {}",
            parts[..n - 1].join(", "),
            parts[n - 1]
        ),
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
