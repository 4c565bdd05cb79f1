//! Facts about a job's files that signature v1 does not cover (SPEC §5, §8), added to its
//! [`Inspection`] after the code walk:
//!
//! - Permission files and sync markers are left out of the signature, yet SyftBox syncs
//!   permission files and a `run.sh` can execute them. Only plain `syft.pub.yaml` permission
//!   files and empty `.syftkeep` files may ride along with trusted code or rules; anything else
//!   is a doubt that stops those two paths. Sync markers never travel, so a job holding one was
//!   not written by sync as it is (a conflict or a local write): it is not approved automatically
//!   at all.
//! - A hard-linked file shares its content with a file outside the job, which can change it after
//!   approval: such a job is not approved automatically at all.
//! - Invisible characters ([`crate::core::visible`]) in code, file names, name, description, tags or
//!   sender make the job look like something else: it waits for the owner, with a warning that
//!   says where and which character. A byte order mark at the very start of a file is an
//!   encoding signature, not hidden text, and is allowed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::core::hash_cache::{FileCache, FileKey};
use crate::core::signature::{self, MAX_FILES, MAX_TOTAL_BYTES};
use crate::core::visible;
use crate::queue::Inspection;

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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// 1-based line and column (in characters).
    pub line: u64,
    pub column: u64,
    /// `U+202E`.
    pub code_point: String,
    pub name: &'static str,
}

const HITS_KEPT: usize = 5;
const PERM_FILE_LIMIT: u64 = 64 * 1024;

/// Adds what the checks find to `ins` (nothing for folders that are not jobs for this owner).
pub(crate) fn add_findings(ins: &mut Inspection) {
    if ins.ignored.is_some() {
        return;
    }
    crate::queue::copies::flag(ins);
    if let Some(m) = &ins.meta {
        let m = &m.meta;
        let mut fields = vec![
            ("name", m.name.clone()),
            ("description", m.description.clone()),
            ("requester_email", m.requester_email.clone()),
        ];
        fields.extend(m.tags.iter().map(|t| ("tags", t.clone())));
        for (place, text) in fields {
            let mut scan = TextScan::new(false);
            scan.controls = true;
            scan.feed_str(&text);
            ins.findings.push_invisible(place, scan.total, scan.hits);
        }
    }
    check_job_folder(ins);
    walk_code(ins);
    let problems: Vec<String> = ins.findings.invisible.iter().map(describe).collect();
    ins.problems.extend(problems);
}

