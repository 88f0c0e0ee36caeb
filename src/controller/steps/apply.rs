//! Making API Gateway hold the spec: observe once, then carry out what [`Progress::next`] says, one
//! instruction at a time, until it finishes (report Ready) or refuses (report why).

use super::create::{create, sent_by_interrupted_create};
use super::finalizer;
use super::permit;
use super::resolve::{Resolution, resolve_references};
use super::responses;
use crate::api::ManagementPolicy;
use crate::api::{ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationStatus};
use crate::aws::credentials::Identity;
use crate::aws::{AwsError, refuse_unknown_values};
use crate::conditions::EventReason;
use crate::controller::context::Context;
use crate::controller::error::{Error, Phase};
use crate::controller::scope::{ApiKey, Scope, Target, Written};
use crate::controller::status::{
    Seen, Synced, now, publish, report_failure, report_observed, report_synced, write_status,
};
use crate::plan::refs::{self, GoneApi};
use crate::plan::{
    self, Blocker, Candidate, Do, Due, Finish, Holding, IntegrationFields, Observation, Observed,
    ObservedIntegration, Outcome, Progress, Step, WantedResponses,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
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

/// A bound on the instructions of one reconcile, which [`Progress`] never reaches (at most: the
/// finalizer, a re-create, the ID, an update, a check of its answer, the finish; and for responses,
/// rule 12, a read and one write per response, stray ones included, with room to spare).
const MAX_STEPS: usize = 12 + 8 * crate::api::MAX_INTEGRATION_RESPONSES;

/// Observe, then carry out what [`Progress::next`] says, one instruction at a time, until it says the
/// work is done or refused. `status` is kept up to date with what each step established.
async fn sync(
    obj: &ApiIntegration,
    ctx: &Context,
    status: &mut ApiIntegrationStatus,
) -> Result<Action, Failed> {
    let region = ctx.region_of(obj);
    // §7: with --tenancy policy, the policy that allows this resource, and so whose credentials act.
    let identity = permit::identity_for(obj, ctx, &region, None)
        .await
        .map_err(applying)?;
    let t = ctx.target(&identity, &region).await;
    let (api, mut one_change_per_api, mut progress) =
        resolve_and_observe(obj, ctx, &t, &region, status).await?;
    ctx.settings.failpoints.panic_once(&obj.name_any());
    let mut run = Run {
        obj,
        ctx,
        t: &t,
        api: &api,
        status,
        meta: obj.metadata.clone(),
    };
    for _ in 0..MAX_STEPS {
        let next = progress.next();
        tracing::debug!(?next, "next step");
        let outcome = match &next {
            Do::Own { first_create } => run.own(*first_create, &progress).await?,
            Do::RecordId => run.record_id().await?,
            Do::Aws(step) => run.aws(step, &progress).await?,
            Do::Responses {
                integration_id,
                step,
            } => responses::carry_out(obj, ctx, &t, &api, integration_id, step).await?,
            Do::Refuse(blocker) | Do::Observe(Observation::Blocked(blocker)) => {
                return Err(run.refuse(blocker.clone()).await);
            }
            Do::Observe(observation) => {
                drop(one_change_per_api.take());
                return run.observed(observation, &progress, &identity).await;
            }
            Do::Finish(finish) => {
                drop(one_change_per_api.take());
                return run.finish(finish, &progress, &identity).await;
            }
        };
        progress.record(&next, outcome, Instant::now());
    }
    unreachable!("a reconcile ends within {MAX_STEPS} steps")
}

/// The API's lock: observing and writing happen under it, so what was observed stays true until we act.
/// Held until the last AWS write; released before the status is written, so that the API's other
/// resources need not wait on the API server.
type OneChangePerApi = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Resolves the references, takes the API's lock and observes. §6: when the API apiRef resolved to
/// answers 404, the region's APIs are listed again (at most once per recheck) and one re-made under the
/// same name is followed now, not after a slow retry.
async fn resolve_and_observe(
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

/// §6: the API that apiRef resolved to answered 404 after this reconcile's listing had been looked at
/// again (or while acting on it). The error names the reference, not an ID it no longer resolves to,
/// and the next try, once the region's APIs may be listed again, looks for one re-made under the name.
/// None without an apiRef.
async fn api_ref_lost(obj: &ApiIntegration, scope: &Scope, api: &ApiKey) -> Option<Error> {
    let r = obj.spec.api_ref.as_ref()?;
    scope.refs.api_gone(&api.region).await;
    let blocker = Blocker::ApiRefGone {
        what: refs::describe(&r.name, &r.tags),
        relist_in: scope.refs.recheck_after(),
    };
    Some(Error::blocked(blocker, api))
}

/// What carrying out one reconcile's steps works on.
struct Run<'a> {
    obj: &'a ApiIntegration,
    ctx: &'a Context,
    t: &'a Target,
    api: &'a ApiKey,
    /// The status as the steps so far have made it (written by the report, or by [`Do::RecordId`]).
    status: &'a mut ApiIntegrationStatus,
    /// The finalizer and first-create annotation as far as this reconcile has written them.
    meta: ObjectMeta,
}

impl Run<'_> {
    /// [`Do::Own`]: the finalizer, and for a first create the create-in-flight annotation, in one write
    /// (none if the object has them already).
    async fn own(&mut self, first_create: bool, progress: &Progress) -> Result<Outcome, Failed> {
        let marker = first_create.then(|| {
            let connection_id = progress.observed.desired.connection_id.clone();
            finalizer::create_marker(&self.api.api_id, connection_id, &self.obj.spec, now())
        });
        finalizer::ensure(self.obj, &mut self.meta, &self.ctx.client, marker.as_ref())
            .await
            .map_err(applying)?;
        Ok(Outcome::Owned)
    }

    /// [`Do::RecordId`]: the status as it stands, which names the integration about to be updated.
    async fn record_id(&mut self) -> Result<Outcome, Failed> {
        write_status(self.obj, self.ctx, self.status)
            .await
            .map_err(applying)?;
        Ok(Outcome::IdRecorded)
    }

    /// [`Do::Refuse`]: forget what the blocker shows to be wrong, and fail with it.
    async fn refuse(&self, blocker: Blocker) -> Failed {
        let mut err = Error::blocked(blocker.clone(), self.api);
        if blocker == Blocker::ApiNotFound {
            self.t.scope.forget_api(self.api);
            if let Some(lost) = api_ref_lost(self.obj, &self.t.scope, self.api).await {
                err = lost;
            }
        }
        applying(err)
    }

    /// [`Do::Finish`]: Ready, and the requeue for the next drift check.
    async fn finish(
        &mut self,
        finish: &Finish,
        progress: &Progress,
        identity: &Identity,
    ) -> Result<Action, Failed> {
        self.status.integration_responses = progress.response_ids();
        let synced = Synced {
            finish,
            desired: &progress.observed.desired,
            api: self.api,
            // The account only a policy's role puts it in; the operator's own account needs no saying.
            account_id: identity.role_arn.as_ref().map(|_| identity.account()),
        };
        report_synced(self.obj, self.ctx, self.status.clone(), synced)
            .await
            .map_err(applying)
    }

    /// [`Do::Observe`]: report what Observe found (rule 11), and requeue for the next look.
    async fn observed(
        &self,
        observation: &Observation,
        progress: &Progress,
        identity: &Identity,
    ) -> Result<Action, Failed> {
        let seen = Seen {
            observation,
            seen_at: progress.seen_at,
            desired: &progress.observed.desired,
            api: self.api,
            account_id: identity.role_arn.as_ref().map(|_| identity.account()),
        };
        let mut status = self.status.clone();
        status.integration_responses = progress.observed_response_ids();
        report_observed(self.obj, self.ctx, status, seen)
            .await
            .map_err(applying)
    }

    /// [`Do::Aws`]: one AWS step.
    async fn aws(&mut self, step: &Step, progress: &Progress) -> Result<Outcome, Failed> {
        let (obj, ctx) = (self.obj, self.ctx);
        match step {
            Step::Update {
                integration,
                drift,
                body,
            } => self.update(&integration.integration_id, drift, body).await,
            Step::Adopt(integration) => {
                let id = &integration.integration_id;
                let note = format!("Adopted existing integration {id}.");
                publish(ctx, obj, EventReason::Adopted, note).await;
                Ok(Outcome::Made(integration.clone()))
            }
            Step::RecoverInterrupted(integration) => {
                let id = &integration.integration_id;
                // Recorded now; written before any AWS write that could change it.
                self.status.record_integration(&self.api.api_id, id);
                let note = format!(
                    "Found integration {id} made by a create that was interrupted; not creating another."
                );
                publish(ctx, obj, EventReason::Recovered, note).await;
                Ok(Outcome::Made(integration.clone()))
            }
            Step::Create | Step::Recreate { .. } | Step::MoveToNewApi { .. } => {
                self.replace(step, progress).await
            }
            Step::InSync(_) | Step::Report(_) => {
                unreachable!("the plan finishes or refuses these itself")
            }
        }
    }

    /// UpdateIntegration, and what it tells: the new state, or that the integration is gone (rule 3:
    /// sent blind, from memory, this is how it is found out).
    async fn update(
        &mut self,
        id: &str,
        drift: &[&str],
        body: &IntegrationFields,
    ) -> Result<Outcome, Failed> {
        let (aws, scope) = (&self.t.aws, &self.t.scope);
        let result = aws.update_integration(&self.api.api_id, id, body).await;
        let written = result.as_ref().map_or(Written::Unknown, Written::Now);
        scope.listings.after_write(self.api, id, written);
        match result {
            Ok(updated) => {
                let note = format!("Updated {} of integration {id}.", drift.join(", "));
                publish(self.ctx, self.obj, EventReason::Updated, note).await;
                Ok(Outcome::Updated(updated))
            }
            Err(AwsError::NotFound(_)) => Ok(Outcome::Gone),
            Err(e) => Err((Phase::Update, e.into())),
        }
    }

    /// Create, Recreate and MoveToNewApi: what replacing a recorded integration needs first (the
    /// Recreating Event, or deleting the old integration), then the one create.
    async fn replace(&mut self, step: &Step, progress: &Progress) -> Result<Outcome, Failed> {
        let (obj, ctx) = (self.obj, self.ctx);
        match step {
            Step::Recreate { lost_id } => {
                let note = format!(
                    "Integration {lost_id} was deleted outside the operator; creating it again."
                );
                publish(ctx, obj, EventReason::Recreating, note).await;
            }
            Step::MoveToNewApi {
                old_api,
                old_id,
                delete_old: true,
            } => {
                // Not under the old API's lock: taking a second lock while holding this one could
                // deadlock against a move the other way; a concurrent change there answers 409, and
                // that is retried. A gone API or integration counts as deleted.
                let old = ApiKey::new(&self.api.region, old_api);
                let result = self.t.aws.delete_integration(old_api, old_id).await;
                let written = match result {
                    Ok(()) => Written::Gone,
                    Err(_) => Written::Unknown,
                };
                self.t.scope.listings.after_write(&old, old_id, written);
                result.map_err(applying)?;
            }
            _ => {}
        }
        let made = create(
            obj,
            ctx,
            self.t,
            self.api,
            self.status,
            &progress.observed.desired,
            progress.recreation(step),
            self.meta.resource_version.as_deref(),
        )
        .await;
        match made {
            Ok(made) => Ok(Outcome::Made(made)),
            // The API went away since it was observed; behind apiRef, that is said of the reference.
            Err(Error::ApiNotFound(id)) => {
                let lost = api_ref_lost(obj, &self.t.scope, self.api).await;
                Err(applying(lost.unwrap_or(Error::ApiNotFound(id))))
            }
            Err(e) => Err(applying(e)),
        }
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
