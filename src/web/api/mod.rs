//! The JSON API behind the web UI (the table in README.md): one route table, and handlers (by
//! resource: [`jobs`], [`bulk`], [`stores`], [`audit`]) that call the services of [`crate::service`] and
//! serialise their results.

mod answer;
mod audit;
mod bulk;
mod diff;
mod jobs;
mod stores;
mod votes;

use std::sync::Arc;

pub(crate) use answer::parse_body;
pub use answer::{Answer, ApiError, Query, Reply};
pub(crate) use bulk::parse as parse_bulk;
pub(crate) use jobs::DECIDE_BODY;

use crate::daemon::live::Live;
use crate::queue::{Queue, Status};
use crate::store::audit::Actor;
use crate::syftbox::Layout;
use answer::{Call, Ctx};

type Handler = fn(&Ctx, &Call) -> Answer;
type Route = (&'static str, &'static [&'static str], Handler);

/// Every endpoint: method, path pattern (`*` is one segment, handed to the handler) and
/// handler. Both the dispatch and the 405-versus-404 answer come from this table.
const ROUTES: &[Route] = &[
    ("GET", &["api", "status"], audit::status),
    ("GET", &["api", "v1", "allowlist"], stores::allowlist),
    (
        "POST",
        &["api", "v1", "allowlist"],
        stores::replace_allowlist,
    ),
    (
        "POST",
        &["api", "v1", "allowlist", "add", "*"],
        stores::allow_add,
    ),
    (
        "DELETE",
        &["api", "v1", "allowlist", "remove", "*"],
        stores::allow_remove,
    ),
    ("GET", &["api", "v1", "allowlist", "me"], stores::allow_me),
    (
        "GET",
        &["api", "v1", "allowlist", "check", "*"],
        stores::allow_check,
    ),
    ("GET", &["api", "v1", "trusted-code"], stores::trusted),
    (
        "GET",
        &["api", "v1", "trusted-code", "history"],
        stores::history,
    ),
    (
        "POST",
        &["api", "v1", "trusted-code", "mark", "*"],
        stores::mark,
    ),
    (
        "DELETE",
        &["api", "v1", "trusted-code", "unmark", "*"],
        stores::unmark,
    ),
    (
        "POST",
        &["api", "v1", "trusted-code", "check-signature"],
        stores::check_signature,
    ),
    (
        "POST",
        &["api", "v1", "trusted-code", "add-to-history"],
        stores::add_to_history,
    ),
    ("GET", &["api", "v1", "peers"], stores::peers),
    (
        "POST",
        &["api", "v1", "peers", "approve", "*"],
        stores::peer_approve,
    ),
    (
        "DELETE",
        &["api", "v1", "peers", "revoke", "*"],
        stores::peer_revoke,
    ),
    ("GET", &["api", "v1", "jobs"], jobs::list),
    ("POST", &["api", "v1", "jobs", "decide"], bulk::decide),
    ("GET", &["api", "v1", "jobs", "*"], jobs::detail),
    ("GET", &["api", "v1", "jobs", "*", "explain"], jobs::explain),
    ("POST", &["api", "v1", "jobs", "*", "decide"], jobs::decide),
    ("GET", &["api", "v1", "jobs", "*", "votes"], votes::of_job),
    ("GET", &["api", "v1", "jobs", "*", "diff"], diff::job),
    (
        "GET",
        &["api", "v1", "trusted-code", "usage"],
        diff::trusted_usage,
    ),
    ("GET", &["api", "v1", "audit", "verify"], audit::verify),
    ("GET", &["api", "v1", "decisions"], audit::decisions),
];

/// The segments `seg` fills the pattern's `*` with, if it matches.
fn matches<'a>(pattern: &[&str], seg: &[&'a str]) -> Option<Vec<&'a str>> {
    if pattern.len() != seg.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in pattern.iter().zip(seg) {
        match *p {
            "*" => params.push(*s),
            fixed if fixed == *s => {}
            _ => return None,
        }
    }
    Some(params)
}

