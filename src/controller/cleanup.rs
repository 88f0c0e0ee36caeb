//! Deleting a resource: observe → [`plan::next_cleanup_step`] → carry it out → report (design §2 rule 5).
//! Ok from here removes the finalizer, so every failure is returned as an error and retried.

use super::context::{Context, Target};
use super::error::{Error, Phase};
use super::listing::{ApiKey, Written};
use super::report::{publish, report_failure};
use super::tenancy;
use crate::api::ApiIntegration;
use crate::aws::AwsError;
use crate::conditions::EventReason;
use crate::plan::{self, Candidate, CleanupObserved, CleanupStep, IntegrationFields};
use kube::runtime::controller::Action;

pub async fn cleanup(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    ctx.forget_settled(obj);
    let status = obj.status.clone().unwrap_or_default();
    let result = delete(obj, ctx).await;
    match result {
        Ok(action) => {
            ctx.forget(obj);
            Ok(action)
        }
        Err(err) => report_failure(obj, ctx, status, err, Phase::Delete).await,
    }
}

async fn delete(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    let region = ctx.region_of(obj);
    // Where the integration was made (what a reference resolved to then, in status or, for a first
    // create whose ID never reached status, in its marker); never resolved again here, so deleting works
    // when the reference no longer resolves.
    let recorded = obj.status.as_ref().and_then(|s| s.api_id.clone());
    let marked = || obj.create_started().flatten().map(|m| m.api_id);
    let Some(api_id) = recorded.or_else(marked).or_else(|| obj.spec.api_id.clone()) else {
        // A reference never resolved: nothing was created anywhere.
        return Ok(Action::await_change());
    };
    let api = ApiKey::new(&region, api_id);
    if obj.spec.deletion_policy() == crate::api::DeletionPolicy::Retain {
        // Nothing in AWS is touched: no permission needed.
        let step = plan::next_cleanup_step(&CleanupObserved {
            policy: obj.spec.deletion_policy(),
            recorded_id: obj.status.as_ref().and_then(|s| s.integration_id.clone()),
            interrupted_create: None,
            desired: IntegrationFields::default(),
        });
        if let CleanupStep::Retain { id: Some(id) } = step {
            let note = format!("deletionPolicy is Retain: integration {id} stays in API Gateway.");
            publish(ctx, obj, EventReason::Retained, note).await;
        }
        return Ok(Action::await_change());
    }
    // §7: deleting in AWS needs permission like any other change; without it the finalizer stays.
    if !tenancy::wait_until_loaded(ctx, std::time::Duration::from_secs(30)).await {
        return Err(Error::NotPermitted(
            "the ApiGatewayAccess policies are not loaded yet".into(),
        ));
    }
    let identity = tenancy::identity_for(obj, ctx, &region, Some(&api.api_id)).await?;
    let t = ctx.target(&identity, &region).await;
    let observed = observe(obj, &t, ctx, &api).await?;
    match plan::next_cleanup_step(&observed) {
        CleanupStep::Retain { id } => {
            if let Some(id) = id {
                let note =
                    format!("deletionPolicy is Retain: integration {id} stays in API Gateway.");
                publish(ctx, obj, EventReason::Retained, note).await;
            }
            Ok(Action::await_change())
        }
        CleanupStep::NothingToDelete => Ok(Action::await_change()),
        CleanupStep::Delete { id } => {
            let (aws, scope) = (&t.aws, &t.scope);
            let lock = scope.api_lock(&api);
            let _one_change_per_api = lock.lock().await;
            let result = aws.delete_integration(&api.api_id, &id).await;
            let written = if result.is_ok() {
                Written::Gone
            } else {
                Written::Unknown
            };
            scope.listings.after_write(&api, &id, written);
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
    }
}

/// What the decision needs: the recorded ID; without one, after an interrupted create, the API's
/// integrations (the API's absence counts: its integrations went with it).
async fn observe(
    obj: &ApiIntegration,
    t: &Target,
    ctx: &Context,
    api: &ApiKey,
) -> Result<CleanupObserved, Error> {
    let status = obj.status.clone().unwrap_or_default();
    let mut desired = IntegrationFields::from_spec(&obj.spec);
    if obj.spec.connection_ref.is_some() {
        // What connectionRef resolved to when the create was made.
        desired.connection_id = status
            .connection_id
            .clone()
            .or_else(|| obj.create_started().flatten().and_then(|m| m.connection_id));
    }
    // Rule 2: an interrupted create made what it was sent, whatever the spec says now.
    let desired = super::create::sent_by_interrupted_create(obj).unwrap_or(desired);
    let mut observed = CleanupObserved {
        policy: obj.spec.deletion_policy(),
        recorded_id: status.integration_id.clone(),
        interrupted_create: None,
        desired,
    };
    let look_for_interrupted = observed.policy == crate::api::DeletionPolicy::Delete
        && status.integration_id.is_none()
        && (status.create_started_at.is_some() || obj.create_started().is_some());
    if !look_for_interrupted {
        return Ok(observed);
    }
    let aws = &t.aws;
    let Some(protocol) = t.scope.protocol(aws, api).await? else {
        observed.interrupted_create = Some((None, vec![]));
        return Ok(observed);
    };
    let candidates = match aws.list_integrations(&api.api_id).await {
        Ok(list) => list
            .into_iter()
            .map(|integration| Candidate {
                claimed_by: ctx.claimed_by_other(obj, &api.api_id, &integration.integration_id),
                integration,
            })
            .collect(),
        Err(AwsError::NotFound(_)) => {
            observed.interrupted_create = Some((None, vec![]));
            return Ok(observed);
        }
        Err(e) => return Err(e.into()),
    };
    observed.interrupted_create = Some((Some(protocol), candidates));
    Ok(observed)
}