impl Findings {
    fn push_invisible(&mut self, place: &str, total: u64, hits: Vec<Hit>) {
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

fn describe(i: &Invisible) -> String {
    let listed: Vec<String> = i
        .hits
        .iter()
        .map(|h| {
            format!(
                "{} {} at line {}, column {}",
                h.code_point, h.name, h.line, h.column
            )
        })
        .collect();
    let more = i.total.saturating_sub(i.hits.len() as u64);
    format!(
        "{} contains {} invisible character(s) that change how it is shown: {}{}; what you read \
         may not be what runs, so a person must look at it",
        i.place,
        i.total,
        listed.join("; "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

fn walk_code(ins: &mut Inspection) {
    let code = ins.dir.join("code");
    if !std::fs::symlink_metadata(&code).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let mut to_read = Vec::new();
    let mut total = 0u64;
    for (n, entry) in walkdir::WalkDir::new(&code)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if n > MAX_FILES {
            // The code walk reports the size; nothing here is worth reading a huge job for.
            return;
        }
        let rel = entry.path().strip_prefix(&code).unwrap_or(entry.path());
        let Some(rel) = rel.to_str() else { continue };
        let mut name_scan = TextScan::new(false);
        name_scan.controls = true;
        name_scan.feed_str(rel);
        ins.findings.push_invisible(
            &format!("file name code/{rel}"),
            name_scan.total,
            name_scan.hits,
        );
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.nlink() > 1 {
            ins.problems.push(format!(
                "code/{rel} has {} hard links: it shares its content with a file outside what was \
                 reviewed, which can change it after approval",
                meta.nlink()
            ));
        }
        let name = entry.file_name().to_string_lossy();
        if signature::is_excluded(&name) {
            check_excluded(ins, rel, &name, entry.path(), meta.len());
        } else {
            total = total.saturating_add(meta.len());
            to_read.push((rel.to_string(), entry.path().to_path_buf()));
        }
    }
    // Code the signature walk did not read in full (over a cap, sparse, too slow) is not read
    // here either: the job is flagged already, and reading it is what an attacker wants.
    let read_in_full = ins.scan.as_ref().is_some_and(|s| s.complete);
    if total > MAX_TOTAL_BYTES || !read_in_full {
        return;
    }
    for (rel, path) in to_read {
        if let Some((count, hits)) = scan_file(&path) {
            ins.findings
                .push_invisible(&format!("code/{rel}"), count, hits);
        }
    }
}

/// Entries of a job folder looked at beyond `metadata.json` and `code/`: a job needs none.
const JOB_FOLDER_ENTRIES: usize = 64;

/// Anything in the job folder besides `metadata.json`, `code/` and plain permission files is
/// outside what the signature covers, yet `run.sh` can reach it as `../<name>`.
fn check_job_folder(ins: &mut Inspection) {
    let Ok(entries) = std::fs::read_dir(&ins.dir) else {
        return;
    };
    for (n, entry) in entries.flatten().enumerate() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if n >= JOB_FOLDER_ENTRIES {
            ins.findings.code_doubts.push(format!(
                "the job folder holds more than {JOB_FOLDER_ENTRIES} entries besides its code"
            ));
            return;
        }
        let plain_permission_file = name == crate::store::permfile::FILE_NAME
            && entry.file_type().is_ok_and(|t| t.is_file())
            && check_permission_file_cached(&entry.path()).is_ok();
        if name == "metadata.json" || name == "code" || plain_permission_file {
            continue;
        }
        ins.findings.code_doubts.push(format!(
            "{} sits in the job folder outside code/: the signature does not cover it, yet \
             run.sh can reach it as ../{}",
            name, name
        ));
    }
}

fn check_excluded(ins: &mut Inspection, rel: &str, name: &str, path: &Path, size: u64) {
    let doubt = match name {
        crate::store::permfile::FILE_NAME => match check_permission_file_cached(path) {
            Ok(()) => None,
            Err(why) => Some(format!(
                "code/{rel} is not a plain permission file ({why}); permission files are left \
                 out of the signature, yet SyftBox syncs them and run.sh could execute them"
            )),
        },
        ".syftkeep" if size == 0 => None,
        ".syftkeep" => Some(format!(
            "code/{rel} is not empty ({size} bytes); it is left out of the signature, so its \
             content was never part of what was trusted"
        )),
        "syftperm.yaml" | "_.syftperm" => Some(format!(
            "code/{rel} is an old-style permission file that is left out of the signature, yet \
             SyftBox syncs it and run.sh could execute it; only syft.pub.yaml is accepted"
        )),
        _ => {
            ins.problems.push(format!(
                "code/{rel} is a sync marker: SyftBox never syncs these, so this job was not \
                 written by sync as it stands (a conflict, or a local write)"
            ));
            None
        }
    };
    ins.findings.code_doubts.extend(doubt);
}

/// Verdicts on permission-file contents already checked, by the SHA-256 of the content: the
/// verdict depends on nothing else, and jobs from one client carry the same few files.
type Verdicts = std::collections::HashMap<[u8; 32], Result<(), String>>;
static PERM_VERDICTS: std::sync::Mutex<Option<Verdicts>> = std::sync::Mutex::new(None);
/// Distinct contents remembered (forgotten all at once beyond that: memory stays bounded).
const PERM_VERDICTS_KEPT: usize = 4096;

/// The same verdicts by file identity, so an unchanged file is not even read again.
static PERM_BY_FILE: FileCache<Result<(), String>> = FileCache::new();

fn check_permission_file_cached(path: &Path) -> Result<(), String> {
    let key = |p: &Path| std::fs::symlink_metadata(p).ok().map(|m| FileKey::of(&m));
    let before = key(path);
    if let Some(v) = before.as_ref().and_then(|k| PERM_BY_FILE.get(k)) {
        return v;
    }
    let started = std::time::SystemTime::now();
    let verdict = check_permission_content(path);
    if let (Some(before), Some(after)) = (before, key(path)) {
        PERM_BY_FILE.put(&before, &after, started, verdict.clone());
    }
    verdict
}

fn check_permission_content(path: &Path) -> Result<(), String> {
    use sha2::Digest;
    let bytes = crate::durable::read_capped(path, PERM_FILE_LIMIT).map_err(|e| e.to_string())?;
    let key: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let cached = |f: &mut dyn FnMut(&mut Verdicts)| {
        let mut guard = PERM_VERDICTS.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(Default::default))
    };
    let mut hit = None;
    cached(&mut |c| hit = c.get(&key).cloned());
    if let Some(v) = hit {
        return v;
    }
    // Parsed without the lock held: jobs are inspected on several threads at once.
    let verdict = check_permission_text(&bytes);
    cached(&mut |c| {
        if c.len() >= PERM_VERDICTS_KEPT {
            c.clear();
        }
        c.insert(key, verdict.clone());
    });
    verdict
}

/// A `syft.pub.yaml` that is nothing but permission rules: what `permfile` reads, with known
/// keys only, an alphabet with no shell or script syntax, and every line starting with a key or
/// a list dash, so that no interpreter finds a command in it.
fn check_permission_text(bytes: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        terminal: Option<bool>,
        #[serde(default)]
        rules: Vec<StrictRule>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct StrictRule {
        pattern: String,
        #[serde(default)]
        access: StrictAccess,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct StrictAccess {
        #[serde(default)]
        admin: Vec<String>,
        #[serde(default)]
        write: Vec<String>,
        #[serde(default)]
        read: Vec<String>,
    }
    const KEYS: [&str; 7] = [
        "terminal:",
        "rules:",
        "pattern:",
        "access:",
        "admin:",
        "write:",
        "read:",
    ];
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_alphanumeric() || " \n\r-_.:@*?{}[]/,'\"+".contains(*c)))
    {
        return Err(format!(
            "it contains {}, which a permission file never needs",
            visible::code_point(c)
        ));
    }
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches(' ');
        let ok = line.trim_end().is_empty()
            || line.starts_with(['-', ']', '}'])
            || KEYS.iter().any(|k| line.starts_with(k));
        if !ok {
            return Err(format!(
                "line {} starts with something other than a permission-file key",
                n + 1
            ));
        }
    }
    crate::store::permfile::PermFile::parse(text).map_err(|e| e.to_string())?;
    if !text.trim().is_empty() {
        serde_saphyr::from_str::<Strict>(text).map_err(|e| {
            format!(
                "it has fields a permission file does not: {}",
                e.to_string().lines().next().unwrap_or("")
            )
        })?;
    }
    Ok(())
}

