//! Making API Gateway hold the spec: observe → [`plan::next_step`] → carry the step out → report.

use super::context::{Context, Target};
use super::error::{Error, Phase};
use super::listing::{ApiKey, Written};
use super::references::{Resolution, resolve_references};
use super::report::{
    Recreation, Synced, jittered, latest_status, now, publish, report_failure, report_synced,
    write_status,
};
use super::tenancy;
use crate::api::{ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationSpec, ApiIntegrationStatus};
use crate::aws::{AwsError, refuse_unknown_values};
use crate::conditions::{EventReason, READY, Reason, set_condition};
use crate::credentials::Identity;
use crate::plan::{
    self, Blocker, Candidate, Due, Holding, IntegrationFields, Observed, ObservedIntegration, Step,
};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::collections::BTreeSet;
use std::time::Instant;

/// The finalizer's Apply: skip quickly when nothing is due, else sync and report.
pub async fn apply(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    if !tenancy::wait_until_loaded(ctx, std::time::Duration::from_secs(2)).await {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    // §7: a namespace or region that lost its policy says so at once, whatever else is due.
    if let Err(refused) = tenancy::namespace_and_region_allowed(obj, ctx, &ctx.region_of(obj)) {
        let status = obj.status.clone().unwrap_or_default();
        return report_failure(obj, ctx, status, refused, Phase::Apply).await;
    }
    let due = plan::next_check(
        obj.status.as_ref(),
        obj.metadata.generation,
        ctx.remembered(obj),
        (Timestamp::now(), Instant::now()),
        ctx.settings.resync,
    );
    match due {
        Due::WhenSpecChanges => return Ok(Action::await_change()),
        Due::After(wait) => return Ok(Action::requeue(jittered(wait))),
        Due::Now => {}
    }
    let status = obj.status.clone().unwrap_or_default();
    match sync(obj, ctx, status.clone()).await {
        Ok(action) => Ok(action),
        Err((phase, err)) => {
            // A step may have written status already (create in flight): start from what it wrote.
            let latest = latest_status(obj, ctx).await.unwrap_or(status);
            report_failure(obj, ctx, latest, err, phase).await
        }
    }
}

/// A failure and what was under way when it happened.
type Failed = (Phase, Error);

fn applying(e: impl Into<Error>) -> Failed {
    (Phase::Apply, e.into())
}

/// Observe, decide, act, until the decision is to sync, update or report; then report.
async fn sync(
    obj: &ApiIntegration,
    ctx: &Context,
    mut status: ApiIntegrationStatus,
) -> Result<Action, Failed> {
    let region = ctx.region_of(obj);
    // §7: with --tenancy policy, the policy that allows this resource, and so whose credentials act.
    let identity = tenancy::identity_for(obj, ctx, &region, None)
        .await
        .map_err(applying)?;
    let t = ctx.target(&identity, &region).await;
    let (aws, scope) = (&t.aws, &t.scope);
    let resolution = resolve_references(obj, &t).await.map_err(applying)?;
    let api: ApiKey = (region, resolution.api_id.clone().unwrap_or_default());
    // Observing and writing happen under the API's lock, so what was observed stays true until we act.
    let lock = scope.api_lock(&api);
    let _one_change_per_api = match resolution.unresolved {
        None => Some(lock.lock().await),
        Some(_) => None,
    };
    let mut observed = observe(obj, ctx, &t, &api, &status, resolution)
        .await
        .map_err(applying)?;
    panic_once_failpoint(obj, ctx);
    let mut recreated: Option<Recreation> = None;
    // Each step but the last produces the integration the next one works on: at most three rounds
    // (e.g. Recreate, then Update of what was created).
    for _ in 0..3 {
        let step = plan::next_step(&observed);
        tracing::debug!(?step, "next step");
        let made = match step {
            Step::InSync(integration) => {
                let message = recreated.map(|r| r.message(&integration.integration_id));
                let synced = synced(
                    &integration,
                    &observed.desired,
                    &api,
                    true,
                    message,
                    &identity,
                );
                return report_synced(obj, ctx, status, synced)
                    .await
                    .map_err(applying);
            }
            Step::Update {
                integration,
                drift,
                body,
            } => {
                let id = &integration.integration_id;
                let result = aws.update_integration(&api.1, id, &body).await;
                let written = result.as_ref().map_or(Written::Unknown, Written::Now);
                scope.listings.after_write(&api, id, written);
                let updated = result.map_err(|e| (Phase::Update, e.into()))?;
                let note = format!("Updated {} of integration {id}.", drift.join(", "));
                publish(ctx, obj, EventReason::Updated, note).await;
                let message = recreated.map(|r| r.message(id));
                let synced = synced(&updated, &observed.desired, &api, false, message, &identity);
                return report_synced(obj, ctx, status, synced)
                    .await
                    .map_err(applying);
            }
            Step::Report(blocker) => {
                if blocker == Blocker::ApiNotFound {
                    scope.forget_api(&api);
                    if obj.spec.api_ref.is_some() {
                        // The listing named an API that is gone: look again at the next try.
                        scope.refs.api_gone(&api.0).await;
                    }
                }
                return Err(applying(Error::blocked(blocker, &api)));
            }
            Step::Adopt(integration) => {
                let note = format!(
                    "Adopted existing integration {}.",
                    integration.integration_id
                );
                publish(ctx, obj, EventReason::Adopted, note).await;
                integration
            }
            Step::RecoverInterrupted(integration) => {
                // The ID is recorded before anything changes the integration: an update that follows,
                // applied in AWS but its answer lost, would leave it matching neither the spec the create
                // sent nor, after a further edit, the current one, and the next lookup would make another.
                status.integration_id = Some(integration.integration_id.clone());
                status.create_started_at = None;
                status.create_spec = None;
                write_status(obj, ctx, &status).await.map_err(applying)?;
                let note = format!(
                    "Found integration {} made by a create that was interrupted; not creating another.",
                    integration.integration_id
                );
                publish(ctx, obj, EventReason::Recovered, note).await;
                integration
            }
            Step::Create => create(obj, ctx, &t, &api, &mut status, &observed.desired, None)
                .await
                .map_err(applying)?,
            Step::Recreate { lost_id } => {
                let note = format!(
                    "Integration {lost_id} was deleted outside the operator; creating it again."
                );
                publish(ctx, obj, EventReason::Recreating, note).await;
                recreated = Some(Recreation::Lost);
                create(
                    obj,
                    ctx,
                    &t,
                    &api,
                    &mut status,
                    &observed.desired,
                    recreated.clone(),
                )
                .await
                .map_err(applying)?
            }
            Step::MoveToNewApi {
                old_api,
                old_id,
                delete_old,
            } => {
                if delete_old {
                    // Not under the old API's lock: taking a second lock while holding this one could
                    // deadlock against a move the other way; a concurrent change there answers 409, and
                    // that is retried. A gone API or integration counts as deleted.
                    let old: ApiKey = (api.0.clone(), old_api.clone());
                    let result = aws.delete_integration(&old_api, &old_id).await;
                    let written = if result.is_ok() {
                        Written::Gone
                    } else {
                        Written::Unknown
                    };
                    scope.listings.after_write(&old, &old_id, written);
                    result.map_err(applying)?;
                }
                recreated = Some(Recreation::Moved {
                    old_api,
                    new_api: api.1.clone(),
                    old_id,
                    old_deleted: delete_old,
                });
                create(
                    obj,
                    ctx,
                    &t,
                    &api,
                    &mut status,
                    &observed.desired,
                    recreated.clone(),
                )
                .await
                .map_err(applying)?
            }
        };
        observed.holding = Holding::Recorded {
            id: made.integration_id.clone(),
            found: Some(made),
        };
    }
    unreachable!("every step after a create, adoption or recovery is a sync or an update")
}

/// Failpoint `panic-once`: the first reconcile of each resource whose name contains "panic" panics here,
/// while holding the API's lock, in the middle of the work (for the test that a panic is caught).
fn panic_once_failpoint(obj: &ApiIntegration, ctx: &Context) {
    static FIRED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let name = obj.name_any();
    if ctx.settings.failpoint.as_deref() == Some("panic-once")
        && name.contains("panic")
        && FIRED.lock().unwrap().insert(name.clone())
    {
        panic!("failpoint panic-once reached for {name}");
    }
}

fn synced<'a>(
    integration: &'a ObservedIntegration,
    desired: &'a IntegrationFields,
    api: &'a ApiKey,
    unchanged: bool,
    recreated: Option<String>,
    identity: &Identity,
) -> Synced<'a> {
    Synced {
        integration,
        desired,
        api_id: &api.1,
        region: api.0.clone(),
        // The account only a policy's role puts it in; the operator's own account needs no saying.
        account_id: identity.role_arn.as_ref().map(|_| identity.account()),
        unchanged,
        recreated,
    }
}

