//! The Prometheus metrics: automatic and human decisions, latency and the audit result.

use serde_json::json;

use crate::gate::{BOB, EVE, QUIET_WEB, WAIT, ok, signature_of, wait_status, wait_waiting};
use crate::http::serve;
use crate::util::*;

// ------------------------------------------------------------------------------ metrics

/// The value of one sample (`name{labels}` exactly as written) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {v:?} is not a number ({e})"))
        })
}

#[test]
fn metrics_count_automatic_and_human_decisions_latency_and_the_audit_result() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let web = serve(&sb, &QUIET_WEB);
    let auto = sb.submit(BOB, &simple_code());
    let waiting = sb.submit(EVE, &simple_code());
    wait_status(&sb, &web.daemon, &auto, "approved");
    wait_waiting(&sb, &web.daemon, &waiting);

    let metrics = || {
        let r = web.get("/metrics");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.headers["content-type"].starts_with("text/plain"), "{r:?}");
        r.text
    };
    let allowlist = r#"syft_reviewer_decisions_total{outcome="approved",method="allowlist"}"#;
    let mut text = String::new();
    assert!(
        wait_for(WAIT, || {
            text = metrics();
            sample(&text, allowlist) == Some(1.0)
                && sample(&text, "syft_reviewer_waiting_jobs{flagged=\"false\"}") == Some(1.0)
        }),
        "{text}"
    );
    assert_eq!(
        sample(&text, "syft_reviewer_pending_jobs"),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE syft_reviewer_decisions_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE syft_reviewer_pending_jobs gauge"),
        "{text}"
    );

    // The latency histogram: cumulative buckets, +Inf equal to the count, a sum.
    let h = "syft_reviewer_decision_latency_seconds";
    assert!(text.contains(&format!("# TYPE {h} histogram")), "{text}");
    let count = sample(&text, &format!("{h}_count")).expect("a _count");
    assert!(count >= 1.0, "{text}");
    assert_eq!(
        sample(&text, &format!("{h}_bucket{{le=\"+Inf\"}}")),
        Some(count)
    );
    assert!(
        sample(&text, &format!("{h}_sum")).is_some_and(|s| s >= 0.0),
        "{text}"
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() >= 2, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "not cumulative: {text}"
    );

    for counter in [
        "syft_reviewer_watcher_rescans_total",
        "syft_reviewer_watcher_errors_total",
        "syft_reviewer_watcher_events_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {counter} counter")),
            "{counter}: {text}"
        );
        assert!(
            sample(&text, counter).is_some_and(|v| v >= 0.0),
            "{counter}: {text}"
        );
    }
    assert_eq!(
        sample(&text, "syft_reviewer_audit_chain_valid"),
        Some(1.0),
        "{text}"
    );

    // A human decision through the API is counted with method "human".
    web.post(
        &format!("/api/v1/jobs/{waiting}/decide"),
        Some(&json!({"verdict": "reject", "rationale": "no",
            "signature": signature_of(&sb, &sb.job_dir("pending", &waiting))})),
    )
    .expect(200);
    let human = r#"syft_reviewer_decisions_total{outcome="rejected",method="human"}"#;
    assert!(
        wait_for(WAIT, || {
            text = metrics();
            sample(&text, human) == Some(1.0)
        }),
        "{text}"
    );
    assert_eq!(
        sample(&text, "syft_reviewer_pending_jobs"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, allowlist), Some(1.0), "{text}");
}