/// How many invisible characters a file holds, and the first few.
type Found = (u64, Vec<Hit>);

/// Unchanged files are not read again (the same bounded cache as the code digests).
static CACHE: FileCache<Found> = FileCache::new();

/// Invisible characters in a code file's text, read once per version of the file. Reading stops
/// at the first byte that is not UTF-8: what follows is not text anyone is shown.
fn scan_file(path: &Path) -> Option<Found> {
    let (mut file, meta) = crate::durable::open_regular(path).ok()?;
    let before = FileKey::of(&meta);
    if let Some(found) = CACHE.get(&before) {
        return Some(found);
    }
    let started = std::time::SystemTime::now();
    let mut scan = TextScan::new(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return None,
        };
        carry.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&carry) {
            Ok(s) => {
                scan.feed_str(s);
                carry.clear();
            }
            Err(e) => {
                let good = e.valid_up_to();
                // Safe: the prefix was just checked.
                scan.feed_str(std::str::from_utf8(&carry[..good]).unwrap_or(""));
                if e.error_len().is_some() {
                    carry.clear();
                    break;
                }
                carry.drain(..good);
            }
        }
    }
    let found = (scan.total, scan.hits);
    if let Ok(after) = file.metadata() {
        CACHE.put(&before, &FileKey::of(&after), started, found.clone());
    }
    Some(found)
}

