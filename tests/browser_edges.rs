//! The rough edges of the web UI, in a real headless Chromium (helpers from `browser`): a job
//! without `created_at` shows when the daemon will expire it; the Decisions table shows the
//! date of decisions made on another day and shortens signatures in its reasons, with a copy
//! button; the notice at the bottom of the window never covers a row. Screenshots are saved in
//! `target/browser-artifacts/`.

use std::time::Duration;

use serde_json::json;

use crate::browser::Browser;
use crate::http::serve;
use crate::util::*;

const WAIT: Duration = Duration::from_secs(15);
const EVE: &str = "eve@evil.example";

/// A time zone whose date differs from this machine's today (the page then sees the daemon's
/// times of today as another day): UTC+14 or UTC-12, whichever crosses midnight from now.
fn other_day_zone() -> &'static str {
    use chrono::Datelike;
    let here = chrono::Local::now();
    let ahead = here.with_timezone(&chrono::FixedOffset::east_opt(14 * 3600).unwrap());
    if ahead.day() != here.day() {
        "Pacific/Kiritimati"
    } else {
        "Etc/GMT+12"
    }
}

#[test]
fn the_decisions_table_the_notice_and_expiries_read_well_in_the_browser() {
    let sb = Sandbox::new();
    // Enough waiting jobs for the Decisions table to fill the window; each "waiting" decision
    // names the job's 64-hex signature in its reasons.
    for i in 0..14 {
        sb.submit_with(
            EVE,
            OWNER,
            &format!("Job {i}"),
            "Counts rows",
            &[],
            &[("run.sh", format!("#!/bin/sh\necho {i}\n").as_bytes())],
            "pending",
        );
    }
    let undated = submit_edited(&sb, EVE, "No date", "pending", |m| {
        m.as_object_mut().unwrap().remove("created_at");
    });
    let web = serve(&sb, &["--rescan-secs", "3600"]);
    assert!(
        wait_for(WAIT, || sb.decisions().len() >= 15),
        "{}",
        web.daemon.log_text()
    );
    // The API sends the expiry the daemon will apply (from the file's time, one day on).
    let job = web.get(&format!("/api/v1/jobs/{undated}")).expect(200);
    assert!(job["created_at"].is_null(), "{job}");
    assert!(
        job["expires_at"]
            .as_str()
            .and_then(syft_reviewer::queue::metadata::parse_naive)
            .is_some(),
        "{job}"
    );

    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));
    let badge = b.wait_find(&format!(
        "#panel-pending article.job[data-uid=\"{undated}\"] .badge.age"
    ));
    let text = b.text(&badge);
    assert!(
        text.contains("expires in 23h") || text.contains("expires in 24h"),
        "{text}"
    );
    assert!(!text.contains("no timeout"), "{text}");
    b.screenshot_showing(
        "edges-undated-job",
        &format!("article.job[data-uid=\"{undated}\"]"),
    );

    // Decisions of today show the time of day only.
    b.open_tab("decisions");
    b.wait_find("#decisions-body tr");
    let times = || -> Vec<String> {
        let v = b.script(
            "return [...document.querySelectorAll('#decisions-body tr td:first-child')].map(t => t.innerText.trim())",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    };
    let today = times();
    assert!(
        !today.is_empty()
            && today
                .iter()
                .all(|t| t.len() == 8 && t.as_bytes()[2] == b':'),
        "{today:?}"
    );

    // Reasons: each signature shortened, its full value in the title, with a copy button.
    let sig = syft_reviewer::core::signature::signature_v1(
        "No date",
        "Counts rows",
        &["stats".to_string()],
        &syft_reviewer::core::signature::scan_code(&sb.job_dir("pending", &undated).join("code"))
            .unwrap()
            .files,
    );
    let row = format!("#decisions-body tr[data-uid=\"{undated}\"]");
    let cell = b.wait_find(&format!("{row} td.reasons-cell"));
    let shown = b.text(&cell);
    assert!(
        !shown.contains(&sig) && shown.contains(&sig[..12]),
        "{shown}"
    );
    assert_eq!(
        b.script(
            "const c = document.querySelector(arguments[0]); return c ? c.title : null",
            json!([format!("{row} td.reasons-cell .sig code.hash")])
        ),
        sig
    );
    b.wait_find(&format!("{row} td.reasons-cell .sig button.copy"));

    // The notice at the bottom never covers a row: not at the page's end, not with the last row
    // scrolled into view.
    b.script(
        "import('/notices.js').then((m) => m.notice('Job approved: the notice the owner sees after a verdict'))",
        json!([]),
    );
    // (Fixed in the window, it has no offsetParent: `displayed` cannot tell.)
    assert!(wait_for(WAIT, || b.script(
        "return document.getElementById('notice').classList.contains('show')",
        json!([])
    ) == true));
    let covered = |how: &str| -> serde_json::Value {
        b.script(
            &format!(
                "{how};
                 const n = document.getElementById('notice').getBoundingClientRect();
                 return [...document.querySelectorAll('#decisions-body tr')]
                   .map((r) => r.getBoundingClientRect())
                   .filter((r) => r.bottom > n.top && r.top < n.bottom && r.right > n.left && r.left < n.right)
                   .length;"
            ),
            json!([]),
        )
    };
    assert_eq!(
        covered("window.scrollTo(0, document.documentElement.scrollHeight)"),
        0
    );
    b.save_screenshot("edges-notice-at-the-end");
    assert_eq!(
        covered(
            "document.querySelector('#decisions-body tr:last-child').scrollIntoView({block: 'end'})"
        ),
        0
    );

    // Seen from another day, the same decisions show their date.
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": other_day_zone()}})),
    );
    b.goto(&format!("{}/", web.base()));
    b.open_tab("decisions");
    b.wait_find("#decisions-body tr");
    let other = times();
    assert!(
        other
            .iter()
            .all(|t| t.len() == 16 && t.starts_with("20") && t.as_bytes()[10] == b' '),
        "{other:?}"
    );
    b.no_error_banner();
    b.screenshot("edges-decisions");
}