/// The routes whose pattern matches `seg`, keeping only the most specific (fewest `*`): a fixed
/// segment such as `jobs/decide` wins over `jobs/{uid}`.
fn routes_for(seg: &[&str]) -> Vec<&'static Route> {
    let wild = |p: &[&str]| p.iter().filter(|s| **s == "*").count();
    let found: Vec<&'static Route> = ROUTES
        .iter()
        .filter(|(_, p, _)| matches(p, seg).is_some())
        .collect();
    let fewest = found.iter().map(|(_, p, _)| wild(p)).min();
    found
        .into_iter()
        .filter(|(_, p, _)| Some(wild(p)) == fewest)
        .collect()
}

pub struct Api {
    ctx: Ctx,
}

impl Api {
    pub fn new(layout: Layout, live: Arc<Live>, actor: impl Into<Actor>) -> Api {
        Api {
            ctx: Ctx {
                layout,
                live,
                actor: actor.into(),
                audit: Default::default(),
            },
        }
    }

    /// Routes `/api/...` requests. `segments` are the percent-decoded path segments.
    pub fn handle(&self, method: &str, segments: &[String], query: &str, body: &[u8]) -> Answer {
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let mut path_known = false;
        for (m, pattern, handler) in routes_for(&seg) {
            let Some(params) = matches(pattern, &seg) else {
                continue;
            };
            if *m == method {
                let call = Call {
                    params,
                    query: Query::parse(query),
                    body,
                };
                return handler(&self.ctx, &call);
            }
            path_known = true;
        }
        let path = format!("/{}", seg.join("/"));
        Err(if path_known {
            ApiError::new(
                405,
                format!("{method} is not allowed on {path}"),
                "see /api/openapi.json for the methods of each endpoint",
            )
        } else {
            ApiError::new(
                404,
                format!("no such endpoint: {path}"),
                "see /api/openapi.json for the endpoints",
            )
        })
    }

    /// The methods the route table serves on `segments` (HEAD with GET), empty for an unknown
    /// path: the `Allow` of a 405 and of an OPTIONS answer.
    pub fn allowed(&self, segments: &[String]) -> Vec<&'static str> {
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let mut out: Vec<&'static str> = routes_for(&seg).iter().map(|(m, _, _)| *m).collect();
        if out.contains(&"GET") {
            out.push("HEAD");
        }
        out
    }

    /// Prometheus text for `/metrics`.
    pub fn metrics(&self) -> String {
        let pending = match self.ctx.live.index.read() {
            Some(ix) => ix.count(Status::Pending),
            None => Queue::new(self.ctx.layout.queue.clone())
                .list(Status::Pending)
                .len(),
        };
        self.ctx.live.prometheus(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_fixed_segment_wins_over_a_uid_in_the_same_place() {
        let methods =
            |seg: &[&str]| -> Vec<&str> { routes_for(seg).iter().map(|(m, _, _)| *m).collect() };
        assert_eq!(methods(&["api", "v1", "jobs", "decide"]), ["POST"]);
        assert_eq!(methods(&["api", "v1", "jobs", "some-uid"]), ["GET"]);
    }

    /// The route table and `openapi.json` cannot drift: every route is described, and every
    /// described `/api/` operation is routed.
    #[test]
    fn every_route_is_described_and_every_described_path_is_routed() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON");
        let described: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with("/api/") && *p != "/api/openapi.json")
            .flat_map(|(p, item)| {
                let pattern: Vec<&str> = p
                    .trim_start_matches('/')
                    .split('/')
                    .map(|s| if s.starts_with('{') { "*" } else { s })
                    .collect();
                let pattern = pattern.join("/");
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_uppercase(), pattern.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, pattern, _)| (m.to_string(), pattern.join("/")))
            .collect();
        assert_eq!(described, routed);
    }
}
