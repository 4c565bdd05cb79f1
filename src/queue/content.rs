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

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::core::hash_cache::{FileCache, FileKey};
use crate::core::signature::{self, MAX_FILES};
use crate::core::visible::{self, TextScan};
use crate::queue::job::{Inspection, Invisible};

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

/// The names, link counts and excluded files of the code, from the entries the signature walk
/// met, and the invisible characters its hashing read found, in file-name order.
fn walk_code(ins: &mut Inspection) {
    let Some(scan) = ins.scan.as_mut() else {
        return;
    };
    let complete = scan.complete;
    let Some(mut walked) = scan.walked.take() else {
        // The walk stopped at a cap or the deadline: walk again as far as the checks go.
        return walk_code_again(ins);
    };
    walked.sort_by(|a, b| a.rel.cmp(&b.rel));
    // The checks look at this many entries at most: nothing is worth reading a huge job for.
    let cut = walked.len() > MAX_FILES + 1;
    walked.truncate(MAX_FILES + 1);
    let code = ins.dir.join("code");
    let mut texts = Vec::new();
    for w in walked {
        let Some(rel) = w.rel.to_str() else { continue };
        check_name(ins, rel);
        let signature::WalkedKind::File {
            nlink,
            len,
            key,
            excluded,
            text,
        } = w.kind
        else {
            continue;
        };
        check_links(ins, rel, nlink);
        if excluded {
            let name = w
                .rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_excluded(ins, rel, &name, &code.join(&w.rel), len, Some(key));
        } else if let Some(found) = text {
            texts.push((rel.to_string(), found));
        }
    }
    // Code the signature walk did not read in full (over a cap, sparse, too slow) has no text
    // findings: the job is flagged already, and reading it is what an attacker wants.
    if cut || !complete {
        return;
    }
    for (rel, (count, hits)) in texts {
        ins.findings
            .push_invisible(&format!("code/{rel}"), count, hits);
    }
}

fn check_name(ins: &mut Inspection, rel: &str) {
    let mut name_scan = TextScan::new(false);
    name_scan.controls = true;
    name_scan.feed_str(rel);
    ins.findings.push_invisible(
        &format!("file name code/{rel}"),
        name_scan.total,
        name_scan.hits,
    );
}

fn check_links(ins: &mut Inspection, rel: &str, nlink: u64) {
    if nlink > 1 {
        ins.problems.push(format!(
            "code/{rel} has {nlink} hard links: it shares its content with a file outside what was \
             reviewed, which can change it after approval"
        ));
    }
}

