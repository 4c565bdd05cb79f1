//! Clearing a flood in the browser: the owner filters the Pending tab by the flooding sender,
//! selects all matching jobs, rejects them with one rationale and one confirmation naming the
//! count and the sender, and sees the result; on disk every one of them is rejected and the
//! other sender's job still waits. Screenshots in `target/browser-artifacts/`.

use serde_json::json;

use crate::browser::{Browser, WAIT, wait_disk};
use crate::http::serve;
use crate::util::*;

const FLOOD: &str = "spam@flood.example";
const CAROL: &str = "carol@lab.example";

#[test]
fn a_person_rejects_a_flood_of_jobs_in_one_step() {
    let sb = Sandbox::new();
    let flood: Vec<String> = (0..12).map(|_| sb.submit(FLOOD, &simple_code())).collect();
    let carol = sb.submit(CAROL, &simple_code());
    let web = serve(&sb, &[]);
    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));
    b.wait_find(&format!("#panel-pending article.job[data-uid=\"{carol}\"]"));

    // The current filter: the flooding sender; "select all matching" offers exactly its jobs.
    let sender = b.wait_find("#filter-sender");
    b.type_into(&sender, FLOOD);
    b.click(&b.wait_find("#filter-apply"));
    let select = b.wait_find("#bulk-select");
    assert!(
        wait_for(WAIT, || b.text(&select) == "Select all 12 matching"),
        "the selection offers {:?}; page:\n{}",
        b.text(&select),
        b.page_text()
    );
    b.wait_gone(&format!("#panel-pending article.job[data-uid=\"{carol}\"]"));
    b.click(&select);
    let rationale = b.wait_find("#bulk-rationale");
    b.type_into(&rationale, "unsolicited jobs");
    b.screenshot("pending-bulk-selected");

    // One click, one confirmation with the count and the sender, then the result.
    b.click(&b.wait_find("#bulk-reject"));
    b.accept_confirm(&format!("Reject 12 jobs from {FLOOD}?"));
    let result = b.wait_find("#bulk-result");
    assert!(
        wait_for(WAIT, || b.text(&result).contains("Rejected 12 jobs.")),
        "the result says {:?}",
        b.text(&result)
    );
    wait_disk(&web, "the flood was not rejected on disk", || {
        flood
            .iter()
            .all(|u| sb.status_of(u).as_deref() == Some("rejected"))
    });
    for uid in &flood {
        assert_eq!(
            sb.metadata("rejected", uid)["error_message"],
            "unsolicited jobs"
        );
    }
    assert_eq!(sb.status_of(&carol).as_deref(), Some("pending"));
    // The list empties; the result stays shown.
    let empty = b.wait_find("#pending-empty");
    assert!(
        wait_for(WAIT, || b.text(&empty).contains("No pending jobs match")),
        "{}",
        b.page_text()
    );
    assert!(
        b.text(&result).contains("Rejected 12 jobs."),
        "{}",
        b.page_text()
    );
    // The status strip follows: the flood is no longer pending.
    let pending = b.wait_find("#st-pending");
    assert!(
        wait_for(WAIT, || b.text(&pending) == "1"),
        "status strip: {}",
        b.text(&pending)
    );
    b.no_error_banner();
    b.screenshot("pending-bulk-done");

    // With the filter cleared, the other sender's job is still there to decide.
    b.click(&b.wait_find("#filter-clear"));
    b.wait_find(&format!("#panel-pending article.job[data-uid=\"{carol}\"]"));
    assert_eq!(
        b.script(
            "return document.getElementById('bulk-select').textContent",
            json!([])
        ),
        "Select all 1 matching"
    );
}
