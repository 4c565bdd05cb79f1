//! `POST /api/v1/jobs/decide`: one verdict on many pending jobs, chosen by a filter or listed
//! with the signatures the owner saw. The body is also what MCP's `approvals.decide_many` takes.

use serde::{Deserialize, Deserializer, de};

use super::answer::{Answer, ApiError, Call, Ctx, ok};
use crate::queue::gate::Ruling;
use crate::service::bulk::{self, BulkRequest, Filter, Pick, Selection};

/// What a bulk verdict's body looks like, for the error that refuses one.
pub(crate) const BULK_BODY: &str = r#"{"verdict": "reject"|"request_changes", "rationale": "...", "filter": {"sender": "...", "name": "...", "flagged": true, "older_than_hours": 24, "max_age_hours": 48}} or {"verdict": "approve"|..., "jobs": [{"uid": "...", "signature": "<what you reviewed>"}]}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    verdict: Ruling,
    #[serde(default)]
    rationale: Option<String>,
    #[serde(default)]
    filter: Option<FilterBody>,
    #[serde(default)]
    jobs: Option<Vec<Pick>>,
    /// Decide at most this many: the count the owner confirmed.
    #[serde(default, deserialize_with = "whole")]
    limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    flagged: bool,
    #[serde(default, deserialize_with = "whole")]
    older_than_hours: Option<u64>,
    #[serde(default, deserialize_with = "whole")]
    max_age_hours: Option<u64>,
}

/// A whole number of 0 or more as JSON Schema's `integer` has it: `24`, and `24.0` too.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                // `u64::MAX as f64` is 2^64, one past the largest u64.
                .filter(|f| f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(f))
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("{n} is not a whole number of 0 or more")))
}

/// The request a body asks for.
pub(crate) fn parse(body: &[u8]) -> Result<BulkRequest, ApiError> {
    let v: serde_json::Value = super::answer::parse_body(body, BULK_BODY)?;
    check_objects(&v)?;
    let b: Body = serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            400,
            format!("the request body is not valid: {e}"),
            format!("send JSON like {BULK_BODY}"),
        )
    })?;
    let selection = match (b.filter, b.jobs) {
        (Some(f), None) => Selection::Filter(filter(f)?),
        (None, Some(jobs)) => Selection::List(jobs),
        _ => {
            return Err(ApiError::new(
                400,
                "the request must give either \"filter\" or \"jobs\", not both or neither",
                format!("send JSON like {BULK_BODY}"),
            ));
        }
    };
    Ok(BulkRequest {
        selection,
        verdict: b.verdict,
        rationale: b.rationale,
        limit: b.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
    })
}

/// Objects where the body has them: serde would also fill a struct from an array, positionally.
fn check_objects(v: &serde_json::Value) -> Result<(), ApiError> {
    let filter = v.get("filter").filter(|f| !f.is_null());
    let jobs = v.get("jobs").and_then(|j| j.as_array());
    let all_objects = v.is_object()
        && filter.is_none_or(|f| f.is_object())
        && jobs.is_none_or(|j| j.iter().all(|p| p.is_object()));
    if all_objects {
        return Ok(());
    }
    Err(ApiError::new(
        400,
        "the request body is not valid: the body, its \"filter\" and each of its \"jobs\" must be JSON objects",
        format!("send JSON like {BULK_BODY}"),
    ))
}

fn filter(f: FilterBody) -> Result<Filter, ApiError> {
    let hours = |h: Option<u64>, key: &str| match h {
        Some(h) if h > bulk::MAX_AGE_HOURS => Err(ApiError::new(
            400,
            format!("{key}={h} is more than {} (100 years)", bulk::MAX_AGE_HOURS),
            "use a smaller number of hours, or leave it out",
        )),
        h => Ok(h.map(|h| chrono::Duration::hours(h as i64))),
    };
    let text = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Filter {
        sender: text(f.sender),
        name: text(f.name),
        flagged: f.flagged,
        older_than: hours(f.older_than_hours, "older_than_hours")?,
        newer_than: hours(f.max_age_hours, "max_age_hours")?,
    })
}

pub(crate) fn decide(ctx: &Ctx, call: &Call) -> Answer {
    let req = parse(call.body)?;
    ok(bulk::decide_many(
        &ctx.layout,
        &ctx.actor,
        &req,
        Some(&ctx.live),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers_as_json_schema_has_them() {
        let limit = |v: &str| {
            let body = format!(r#"{{"verdict":"reject","rationale":"x","jobs":[],"limit":{v}}}"#);
            parse(body.as_bytes()).map(|r| r.limit)
        };
        assert_eq!(limit("24").unwrap(), Some(24));
        assert_eq!(limit("24.0").unwrap(), Some(24));
        assert_eq!(limit("null").unwrap(), None);
        assert_eq!(limit("18446744073709551615").unwrap(), Some(usize::MAX));
        for bad in ["-1", "1.5", "18446744073709551616", "1e300", "\"3\""] {
            assert!(limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_body_gives_a_filter_or_a_list() {
        for body in [
            r#"{"verdict":"reject","rationale":"x"}"#,
            r#"{"verdict":"reject","rationale":"x","filter":{},"jobs":[]}"#,
        ] {
            let e = parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
        }
        assert!(parse(br#"{"verdict":"reject","rationale":"x","filter":{},"jobs":null}"#).is_ok());
        // serde alone would read these arrays as the structs, field by field.
        for body in [
            r#"{"verdict":"reject","rationale":"x","filter":[null,null]}"#,
            r#"{"verdict":"reject","rationale":"x","jobs":[["u","s"]]}"#,
            r#"["reject","x",{}]"#,
        ] {
            let e = parse(body.as_bytes()).unwrap_err();
            assert!(
                e.error.contains("must be JSON objects"),
                "{body}: {}",
                e.error
            );
        }
    }
}
