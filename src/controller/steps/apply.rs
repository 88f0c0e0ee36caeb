//! Making API Gateway hold the spec: observe once, then carry out what [`Progress::next`] says, one
//! instruction at a time, until it finishes (report Ready) or refuses (report why).
//!
//! Here the entry point, which skips quickly when nothing is due; `observe` resolves the references and
//! reads what AWS holds, `sync` carries out the plan's instructions.

mod observe;
mod sync;

use super::permit;
use crate::api::ApiIntegration;
use crate::controller::context::Context;
use crate::controller::error::{Error, Phase};
use crate::controller::status::report_failure;
use crate::plan::{self, Due};
use kube::runtime::controller::Action;
use std::time::Instant;

/// The finalizer's Apply: skip quickly when nothing is due, else sync and report.
pub async fn apply(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    if !permit::wait_until_loaded(ctx, std::time::Duration::from_secs(2)).await {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    // §7: a namespace or region that lost its policy says so at once, whatever else is due.
    if let Err(refused) = permit::namespace_and_region_allowed(obj, ctx, &ctx.region_of(obj)) {
        let status = obj.status.clone().unwrap_or_default();
        return report_failure(obj, ctx, status, refused, Phase::Apply).await;
    }
    let due = plan::next_check(
        obj.status.as_ref(),
        obj.metadata.generation,
        ctx.memory.settled(obj),
        Instant::now(),
    );
    match due {
        Due::WhenSpecChanges => return Ok(Action::await_change()),
        // The API's check time, as remembered: no jitter of our own (it has its spread already), so that
        // whatever woke this resource, its check stays with its API's other resources.
        Due::After(wait) => return Ok(Action::requeue(wait)),
        Due::Now => {}
    }
    let mut status = obj.status.clone().unwrap_or_default();
    match sync::sync(obj, ctx, &mut status).await {
        Ok(action) => Ok(action),
        // `status` holds what the steps so far established (an ID just created among it), whether or not
        // it was written yet: the failure report writes it.
        Err((phase, err)) => report_failure(obj, ctx, status, err, phase).await,
    }
}

/// A failure and what was under way when it happened.
type Failed = (Phase, Error);

fn applying(e: impl Into<Error>) -> Failed {
    (Phase::Apply, e.into())
}
