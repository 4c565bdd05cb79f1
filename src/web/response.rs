//! One answer to a request: status, type, body and extra headers, and the JSON `{error, hint}`
//! every refusal carries.

use serde_json::json;

pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// The JSON `{error, hint}` every refusal carries.
    pub fn error(status: u16, what: impl Into<String>, hint: impl Into<String>) -> Response {
        let body = json!({"error": what.into(), "hint": hint.into()});
        Response::new(
            status,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}