/// Reads what the decision needs: the API's protocol, then whatever AWS holds for this resource. What to
/// read follows the status: the recorded integration; else the adoption target; else, after an
/// interrupted create, the API's integrations.
async fn observe(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &ApiIntegrationStatus,
    resolution: Resolution,
) -> Result<Observed, AwsError> {
    let aws = &t.aws;
    let mut desired = IntegrationFields::from_spec(&obj.spec);
    desired.connection_id = resolution.connection_id;
    let mut observed = Observed {
        desired,
        previously_applied: status.applied_fields.clone(),
        protocol: None,
        holding: Holding::Nothing,
        unresolved: resolution.unresolved,
        deletion_policy: obj.spec.deletion_policy(),
    };
    if observed.unresolved.is_some() {
        return Ok(observed);
    }
    observed.protocol = t.scope.protocol(aws, api).await?;
    if observed.protocol.is_none() {
        return Ok(observed);
    }
    let candidate = |integration: ObservedIntegration| Candidate {
        claimed_by: ctx.claimed_by_other(obj, &api.1, &integration.integration_id),
        integration,
    };
    let recorded_api = status.api_id.as_deref();
    let holding = if let (Some(old_api), Some(old_id)) = (recorded_api, &status.integration_id)
        && old_api != api.1
    {
        Holding::OnReplacedApi {
            old_api: old_api.to_string(),
            old_id: old_id.clone(),
        }
    } else if let Some(id) = status.integration_id.clone() {
        let found = if plan::may_use_listing(status, obj.metadata.generation) {
            t.scope.integration_via_listing(aws, api, &id).await
        } else {
            absent_if_not_found(aws.get_integration(&api.1, &id).await)
        };
        match found {
            Ok(found) => {
                found.iter().try_for_each(refuse_unknown_values)?;
                Holding::Recorded { id, found }
            }
            // Only the listing answers 404 for the API itself: the API is gone.
            Err(AwsError::NotFound(_)) => return Ok(api_gone(observed)),
            Err(e) => return Err(e),
        }
    } else if let Some(id) = obj.annotations().get(ADOPT_ANNOTATION) {
        let found = absent_if_not_found(aws.get_integration(&api.1, id).await)?;
        found.iter().try_for_each(refuse_unknown_values)?;
        Holding::AdoptionTarget {
            id: id.clone(),
            found: found.map(candidate),
        }
    } else if status.create_started_at.is_some() {
        match aws.list_integrations(&api.1).await {
            Ok(list) => Holding::InterruptedCreate {
                candidates: list.into_iter().map(candidate).collect(),
                sent: sent_by_interrupted_create(status),
            },
            Err(AwsError::NotFound(_)) => return Ok(api_gone(observed)),
            Err(e) => return Err(e),
        }
    } else {
        Holding::Nothing
    };
    observed.holding = holding;
    Ok(observed)
}

