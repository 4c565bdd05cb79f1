//! `/api/v1/allowlist`, `/api/v1/trusted-code` and `/api/v1/peers`: the owner's stores.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::answer::{Answer, ApiError, Call, Ctx, ok, with_status};
use crate::core::signature::{self, CodeFile};
use crate::queue::Status;
use crate::queue::review::{self, Trust};
use crate::service::{allowlist, jobs, peers, trust};

pub(crate) fn allowlist(ctx: &Ctx, _: &Call) -> Answer {
    ok(allowlist::list(&ctx.layout)?)
}

pub(crate) fn replace_allowlist(ctx: &Ctx, call: &Call) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        emails: Vec<String>,
    }
    let b: Body = call.body(r#"{"emails": ["a@example.org", ...]}"#)?;
    ok(allowlist::replace(&ctx.layout, &ctx.actor, &b.emails)?)
}

/// Adds a sender and, as `allow add` does, pins the identity key they publish.
pub(crate) fn allow_add(ctx: &Ctx, call: &Call) -> Answer {
    let a = allowlist::add_pinned(&ctx.layout, &ctx.actor, call.param(0), None)?;
    let mut body = serde_json::to_value(&a.added).unwrap_or_default();
    body["proof"] = serde_json::to_value(&a.pinned.pin).unwrap_or_default();
    with_status(if a.added.added { 201 } else { 200 }, body)
}

pub(crate) fn allow_remove(ctx: &Ctx, call: &Call) -> Answer {
    let r = allowlist::remove(&ctx.layout, &ctx.actor, call.param(0))?;
    if !r.removed {
        return Err(ApiError::new(
            404,
            format!("{} is not in the allowlist", r.email),
            "GET /api/v1/allowlist lists who is",
        ));
    }
    ok(r)
}

pub(crate) fn allow_me(ctx: &Ctx, _: &Call) -> Answer {
    ok(allowlist::check(&ctx.layout, &ctx.layout.email)?)
}

pub(crate) fn allow_check(ctx: &Ctx, call: &Call) -> Answer {
    ok(allowlist::check(&ctx.layout, call.param(0))?)
}

pub(crate) fn trusted(ctx: &Ctx, _: &Call) -> Answer {
    ok(json!({"trusted": trust::list(&ctx.layout)?}))
}

pub(crate) fn history(ctx: &Ctx, _: &Call) -> Answer {
    ok(json!({"history": trust::history(&ctx.layout)?}))
}

pub(crate) fn mark(ctx: &Ctx, call: &Call) -> Answer {
    ok(trust::mark(&ctx.layout, &ctx.actor, call.param(0))?)
}

pub(crate) fn unmark(ctx: &Ctx, call: &Call) -> Answer {
    let sig = call.param(0);
    if !signature::is_signature(sig) {
        return Err(ApiError::new(
            400,
            format!("{sig:?} is not a job signature"),
            "a signature is 64 lower-case hex characters",
        ));
    }
    match trust::unmark(&ctx.layout, &ctx.actor, sig)? {
        Some(u) => ok(u),
        None => Err(ApiError::new(
            404,
            format!("signature {sig} is not trusted"),
            "GET /api/v1/trusted-code lists trusted signatures",
        )),
    }
}

/// The signature of a job in the queue, or of a job described by its name and file contents,
/// and whether it is trusted.
pub(crate) fn check_signature(ctx: &Ctx, call: &Call) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        uid: Option<String>,
        #[serde(default)]
        status: Option<Status>,
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        files: BTreeMap<String, String>,
    }
    let hint = r#"send {"uid": "<job uid>"} or {"name": ..., "description": ..., "tags": [...], "files": {"run.sh": "<content>"}}"#;
    let b: Body = call.body(hint)?;
    let sig = match (&b.uid, &b.name) {
        (Some(uid), None) => {
            let dir = jobs::find(&ctx.layout, uid, b.status)?;
            review::review(&dir, &ctx.layout.email, &Trust::default())
                .inspection
                .signature
                .ok_or_else(|| {
                    ApiError::new(
                        422,
                        format!("job {uid} has no computable signature"),
                        "see GET /api/v1/jobs/{uid}/explain",
                    )
                })?
        }
        (None, Some(name)) => {
            let mut files = Vec::new();
            for (path, content) in &b.files {
                check_rel_path(path)?;
                let base = path.rsplit('/').next().unwrap_or(path);
                if signature::is_excluded(base) {
                    continue;
                }
                use sha2::Digest;
                files.push(CodeFile {
                    path: path.clone(),
                    sha256: format!("{:x}", sha2::Sha256::digest(content.as_bytes())),
                    size: content.len() as u64,
                });
            }
            signature::signature_v1(
                name,
                b.description.as_deref().unwrap_or(""),
                &b.tags,
                &files,
            )
        }
        _ => {
            return Err(ApiError::new(
                400,
                "give either a uid or a job's name and files, not both",
                hint,
            ));
        }
    };
    ok(trust::check_signature(&ctx.layout, sig))
}

pub(crate) fn add_to_history(ctx: &Ctx, call: &Call) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        uid: String,
        #[serde(default)]
        status: Option<Status>,
    }
    let b: Body = call.body(r#"{"uid": "<job uid>", "status": "completed"}"#)?;
    let dir = jobs::find(&ctx.layout, &b.uid, b.status)?;
    ok(json!({"record": trust::add_to_history(&ctx.layout, &dir)?}))
}

pub(crate) fn peers(ctx: &Ctx, _: &Call) -> Answer {
    ok(peers::list(&ctx.layout)?)
}

pub(crate) fn peer_approve(ctx: &Ctx, call: &Call) -> Answer {
    // An invalid config shares nothing now; the daemon shares with the config in force.
    let a = peers::approve(&ctx.layout, &ctx.actor, call.param(0))?.approval;
    with_status(if a.approved { 201 } else { 200 }, a)
}

pub(crate) fn peer_revoke(ctx: &Ctx, call: &Call) -> Answer {
    let mail = call.param(0);
    match peers::revoke(&ctx.layout, &ctx.actor, mail)? {
        Some(r) => ok(r),
        None => Err(ApiError::new(
            404,
            format!("{} is not an approved peer", mail.trim().to_lowercase()),
            "GET /api/v1/peers lists the approved peers",
        )),
    }
}

fn check_rel_path(path: &str) -> Result<(), ApiError> {
    if crate::core::rel_path::check(path).is_err() {
        return Err(ApiError::new(
            400,
            format!("file path {path:?} is not a relative path inside code/"),
            "use paths like run.sh or lib/util.py",
        ));
    }
    Ok(())
}
