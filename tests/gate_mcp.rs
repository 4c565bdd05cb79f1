//! The MCP server over stdio: it lists, explains and decides jobs, and audits every call.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::gate::{
    WAIT, assert_audited, assert_logged, assert_rejected, assert_valid, audit_where, signature_of,
    two_waiting,
};
use crate::util::*;

// ------------------------------------------------------------------------------ MCP

#[test]
fn mcp_server_lists_explains_and_decides_over_stdio_and_audits_every_call() {
    let (sb, job, other, _d) = two_waiting();
    let mut mcp = Mcp::start(&sb);

    let v = mcp.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {},
               "clientInfo": {"name": "gate-test", "version": "0"}}),
    );
    let r = &v["result"];
    assert_eq!(r["protocolVersion"], "2025-03-26", "{v}");
    assert_eq!(r["serverInfo"]["name"], "syft-reviewer", "{v}");
    assert!(r["capabilities"]["tools"].is_object(), "{v}");

    // A notification gets no answer: the next line answers the next request.
    mcp.send_raw(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
    let v = mcp.request(2, "tools/list", json!({}));
    let tools = v["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "approvals.list",
            "approvals.explain",
            "approvals.decide",
            "approvals.decide_many"
        ]
    );
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{t}"
        );
    }
    let decide_schema = &tools[2]["inputSchema"];
    assert_eq!(
        decide_schema["required"],
        json!(["uid", "verdict", "signature"])
    );
    assert_eq!(
        decide_schema["properties"]["verdict"]["enum"],
        json!(["approve", "reject", "request_changes"])
    );
    assert_eq!(tools[1]["inputSchema"]["required"], json!(["uid"]));

    let r = mcp.call(3, "approvals.list", json!({}));
    assert_eq!(r["isError"], false, "{r}");
    let listed: BTreeSet<&str> = r["structuredContent"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([job.as_str(), other.as_str()]),
        "{r}"
    );

    let r = mcp.call(4, "approvals.explain", json!({"uid": job}));
    assert_eq!(r["isError"], false, "{r}");
    let x = &r["structuredContent"];
    assert_eq!(
        (&x["uid"], &x["would"]),
        (&json!(job), &json!("wait")),
        "{r}"
    );
    assert!(!x["reasons"].as_array().unwrap().is_empty(), "{r}");

    // No rationale: refused, as a tool error, and nothing moved.
    let r = mcp.call(
        5,
        "approvals.decide",
        json!({"uid": other, "verdict": "reject"}),
    );
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        r["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("rationale"),
        "{r}"
    );
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));

    let r = mcp.call(
        6,
        "approvals.decide",
        json!({"uid": job, "verdict": "reject", "rationale": "joins on the raw table",
            "signature": signature_of(&sb, &sb.job_dir("pending", &job))}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(
        (
            &r["structuredContent"]["status"],
            &r["structuredContent"]["actor"]
        ),
        (&json!("rejected"), &json!("mcp")),
        "{r}"
    );
    assert_rejected(&sb, &job, "joins on the raw table");
    assert_logged(&sb, &job, "rejected", Some("joins on the raw table"));

    let v = mcp.request(7, "no/such/method", json!({}));
    assert_eq!(v["error"]["code"], -32601, "{v}");
    mcp.send_raw("{this is not json");
    let v = mcp.recv();
    assert_eq!(
        (&v["error"]["code"], &v["id"]),
        (&json!(-32700), &Value::Null),
        "{v}"
    );
    // Still serving after the errors.
    let v = mcp.request(8, "ping", json!({}));
    assert!(v["result"].is_object(), "{v}");

    // Closing stdin ends the server cleanly.
    drop(mcp.stdin.take());
    let mut status = None;
    assert!(wait_for(WAIT, || {
        status = mcp.child.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success(), "{status:?}");

    // Every tool call is in the chain with actor mcp; the decision too.
    let calls = audit_where(&sb, |e| e["event"] == "mcp.call");
    assert_eq!(calls.len(), 4, "{calls:?}");
    for (c, tool) in calls.iter().zip([
        "approvals.list",
        "approvals.explain",
        "approvals.decide",
        "approvals.decide",
    ]) {
        assert_eq!(c["actor"], "mcp", "{c}");
        assert!(
            c["reasons"][0].as_str().unwrap().starts_with(tool),
            "{tool}: {c}"
        );
    }
    assert_eq!(calls[0]["outcome"], "ok");
    assert!(
        calls[2]["outcome"].as_str().unwrap().starts_with("error"),
        "{}",
        calls[2]
    );
    assert_eq!(calls[2]["uid"], other.as_str());
    assert_eq!(
        (&calls[3]["outcome"], &calls[3]["uid"]),
        (&json!("ok"), &json!(job))
    );
    assert_audited(&sb, &job, "mcp", "rejected", None);
    assert!(
        audit_where(&sb, |e| e["event"] == "decision"
            && e["uid"] == other.as_str())
        .is_empty()
    );
    assert_valid(&sb);
}
