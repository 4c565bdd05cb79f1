//! A job's `metadata.json` (SPEC §3): tolerant reading and order-preserving rewriting.
//!
//! The file is written by Python clients (pydantic dumps with naive local datetimes); we keep it
//! as a JSON object in key order, read the fields we need with their types checked, and on a
//! status change touch only `status`, `updated_at`, `completed_at` and `error_message`.

use std::path::Path;

use chrono::{Local, NaiveDateTime};
use serde_json::{Map, Value};

use crate::durable::{self, Sync};
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "metadata.json";
/// Real metadata is a few hundred bytes; anything this large is hostile or broken.
pub const MAX_SIZE: u64 = 1 << 20;

/// The fields the reviewer relies on, type-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMeta {
    pub uid: String,
    pub name: String,
    pub requester_email: String,
    pub target_email: String,
    pub description: String,
    pub tags: Vec<String>,
    pub status: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub timeout_seconds: Option<u64>,
}

/// The whole document, kept for rewriting.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub doc: Map<String, Value>,
    pub meta: JobMeta,
}

impl Metadata {
    pub fn read(job_dir: &Path) -> Result<Metadata> {
        let path = job_dir.join(FILE_NAME);
        let bytes = durable::read_capped(&path, MAX_SIZE)?;
        Metadata::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Metadata> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid("metadata.json is not valid JSON", format!("{e}")))?;
        let Value::Object(doc) = value else {
            return Err(Error::invalid(
                "metadata.json is not a JSON object",
                "a job's metadata must be an object with uid, name, requester_email, ...",
            ));
        };
        let meta = JobMeta::from_doc(&doc)?;
        Ok(Metadata { doc, meta })
    }

    /// Sets the status fields as syft-code-queue does for the same transition.
    pub fn set_status(&mut self, status: &str, error_message: Option<&str>) {
        let now = Value::String(format_naive(&now_naive()));
        self.doc
            .insert("status".into(), Value::String(status.into()));
        self.doc.insert("updated_at".into(), now.clone());
        if matches!(status, "completed" | "failed" | "rejected" | "timedout") {
            self.doc.insert("completed_at".into(), now);
        }
        if let Some(msg) = error_message {
            self.doc
                .insert("error_message".into(), Value::String(msg.into()));
        }
        self.meta.status = Some(status.to_string());
    }

    /// The document as pydantic's `json.dump(indent=2)` lays it out.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.doc).expect("a JSON map always serializes")
    }

    pub fn write(&self, job_dir: &Path, sync: &mut Sync) -> Result<()> {
        durable::write_atomic_with(&job_dir.join(FILE_NAME), &self.to_json(), 0o644, sync)
    }
}

fn field<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    doc.get(key).filter(|v| !v.is_null())
}

fn string(doc: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match field(doc, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

fn required(doc: &Map<String, Value>, key: &str) -> Result<String> {
    string(doc, key)?.ok_or_else(|| {
        Error::invalid(
            format!("metadata.json has no \"{key}\""),
            "the queue client always writes it; the job is malformed",
        )
    })
}

fn wrong_type(key: &str, expected: &str, got: &Value) -> Error {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    Error::invalid(
        format!("metadata.json field \"{key}\" is {got}"),
        format!("it must be {expected}"),
    )
}

impl JobMeta {
    fn from_doc(doc: &Map<String, Value>) -> Result<JobMeta> {
        let tags = match field(doc, "tags") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| match t {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type("tags", "a list of strings", other)),
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(wrong_type("tags", "a list of strings", other)),
        };
        let timeout_seconds = match field(doc, "timeout_seconds") {
            None => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
                Error::invalid(
                    "metadata.json field \"timeout_seconds\" is not a whole number of seconds",
                    "it must be a non-negative integer",
                )
            })?),
            Some(other) => return Err(wrong_type("timeout_seconds", "an integer", other)),
        };
        let created_at = match string(doc, "created_at")? {
            None => None,
            Some(s) => Some(parse_naive(&s).ok_or_else(|| {
                Error::invalid(
                    format!("metadata.json field \"created_at\" ({s:?}) is not a date-time"),
                    "it must be ISO 8601, like 2026-11-22T02:42:19.502718",
                )
            })?),
        };
        Ok(JobMeta {
            uid: required(doc, "uid")?,
            name: required(doc, "name")?,
            requester_email: required(doc, "requester_email")?,
            target_email: required(doc, "target_email")?,
            description: string(doc, "description")?.unwrap_or_default(),
            tags,
            status: string(doc, "status")?,
            created_at,
            timeout_seconds,
        })
    }
}

