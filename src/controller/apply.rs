//! Making API Gateway hold the spec: observe → [`plan::next_step`] → carry the step out → report.

use super::context::{Context, Scope, Target};
use super::create::{create, sent_by_interrupted_create};
use super::error::{Error, Phase};
use super::finalizer;
use super::listing::{ApiKey, Written};
use super::references::{Resolution, resolve_references};
use super::report::{
    Recreation, Synced, now, publish, report_failure, report_synced, write_status,
};
use super::tenancy;
use crate::api::{ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationStatus};
use crate::aws::{AwsError, refuse_unknown_values};
use crate::conditions::EventReason;
use crate::credentials::Identity;
use crate::plan::refs::{self, GoneApi};
use crate::plan::{
    self, Blocker, Candidate, Due, Holding, IntegrationFields, Observed, ObservedIntegration, Step,
};
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
    match sync(obj, ctx, &mut status).await {
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

/// Observe, decide, act, until the decision is to report; then report. `status` is kept up to date with
/// what each step established.
async fn sync(
    obj: &ApiIntegration,
    ctx: &Context,
    status: &mut ApiIntegrationStatus,
) -> Result<Action, Failed> {
    let region = ctx.region_of(obj);
    // §7: with --tenancy policy, the policy that allows this resource, and so whose credentials act.
    let identity = tenancy::identity_for(obj, ctx, &region, None)
        .await
        .map_err(applying)?;
    let t = ctx.target(&identity, &region).await;
    let (aws, scope) = (&t.aws, &t.scope);
    // §6: the API apiRef resolved to, when it answered 404 in this reconcile.
    let mut gone: Option<GoneApi> = None;
    let (api, mut one_change_per_api, (mut observed, mut from_memory, mut seen_at)) = loop {
        let resolution = resolve_references(obj, &t, gone.as_ref())
            .await
            .map_err(applying)?;
        let api: ApiKey = (
            region.clone(),
            resolution.api_id.clone().unwrap_or_default(),
        );
        // Observing and writing happen under the API's lock, so what was observed stays true until we
        // act. Held from observing until the last AWS write; released before the status is written, so
        // that the API's other resources need not wait on the API server.
        let one_change_per_api = match resolution.unresolved {
            None => Some(scope.api_lock(&api).lock_owned().await),
            Some(_) => None,
        };
        let seen = observe(obj, ctx, &t, &api, status, resolution)
            .await
            .map_err(applying)?;
        let api_gone = seen.0.unresolved.is_none() && seen.0.protocol.is_none();
        if api_gone && obj.spec.api_ref.is_some() && gone.is_none() {
            // The API the reference resolved to is gone: list the region's APIs again (at most once per
            // recheck) and follow one re-made under the same name now, not after a slow retry.
            scope.forget_api(&api);
            scope.refs.api_gone(&api.0).await;
            gone = Some(GoneApi {
                id: api.1.clone(),
                at: Instant::now(),
            });
            continue;
        }
        break (api, one_change_per_api, seen);
    };
    panic_once_failpoint(obj, ctx);
    // The finalizer (and, before a first create, the marker) as far as this reconcile has written them.
    let mut meta = obj.metadata.clone();
    let mut recreated: Option<Recreation> = None;
    // Whether this reconcile wrote anything to AWS, and whether it wrote the status's ID already.
    let mut changed = false;
    let mut id_written = false;
    // Each step but the last produces the integration the next one works on: at most four rounds
    // (e.g. Recreate, then an Update of what was created, checked once more).
    for _ in 0..4 {
        let step = plan::next_step(&observed);
        tracing::debug!(?step, "next step");
        if step.owns_integration() {
            // Whatever the resource owns in AWS must not outlive it: the finalizer comes first. For a
            // first create, the marker travels in the same write.
            let marker = (step == Step::Create).then(|| {
                let connection_id = observed.desired.connection_id.clone();
                finalizer::create_marker(&api.1, connection_id, &obj.spec, now())
            });
            finalizer::ensure(obj, &mut meta, &ctx.client, marker.as_ref())
                .await
                .map_err(applying)?;
        }
        let made = match step {
            Step::InSync(integration) => {
                let message = recreated.map(|r| r.message(&integration.integration_id));
                let synced = synced(
                    &integration,
                    &observed.desired,
                    &api,
                    !changed,
                    message,
                    &identity,
                    seen_at,
                );
                drop(one_change_per_api.take());
                return report_synced(obj, ctx, status.clone(), synced)
                    .await
                    .map_err(applying);
            }
            Step::Update {
                integration,
                drift,
                body,
            } => {
                let id = integration.integration_id.clone();
                let on_server = obj.status.as_ref().and_then(|s| s.integration_id.as_ref());
                if on_server != Some(&id) && !id_written {
                    // An integration just created or found is recorded before anything changes it: an
                    // update applied in AWS with its answer lost would leave it matching neither the
                    // spec its create sent nor the current one, and the next lookup would make another.
                    write_status(obj, ctx, status).await.map_err(applying)?;
                    id_written = true;
                }
                let result = aws.update_integration(&api.1, &id, &body).await;
                let written = result.as_ref().map_or(Written::Unknown, Written::Now);
                scope.listings.after_write(&api, &id, written);
                let updated = match result {
                    Ok(updated) => updated,
                    // Rule 3: the integration is gone (sent blind, from memory, this is how it is found
                    // out): the next step re-creates it.
                    Err(AwsError::NotFound(_)) => {
                        observed.holding = Holding::Recorded { id, found: None };
                        from_memory = false;
                        continue;
                    }
                    Err(e) => return Err((Phase::Update, e.into())),
                };
                changed = true;
                let note = format!("Updated {} of integration {id}.", drift.join(", "));
                publish(ctx, obj, EventReason::Updated, note).await;
                if from_memory {
                    // The update was computed from what this process last saw: AWS's answer is the
                    // truth, and one more round repairs anything changed behind our back meanwhile.
                    from_memory = false;
                    seen_at = Instant::now();
                    observed.holding = Holding::Recorded {
                        id,
                        found: Some(updated),
                    };
                    continue;
                }
                let message = recreated.map(|r| r.message(&id));
                let synced = synced(
                    &updated,
                    &observed.desired,
                    &api,
                    false,
                    message,
                    &identity,
                    Instant::now(),
                );
                drop(one_change_per_api.take());
                return report_synced(obj, ctx, status.clone(), synced)
                    .await
                    .map_err(applying);
            }
            Step::Report(blocker) => {
                let mut err = Error::blocked(blocker.clone(), &api);
                if blocker == Blocker::ApiNotFound {
                    scope.forget_api(&api);
                    if let Some(lost) = api_ref_lost(obj, scope, &api).await {
                        err = lost;
                    }
                }
                return Err(applying(err));
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
                // Recorded now; written before any AWS write that could change it (see Update).
                status.api_id = Some(api.1.clone());
                status.integration_id = Some(integration.integration_id.clone());
                status.create_started_at = None;
                status.create_spec = None;
                let note = format!(
                    "Found integration {} made by a create that was interrupted; not creating another.",
                    integration.integration_id
                );
                publish(ctx, obj, EventReason::Recovered, note).await;
                integration
            }
            step @ (Step::Create | Step::Recreate { .. } | Step::MoveToNewApi { .. }) => {
                // What replacing a recorded integration needs first; a first create needs nothing.
                recreated = match step {
                    Step::Recreate { lost_id } => {
                        let note = format!(
                            "Integration {lost_id} was deleted outside the operator; creating it again."
                        );
                        publish(ctx, obj, EventReason::Recreating, note).await;
                        Some(Recreation::Lost)
                    }
                    Step::MoveToNewApi {
                        old_api,
                        old_id,
                        delete_old,
                    } => {
                        if delete_old {
                            // Not under the old API's lock: taking a second lock while holding this one
                            // could deadlock against a move the other way; a concurrent change there
                            // answers 409, and that is retried. A gone API or integration counts as
                            // deleted.
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
                        Some(Recreation::Moved {
                            old_api,
                            new_api: api.1.clone(),
                            old_id,
                            old_deleted: delete_old,
                        })
                    }
                    _ => None,
                };
                let made = create(
                    obj,
                    ctx,
                    &t,
                    &api,
                    status,
                    &observed.desired,
                    recreated.clone(),
                    meta.resource_version.as_deref(),
                )
                .await;
                match made {
                    Ok(made) => made,
                    Err(Error::ApiNotFound(id)) => {
                        let lost = api_ref_lost(obj, scope, &api).await;
                        return Err(applying(lost.unwrap_or(Error::ApiNotFound(id))));
                    }
                    Err(e) => return Err(applying(e)),
                }
            }
        };
        changed = true;
        from_memory = false;
        seen_at = Instant::now();
        observed.holding = Holding::Recorded {
            id: made.integration_id.clone(),
            found: Some(made),
        };
    }
    unreachable!("every step after a create, adoption or recovery is a sync or an update")
}

/// §6: the API that apiRef resolved to answered 404 after this reconcile's listing had been looked at
/// again (or while acting on it). The error names the reference, not an ID it no longer resolves to,
/// and the next try, once the region's APIs may be listed again, looks for one re-made under the name.
/// None without an apiRef.
async fn api_ref_lost(obj: &ApiIntegration, scope: &Scope, api: &ApiKey) -> Option<Error> {
    let r = obj.spec.api_ref.as_ref()?;
    scope.refs.api_gone(&api.0).await;
    let blocker = Blocker::ApiRefGone {
        what: refs::describe(&r.name, &r.tags),
        relist_in: scope.refs.recheck_after(),
    };
    Some(Error::blocked(blocker, api))
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
    seen_at: Instant,
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
        seen_at,
    }
}

/// Reads what the decision needs: the API's protocol, then whatever AWS holds for this resource. What to
/// read follows the status: the recorded integration; else the adoption target; else, after an
/// interrupted create, the API's integrations. The flag says the recorded integration was not read but
/// taken from this process's memory of its last sync: after a spec change, the update is computed from
/// that and sent at once (one AWS call), and AWS's answer is checked like a fresh read.
async fn observe(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &ApiIntegrationStatus,
    resolution: Resolution,
) -> Result<(Observed, bool, Instant), AwsError> {
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
            t.scope
                .integration_via_listing(aws, api, &id)
                .await
                .map(|(found, listed_at)| {
                    seen_at = listed_at;
                    found
                })
        } else if let Some(last) = ctx.last_synced(obj, api, &id) {
            from_memory = true;
            Ok(Some(last))
        } else {
            absent_if_not_found(aws.get_integration(&api.1, &id).await)
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
        let found = absent_if_not_found(aws.get_integration(&api.1, id).await)?;
        found.iter().try_for_each(refuse_unknown_values)?;
        Holding::AdoptionTarget {
            id: id.clone(),
            found: found.map(candidate),
        }
    } else if status.create_started_at.is_some() || obj.create_started().is_some() {
        match aws.list_integrations(&api.1).await {
            Ok(list) => Holding::InterruptedCreate {
                candidates: list.into_iter().map(candidate).collect(),
                sent: sent_by_interrupted_create(obj),
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