/// [`walk_code`] for code the signature walk gave up on: names, links and excluded files of the
/// first entries in file-name order, and no file content (the code was not read in full).
fn walk_code_again(ins: &mut Inspection) {
    let code = ins.dir.join("code");
    if !std::fs::symlink_metadata(&code).is_ok_and(|m| m.is_dir()) {
        return;
    }
    for entry in walkdir::WalkDir::new(&code)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .take(MAX_FILES + 1)
    {
        let rel = entry.path().strip_prefix(&code).unwrap_or(entry.path());
        let Some(rel) = rel.to_str() else { continue };
        check_name(ins, rel);
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        check_links(ins, rel, meta.nlink());
        let name = entry.file_name().to_string_lossy();
        if signature::is_excluded(&name) {
            let key = FileKey::of(&meta);
            check_excluded(ins, rel, &name, entry.path(), meta.len(), Some(key));
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
            && check_permission_file_cached(&entry.path(), None).is_ok();
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

/// `key` is the file's identity as the walk that found it saw it, if it did.
fn check_excluded(
    ins: &mut Inspection,
    rel: &str,
    name: &str,
    path: &Path,
    size: u64,
    key: Option<FileKey>,
) {
    let doubt = match name {
        crate::store::permfile::FILE_NAME => match check_permission_file_cached(path, key) {
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
/// Distinct contents remembered (forgotten all at once beyond that: memory stays bounded).
static PERM_VERDICTS: crate::core::hash_cache::ByDigest<Result<(), String>> =
    crate::core::hash_cache::ByDigest::new(4096);

/// The same verdicts by file identity, so an unchanged file is not even read again. Most jobs
/// carry one or two permission files, read in the review and again after the move: two
/// generations of 2,048 hold a batch's (0.3 MB each, not the 1.3 MB of the code files' size; a
/// miss costs a read, the verdict itself is remembered by content above).
pub(crate) static PERM_BY_FILE: FileCache<Result<(), String>> = FileCache::new(2048);

/// The verdict on the permission file at `path`; `seen` is its identity from the walk that has
/// just met it, so the verdict is the one on the file as that walk saw it, as for the code files
/// the same walk hashes (whatever changes later is for the check after the move to see).
fn check_permission_file_cached(path: &Path, seen: Option<FileKey>) -> Result<(), String> {
    if let Some(v) = seen.as_ref().and_then(|k| PERM_BY_FILE.get(k)) {
        return v;
    }
    // The identity looked up is the one of the file opened, from its descriptor: no second
    // lookup of the path, and nothing can swap the file between the look and the read.
    let (file, meta) = crate::durable::open_regular(path).map_err(|e| e.to_string())?;
    let before = FileKey::of(&meta);
    if let Some(v) = PERM_BY_FILE.get(&before) {
        return v;
    }
    let started = std::time::SystemTime::now();
    let verdict = crate::durable::read_opened(path, &file, &meta, PERM_FILE_LIMIT)
        .map_err(|e| e.to_string())
        .and_then(|bytes| check_permission_bytes(&bytes));
    // A file changed within the last moments is not remembered (see `FileCache::put`), so it
    // needs no second look once read: in a burst, every file the permission lock has just
    // rewritten, which the check after the move still reads in full.
    if before.quiet_at(started)
        && let Ok(after) = file.metadata()
    {
        PERM_BY_FILE.put(&before, &FileKey::of(&after), started, verdict.clone());
    }
    verdict
}

fn check_permission_bytes(bytes: &[u8]) -> Result<(), String> {
    use sha2::Digest;
    PERM_VERDICTS.get_or(&sha2::Sha256::digest(bytes).into(), || {
        check_permission_text(bytes)
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn perm(text: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syft.pub.yaml");
        std::fs::write(&p, text).unwrap();
        check_permission_file_cached(&p, None)
    }

    /// The verdict cache is keyed by the identity of the file read: a permission file rewritten
    /// in place or replaced after a check that was remembered is read and judged again.
    #[test]
    fn a_permission_file_changed_after_a_remembered_check_is_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syft.pub.yaml");
        let good = "rules:\n- pattern: '**'\n  access:\n    read:\n    - '*'\n";
        std::fs::write(&p, good).unwrap();
        // Old enough to be remembered (see `hash_cache::QUIET`, whole seconds).
        std::thread::sleep(std::time::Duration::from_millis(3100));
        assert_eq!(check_permission_file_cached(&p, None), Ok(()));
        let key = FileKey::of(&std::fs::symlink_metadata(&p).unwrap());
        assert_eq!(PERM_BY_FILE.get(&key), Some(Ok(())), "remembered");
        let bad = "#!/bin/sh\necho PWNED\n";
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap()
            .write_all(bad.as_bytes())
            .unwrap();
        assert!(
            check_permission_file_cached(&p, None).is_err(),
            "rewritten in place"
        );
        let other = dir.path().join("other");
        std::fs::write(&other, good).unwrap();
        std::fs::rename(&other, &p).unwrap();
        assert_eq!(check_permission_file_cached(&p, None), Ok(()), "replaced");
        std::fs::write(&other, bad).unwrap();
        std::fs::rename(&other, &p).unwrap();
        assert!(
            check_permission_file_cached(&p, None).is_err(),
            "replaced again"
        );
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
}
