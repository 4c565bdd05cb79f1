//! `/api/v1/jobs/{uid}/votes`: the reviewers' votes on a job, as their verdict files and the
//! answers to them say, and who is still needed (`approval.reviewer_groups`).

use super::answer::{Answer, ApiError, Call, Ctx, ok};
use crate::core::config::Config;
use crate::service::votes;

pub(crate) fn of_job(ctx: &Ctx, call: &Call) -> Answer {
    let uid = call.param(0);
    if !crate::queue::is_valid_uid(uid) {
        return Err(ApiError::new(
            400,
            format!("{uid:?} is not a job uid"),
            "give a uid from GET /api/v1/jobs",
        ));
    }
    // An invalid config.yaml leaves the previous one in force in the daemon; the last good one
    // is not known here, so the defaults stand in (the error is shown by /api/status).
    let cfg = Config::load(&ctx.layout.config_file()).unwrap_or_default();
    ok(votes::of_job(&ctx.layout, &cfg.approval, uid))
}