/// Finds invisible characters in text fed piece by piece, counting lines and columns.
struct TextScan {
    line: u64,
    column: u64,
    total: u64,
    hits: Vec<Hit>,
    /// A byte order mark here (the very start of a file) is allowed.
    at_start: bool,
    /// Also find control characters other than tab and newline (in names and metadata, where
    /// they have no business; code may hold colour escapes or form feeds).
    controls: bool,
}

impl TextScan {
    fn new(allow_bom: bool) -> TextScan {
        TextScan {
            line: 1,
            column: 0,
            total: 0,
            hits: Vec::new(),
            at_start: allow_bom,
            controls: false,
        }
    }

    fn feed_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if s.is_ascii() && !(self.controls && s.bytes().any(|b| b.is_ascii_control())) {
            // The common case: no character to find, only lines to count.
            match s.rfind('\n') {
                Some(last) => {
                    self.line += s.bytes().filter(|b| *b == b'\n').count() as u64;
                    self.column = (s.len() - last - 1) as u64;
                }
                None => self.column += s.len() as u64,
            }
            self.at_start = false;
            return;
        }
        for c in s.chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 0;
                self.at_start = false;
                continue;
            }
            self.column += 1;
            let bom = self.at_start && c == '\u{FEFF}';
            self.at_start = false;
            if bom {
                continue;
            }
            let control = self.controls && c.is_control() && c != '\t';
            let name = if control {
                Some("CONTROL CHARACTER")
            } else {
                visible::invisible_name(c)
            };
            if let Some(name) = name {
                self.total += 1;
                if self.hits.len() < HITS_KEPT {
                    self.hits.push(Hit {
                        line: self.line,
                        column: self.column,
                        code_point: visible::code_point(c),
                        name,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(text: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syft.pub.yaml");
        std::fs::write(&p, text).unwrap();
        check_permission_file_cached(&p)
    }

    #[test]
    fn only_plain_permission_files_pass() {
        // What the queue client and this app write.
        perm("rules:\n- pattern: run.sh\n  access:\n    read:\n    - a@x.org\n    write:\n    - b@x.org\n    admin: []\n").unwrap();
        perm("terminal: false\nrules:\n  - pattern: '**'\n    access: {admin: [], write: [], read: ['*']}\n").unwrap();
        perm("").unwrap();
        for bad in [
            "#!/bin/sh\necho PWNED\n",
            "rules: []\nx: $(id)\n",
            "rules: [{pattern: \"$(id)\"}]\n",
            "terminal: &sh false\n",
            "rules:\n- pattern: x\n  extra: 1\n",
            "rules: [{access: {}, pattern:\nreboot\n}]\n",
            "rules: 'oops'\n",
        ] {
            assert!(perm(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn lines_and_columns_across_pieces() {
        let mut s = TextScan::new(true);
        s.feed_str("\u{feff}ab\n");
        s.feed_str("if x != 'none\u{202e} \u{2066}// c\u{2069}':\n");
        assert_eq!(s.total, 3);
        assert_eq!((s.hits[0].line, s.hits[0].column), (2, 14));
        assert_eq!(s.hits[0].code_point, "U+202E");
        let mut mid = TextScan::new(false);
        mid.feed_str("\u{feff}");
        assert_eq!(mid.total, 1);
    }
}
