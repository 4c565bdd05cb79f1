//! `syft-reviewer mcp`: a Model Context Protocol server over stdio (newline-delimited JSON-RPC
//! 2.0), so an assistant in the owner's terminal can list, explain and decide pending jobs. Each
//! tool goes through the same API handlers as the web UI, and every call is recorded in the
//! audit chain with actor `mcp`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::daemon::live::Live;
use crate::store::audit::{Actor, AuditEvent, AuditLog, Event};
use crate::syftbox::Layout;
use crate::web::api::Api;

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
            "description": "Explain what the reviewer would do with a job and why (a dry run; changes nothing). A uid in several status folders is refused unless status says which copy is meant.",
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
        }
    ])
}

/// Serves requests from `input` until it closes.
pub fn serve(layout: &Layout, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let api = Api::new(layout.clone(), Arc::new(Live::default()), Actor::Mcp);
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        // A panic in one handler answers that request with an error; the server keeps serving.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle_line(layout, &api, &line)
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

fn handle_line(layout: &Layout, api: &Api, line: &str) -> Option<Value> {
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
        "tools/call" => call_tool(layout, api, &params),
        other => return Some(error(id, -32601, &format!("method not found: {other}"))),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn call_tool(layout: &Layout, api: &Api, params: &Value) -> Value {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let arg = |k: &str| {
        args.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let seg = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let answer = match name {
        "approvals.list" => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for k in ["status", "sender", "name"] {
                if let Some(v) = args.get(k).and_then(Value::as_str) {
                    q.append_pair(k, v);
                }
            }
            for k in ["offset", "limit"] {
                if let Some(v) = args.get(k).and_then(Value::as_u64) {
                    q.append_pair(k, &v.to_string());
                }
            }
            api.handle("GET", &seg(&["api", "v1", "jobs"]), &q.finish(), b"")
        }
        "approvals.explain" => api.handle(
            "GET",
            &seg(&["api", "v1", "jobs", &arg("uid"), "explain"]),
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("status", &arg("status"))
                .finish(),
            b"",
        ),
        "approvals.decide" => {
            let mut body = args.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("uid");
            }
            api.handle(
                "POST",
                &seg(&["api", "v1", "jobs", &arg("uid"), "decide"]),
                "",
                body.to_string().as_bytes(),
            )
        }
        other => {
            return json!({"content": [{"type": "text", "text": format!("unknown tool {other:?}: use approvals.list, approvals.explain or approvals.decide")}], "isError": true});
        }
    };
    let (is_error, body, outcome) = match answer {
        Ok(r) => (false, r.body, "ok".to_string()),
        Err(e) => (true, e.body(), format!("error {}", e.status)),
    };
    let ev = Event {
        event: AuditEvent::McpCall,
        actor: Actor::Mcp,
        uid: args.get("uid").and_then(Value::as_str).map(str::to_owned),
        signature: None,
        email: None,
        outcome,
        reasons: vec![format!("{name} {args}")],
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
