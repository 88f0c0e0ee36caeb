//! Resolving the references and reading what AWS holds for the resource, under the API's lock.

use super::{Failed, applying};
use crate::api::ManagementPolicy;
use crate::api::{ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationStatus};
use crate::aws::{AwsError, refuse_unknown_values};
use crate::controller::context::Context;
use crate::controller::scope::{ApiKey, Target};
use crate::controller::steps::create::sent_by_interrupted_create;
use crate::controller::steps::finalizer;
use crate::controller::steps::resolve::{Resolution, resolve_references};
use crate::plan::refs::GoneApi;
use crate::plan::{
    self, Candidate, Holding, IntegrationFields, Observed, ObservedIntegration, Progress,
    WantedResponses,
};
use kube::ResourceExt;
use std::time::Instant;

/// The API's lock: observing and writing happen under it, so what was observed stays true until we act.
/// Held until the last AWS write; released before the status is written, so that the API's other
/// resources need not wait on the API server.
pub(super) type OneChangePerApi = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Resolves the references, takes the API's lock and observes. §6: when the API apiRef resolved to
/// answers 404, the region's APIs are listed again (at most once per recheck) and one re-made under the
/// same name is followed now, not after a slow retry.
pub(super) async fn resolve_and_observe(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    region: &str,
    status: &ApiIntegrationStatus,
) -> Result<(ApiKey, OneChangePerApi, Progress), Failed> {
    // The API apiRef resolved to, when it answered 404 in this reconcile.
    let mut gone: Option<GoneApi> = None;
    loop {
        let resolution = resolve_references(obj, t, gone.as_ref())
            .await
            .map_err(applying)?;
        let api = ApiKey::new(region, resolution.api_id.clone().unwrap_or_default());
        let one_change_per_api = match resolution.unresolved {
            None => Some(t.scope.api_lock(&api).lock_owned().await),
            Some(_) => None,
        };
        let progress = observe(obj, ctx, t, &api, status, resolution)
            .await
            .map_err(applying)?;
        let observed = &progress.observed;
        let api_gone = observed.unresolved.is_none() && observed.protocol.is_none();
        if api_gone && obj.spec.api_ref.is_some() && gone.is_none() {
            t.scope.forget_api(&api);
            t.scope.refs.api_gone(&api.region).await;
            gone = Some(GoneApi {
                id: api.api_id.clone(),
                at: Instant::now(),
            });
            continue;
        }
        return Ok((api, one_change_per_api, progress));
    }
}

/// Reads what the decision needs: the API's protocol, then whatever AWS holds for this resource. What to
/// read follows the status: the recorded integration; else the adoption target; else, after an
/// interrupted create, the API's integrations. The recorded integration may be taken from this
/// process's memory of its last sync instead of read (see [`Progress::from_memory`]).
async fn observe(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &ApiIntegrationStatus,
    resolution: Resolution,
) -> Result<Progress, AwsError> {
    let (observed, from_memory, seen_at) = read(obj, ctx, t, api, status, resolution).await?;
    Ok(Progress::new(
        observed,
        api.api_id.clone(),
        from_memory,
        seen_at,
        obj.status.as_ref().and_then(|s| s.integration_id.clone()),
        finalizer::has_finalizer(&obj.metadata),
    )
    .with_management(obj.spec.management_policy())
    .with_responses(WantedResponses::new(
        obj.spec.integration_responses.clone(),
        status.integration_responses.clone(),
    )))
}

/// What [`observe`] reads, and whether the recorded integration came from memory, and when AWS said it.
async fn read(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &ApiIntegrationStatus,
    resolution: Resolution,
) -> Result<(Observed, bool, Instant), AwsError> {
    let aws = t.aws.as_ref();
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
    let mut seen_at = Instant::now();
    if observed.unresolved.is_some() {
        return Ok((observed, false, seen_at));
    }
    observed.protocol = t.scope.protocol(aws, api).await?;
    if observed.protocol.is_none() {
        return Ok((observed, false, seen_at));
    }
    let mut from_memory = false;
    let candidate = |integration: ObservedIntegration| Candidate {
        claimed_by: ctx.claimed_by_other(obj, &api.api_id, &integration.integration_id),
        integration,
    };
    let recorded_api = status.api_id.as_deref();
    let holding = if let (Some(old_api), Some(old_id)) = (recorded_api, &status.integration_id)
        && old_api != api.api_id
    {
        Holding::OnReplacedApi {
            old_api: old_api.to_string(),
            old_id: old_id.clone(),
        }
    } else if let Some(id) = status.integration_id.clone() {
        let found = if plan::may_use_listing(status, obj.metadata.generation) {
            t.scope
                .integration_via_listing(aws, api, &id)
                .await
                .map(|(found, listed_at)| {
                    seen_at = listed_at;
                    found
                })
        } else if let Some(last) = ctx.memory.last_synced(obj, api, &id)
            && obj.spec.management_policy() == ManagementPolicy::Manage
        {
            // Manage checks an update sent from memory by AWS's answer; Observe sends none, so it reads.
            from_memory = true;
            Ok(Some(last))
        } else {
            absent_if_not_found(aws.get_integration(&api.api_id, &id).await)
        };
        match found {
            Ok(found) => {
                found.iter().try_for_each(refuse_unknown_values)?;
                Holding::Recorded { id, found }
            }
            // Only the listing answers 404 for the API itself: the API is gone.
            Err(AwsError::NotFound(_)) => return Ok((api_gone(observed), false, seen_at)),
            Err(e) => return Err(e),
        }
    } else if let Some(id) = obj.annotations().get(ADOPT_ANNOTATION) {
        let found = absent_if_not_found(aws.get_integration(&api.api_id, id).await)?;
        found.iter().try_for_each(refuse_unknown_values)?;
        Holding::AdoptionTarget {
            id: id.clone(),
            found: found.map(candidate),
        }
    } else if let Some(in_flight) = obj.create_in_flight() {
        match aws.list_integrations(&api.api_id).await {
            Ok(list) => Holding::InterruptedCreate {
                candidates: list.into_iter().map(candidate).collect(),
                sent: sent_by_interrupted_create(&in_flight),
            },
            Err(AwsError::NotFound(_)) => return Ok((api_gone(observed), false, seen_at)),
            Err(e) => return Err(e),
        }
    } else {
        Holding::Nothing
    };
    observed.holding = holding;
    Ok((observed, from_memory, seen_at))
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
