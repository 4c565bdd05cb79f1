//! Unit tests of [`super`]: the line diff, the file pairing and the summary.

use super::*;

fn text<'a>(path: &'a str, sha: &'a str, body: &'a str) -> Side<'a> {
    Side {
        path,
        sha256: sha,
        size: body.len() as u64,
        content: Content::Text(body),
    }
}

fn shown(d: &FileDiff) -> Vec<String> {
    d.hunks
        .iter()
        .flat_map(|h| h.lines.iter())
        .map(|l| {
            let mark = match l.kind {
                LineKind::Context => ' ',
                LineKind::Added => '+',
                LineKind::Removed => '-',
            };
            format!("{mark}{}", l.text)
        })
        .collect()
}

#[test]
fn a_one_line_change_shows_that_line_with_its_context_and_nothing_else() {
    let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let new = old.replace("line 10\n", "line ten\n");
    let d = diff_files(
        &[text("a.py", "1", &old)],
        &[text("a.py", "2", &new)],
        &LIMITS,
    );
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].change, d[0].shown), (Change::Changed, Shown::Lines));
    assert_eq!((d[0].added, d[0].removed), (Some(1), Some(1)));
    assert_eq!(d[0].hunks.len(), 1);
    let h = &d[0].hunks[0];
    assert_eq!(
        (h.old_start, h.old_lines, h.new_start, h.new_lines),
        (7, 7, 7, 7)
    );
    assert_eq!(
        shown(&d[0]),
        [
            " line 7",
            " line 8",
            " line 9",
            "-line 10",
            "+line ten",
            " line 11",
            " line 12",
            " line 13"
        ]
    );
    let changed = &h.lines[3];
    assert_eq!((changed.old, changed.new), (Some(10), None));
}

#[test]
fn distant_changes_make_two_hunks_and_near_ones_one() {
    let old: String = (1..=40).map(|i| format!("{i}\n")).collect();
    let far = old
        .replace("\n5\n", "\nfive\n")
        .replace("\n35\n", "\nthirty-five\n");
    let d = diff_files(&[text("f", "1", &old)], &[text("f", "2", &far)], &LIMITS);
    assert_eq!(d[0].hunks.len(), 2);
    let near = old
        .replace("\n5\n", "\nfive\n")
        .replace("\n10\n", "\nten\n");
    let d = diff_files(&[text("f", "1", &old)], &[text("f", "2", &near)], &LIMITS);
    assert_eq!(d[0].hunks.len(), 1);
}

#[test]
fn a_missing_final_line_break_is_a_change_and_is_said() {
    let d = diff_files(
        &[text("f", "1", "a\nb\n")],
        &[text("f", "2", "a\nb")],
        &LIMITS,
    );
    assert_eq!(shown(&d[0]), [" a", "-b", "+b"]);
    let added = &d[0].hunks[0].lines[2];
    assert!(!added.eol);
}

#[test]
fn files_are_unchanged_added_removed_renamed_or_binary() {
    let old = [
        text("run.sh", "r", "sh main.py\n"),
        text("old.py", "o", "x = 1\n"),
        text("moved.py", "m", "y = 2\n"),
        Side {
            path: "data.bin",
            sha256: "b1",
            size: 10,
            content: Content::Binary,
        },
    ];
    let new = [
        text("run.sh", "r", "sh main.py\n"),
        text("lib/moved.py", "m", "y = 2\n"),
        text("net.py", "n", "import socket\nsocket.socket()\n"),
        Side {
            path: "data.bin",
            sha256: "b2",
            size: 20,
            content: Content::Binary,
        },
    ];
    let d = diff_files(&old, &new, &LIMITS);
    let by: Vec<(&str, Change, Shown)> = d
        .iter()
        .map(|f| (f.path.as_str(), f.change, f.shown))
        .collect();
    assert_eq!(
        by,
        [
            ("run.sh", Change::Unchanged, Shown::Same),
            ("lib/moved.py", Change::Renamed, Shown::Same),
            ("net.py", Change::Added, Shown::Lines),
            ("data.bin", Change::Changed, Shown::Binary),
            ("old.py", Change::Removed, Shown::Lines),
        ]
    );
    assert_eq!(d[1].from.as_deref(), Some("moved.py"));
    assert_eq!(shown(&d[2]), ["+import socket", "+socket.socket()"]);
    assert_eq!((d[2].added, d[2].removed), (Some(2), Some(0)));
    assert_eq!(shown(&d[4]), ["-x = 1"]);
    assert_eq!(d[3].old.as_ref().map(|v| v.size), Some(10));
    assert_eq!(d[3].new.as_ref().map(|v| v.size), Some(20));
    assert_eq!(
        summary("trusted \"Count rows\"", &[], &d),
        "identical to trusted \"Count rows\" except `lib/moved.py` renamed from `moved.py`, \
         a new file `net.py`, `data.bin` (10 -> 20 bytes) and `old.py` removed"
    );
}

