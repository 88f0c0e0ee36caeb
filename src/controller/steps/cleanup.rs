//! Deleting a resource (design §2 rule 5): carry out what [`plan::next_cleanup_step`] says, one step at a
//! time, filling in what it asks to know (permission, what a create in flight made), until it retains,
//! deletes or finds nothing to delete. Ok from here removes the finalizer, so every failure is returned
//! as an error and retried.

use super::create::sent_by_interrupted_create;
use super::permit;
use crate::api::{ApiIntegration, CreateInFlight};
use crate::aws::AwsError;
use crate::conditions::EventReason;
use crate::controller::context::Context;
use crate::controller::error::{Error, Phase};
use crate::controller::scope::{ApiKey, Target, Written};
use crate::controller::status::{publish, report_failure};
use crate::plan::{self, Candidate, CleanupObserved, CleanupStep, IntegrationFields, Protocol};
use kube::runtime::controller::Action;

pub async fn cleanup(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    ctx.memory.forget_settled(obj);
    let status = obj.status.clone().unwrap_or_default();
    let result = delete(obj, ctx).await;
    match result {
        Ok(action) => {
            ctx.memory.forget(obj);
            Ok(action)
        }
        Err(err) => report_failure(obj, ctx, status, err, Phase::Delete).await,
    }
}

/// At most: permission, the look for an interrupted create, the delete.
const MAX_STEPS: usize = 4;

async fn delete(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    let region = ctx.region_of(obj);
    let in_flight = obj.create_in_flight();
    // Where the integration was made (what a reference resolved to then, in status or, for a create
    // whose ID never reached status, in its record); never resolved again here, so deleting works when
    // the reference no longer resolves.
    let recorded = obj.status.as_ref().and_then(|s| s.api_id.clone());
    let marked = in_flight.as_ref().and_then(|f| f.api_id.clone());
    let Some(api_id) = recorded.or(marked).or_else(|| obj.spec.api_id.clone()) else {
        // A reference never resolved: nothing was created anywhere.
        return Ok(Action::await_change());
    };
    let api = ApiKey::new(&region, api_id);
    let mut observed = CleanupObserved {
        policy: obj.spec.deletion_policy(),
        recorded_id: obj.status.as_ref().and_then(|s| s.integration_id.clone()),
        create_in_flight: in_flight.is_some(),
        permitted: false,
        interrupted_create: None,
        desired: sent_or_current(obj, in_flight.as_ref()),
    };
    // The client of the identity the permission check chose; the plan asks for that check before any
    // step that touches AWS.
    let mut target: Option<Target> = None;
    for _ in 0..MAX_STEPS {
        let step = plan::next_cleanup_step(&observed);
        tracing::debug!(?step, "next cleanup step");
        match step {
            CleanupStep::Retain { id } => {
                if let Some(id) = id {
                    let note =
                        format!("deletionPolicy is Retain: integration {id} stays in API Gateway.");
                    publish(ctx, obj, EventReason::Retained, note).await;
                }
                return Ok(Action::await_change());
            }
            CleanupStep::NothingToDelete => return Ok(Action::await_change()),
            CleanupStep::CheckPermission => {
                target = Some(permitted_target(obj, ctx, &api).await?);
                observed.permitted = true;
            }
            CleanupStep::LookForInterruptedCreate => {
                let t = target.as_ref().expect("the plan checks permission first");
                observed.interrupted_create = Some(look_for_interrupted(obj, ctx, t, &api).await?);
            }
            CleanupStep::Delete { id } => {
                let t = target.as_ref().expect("the plan checks permission first");
                return delete_integration(obj, ctx, t, &api, id).await;
            }
        }
    }
    unreachable!("a deletion ends within {MAX_STEPS} steps")
}

/// What the create in flight sent; without its spec recorded, the current spec with the VPC link the
/// create was made with.
fn sent_or_current(obj: &ApiIntegration, in_flight: Option<&CreateInFlight>) -> IntegrationFields {
    if let Some(sent) = in_flight.and_then(sent_by_interrupted_create) {
        return sent;
    }
    let mut desired = IntegrationFields::from_spec(&obj.spec);
    if obj.spec.connection_ref.is_some() {
        desired.connection_id = obj
            .status
            .as_ref()
            .and_then(|s| s.connection_id.clone())
            .or_else(|| in_flight.and_then(|f| f.connection_id.clone()));
    }
    desired
}

/// [`CleanupStep::CheckPermission`] (§7): the client of the identity allowed to delete on `api`.
async fn permitted_target(
    obj: &ApiIntegration,
    ctx: &Context,
    api: &ApiKey,
) -> Result<Target, Error> {
    if !permit::wait_until_loaded(ctx, std::time::Duration::from_secs(30)).await {
        return Err(Error::NotPermitted(
            "the ApiGatewayAccess policies are not loaded yet".into(),
        ));
    }
    let identity = permit::identity_for(obj, ctx, &api.region, Some(&api.api_id)).await?;
    Ok(ctx.target(&identity, &api.region).await)
}

/// [`CleanupStep::LookForInterruptedCreate`]: the API's protocol and integrations (the API's absence
/// counts: its integrations went with it).
async fn look_for_interrupted(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
) -> Result<(Option<Protocol>, Vec<Candidate>), Error> {
    let Some(protocol) = t.scope.protocol(t.aws.as_ref(), api).await? else {
        return Ok((None, vec![]));
    };
    match t.aws.list_integrations(&api.api_id).await {
        Ok(list) => Ok((
            Some(protocol),
            list.into_iter()
                .map(|integration| Candidate {
                    claimed_by: ctx.claimed_by_other(obj, &api.api_id, &integration.integration_id),
                    integration,
                })
                .collect(),
        )),
        Err(AwsError::NotFound(_)) => Ok((None, vec![])),
        Err(e) => Err(e.into()),
    }
}

/// [`CleanupStep::Delete`], under the API's lock.
async fn delete_integration(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    id: String,
) -> Result<Action, Error> {
    let lock = t.scope.api_lock(api);
    let _one_change_per_api = lock.lock().await;
    let result = t.aws.delete_integration(&api.api_id, &id).await;
    let written = match result {
        Ok(()) => Written::Gone,
        Err(_) => Written::Unknown,
    };
    t.scope.listings.after_write(api, &id, written);
    match result {
        Ok(()) => {
            let note = format!("Deleted integration {id}.");
            publish(ctx, obj, EventReason::Deleted, note).await;
            Ok(Action::await_change())
        }
        // Rule 5: a 409 that is not a concurrent change means routes still target it.
        Err(detail @ AwsError::Conflict(_)) if !detail.is_concurrent_modification() => {
            Err(Error::DeletionBlocked { id, detail })
        }
        Err(e) => Err(e.into()),
    }
}