fn api_gone(mut observed: Observed) -> Observed {
    observed.protocol = None;
    observed.holding = Holding::Nothing;
    observed
}

fn absent_if_not_found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(AwsError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The in-flight marker is written only if the object is still the version this reconcile decided on
/// (server-side apply with metadata.resourceVersion answers 409 otherwise). The controller's cache can lag
/// behind the operator's own writes, e.g. while its watch is re-established after an API server restart;
/// a create decided on such a stale copy does not see the marker (or the ID) an earlier attempt wrote,
/// and would make a second integration. On 409 nothing is created; the retry reads a fresher copy.
async fn write_create_marker(
    obj: &ApiIntegration,
    ctx: &Context,
    status: &ApiIntegrationStatus,
) -> Result<(), Error> {
    let api: kube::Api<ApiIntegration> =
        kube::Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = create_marker_patch(obj, status);
    let pp = kube::api::PatchParams::apply(super::MANAGER).force();
    match tokio::time::timeout(
        std::time::Duration::from_secs(15),
        api.patch_status(&obj.name_any(), &pp, &kube::api::Patch::Apply(&patch)),
    )
    .await
    {
        Ok(result) => result.map(|_| ()).map_err(Error::from),
        Err(_) => Err(Error::StatusTimeout),
    }
}

/// The server-side apply body of [`write_create_marker`]: the status, conditional on the resourceVersion.
fn create_marker_patch(obj: &ApiIntegration, status: &ApiIntegrationStatus) -> serde_json::Value {
    use kube::Resource;
    serde_json::json!({
        "apiVersion": ApiIntegration::api_version(&()),
        "kind": ApiIntegration::kind(&()),
        "metadata": {"resourceVersion": obj.resource_version()},
        "status": status,
    })
}

/// What the create in flight sent, from `status.createSpec` (None when absent or unreadable), with the
/// VPC link it was made with (create records it in status before the call).
pub(super) fn sent_by_interrupted_create(
    status: &ApiIntegrationStatus,
) -> Option<IntegrationFields> {
    let spec: ApiIntegrationSpec = serde_json::from_str(status.create_spec.as_deref()?).ok()?;
    let mut sent = IntegrationFields::from_spec(&spec);
    if spec.connection_ref.is_some() {
        sent.connection_id = status.connection_id.clone();
    }
    Some(sent)
}

/// Rule 2: "create in flight" is in status before CreateIntegration, the ID right after it.
async fn create(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &mut ApiIntegrationStatus,
    desired: &IntegrationFields,
    recreated: Option<Recreation>,
) -> Result<ObservedIntegration, Error> {
    // Where it is being made, so that a crash before the ID is recorded is recovered there.
    status.api_id = Some(api.1.clone());
    status.connection_id = desired.connection_id.clone();
    status.integration_id = None;
    status.create_started_at = Some(now());
    status.create_spec = serde_json::to_string(&obj.spec).ok();
    let message = "Creating the integration in API Gateway.";
    let generation = obj.metadata.generation;
    set_condition(
        &mut status.conditions,
        READY,
        false,
        Reason::Creating,
        message,
        generation,
        now(),
    );
    write_create_marker(obj, ctx, status).await?;

    let result = t.aws.create_integration(&api.1, desired).await;
    match &result {
        Ok(c) => t
            .scope
            .listings
            .after_write(api, &c.integration_id, Written::Now(c)),
        Err(_) => t.scope.listings.after_write(api, "", Written::Unknown),
    }
    let created = match result {
        Ok(c) => c,
        // The API went away since its protocol was cached.
        Err(AwsError::NotFound(_)) => {
            t.scope.forget_api(api);
            return Err(Error::ApiNotFound(api.1.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    if ctx.settings.failpoint.as_deref() == Some("after-create") {
        tracing::error!(integration_id = %created.integration_id, "failpoint after-create reached: stopping before the status write");
        std::future::pending::<()>().await;
    }
    status.integration_id = Some(created.integration_id.clone());
    status.create_started_at = None;
    status.create_spec = None;
    write_status(obj, ctx, status).await?;
    let (reason, note) = match recreated {
        Some(r) => (EventReason::Recreated, r.message(&created.integration_id)),
        None => {
            let note = format!("Created integration {}.", created.integration_id);
            (EventReason::Created, note)
        }
    };
    publish(ctx, obj, reason, note).await;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_marker_is_conditional_on_the_version_read() {
        let mut obj = ApiIntegration::new(
            "x",
            serde_json::from_value(serde_json::json!({"apiId": "a1", "integrationType": "MOCK"}))
                .unwrap(),
        );
        obj.metadata.resource_version = Some("42".into());
        let status = ApiIntegrationStatus {
            create_started_at: Some(now()),
            ..Default::default()
        };
        let patch = create_marker_patch(&obj, &status);
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert!(patch["status"]["createStartedAt"].is_string(), "{patch}");
        assert_eq!(patch["kind"], "ApiIntegration");
    }
}
