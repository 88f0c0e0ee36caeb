//! Telling the user: the status (server-side apply on /status, skipped when nothing changed) and Events.
//! Every outcome lands here: in sync, and every failure with its class (design §2 rules 6 and 9).

use super::context::{Context, MANAGER};
use super::error::{Error, Phase, Retry};
use super::events::Severity;
use super::listing::ApiKey;
use crate::api::{ApiIntegration, ApiIntegrationStatus};
use crate::conditions::{EventReason, READY, Reason, ready, set_condition};
use crate::plan::{self, IntegrationFields, ObservedIntegration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use rand::Rng;
use std::time::Duration;

pub fn now() -> Time {
    Time(Timestamp::now())
}

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

/// Why an integration was created again.
#[derive(Clone, Debug)]
pub enum Recreation {
    /// Deleted outside the operator (rule 3).
    Lost,
    /// Its API was replaced under the same name (§6).
    Moved {
        old_api: String,
        new_api: String,
        old_id: String,
        old_deleted: bool,
    },
}

impl Recreation {
    /// For the Ready condition and the Recreated Event, once the new integration's ID is known.
    pub fn message(&self, id: &str) -> String {
        match self {
            Recreation::Lost => {
                format!("Integration was deleted outside the operator and re-created as {id}.")
            }
            Recreation::Moved {
                old_api,
                new_api,
                old_id,
                old_deleted,
            } => {
                let old = if *old_deleted {
                    format!("integration {old_id} there was deleted")
                } else {
                    format!("integration {old_id} there was left in place (deletionPolicy Retain)")
                };
                format!(
                    "API {old_api} was replaced by API {new_api} under the same name: re-created the \
                     integration there as {id}; {old}."
                )
            }
        }
    }
}

/// What was just done to reach the state being reported.
pub struct Synced<'a> {
    pub integration: &'a ObservedIntegration,
    pub desired: &'a IntegrationFields,
    pub api_id: &'a str,
    pub region: String,
    /// The AWS account of the policy's role the integration lives in (None: the operator's own).
    pub account_id: Option<String>,
    /// No update was needed.
    pub unchanged: bool,
    /// The integration was re-created (deleted out of band, or its API replaced): what to tell the user.
    pub recreated: Option<String>,
    /// When AWS was read or written for what is reported (for a drift check, when the shared listing
    /// was fetched): the next check is one period after it.
    pub seen_at: std::time::Instant,
}

/// Ready True: the integration exists and matches the spec at this generation. Requeues for the next
/// drift check.
pub async fn report_synced(
    obj: &ApiIntegration,
    ctx: &Context,
    mut status: ApiIntegrationStatus,
    synced: Synced<'_>,
) -> Result<Action, Error> {
    let generation = obj.metadata.generation;
    let id = &synced.integration.integration_id;
    status.integration_id = Some(id.clone());
    status.api_id = Some(synced.api_id.to_string());
    status.region = Some(synced.region.clone());
    status.account_id = synced.account_id;
    status.connection_id = synced.desired.connection_id.clone();
    status.observed_generation = generation;
    status.applied_fields = synced.desired.set_field_names();
    status.integration_response_selection_expression = synced
        .integration
        .integration_response_selection_expression
        .clone();
    status.api_gateway_managed = Some(synced.integration.api_gateway_managed);
    status.create_started_at = None;
    status.create_spec = None;
    let api = ApiKey::new(&synced.region, synced.api_id);
    let previous = ready(&status.conditions);
    let still_recreated = synced.unchanged
        && previous.is_some_and(|c| {
            c.reason == Reason::Recreated.as_str() && c.observed_generation == generation
        });
    let (reason, message) = if let Some(message) = synced.recreated {
        (Reason::Recreated, message)
    } else if still_recreated {
        // Keep telling the user about the re-creation until the spec next changes.
        (
            Reason::Recreated,
            previous.map(|c| c.message.clone()).unwrap_or_default(),
        )
    } else {
        (
            Reason::Synced,
            format!("Integration {id} matches the spec."),
        )
    };
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
    write_status(obj, ctx, &status).await?;
    if synced.unchanged {
        ctx.metrics.checked_in_sync();
    }
    let resync = ctx.settings.resync;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let next = plan::next_check_in(&api.api_id, wall, synced.seen_at.elapsed(), resync);
    // A little spread (±2 % of the period) so the API's resources do not all wake in the same
    // millisecond; far less than the 25 % a listing stays fresh, so they still share one.
    let spread = resync.mul_f64(rand::rng().random_range(0.0..0.04));
    let wait = (next + spread).saturating_sub(resync.mul_f64(0.02));
    ctx.remember_settled(obj, false, std::time::Instant::now() + wait);
    ctx.remember_synced(obj, api, synced.integration);
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
    ctx.forget_settled(obj);
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
        ctx.remember_settled(obj, true, std::time::Instant::now());
        return Ok(Action::await_change());
    }
    Err(err)
}
