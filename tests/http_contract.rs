//! The OpenAPI document against the contract (the API table of `README.md`) and against what
//! the server does.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::http::{Settled, settled};
use crate::util::*;

// ------------------------------------------------------------------------------ the document

/// `(METHOD, /path)` rows of the API table in `README.md`.
fn contract_routes() -> BTreeSet<(String, String)> {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let method = *cells.get(1)?;
            if !["GET", "POST", "DELETE"].contains(&method) {
                return None;
            }
            let path = cells.get(2)?.split('?').next()?.to_string();
            Some((method.to_string(), path))
        })
        .collect()
}

#[test]
fn openapi_document_matches_the_contract_and_the_server() {
    let Settled {
        sb, web, pending, ..
    } = settled();
    let doc = web.get("/api/openapi.json").expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let m = method.to_uppercase();
            if !["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"].contains(&m.as_str()) {
                continue;
            }
            assert!(op["responses"].is_object(), "{m} {path} has no responses");
            documented.insert((m.clone(), path.clone()));
            // Sample values for the parameters.
            let url = path
                .replace("{email}", "walk@example.org")
                .replace("{signature}", &"cd".repeat(32))
                .replace("{uid}", &pending);
            assert!(
                !url.contains('{'),
                "no sample value for a parameter of {path}"
            );
            let body: &[u8] = if m == "POST" { b"{}" } else { b"" };
            let send = || {
                web.request(
                    &m,
                    &url,
                    &[
                        ("X-CSRF-Token", &web.csrf),
                        ("Content-Type", "application/json"),
                    ],
                    body,
                )
            };
            // Reading changes nothing.
            let r = if m == "GET" {
                unchanged(&sb, &format!("{m} {url}"), send)
            } else {
                let r = send();
                settle(&sb);
                r
            };
            let body: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            assert!(
                r.status != 405 && !(r.status == 404 && error.starts_with("no such")),
                "the document lists {m} {path} but the server does not serve it: {r:?}"
            );
            assert!(r.status < 500, "{m} {url}: {r:?}");
        }
    }
    // Everything in the contract is documented, and nothing else (besides the pages).
    let contract = contract_routes();
    assert!(
        contract.len() >= 18,
        "could not read the contract table: {contract:?}"
    );
    let missing: Vec<_> = contract.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "in the README table but not in openapi.json: {missing:?}"
    );
    let extra: Vec<_> = documented
        .difference(&contract)
        .filter(|(_, p)| !["/", "/index.html", "/app.js", "/app.css"].contains(&p.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "in openapi.json but not in the README table: {extra:?}"
    );
    // Every operation has a unique operationId or a summary, as tools expect.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                op.get("operationId").is_some() || op.get("summary").is_some(),
                "{method} {path} has neither an operationId nor a summary"
            );
        }
    }
}