#[test]
fn the_summary_names_each_difference() {
    let old: String = (1..=5).map(|i| format!("{i}\n")).collect();
    let new = old.replace("3\n", "three\n3a\n");
    let d = diff_files(
        &[text("a.py", "1", &old)],
        &[text("a.py", "2", &new)],
        &LIMITS,
    );
    assert_eq!(
        summary("trusted \"X\"", &[], &d),
        "identical to trusted \"X\" except `a.py` (+2 -1)"
    );
    let same = diff_files(
        &[text("a.py", "1", &old)],
        &[text("a.py", "1", &old)],
        &LIMITS,
    );
    assert_eq!(
        summary("trusted \"X\"", &[], &same),
        "identical to trusted \"X\""
    );
    assert_eq!(
        summary("trusted \"X\"", &["the description"], &same),
        "identical to trusted \"X\" except the description"
    );
}

#[test]
fn a_hostile_pair_of_texts_costs_at_most_the_budget() {
    // Every line different: the search gives up within its budget instead of working on.
    let old: String = (0..30_000).map(|i| format!("a{i}\n")).collect();
    let new: String = (0..30_000).map(|i| format!("b{i}\n")).collect();
    let limits = Limits {
        file_work: 50_000,
        ..LIMITS
    };
    let d = diff_files(&[text("f", "1", &old)], &[text("f", "2", &new)], &limits);
    assert_eq!(d[0].shown, Shown::TooDifferent);
    assert!(d[0].hunks.is_empty());
    assert_eq!(
        summary("history \"F\"", &[], &d),
        "identical to history \"F\" except `f` (same size, other bytes)"
    );
}

#[test]
fn a_long_diff_is_cut_at_the_line_cap_and_says_so() {
    let new: String = (0..5000).map(|i| format!("{i}\n")).collect();
    let d = diff_files(&[], &[text("big", "1", &new)], &LIMITS);
    assert!(d[0].cut);
    assert_eq!(d[0].hunks[0].lines.len(), LIMITS.file_lines);
    assert_eq!(d[0].added, Some(5000));
    let old: String = (0..1200).map(|i| format!("{i}\n")).collect();
    let every_other: String = (0..1200)
        .map(|i| {
            if i % 2 == 0 {
                format!("{i}\n")
            } else {
                format!("x{i}\n")
            }
        })
        .collect();
    let limits = Limits {
        file_lines: 500,
        ..LIMITS
    };
    let d = diff_files(
        &[text("f", "1", &old)],
        &[text("f", "2", &every_other)],
        &limits,
    );
    assert_eq!(d[0].shown, Shown::Lines);
    assert!(d[0].cut);
    assert_eq!((d[0].added, d[0].removed), (Some(600), Some(600)));
    let lines: usize = d[0].hunks.iter().map(|h| h.lines.len()).sum();
    assert_eq!(lines, 500);
}

#[test]
fn a_text_that_is_not_kept_is_compared_by_hash() {
    let old = [Side {
        path: "a.py",
        sha256: "1",
        size: 5,
        content: Content::Unavailable,
    }];
    let d = diff_files(&old, &[text("a.py", "2", "x\n")], &LIMITS);
    assert_eq!(d[0].shown, Shown::Unavailable);
    let big = [Side {
        path: "a.py",
        sha256: "3",
        size: 1 << 30,
        content: Content::TooLarge,
    }];
    let d = diff_files(&old, &big, &LIMITS);
    assert_eq!(d[0].shown, Shown::TooLarge);
}
