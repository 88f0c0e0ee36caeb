//! One reconcile's instructions carried out, from the first observation to the report: [`Run`] holds
//! what they work on, one method per kind of instruction.

use super::observe::resolve_and_observe;
use super::{Failed, applying};
use crate::api::{ApiIntegration, ApiIntegrationStatus};
use crate::aws::AwsError;
use crate::aws::credentials::Identity;
use crate::conditions::EventReason;
use crate::controller::context::Context;
use crate::controller::error::{Error, Phase};
use crate::controller::scope::{ApiKey, Scope, Target, Written};
use crate::controller::status::{
    Seen, Synced, now, publish, report_observed, report_synced, write_status,
};
use crate::controller::steps::create::create;
use crate::controller::steps::finalizer;
use crate::controller::steps::permit;
use crate::controller::steps::responses;
use crate::plan::refs;
use crate::plan::{Blocker, Do, Finish, IntegrationFields, Observation, Outcome, Progress, Step};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::time::Instant;

/// A bound on the instructions of one reconcile, which [`Progress`] never reaches (at most: the
/// finalizer, a re-create, the ID, an update, a check of its answer, the finish; and for responses,
/// rule 12, a read and one write per response, stray ones included, with room to spare).
const MAX_STEPS: usize = 12 + 8 * crate::api::MAX_INTEGRATION_RESPONSES;

/// Observe, then carry out what [`Progress::next`] says, one instruction at a time, until it says the
/// work is done or refused. `status` is kept up to date with what each step established.
pub(super) async fn sync(
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
