//! `syft-reviewer mcp`: a Model Context Protocol server over stdio (newline-delimited JSON-RPC
//! 2.0), so an assistant in the owner's terminal can list, explain and decide pending jobs (one by
//! one, or many with one verdict). Each tool calls the same services as the web UI and answers
//! what its API would (the same JSON, the same errors), and every call is recorded in the audit
//! chain with actor `mcp`.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

use crate::daemon::live::Live;
use crate::service::jobs::{self, ListQuery};
use crate::service::{bulk, decide, diff};
use crate::store::audit::{Actor, AuditEvent, AuditLog, Event};
use crate::syftbox::Layout;
use crate::web::api::{ApiError, DECIDE_BODY, parse_body, parse_bulk};

const PROTOCOL_VERSION: &str = "2025-06-18";

fn tools() -> Value {
    json!([
        {
            "name": "approvals.list",
            "description": "List jobs waiting in the owner's queue (pending by default), newest first, with the reviewer's dry-run verdict and reasons.",
            "inputSchema": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["pending", "approved", "running", "completed", "failed", "rejected", "timedout"]},
                "sender": {"type": "string"}, "name": {"type": "string"},
                "offset": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 500}
            }, "additionalProperties": false}
        },
        {
            "name": "approvals.explain",
            "description": "Explain what the reviewer would do with a job and why (a dry run; changes nothing), and what changed since the closest trusted code or history entry (diff: a summary line and per-file unified hunks). A uid in several status folders is refused unless status says which copy is meant.",
            "inputSchema": {"type": "object", "properties": {"uid": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "approved", "running", "completed", "failed", "rejected", "timedout"]}}, "required": ["uid"], "additionalProperties": false}
        },
        {
            "name": "approvals.decide",
            "description": "Decide a pending job: approve, reject or request_changes. A rationale is required for reject and request_changes. The signature of the job you reviewed (from approvals.list or approvals.explain) is required; the verdict is refused if the job changed.",
            "inputSchema": {"type": "object", "properties": {
                "uid": {"type": "string"},
                "verdict": {"type": "string", "enum": ["approve", "reject", "request_changes"]},
                "rationale": {"type": "string"},
                "signature": {"type": "string"},
                "status": {"type": "string", "enum": ["pending"], "description": "needed when the uid is also in another status folder"}
            }, "required": ["uid", "verdict", "signature"], "additionalProperties": false}
        },
        {
            "name": "approvals.decide_many",
            "description": "Decide many pending jobs with one verdict and one rationale, chosen either by a filter (reject or request_changes only) or by a list of jobs with the signatures you reviewed (any verdict). Each job is checked again and gets its own audit entry; the answer counts what was decided and refused and says why each refusal happened (up to 1,000 jobs listed).",
            "inputSchema": {"type": "object", "properties": {
                "verdict": {"type": "string", "enum": ["approve", "reject", "request_changes"]},
                "rationale": {"type": "string"},
                "filter": {"type": "object", "properties": {
                    "sender": {"type": "string", "description": "part of the sender's email"},
                    "name": {"type": "string", "description": "part of the job's name"},
                    "flagged": {"type": "boolean"},
                    "older_than_hours": {"type": "integer", "minimum": 0, "maximum": 876000},
                    "max_age_hours": {"type": "integer", "minimum": 0, "maximum": 876000}
                }, "additionalProperties": false},
                "jobs": {"type": "array", "maxItems": 4000, "items": {"type": "object", "properties": {
                    "uid": {"type": "string"}, "signature": {"type": "string"}
                }, "required": ["uid", "signature"], "additionalProperties": false}},
                "limit": {"type": "integer", "minimum": 0, "description": "decide at most this many"}
            }, "required": ["verdict"], "additionalProperties": false}
        }
    ])
}