/// The local wall-clock time without a zone, as Python's `datetime.now()`.
pub fn now_naive() -> NaiveDateTime {
    Local::now().naive_local()
}

/// Python's `datetime.isoformat()` for a naive datetime (microseconds only when non-zero).
pub fn format_naive(t: &NaiveDateTime) -> String {
    if t.and_utc().timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// Accepts naive ISO datetimes and, tolerantly, ones with a zone (converted to local time).
pub fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Local).naive_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"{"uid":"7e1dc4ac-af1a-44fb-b00c-32a2850708e9","name":"Test Job",
 "requester_email":"ds@example.org","target_email":"do@example.org",
 "code_folder":"/abs/path/on/the/submitter/machine/code","description":"Demo",
 "created_at":"2026-11-22T02:42:19.502718","timeout_seconds":86400,"tags":["b","a"],
 "status":"pending","updated_at":"2026-11-22T02:42:19.502721","started_at":null,
 "completed_at":null,"output_folder":null,"error_message":null,"exit_code":null,"logs":null,
 "future_field":{"nested":[1,2]}}"#;

    #[test]
    fn parses_the_spec_example_tolerantly() {
        let m = Metadata::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(m.meta.uid, "7e1dc4ac-af1a-44fb-b00c-32a2850708e9");
        assert_eq!(m.meta.tags, vec!["b", "a"]);
        assert_eq!(m.meta.timeout_seconds, Some(86400));
        assert_eq!(
            format_naive(&m.meta.created_at.unwrap()),
            "2026-11-22T02:42:19.502718"
        );
    }

    #[test]
    fn approval_rewrite_keeps_every_other_field_in_order() {
        let mut m = Metadata::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        let before: Vec<String> = m.doc.keys().cloned().collect();
        m.set_status("approved", None);
        let out: Value = serde_json::from_slice(&m.to_json()).unwrap();
        let out = out.as_object().unwrap();
        assert_eq!(out.keys().cloned().collect::<Vec<_>>(), before);
        assert_eq!(out["status"], "approved");
        assert_ne!(out["updated_at"], "2026-11-22T02:42:19.502721");
        assert!(parse_naive(out["updated_at"].as_str().unwrap()).is_some());
        assert_eq!(out["completed_at"], Value::Null);
        assert_eq!(out["future_field"]["nested"][1], 2);
        assert_eq!(
            out["code_folder"],
            "/abs/path/on/the/submitter/machine/code"
        );
    }

    #[test]
    fn reject_rewrite_sets_completion_and_message() {
        let mut m = Metadata::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        m.set_status("rejected", Some("not allowed"));
        let out: Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(out["error_message"], "not allowed");
        assert!(out["completed_at"].is_string());
    }

    #[test]
    fn null_description_and_missing_optionals() {
        let m = Metadata::parse(
            br#"{"uid":"u","name":"n","requester_email":"a@b.org","target_email":"c@d.org","description":null}"#,
        )
        .unwrap();
        assert_eq!(m.meta.description, "");
        assert!(m.meta.tags.is_empty());
    }

    #[test]
    fn wrong_types_are_named() {
        let err = Metadata::parse(
            br#"{"uid":"u","name":"n","requester_email":"a@b.org","target_email":"c@d.org","tags":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"tags\" is a string"), "{err}");
        let err = Metadata::parse(br#"{"uid":7}"#).unwrap_err();
        assert!(err.to_string().contains("\"uid\" is a number"), "{err}");
        assert!(Metadata::parse(b"[1]").is_err());
        assert!(Metadata::parse(b"{not json").is_err());
    }

    #[test]
    fn datetime_forms() {
        assert!(parse_naive("2026-11-22T02:42:19").is_some());
        assert!(parse_naive("2026-11-22 02:42:19.5").is_some());
        assert!(parse_naive("2026-11-22T02:42:19+02:00").is_some());
        assert!(parse_naive("yesterday").is_none());
        let t = parse_naive("2026-11-22T02:42:19").unwrap();
        assert_eq!(format_naive(&t), "2026-11-22T02:42:19");
    }
}
