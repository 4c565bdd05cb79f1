//! What every handler of the JSON API shares: the request's parts, the state the handlers act
//! on, and the answer (a status and a JSON body, or an error with a hint).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::daemon::live::Live;
use crate::error::Error;
use crate::queue::Status;
use crate::service::audit::CachedVerification;
use crate::store::audit::Actor;
use crate::syftbox::Layout;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub error: String,
    pub hint: String,
}

impl ApiError {
    pub fn new(status: u16, error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            hint: hint.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": self.error, "hint": self.hint})
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Invalid { what, hint } => ApiError::new(400, what, hint),
            Error::Conflict { what, hint } => ApiError::new(409, what, hint),
            Error::NotFound { what, hint } => ApiError::new(404, what, hint),
            Error::AlreadyRunning { .. } => ApiError::new(409, e.to_string(), ""),
            other => ApiError::new(
                500,
                other.to_string(),
                "see the syft-reviewer log; the request changed nothing it could not finish",
            ),
        }
    }
}

pub type Answer = Result<Reply, ApiError>;

/// 200 with a service's result as the body.
pub(crate) fn ok(body: impl Serialize) -> Answer {
    with_status(200, body)
}

pub(crate) fn with_status(status: u16, body: impl Serialize) -> Answer {
    Ok(Reply {
        status,
        body: serde_json::to_value(body).unwrap_or_default(),
    })
}

/// What the handlers act on, and as whom.
pub(crate) struct Ctx {
    pub(crate) layout: Layout,
    pub(crate) live: Arc<Live>,
    /// Who acts through this API, as recorded in the audit chain.
    pub(crate) actor: Actor,
    pub(crate) audit: CachedVerification,
}

/// One request to a route: the path segments its pattern left open, the query and the body.
pub(crate) struct Call<'a> {
    pub(crate) params: Vec<&'a str>,
    pub(crate) query: Query,
    pub(crate) body: &'a [u8],
}

impl Call<'_> {
    /// The `i`th open segment of the route's pattern (the table guarantees it is there).
    pub(crate) fn param(&self, i: usize) -> &str {
        self.params.get(i).copied().unwrap_or("")
    }

    /// The `status` query parameter that says which copy of a uid is meant.
    pub(crate) fn status(&self) -> Result<Option<Status>, ApiError> {
        match self.query.get("status") {
            None | Some("") => Ok(None),
            Some(s) => Ok(Some(crate::service::jobs::parse_status(s)?)),
        }
    }

    pub(crate) fn body<T: for<'de> Deserialize<'de>>(&self, hint: &str) -> Result<T, ApiError> {
        parse_body(self.body, hint)
    }
}

pub(crate) fn parse_body<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    hint: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            format!("the request body is not valid: {e}"),
            format!("send JSON like {hint}"),
        )
    })
}

/// A parsed query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: &str) -> Query {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn number(&self, key: &str) -> Result<Option<usize>, ApiError> {
        // Exactly the integers the API description allows: digits only (no sign, no blank).
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| v.parse().ok())
                .flatten()
                .map(Some)
                .ok_or_else(|| {
                    ApiError::new(
                        400,
                        format!("query parameter {key}={v:?} is not a whole number"),
                        format!("use e.g. {key}=10"),
                    )
                }),
        }
    }
}
