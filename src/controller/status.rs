//! Telling the user: the status (server-side apply on /status, skipped when nothing changed) and Events.
//! Every outcome lands here: in sync, and every failure with its class (design §2 rules 6 and 9).

use super::context::Context;
use super::error::{Error, Phase, Retry};
use super::events::{MANAGER, Severity};
use super::scope::ApiKey;
use crate::api::{ApiIntegration, ApiIntegrationStatus};
pub use crate::conditions::now;
use crate::conditions::{EventReason, READY, Reason, ready, set_condition};
use crate::plan::observe::drift_names;
use crate::plan::{Finish, IntegrationFields, Observation, next_check_spread};
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
        EventReason::Failed(_) | EventReason::Recreating | EventReason::Drifted => {
            Severity::Warning
        }
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
    // Manage repairs drift rather than reporting it: whatever Observe listed is gone once in sync.
    status.drift.clear();
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
    if err.left_aws_as_it_was() {
        ctx.memory.unsettle(obj);
    } else {
        ctx.memory.forget_settled(obj);
    }
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

/// What an Observe reconcile reports (rule 11).
pub struct Seen<'a> {
    pub observation: &'a Observation,
    /// When AWS was read for it.
    pub seen_at: std::time::Instant,
    pub desired: &'a IntegrationFields,
    pub api: &'a ApiKey,
    /// As in [`Synced`].
    pub account_id: Option<String>,
}

/// The status an Observe reconcile reports, and the Event to publish if the finding is news: Ready True
/// with InSync or Drifted (status.drift says how) when the integration exists, Ready False with
/// IntegrationMissing when there is none. `appliedFields` stays as it is: Observe sent nothing.
pub fn observed_status(
    obj: &ApiIntegration,
    mut status: ApiIntegrationStatus,
    seen: &Seen<'_>,
) -> (ApiIntegrationStatus, Option<(EventReason, String)>) {
    let generation = obj.metadata.generation;
    let previous_drift = std::mem::take(&mut status.drift);
    let previous_reason = ready(&status.conditions).map(|c| c.reason.clone());
    status.region = Some(seen.api.region.clone());
    status.account_id = seen.account_id.clone();
    status.observed_generation = generation;
    let (ready_now, reason, message) = match seen.observation {
        Observation::InSync(integration) | Observation::Drifted { integration, .. } => {
            let id = &integration.integration_id;
            status.record_integration(&seen.api.api_id, id);
            status.connection_id = seen.desired.connection_id.clone();
            status.integration_response_selection_expression = integration
                .integration_response_selection_expression
                .clone();
            status.api_gateway_managed = Some(integration.api_gateway_managed);
            if let Observation::Drifted { drift, .. } = seen.observation {
                status.drift = drift.clone();
                let fields = drift_names(drift);
                let message = format!(
                    "Observing integration {id}: it differs from the spec in {fields}; Manage would change them."
                );
                (true, Reason::Drifted, message)
            } else {
                let message = format!(
                    "Observing integration {id}: it matches the spec; Manage would change nothing."
                );
                (true, Reason::InSync, message)
            }
        }
        Observation::Missing { id } => {
            let message = match id {
                Some(id) => format!(
                    "Observing: integration {id} does not exist on API {}; Observe creates nothing.",
                    seen.api.api_id
                ),
                None => {
                    "Observing: no integration is named (set the apigw.dev/adopt-integration-id \
                         annotation); Observe creates nothing."
                        .to_string()
                }
            };
            (false, Reason::IntegrationMissing, message)
        }
        Observation::Blocked(_) => unreachable!("a blocked observation is reported as a failure"),
    };
    set_condition(
        &mut status.conditions,
        READY,
        ready_now,
        reason,
        &message,
        generation,
        now(),
    );
    let event = if status.drift != previous_drift {
        Some(if status.drift.is_empty() {
            (EventReason::InSync, message.clone())
        } else {
            (EventReason::Drifted, message.clone())
        })
    } else if reason == Reason::IntegrationMissing
        && previous_reason.as_deref() != Some(reason.as_str())
    {
        Some((EventReason::Failed(reason), message.clone()))
    } else {
        None
    };
    if obj.status.as_ref() != Some(&status) {
        status.last_sync_time = Some(now());
    }
    (status, event)
}

/// Writes what Observe found, publishes an Event when the drift changed (or the integration went
/// missing), and requeues for the API's next check, like a resource in sync.
pub async fn report_observed(
    obj: &ApiIntegration,
    ctx: &Context,
    status: ApiIntegrationStatus,
    seen: Seen<'_>,
) -> Result<Action, Error> {
    let (status, event) = observed_status(obj, status, &seen);
    write_status(obj, ctx, &status).await?;
    if let Some((reason, note)) = event {
        publish(ctx, obj, reason, note).await;
    }
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now = std::time::Instant::now();
    let spread = rand::rng().random_range(0.0..1.0);
    let wait = next_check_spread(
        seen.seen_at,
        &seen.api.api_id,
        wall,
        now,
        ctx.settings.resync,
        spread,
    );
    // What was seen is what a switch to Manage updates from (its update then names exactly the fields
    // status.drift listed, and AWS's answer is checked); with nothing seen, no older sync may stand in.
    ctx.memory.forget_settled(obj);
    match seen.observation {
        Observation::InSync(held)
        | Observation::Drifted {
            integration: held, ..
        } => ctx.memory.remember_synced(obj, seen.api.clone(), held),
        Observation::Missing { .. } | Observation::Blocked(_) => {}
    }
    ctx.memory.remember_settled(obj, false, now + wait);
    Ok(Action::requeue(wait))
}
