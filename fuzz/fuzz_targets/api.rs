//! The JSON API router (`Api::handle`) with arbitrary methods, path segments, query strings and
//! bodies, against a temporary datasite holding a few jobs. Nothing may panic, and every answer
//! is a status the web server can send (errors 4xx/5xx with a message, successes 200/201/204).
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use syft_reviewer::web::api::{Api, Query};
use syft_reviewer::daemon::live::Live;
use syft_reviewer::syftbox::{Identity, Layout};

const OWNER: &str = "owner@example.org";

#[derive(Debug, Arbitrary)]
enum Seg {
    Known(u8),
    Uid(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    api_prefix: bool,
    segments: Vec<Seg>,
    query: String,
    body: Vec<u8>,
    json_body: Option<Vec<(String, String)>>,
}

const METHODS: [&str; 6] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"];
const WORDS: [&str; 24] = [
    "api", "v1", "status", "allowlist", "add", "remove", "me", "check", "trusted-code", "history",
    "mark", "unmark", "check-signature", "add-to-history", "peers", "approve", "revoke", "jobs",
    "explain", "decide", "audit", "verify", "decisions", "alice@example.org",
];

struct World {
    _dir: tempfile::TempDir,
    api: Api,
    uids: Vec<String>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&Identity {
            data_dir: dir.path().join("SyftBox"),
            email: OWNER.into(),
            source: None,
        });
        for s in ["pending", "approved", "running", "completed", "failed", "rejected", "timedout"] {
            std::fs::create_dir_all(layout.queue.join(s)).unwrap();
        }
        syft_reviewer::store::appdata::ensure_app_data(&layout).unwrap();
        let mut uids = Vec::new();
        for (i, status) in ["pending", "approved", "completed"].iter().enumerate() {
            let uid = format!("0000000{i}-0000-4000-8000-000000000000");
            let job = layout.queue.join(status).join(&uid);
            std::fs::create_dir_all(job.join("code")).unwrap();
            std::fs::write(job.join("code/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
            let meta = serde_json::json!({
                "uid": uid, "name": "Job", "requester_email": "alice@example.org",
                "target_email": OWNER, "description": "d", "tags": ["t"],
                "created_at": "2030-01-01T00:00:00", "timeout_seconds": 86400,
                "status": status, "updated_at": "2030-01-01T00:00:00",
            });
            std::fs::write(job.join("metadata.json"), meta.to_string()).unwrap();
            uids.push(uid);
        }
        uids.push("../../etc".into());
        let api = Api::new(layout, Arc::new(Live::default()), "fuzz");
        World { _dir: dir, api, uids }
    })
}

fuzz_target!(|input: Input| {
    let w = world();
    let method = METHODS[input.method as usize % METHODS.len()];
    let mut segments: Vec<String> = Vec::new();
    if input.api_prefix {
        segments.push("api".into());
    }
    for s in input.segments.into_iter().take(8) {
        segments.push(match s {
            Seg::Known(i) => WORDS[i as usize % WORDS.len()].to_string(),
            Seg::Uid(i) => w.uids[i as usize % w.uids.len()].clone(),
            Seg::Raw(r) => r,
        });
    }
    let body = match input.json_body {
        Some(pairs) => serde_json::Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
        .to_string()
        .into_bytes(),
        None => input.body,
    };
    let _ = Query::parse(&input.query).get("limit");
    match w.api.handle(method, &segments, &input.query, &body) {
        Ok(reply) => assert!((200..300).contains(&reply.status), "{reply:?}"),
        Err(e) => {
            assert!((400..600).contains(&e.status), "{e:?}");
            assert!(!e.error.is_empty());
        }
    }
});