/// Serves requests from `input` until it closes.
pub fn serve(layout: &Layout, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    // Decisions made here are counted nowhere: the metrics are the running daemon's.
    let live = Live::default();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        // A panic in one handler answers that request with an error; the server keeps serving.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle_line(layout, &live, &line)
        }));
        let reply = handled.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("an MCP request failed inside the server: {what}");
            // Notifications (no id) get no answer, even when they fail.
            let id = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|m| m.get("id").cloned())?;
            Some(error(
                id,
                -32603,
                &format!("internal error: the request failed inside the server ({what}); it may not have finished, see syft-reviewer's log; other requests are unaffected"),
            ))
        });
        if let Some(reply) = reply {
            // Escaped like the CLI's JSON: same values, no raw invisible or control characters.
            writeln!(output, "{}", crate::core::visible::json_line(&reply))?;
            output.flush()?;
        }
    }
    Ok(())
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn handle_line(layout: &Layout, live: &Live, line: &str) -> Option<Value> {
    let msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
    };
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return id.map(|id| error(id, -32600, "invalid request: no method"));
    };
    // Notifications (no id) get no answer.
    let id = id?;
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => {
            let version = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(PROTOCOL_VERSION);
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "syft-reviewer", "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Review the code-execution jobs waiting for this SyftBox datasite's owner. Explain a job before deciding it."
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": tools()}),
        "tools/call" => call_tool(layout, live, &params),
        other => return Some(error(id, -32601, &format!("method not found: {other}"))),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn call_tool(layout: &Layout, live: &Live, params: &Value) -> Value {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let text = |k: &str| args.get(k).and_then(Value::as_str);
    let number = |k: &str| args.get(k).and_then(Value::as_u64).map(|n| n as usize);
    let uid = text("uid").unwrap_or("");
    let answer: Result<Value, ApiError> = match name {
        "approvals.list" => (|| {
            let defaults = ListQuery::default();
            let q = ListQuery {
                status: jobs::listed_status(text("status"))?,
                offset: number("offset").unwrap_or(defaults.offset),
                limit: number("limit").unwrap_or(defaults.limit),
                sender: text("sender").unwrap_or("").to_string(),
                name: text("name").unwrap_or("").to_string(),
                max_age_hours: None,
            };
            if let Some(page) = from_daemon(layout, &q) {
                return Ok(page);
            }
            Ok(to_value(jobs::list(layout, None, &q)?))
        })(),
        "approvals.explain" => (|| {
            let status = match text("status") {
                None | Some("") => None,
                Some(s) => Some(jobs::parse_status(s)?),
            };
            let dir = jobs::find(layout, uid, status)?;
            let mut v = to_value(jobs::review(layout, &dir)?.explanation());
            if let Some(o) = v.as_object_mut() {
                o.insert("diff".into(), to_value(diff::diff_dir(layout, &dir)?));
            }
            Ok(v)
        })(),
        "approvals.decide" => (|| {
            let mut body = args.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("uid");
            }
            let req = parse_body(body.to_string().as_bytes(), DECIDE_BODY)?;
            Ok(to_value(decide::decide_reviewed(
                layout,
                live,
                &Actor::Mcp,
                uid,
                req,
            )?))
        })(),
        "approvals.decide_many" => (|| {
            let req = parse_bulk(args.to_string().as_bytes())?;
            bulk::check_request(&req)?;
            // Chosen from the running reviewer's index when one answers, else from the disk.
            let chosen = match &req.selection {
                bulk::Selection::Filter(f) => crate::remote::chosen(&layout.state, f)
                    .unwrap_or_else(|why| {
                        log::warn!("the running reviewer could not choose the jobs ({why}); read from the disk");
                        None
                    }),
                bulk::Selection::List(_) => None,
            };
            Ok(to_value(bulk::decide_among(
                layout,
                &Actor::Mcp,
                &req,
                None,
                chosen,
            )?))
        })(),
        other => {
            return json!({"content": [{"type": "text", "text": format!("unknown tool {other:?}: use approvals.list, approvals.explain, approvals.decide or approvals.decide_many")}], "isError": true});
        }
    };
    let (is_error, body, outcome) = match answer {
        Ok(body) => (false, body, "ok".to_string()),
        Err(e) => (true, e.body(), format!("error {}", e.status)),
    };
    let ev = Event {
        event: AuditEvent::McpCall,
        actor: Actor::Mcp,
        uid: args.get("uid").and_then(Value::as_str).map(str::to_owned),
        signature: None,
        email: None,
        outcome,
        reasons: vec![format!("{name} {}", capped(args.to_string()))],
    };
    if let Err(e) = AuditLog::new(layout).append(&[ev]) {
        log::error!("could not append to the audit chain: {e}");
    }
    json!({
        "content": [{"type": "text", "text": crate::core::visible::json_pretty(&body)}],
        "structuredContent": body,
        "isError": is_error,
    })
}

/// The page `q` asks for from the running reviewer (`GET /api/v1/jobs`: chosen from its index),
/// or `None` when none answers, so the page is read from the disk.
fn from_daemon(layout: &Layout, q: &ListQuery) -> Option<Value> {
    let (offset, limit) = (q.offset.to_string(), q.limit.to_string());
    let query = crate::remote::query(&[
        ("status", q.status.as_str()),
        ("sender", &q.sender),
        ("name", &q.name),
        ("offset", &offset),
        ("limit", &limit),
    ]);
    match crate::remote::ask(&layout.state, &format!("/api/v1/jobs?{query}")) {
        Ok(page) => page,
        Err(why) => {
            log::warn!("the running reviewer could not list the jobs ({why}); read from the disk");
            None
        }
    }
}

/// A call's arguments as recorded: a list of thousands of jobs is cut (each decided job has its
/// own audit entry).
fn capped(mut s: String) -> String {
    const MAX: usize = 4096;
    if s.len() > MAX {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" …");
    }
    s
}

fn to_value(result: impl serde::Serialize) -> Value {
    serde_json::to_value(result).unwrap_or_default()
}
