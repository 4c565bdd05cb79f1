//! `/api/v1/jobs/{uid}/diff` (what changed in a job since the closest code the owner knows) and
//! `/api/v1/trusted-code/usage` (who marked each trusted pattern, and the jobs it approved).

use serde_json::json;

use super::answer::{Answer, Call, Ctx, ok};
use crate::service::diff;

pub(crate) fn job(ctx: &Ctx, call: &Call) -> Answer {
    ok(diff::job_diff(&ctx.layout, call.param(0), call.status()?)?)
}

pub(crate) fn trusted_usage(ctx: &Ctx, _: &Call) -> Answer {
    ok(json!({ "usage": diff::trusted_usage(&ctx.layout)? }))
}