/// Jobs the reviewer has not read yet (its settle window outlasts the test) beyond the few the
/// page reads itself are shown as being reviewed, with Reject but no Approve: there is no
/// signature to approve.
#[test]
fn jobs_not_read_yet_show_as_being_reviewed_without_approve() {
    let sb = Sandbox::new();
    let web = serve(&sb, &["--settle-ms", "600000", "--rescan-secs", "3600"]);
    for i in 0..12 {
        sb.submit_with(
            EVE,
            OWNER,
            &format!("Arrival {i}"),
            "Counts rows",
            &[],
            &[("run.sh", format!("#!/bin/sh\necho {i}\n").as_bytes())],
            "pending",
        );
    }
    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));
    // Once older than 2 s, 8 are read by the page itself; the other 4 stay as they are.
    let read = "#panel-pending article.job[data-verdict=\"wait\"]";
    let unread = "#panel-pending article.job[data-being-reviewed=\"true\"]";
    let count = |css: &str| {
        b.script(
            "return document.querySelectorAll(arguments[0]).length",
            json!([css]),
        )
    };
    assert!(
        wait_for(Duration::from_secs(60), || count(read) == 8
            && count(unread) == 4),
        "read {} and being reviewed {}; log:\n{}",
        count(read),
        count(unread),
        web.daemon.log_text()
    );
    let head = b.text(&b.wait_find(&format!("{unread} .card-head")));
    assert!(head.contains("Being reviewed"), "{head}");
    assert!(!b.displayed(&format!("{unread} button.approve")));
    assert!(b.displayed(&format!("{unread} button.reject")));
    assert!(b.displayed(&format!("{read} button.approve")));
    b.screenshot_showing("edges-being-reviewed", unread);
    b.no_error_banner();
}
