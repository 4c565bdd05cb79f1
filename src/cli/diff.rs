//! `explain --diff`: what changed in a job, printed as a summary and a unified diff. Every line
//! of job text goes through [`term`], so invisible characters and terminal controls in the code
//! show as `⟨U+XXXX⟩` marks.

use super::common::term;
use crate::core::diff::{Change, FileDiff, LineKind, Shown, Version};
use crate::service::diff::{Closeness, JobDiff, Source};

pub(crate) fn print(d: &JobDiff) {
    println!();
    println!("what changed: {}", term(&d.summary));
    let Some(c) = &d.closest else {
        return;
    };
    let source = match c.source {
        Source::Trusted => "trusted code",
        Source::History => "history entry",
    };
    let why = match c.closeness {
        Closeness::SameNameAndSender => "same name and sender".to_string(),
        Closeness::SharedFiles => format!("{} identical files", c.shared_files),
    };
    println!(
        "compared with: {source} \"{}\" ({why}), signature {}",
        term(&c.name),
        c.signature
    );
    for f in &d.fields {
        println!(
            "{}: {} -> {}",
            f.field,
            term(&f.old.to_string()),
            term(&f.new.to_string())
        );
    }
    for f in &d.files {
        file(f);
    }
}

fn version(v: &Option<Version>) -> String {
    v.as_ref().map_or("-".into(), |v| {
        format!("{} bytes, sha256:{}", v.size, v.sha256)
    })
}

fn file(f: &FileDiff) {
    let path = term(&f.path);
    match (f.change, f.shown) {
        (Change::Unchanged, _) => return,
        (Change::Renamed, _) => {
            let from = f.from.as_deref().unwrap_or("?");
            println!("renamed: {} -> {path} (identical bytes)", term(from));
            return;
        }
        (_, Shown::Lines) => {}
        (change, why) => {
            let why = match why {
                Shown::Binary => "binary",
                Shown::TooLarge => "too large to diff by line",
                Shown::TooDifferent => "too different to diff by line",
                _ => "text not kept",
            };
            let what = match change {
                Change::Added => "added",
                Change::Removed => "removed",
                _ => "changed",
            };
            println!(
                "{what} ({why}): {path}: {} -> {}",
                version(&f.old),
                version(&f.new)
            );
            return;
        }
    }
    let old = if f.old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let new = if f.new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    println!("--- {old}");
    println!("+++ {new}");
    for h in &f.hunks {
        println!(
            "@@ -{},{} +{},{} @@",
            h.old_start, h.old_lines, h.new_start, h.new_lines
        );
        for l in &h.lines {
            let mark = match l.kind {
                LineKind::Context => ' ',
                LineKind::Added => '+',
                LineKind::Removed => '-',
            };
            println!("{mark}{}", term(&l.text));
            if !l.eol {
                println!("\\ No newline at end of file");
            }
        }
    }
    if f.cut {
        println!("(the diff of {path} is cut here: it is longer than the lines shown)");
    }
}
