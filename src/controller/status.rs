//! Telling the user: the status (server-side apply on /status, skipped when nothing changed) and Events.
//! Every outcome lands here: in sync, and every failure with its class (design §2 rules 6 and 9).

use super::context::Context;
use super::error::{Error, Phase, Retry};
use super::events::{MANAGER, Severity};
use super::scope::ApiKey;
use crate::api::{ApiIntegration, ApiIntegrationStatus};
pub use crate::conditions::now;
use crate::conditions::{EventReason, READY, Reason, ready, set_condition};
use crate::plan::{Finish, IntegrationFields};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use rand::Rng;
use std::time::Duration;

/// `d` ± 10 %, so that resources created together do not all come due together.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..1.1))
}

/// Writes the whole status (server-side apply, our field manager), unless it is what the object has.
pub async fn write_status(
    obj: &ApiIntegration,
    ctx: &Context,
    status: &ApiIntegrationStatus,
) -> Result<(), Error> {
    if obj.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<ApiIntegration> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": ApiIntegration::api_version(&()),
        "kind": ApiIntegration::kind(&()),
        "status": status,
    });
    let pp = PatchParams::apply(MANAGER).force();
    match tokio::time::timeout(
        Duration::from_secs(15),
        api.patch_status(&obj.name_any(), &pp, &Patch::Apply(&patch)),
    )
    .await
    {
        Ok(result) => result.map(|_| ()).map_err(Error::from),
        Err(_) => Err(Error::StatusTimeout),
    }
}

/// The status as the API server has it now: a step may have written it since `obj` was read.
pub async fn latest_status(obj: &ApiIntegration, ctx: &Context) -> Option<ApiIntegrationStatus> {
    let api: Api<ApiIntegration> = Api::namespaced(ctx.client.clone(), &obj.namespace()?);
    api.get_status(&obj.name_any()).await.ok()?.status
}

/// Publishes an Event about `obj`: Warning for failures and for a lost integration, Normal otherwise.
/// Sent in the background: a reconcile (and the API lock it may hold) does not wait on it.
pub async fn publish(ctx: &Context, obj: &ApiIntegration, reason: EventReason, note: String) {
    let severity = match reason {
        EventReason::Failed(_) | EventReason::Recreating => Severity::Warning,
        _ => Severity::Normal,
    };
    let events = ctx.events.clone();
    let regarding = obj.object_ref(&());
    tokio::spawn(async move {
        let published = events
            .publish(&regarding, severity, reason.as_str(), reason.action(), note)
            .await;
        if let Err(e) = published {
            tracing::warn!(error = %e, object = ?regarding.name, "could not publish event");
        }
    });
}

/// What a sync that finished reports.
pub struct Synced<'a> {
    pub finish: &'a Finish,
    /// What the spec asks (with the VPC link a reference resolved to).
    pub desired: &'a IntegrationFields,
    pub api: &'a ApiKey,
    /// The AWS account of the policy's role the integration lives in (None: the operator's own).
    pub account_id: Option<String>,
}

/// The status that says `synced` (Ready True), from the status the object has.
pub fn synced_status(
    obj: &ApiIntegration,
    mut status: ApiIntegrationStatus,
    synced: &Synced<'_>,
) -> ApiIntegrationStatus {
    let generation = obj.metadata.generation;
    let integration = &synced.finish.integration;
    status.record_integration(&synced.api.api_id, &integration.integration_id);
    status.region = Some(synced.api.region.clone());
    status.account_id = synced.account_id.clone();
    status.connection_id = synced.desired.connection_id.clone();
    status.observed_generation = generation;
    status.applied_fields = synced.desired.set_field_names();
    status.integration_response_selection_expression = integration
        .integration_response_selection_expression
        .clone();
    status.api_gateway_managed = Some(integration.api_gateway_managed);
    let (reason, message) = synced.finish.ready(ready(&status.conditions), generation);
    set_condition(
        &mut status.conditions,
        READY,
        true,
        reason,
        message,
        generation,
        now(),
    );
    // lastSyncTime moves only with a status that says something new: a drift check that finds nothing
    // to change writes nothing (design §2.8), which at thousands of resources spares etcd a steady stream
    // of writes. The next check is scheduled from this process's memory, not from this field.
    if obj.status.as_ref() != Some(&status) {
        status.last_sync_time = Some(now());
    }
    status
}

/// Ready True: the integration exists and matches the spec at this generation. Requeues for the next
/// drift check, which this process remembers.
pub async fn report_synced(
    obj: &ApiIntegration,
    ctx: &Context,
    status: ApiIntegrationStatus,
    synced: Synced<'_>,
) -> Result<Action, Error> {
    let status = synced_status(obj, status, &synced);
    write_status(obj, ctx, &status).await?;
    if synced.finish.unchanged {
        ctx.metrics.checked_in_sync();
    }
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now = std::time::Instant::now();
    let spread = rand::rng().random_range(0.0..1.0);
    let wait =
        (synced.finish).next_check(&synced.api.api_id, wall, now, ctx.settings.resync, spread);
    ctx.memory.remember_settled(obj, false, now + wait);
    ctx.memory
        .remember_synced(obj, synced.api.clone(), &synced.finish.integration);
    Ok(Action::requeue(wait))
}

/// Ready False with the error's class as reason, a Warning Event when that is news, the whole error in
/// the log. Returns what reconcile returns: Ok when only a spec change can help (no retry loop), else the
/// error, which error_policy turns into a retry.
pub async fn report_failure(
    obj: &ApiIntegration,
    ctx: &Context,
    mut status: ApiIntegrationStatus,
    err: Error,
    phase: Phase,
) -> Result<Action, Error> {
    ctx.memory.forget_settled(obj);
    if !err.is_reported() {
        // A conflict (the object changed since it was read) or a write the fence held back: nothing
        // to tell the user, and for the second nothing this replica may write. Retried soon.
        tracing::info!(error = %err, "reconcile stopped before a write; will retry");
        return Err(err);
    }
    let class = err.class(phase);
    let summary = err.summary();
    let message = match class.reason {
        Reason::Deleting => format!("Deleting the integration; will retry after: {summary}"),
        Reason::Updating => format!("Updating the integration; will retry after: {summary}"),
        _ => summary,
    };
    let generation = obj.metadata.generation;
    let previous = ready(&status.conditions).map(|c| (c.reason.clone(), c.message.clone()));
    let news = previous != Some((class.reason.as_str().to_string(), message.clone()));
    set_condition(
        &mut status.conditions,
        READY,
        false,
        class.reason,
        &message,
        generation,
        now(),
    );
    status.observed_generation = generation;
    if news {
        publish(ctx, obj, EventReason::Failed(class.reason), message.clone()).await;
    }
    tracing::warn!(reason = class.reason.as_str(), error = %err, "reconcile failed");
    write_status(obj, ctx, &status).await?;
    if class.retry == Retry::WhenSpecChanges {
        ctx.memory
            .remember_settled(obj, true, std::time::Instant::now());
        return Ok(Action::await_change());
    }
    Err(err)
}
