//! The web UI in a real headless Chromium: a person reviews a job through its diff. A one-line
//! change to a trusted pattern shows that line and nothing else; the switch opens the full
//! files; the person approves; the Trusted code tab says who marked the pattern and which jobs it
//! approved. Screenshots are saved in `target/browser-artifacts/` as the other browser tests do.

use serde_json::json;

use crate::browser::{Browser, wait_disk};
use crate::http::{WAIT, ok, serve};
use crate::util::*;

fn script_lines(changed: bool) -> Vec<u8> {
    (1..=40)
        .map(|i| {
            if changed && i == 20 {
                "total = sum(rows) / 10  # per ten\n".to_string()
            } else {
                format!("value_{i} = {i}\n")
            }
        })
        .collect::<String>()
        .into_bytes()
}

#[test]
fn a_person_reviews_a_job_through_its_diff() {
    let sb = Sandbox::new();
    let run: &[u8] = b"python3 main.py\n";
    let (old, new) = (script_lines(false), script_lines(true));
    let from = "carol@lab.example";
    let first = sb.submit_with(
        from,
        OWNER,
        "Mean rows",
        "Averages",
        &["stats"],
        &[("run.sh", run), ("main.py", &old)],
        "pending",
    );
    ok(&sb.cli(&["trust", "add", "--job", &first]));
    let web = serve(&sb, &[]);
    wait_disk(&web, "the trusted job was not approved", || {
        sb.status_of(&first).as_deref() == Some("approved")
    });
    let uid = sb.submit_with(
        from,
        OWNER,
        "Mean rows",
        "Averages",
        &["stats"],
        &[("run.sh", run), ("main.py", &new)],
        "pending",
    );

    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));
    let card = format!("#panel-pending article.job[data-uid=\"{uid}\"]");
    b.wait_find(&card);

    // The summary at the top of the job says what changed, before anything is opened.
    let summary = b.wait_find(&format!("{card} .diff-summary"));
    assert!(
        wait_for(WAIT, || b
            .text(&summary)
            .contains("except `main.py` (+1 -1)")),
        "summary: {}",
        b.text(&summary)
    );
    assert!(
        b.text(&summary)
            .contains("identical to trusted \"Mean rows\"")
    );

    // The diff: the changed line, removed and added, and nothing else changed.
    b.click(&b.wait_find(&format!("{card} button.toggle-diff")));
    b.wait_find(&format!("{card} .diff-file[data-path=\"main.py\"]"));
    let rows = |kind: &str| -> Vec<String> {
        let v = b.script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.querySelector('.tx').textContent);",
            json!([format!("{card} .diff-panel .dl-{kind}")]),
        );
        serde_json::from_value(v).unwrap()
    };
    assert_eq!(rows("added"), ["total = sum(rows) / 10  # per ten"]);
    assert_eq!(rows("removed"), ["value_20 = 20"]);
    assert_eq!(
        rows("context").len(),
        6,
        "three lines of context on each side"
    );
    let files = b.script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.dataset.path);",
        json!([format!("{card} .diff-panel .diff-file")]),
    );
    assert_eq!(
        files,
        json!(["main.py"]),
        "only the changed file has a diff"
    );
    let panel = b.text(&b.wait_find(&format!("{card} .diff-panel")));
    assert!(panel.contains("1 file identical: run.sh"), "{panel}");
    assert!(!panel.contains("value_1 = 1\n"), "{panel}");
    b.no_error_banner();
    b.screenshot_showing("diff-pending", &format!("{card} .diff-panel"));

    // The switch to the full files opens the job's code.
    b.click(&b.wait_find(&format!("{card} button.show-full")));
    assert!(
        wait_for(WAIT, || b
            .text(&b.wait_find(&format!("{card} .code-panel")))
            .contains("value_1 = 1")),
        "the full files are not shown"
    );

    // Approve what was read.
    b.click(&b.wait_find(&format!("{card} button.approve")));
    wait_disk(&web, "approving in the page did not move the job", || {
        sb.status_of(&uid).as_deref() == Some("approved")
    });

    // An invisible character in a changed line is a visible mark in the diff.
    let mut hidden = old.clone();
    hidden.splice(0..0, "x = 1\u{200B}\n".bytes());
    let sneaky = sb.submit_with(
        from,
        OWNER,
        "Mean rows",
        "Averages",
        &["stats"],
        &[("run.sh", run), ("main.py", &hidden)],
        "pending",
    );
    let card = format!("#panel-pending article.job[data-uid=\"{sneaky}\"]");
    b.click(&b.wait_find(&format!("{card} button.toggle-diff")));
    let mark = b.wait_find(&format!("{card} .diff-panel .dl-added .hidden-char"));
    assert_eq!(b.text(&mark), "⟨U+200B⟩");
    b.screenshot_showing("diff-invisible", &format!("{card} .diff-panel"));

    // Trusted code: who marked the pattern, and the job it approved.
    b.open_tab("trusted");
    let rec = b.wait_find("#trusted-list li.record");
    assert!(
        wait_for(WAIT, || {
            let t = b.text(&rec);
            t.contains("by cli") && t.contains("1 job") && t.contains(&first)
        }),
        "trusted pattern: {}",
        b.text(&rec)
    );
    b.wait_find("#trusted-list li.record button.unmark");
    b.no_error_banner();
    b.screenshot("diff-trusted");
}
