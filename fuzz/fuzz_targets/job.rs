//! A pending job whose every metadata field varies (absent, or any JSON value of any type:
//! huge and negative numbers, floats, dates at the ends of the calendar, nested values), run
//! through inspection, the review and its explanation, the expiry, the status rewrite and the
//! API's job listing, detail and explanation. Nothing may panic, and the API answers with a
//! status the web server can send.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use syft_reviewer::web::api::Api;
use syft_reviewer::daemon::live::Live;
use syft_reviewer::queue::metadata::Metadata;
use syft_reviewer::queue::review::{self, Trust};
use syft_reviewer::syftbox::{Identity, Layout};

const OWNER: &str = "owner@example.org";
const UID: &str = "00000000-0000-4000-8000-000000000001";

/// Every field syft-code-queue writes, plus one it does not.
const KEYS: [&str; 18] = [
    "uid",
    "name",
    "requester_email",
    "target_email",
    "code_folder",
    "description",
    "created_at",
    "timeout_seconds",
    "tags",
    "status",
    "updated_at",
    "started_at",
    "completed_at",
    "output_folder",
    "error_message",
    "exit_code",
    "logs",
    "future_field",
];

const STRINGS: [&str; 16] = [
    UID,
    OWNER,
    "alice@example.org",
    "2026-11-22T02:42:19.502718",
    "+262143-12-31T23:59:59.999999",
    "-262143-01-01T00:00:00",
    "9999-12-31T23:59:59.999999999",
    "0000-01-01T00:00:00",
    "2026-11-22T02:42:19+14:00",
    "2026-11-22T02:42:19-23:59",
    "2026-02-30T25:61:61",
    "1970-01-01 00:00:00",
    "",
    "\u{202e}evil\u{2066}",
    "\x1b]52;c;aGk=\x07",
    "pending",
];

const NUMBERS: [f64; 8] = [
    0.0,
    -1.0,
    86400.5,
    1e13,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
];

fn value(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    let pick = u.int_in_range(0..=9)?;
    Ok(match pick {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(NUMBERS[u.choose_index(NUMBERS.len())?])
            .or_else(|| Number::from_f64(u.arbitrary::<f64>().ok()?))
            .map_or(Value::Null, Value::Number),
        5 => Value::String(STRINGS[u.choose_index(STRINGS.len())?].to_string()),
        6 => Value::String(u.arbitrary()?),
        7 if depth < 3 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array((0..n).map(|_| value(u, depth + 1)).collect::<Result<_, _>>()?)
        }
        8 if depth < 3 => {
            let n = u.int_in_range(0..=3)?;
            let mut m = Map::new();
            for _ in 0..n {
                m.insert(u.arbitrary()?, value(u, depth + 1)?);
            }
            Value::Object(m)
        }
        _ => Value::from(u.int_in_range(-100_000i64..=10_000_000_000_000)?),
    })
}

/// The metadata document: each field absent, right for the job (so it is not simply ignored),
/// or any value.
fn document(u: &mut Unstructured) -> arbitrary::Result<Map<String, Value>> {
    let mut doc = Map::new();
    for key in KEYS {
        match u.int_in_range(0..=3)? {
            0 => {}
            1 => {
                let right = match key {
                    "uid" => Value::from(UID),
                    "target_email" => Value::from(OWNER),
                    "requester_email" => Value::from("alice@example.org"),
                    "tags" => Value::Array(vec![Value::from("t")]),
                    "timeout_seconds" => Value::from(86400),
                    "created_at" | "updated_at" => Value::from("2026-11-22T02:42:19.502718"),
                    _ => Value::from("x"),
                };
                doc.insert(key.into(), right);
            }
            _ => {
                doc.insert(key.into(), value(u, 0)?);
            }
        }
    }
    Ok(doc)
}

struct World {
    _dir: tempfile::TempDir,
    layout: Layout,
    api: Api,
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
        let job = layout.queue.join("pending").join(UID);
        std::fs::create_dir_all(job.join("code")).unwrap();
        std::fs::write(job.join("code/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        let api = Api::new(layout.clone(), Arc::new(Live::default()), "fuzz");
        World {
            _dir: dir,
            layout,
            api,
        }
    })
}

fn seg(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn check(answer: Result<syft_reviewer::web::api::Reply, syft_reviewer::web::api::ApiError>) {
    match answer {
        Ok(reply) => {
            assert!((200..300).contains(&reply.status), "{reply:?}");
            serde_json::to_string(&reply.body).unwrap();
        }
        Err(e) => {
            assert!((400..600).contains(&e.status), "{e:?}");
            assert!(!e.error.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(doc) = document(&mut u) else { return };
    let cap: Option<u64> = u.arbitrary().unwrap_or(None);
    let max_age: Option<u64> = u.arbitrary().unwrap_or(None);
    let w = world();
    let job = w.layout.queue.join("pending").join(UID);
    std::fs::write(job.join("metadata.json"), Value::Object(doc).to_string()).unwrap();

    let ins = syft_reviewer::queue::inspect(&job, OWNER);
    let r = review::review(&job, OWNER, &Trust::default());
    serde_json::to_string(&r.explanation()).unwrap();
    if let Some(m) = &ins.meta {
        let _ = syft_reviewer::queue::gate::expires_at(&m.meta, &job, cap);
        let mut m = m.clone();
        m.set_status("timedout", Some("expired"));
        Metadata::parse(&m.to_json()).expect("a rewritten job parses back");
    }
    let mut query = String::from("status=pending");
    if let Some(h) = max_age {
        query.push_str(&format!("&max_age_hours={h}"));
    }
    check(w.api.handle("GET", &seg(&["api", "v1", "jobs"]), &query, b""));
    check(w.api.handle("GET", &seg(&["api", "v1", "jobs", UID]), "", b""));
    check(w.api.handle("GET", &seg(&["api", "v1", "jobs", UID, "explain"]), "", b""));
});
