//! `/api/v1/jobs`: the queue's jobs, one job with its files, the dry run, and the owner's
//! verdict.

use super::answer::{Answer, Call, Ctx, ok};
use crate::queue::gate::RulingRequest;
use crate::service::decide;
use crate::service::jobs::{self, ListQuery};

/// What a verdict's body looks like, for the error that refuses one.
pub(crate) const DECIDE_BODY: &str = r#"{"verdict": "approve"|"reject"|"request_changes", "rationale": "...", "signature": "<what you reviewed>"}"#;

/// A page of jobs: summaries with the dry run (`view=full`, the default), or the index's
/// entries alone (`view=brief`, no job read).
pub(crate) fn list(ctx: &Ctx, call: &Call) -> Answer {
    let q = &call.query;
    let brief = match q.get("view") {
        None | Some("" | "full") => false,
        Some("brief") => true,
        Some(v) => {
            return Err(crate::error::Error::invalid(
                format!("unknown view {v:?}"),
                "use view=full (summaries with the dry run) or view=brief (index entries only)",
            )
            .into());
        }
    };
    let defaults = ListQuery::default();
    let query = ListQuery {
        status: jobs::listed_status(q.get("status"))?,
        offset: q.number("offset")?.unwrap_or(defaults.offset),
        limit: q.number("limit")?.unwrap_or(defaults.limit),
        sender: q.get("sender").unwrap_or("").to_string(),
        name: q.get("name").unwrap_or("").to_string(),
        max_age_hours: q.number("max_age_hours")?,
    };
    let index = Some(&ctx.live.index);
    if brief {
        ok(jobs::brief(&ctx.layout, index, &query)?)
    } else {
        ok(jobs::list(&ctx.layout, index, &query)?)
    }
}

pub(crate) fn detail(ctx: &Ctx, call: &Call) -> Answer {
    ok(jobs::detail(&ctx.layout, call.param(0), call.status()?)?)
}

pub(crate) fn explain(ctx: &Ctx, call: &Call) -> Answer {
    let dir = jobs::find(&ctx.layout, call.param(0), call.status()?)?;
    ok(jobs::review(&ctx.layout, &dir)?.explanation())
}

pub(crate) fn decide(ctx: &Ctx, call: &Call) -> Answer {
    let req: RulingRequest = call.body(DECIDE_BODY)?;
    let uid = call.param(0);
    let decided = decide::decide_reviewed(&ctx.layout, &ctx.live, &ctx.actor, uid, req)?;
    // The listing and the counts show the verdict as soon as it is answered.
    let queue = crate::queue::Queue::new(ctx.layout.queue.clone());
    ctx.live.index.refresh(&queue, uid);
    ok(decided)
}
