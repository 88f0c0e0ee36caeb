//! The reconciler. `finalizer()` is the top of reconcile; `apply` makes API Gateway hold the spec, `cleanup`
//! honours deletionPolicy. Every outcome is written to status (Ready + reason) and, when it is news, an Event.

use crate::api::{ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationStatus, DeletionPolicy};
use crate::aws::{AwsApi, AwsError, CallStats};
use crate::conditions::{READY, Reason, ready, set_condition};
use crate::metrics::{Health, Metrics};
use crate::plan::{self, IntegrationFields, ObservedIntegration, Protocol};
use crate::ratelimit::TokenBucket;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (region, apiId): the unit that is reconciled one call at a time.
type ApiKey = (String, String);
/// What this process last concluded about an object, for which generation, and when.
#[derive(Clone, Copy, Debug)]
struct Settled {
    generation: Option<i64>,
    at: std::time::Instant,
    /// AWS refused this generation (400): nothing to do until the spec changes.
    refused: bool,
}
/// Serialises the AWS calls for one API so that two resources on it never race.
type ApiLock = Arc<tokio::sync::Mutex<()>>;

/// Finalizer that keeps a resource until its integration is removed from AWS (or retained).
pub const FINALIZER: &str = "apigw.dev/integration";
/// Field manager of the operator's status writes.
pub const MANAGER: &str = "apigw-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("API {0} not found in API Gateway")]
    ApiNotFound(String),
    #[error("adoption refused: {0}")]
    AdoptionRefused(String),
    #[error("deletion blocked: {0}")]
    DeletionBlocked(String),
    #[error("status write timed out")]
    StatusTimeout,
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// Label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) | Error::StatusTimeout => "kube",
            Error::Aws(e) => e.outcome(),
            Error::ApiNotFound(_) => "api_not_found",
            Error::AdoptionRefused(_) => "adoption_refused",
            Error::DeletionBlocked(_) => "deletion_blocked",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "kube",
            },
        }
    }
}

/// Operator settings that shape reconciliation.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Region for resources that do not name one.
    pub default_region: String,
    /// How often an in-sync resource is re-checked against AWS (with ±10 % jitter).
    pub resync: Duration,
    /// Retry period for conditions that need someone else to act (API missing, access denied, routes).
    pub slow_retry: Duration,
    /// AWS calls per second per region, and burst.
    pub aws_rate: f64,
    pub aws_burst: u32,
    /// Test hook: `after-create` stops the reconciler between CreateIntegration and the status write.
    pub failpoint: Option<String>,
    /// Watch only this namespace (None: all).
    pub namespace: Option<String>,
    /// Resources reconciled at once.
    pub concurrency: u16,
    /// Longest wait for one API Gateway answer. A call that hangs would otherwise hold its worker and
    /// the per-API lock for good; a create that times out is looked up before any second create.
    pub aws_timeout: Duration,
}

/// Everything reconcile needs, shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub store: Store<ApiIntegration>,
    pub settings: Settings,
    pub stats: Arc<CallStats>,
    pub metrics: Arc<Metrics>,
    sdk_config: aws_config::SdkConfig,
    regions: Mutex<HashMap<String, AwsApi>>,
    protocols: Mutex<HashMap<(String, String), Protocol>>,
    api_locks: Mutex<HashMap<ApiKey, ApiLock>>,
    failures: Mutex<HashMap<ObjectRef<ApiIntegration>, u32>>,
    /// When each object was last found in sync (or refused by AWS), and at which generation. The watch
    /// cache can lag behind our own status writes; this keeps a stale copy from causing another round
    /// of AWS calls.
    settled: Mutex<HashMap<ObjectRef<ApiIntegration>, Settled>>,
    /// Recent GetIntegrations answers per API: periodic drift checks of many resources on one API share
    /// one listing instead of one GetIntegration each.
    listings: Mutex<HashMap<ApiKey, Listing>>,
}

/// What our own write left in AWS, for the cached listing.
enum Written<'a> {
    Now(&'a ObservedIntegration),
    Gone,
    Unknown,
}

/// One GetIntegrations answer, by integration ID.
struct Listing {
    fetched: std::time::Instant,
    by_id: HashMap<String, ObservedIntegration>,
}

impl Context {
    pub fn new(
        client: Client,
        store: Store<ApiIntegration>,
        sdk_config: aws_config::SdkConfig,
        settings: Settings,
        stats: Arc<CallStats>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            store,
            settings,
            stats,
            metrics,
            sdk_config,
            regions: Mutex::default(),
            protocols: Mutex::default(),
            api_locks: Mutex::default(),
            failures: Mutex::default(),
            settled: Mutex::default(),
            listings: Mutex::default(),
        }
    }

    /// The API Gateway client for `region`, with its own token bucket. SDK retries are off: every retry is
    /// a reconcile decision, counted and rate-limited like any other call.
    fn aws(&self, region: &str) -> AwsApi {
        let mut regions = self.regions.lock().unwrap();
        regions
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_apigatewayv2::config::Builder::from(&self.sdk_config)
                    .region(aws_sdk_apigatewayv2::config::Region::new(
                        region.to_string(),
                    ))
                    .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled())
                    .timeout_config(
                        aws_sdk_apigatewayv2::config::timeout::TimeoutConfig::builder()
                            .connect_timeout(self.settings.aws_timeout.min(Duration::from_secs(5)))
                            .operation_attempt_timeout(self.settings.aws_timeout)
                            .build(),
                    )
                    .build();
                let bucket = Arc::new(TokenBucket::new(
                    self.settings.aws_rate,
                    self.settings.aws_burst,
                ));
                AwsApi::new(
                    aws_sdk_apigatewayv2::Client::from_conf(conf),
                    region.to_string(),
                    bucket,
                    self.stats.clone(),
                )
            })
            .clone()
    }

    /// One change at a time per API: AWS answers concurrent modification of an API with 409.
    /// The integration as a periodic drift check sees it: from a listing of its API fetched within a
    /// quarter of the resync period, else from a fresh listing. An ID missing from the listing is asked
    /// for directly, so a listing older than a create can never make us re-create. None: it is gone.
    async fn observe_listed(
        &self,
        aws: &AwsApi,
        region: &str,
        api_id: &str,
        id: &str,
    ) -> Result<Option<ObservedIntegration>, AwsError> {
        let key = (region.to_string(), api_id.to_string());
        let fresh_enough = self.settings.resync.mul_f64(0.25);
        let cached = {
            let listings = self.listings.lock().unwrap();
            listings
                .get(&key)
                .filter(|l| l.fetched.elapsed() < fresh_enough)
                .map(|l| l.by_id.get(id).cloned())
        };
        let listed = match cached {
            Some(found) => found,
            None => {
                let by_id: HashMap<String, ObservedIntegration> = aws
                    .list_integrations(api_id)
                    .await?
                    .into_iter()
                    .map(|o| (o.integration_id.clone(), o))
                    .collect();
                let found = by_id.get(id).cloned();
                self.listings.lock().unwrap().insert(
                    key,
                    Listing {
                        fetched: std::time::Instant::now(),
                        by_id,
                    },
                );
                found
            }
        };
        if listed.is_some() {
            return Ok(listed);
        }
        match aws.get_integration(api_id, id).await {
            Ok(o) => Ok(Some(o)),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn forget_protocol(&self, region: &str, api_id: &str) {
        self.protocols
            .lock()
            .unwrap()
            .remove(&(region.to_string(), api_id.to_string()));
    }

    /// Keeps the API's cached listing true to our own write to integration `id` (writes and listings of
    /// one API are serialised by its lock, so nothing else changed it meanwhile): AWS's answer replaces
    /// the entry, a delete removes it, and a failed write, whose effect is unknown, drops the listing.
    fn after_write(&self, region: &str, api_id: &str, id: &str, written: Written<'_>) {
        let key = (region.to_string(), api_id.to_string());
        let mut listings = self.listings.lock().unwrap();
        match written {
            Written::Now(o) => {
                if let Some(l) = listings.get_mut(&key) {
                    l.by_id.insert(id.to_string(), o.clone());
                }
            }
            Written::Gone => {
                if let Some(l) = listings.get_mut(&key) {
                    l.by_id.remove(id);
                }
            }
            Written::Unknown => {
                listings.remove(&key);
            }
        }
    }

    fn api_lock(&self, region: &str, api_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.api_locks
            .lock()
            .unwrap()
            .entry((region.into(), api_id.into()))
            .or_default()
            .clone()
    }

    async fn protocol(&self, aws: &AwsApi, region: &str, api_id: &str) -> Result<Protocol, Error> {
        let key = (region.to_string(), api_id.to_string());
        if let Some(p) = self.protocols.lock().unwrap().get(&key) {
            return Ok(*p);
        }
        let p = match aws.api_protocol(api_id).await {
            Ok(p) => p,
            Err(AwsError::NotFound(_)) => return Err(Error::ApiNotFound(api_id.to_string())),
            Err(e) => return Err(e.into()),
        };
        self.protocols.lock().unwrap().insert(key, p);
        Ok(p)
    }

    /// Another ApiIntegration of the same API already records this integration ID.
    fn claimed_by_other(
        &self,
        me: &ApiIntegration,
        api_id: &str,
        integration_id: &str,
    ) -> Option<String> {
        self.store.state().iter().find_map(|o| {
            let same_object = o.uid() == me.uid();
            let claims = o.spec.api_id == api_id
                && o.status.as_ref().and_then(|s| s.integration_id.as_deref())
                    == Some(integration_id);
            (!same_object && claims)
                .then(|| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
        })
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..1.1))
}

/// Writes the whole status (server-side apply, our field manager), unless it is what the object has.
async fn write_status(
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

async fn publish(
    ctx: &Context,
    obj: &ApiIntegration,
    type_: EventType,
    reason: &str,
    note: String,
    action: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

/// The reason and message a failure shows in the Ready condition.
fn failure_reason(err: &Error) -> Reason {
    match err {
        Error::Aws(AwsError::BadRequest(_)) => Reason::InvalidSpec,
        Error::Aws(AwsError::AccessDenied(_)) => Reason::AccessDenied,
        Error::Aws(AwsError::Throttled(_)) => Reason::Throttled,
        Error::ApiNotFound(_) => Reason::ApiNotFound,
        Error::AdoptionRefused(_) => Reason::AdoptionRefused,
        Error::DeletionBlocked(_) => Reason::DeletionBlocked,
        _ => Reason::AwsError,
    }
}

/// Records a failure in status and as a Warning Event; returns what reconcile should return.
async fn fail(
    obj: &ApiIntegration,
    ctx: &Context,
    mut status: ApiIntegrationStatus,
    err: Error,
) -> Result<Action, Error> {
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let (reason, message) = match failure_reason(&err) {
        // A passing failure while deleting (5xx, network, another change to the API in flight): the
        // deletion is under way and is retried.
        Reason::AwsError if deleting => (
            Reason::Deleting,
            format!("deleting the integration, retrying after: {err}"),
        ),
        reason => (reason, err.to_string()),
    };
    let generation = obj.metadata.generation;
    let previous = ready(&status.conditions).map(|c| (c.reason.clone(), c.message.clone()));
    set_condition(
        &mut status.conditions,
        READY,
        false,
        reason,
        &message,
        generation,
        now(),
    );
    status.observed_generation = generation;
    if previous != Some((reason.as_str().to_string(), message.clone())) {
        publish(
            ctx,
            obj,
            EventType::Warning,
            reason.as_str(),
            message.clone(),
            "Reconcile",
        )
        .await;
    }
    tracing::warn!(reason = reason.as_str(), %message, "reconcile failed");
    write_status(obj, ctx, &status).await?;
    if reason == Reason::InvalidSpec && !deleting {
        // AWS said the spec is wrong: nothing to retry until the user changes it. (While deleting, the
        // spec no longer matters: retry slowly instead of holding the finalizer for good.)
        ctx.failures.lock().unwrap().remove(&ObjectRef::from(obj));
        remember(obj, ctx, true);
        return Ok(Action::await_change());
    }
    Err(err)
}

pub async fn reconcile(obj: Arc<ApiIntegration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<ApiIntegration> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(o) => apply(&o, &ctx).await,
            Finalizer::Cleanup(o) => cleanup(&o, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Is nothing due for this object right now? Returns how long until its next drift check.
fn quiet_until_next_check(obj: &ApiIntegration, resync: Duration) -> Option<Duration> {
    let status = obj.status.as_ref()?;
    let ready_condition = ready(&status.conditions)?;
    let judged_now = status.observed_generation == obj.metadata.generation
        && ready_condition.observed_generation == obj.metadata.generation;
    if judged_now && ready_condition.reason == Reason::InvalidSpec.as_str() {
        return Some(Duration::MAX); // AWS refused this generation: wait for a spec change
    }
    if !judged_now || status.integration_id.is_none() {
        return None;
    }
    if ready_condition.status != "True" {
        return None;
    }
    let since = Timestamp::now().duration_since(status.last_sync_time.as_ref()?.0);
    let since = Duration::try_from(since).unwrap_or_default();
    (since < resync.mul_f64(0.9)).then(|| resync - since)
}

/// How long until the next drift check, if this process synced this generation recently.
/// Duration::MAX when AWS refused this generation.
fn recently_settled(obj: &ApiIntegration, ctx: &Context) -> Option<Duration> {
    let key = ObjectRef::from(obj);
    let settled = *ctx.settled.lock().unwrap().get(&key)?;
    if settled.generation != obj.metadata.generation {
        return None;
    }
    if settled.refused {
        return Some(Duration::MAX);
    }
    let since = settled.at.elapsed();
    (since < ctx.settings.resync.mul_f64(0.9)).then(|| ctx.settings.resync - since)
}

fn remember(obj: &ApiIntegration, ctx: &Context, refused: bool) {
    ctx.settled.lock().unwrap().insert(
        ObjectRef::from(obj),
        Settled {
            generation: obj.metadata.generation,
            at: std::time::Instant::now(),
            refused,
        },
    );
}

async fn apply(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    if let Some(wait) = recently_settled(obj, ctx) {
        return Ok(if wait == Duration::MAX {
            Action::await_change()
        } else {
            Action::requeue(jittered(wait))
        });
    }
    if let Some(wait) = quiet_until_next_check(obj, ctx.settings.resync) {
        return Ok(if wait == Duration::MAX {
            Action::await_change()
        } else {
            Action::requeue(jittered(wait))
        });
    }
    let status = obj.status.clone().unwrap_or_default();
    match sync(obj, ctx, status.clone()).await {
        Ok(action) => {
            ctx.failures.lock().unwrap().remove(&ObjectRef::from(obj));
            remember(obj, ctx, false);
            Ok(action)
        }
        Err(err) => {
            ctx.settled.lock().unwrap().remove(&ObjectRef::from(obj));
            // `sync` may have written status already (create in flight); start from what it wrote.
            let latest = latest_status(obj, ctx).await.unwrap_or(status);
            fail(obj, ctx, latest, err).await
        }
    }
}

async fn latest_status(obj: &ApiIntegration, ctx: &Context) -> Option<ApiIntegrationStatus> {
    let api: Api<ApiIntegration> = Api::namespaced(ctx.client.clone(), &obj.namespace()?);
    api.get_status(&obj.name_any()).await.ok()?.status
}

/// Observe, then act: makes AWS hold the spec and reports it.
async fn sync(
    obj: &ApiIntegration,
    ctx: &Context,
    mut status: ApiIntegrationStatus,
) -> Result<Action, Error> {
    let spec = &obj.spec;
    let region = spec
        .region
        .clone()
        .unwrap_or_else(|| ctx.settings.default_region.clone());
    let aws = ctx.aws(&region);
    let desired = IntegrationFields::from_spec(spec);
    let protocol = ctx.protocol(&aws, &region, &spec.api_id).await?;
    let lock = ctx.api_lock(&region, &spec.api_id);
    let _one_change_per_api = lock.lock().await;

    let mut recreated = false;
    // A periodic check (nothing changed since the last successful sync) may use the API's listing.
    let periodic_check = status.observed_generation == obj.metadata.generation
        && ready(&status.conditions).is_some_and(|c| c.status == "True");
    let known = match status.integration_id.clone() {
        Some(id) => match if periodic_check {
            ctx.observe_listed(&aws, &region, &spec.api_id, &id).await
        } else {
            match aws.get_integration(&spec.api_id, &id).await {
                Err(AwsError::NotFound(_)) => Ok(None),
                other => other.map(Some),
            }
        } {
            Ok(Some(o)) => Some(o),
            Ok(None) => {
                recreated = true;
                publish(
                    ctx,
                    obj,
                    EventType::Warning,
                    "Recreating",
                    format!("integration {id} was deleted outside the operator; creating it again"),
                    "Recreate",
                )
                .await;
                None
            }
            // Only the listing can answer 404 here: the API itself is gone.
            Err(AwsError::NotFound(_)) => {
                ctx.forget_protocol(&region, &spec.api_id);
                return Err(Error::ApiNotFound(spec.api_id.clone()));
            }
            Err(e) => return Err(e.into()),
        },
        None => find_existing(obj, ctx, &aws, &status, &desired, protocol).await?,
    };

    let observed = match known {
        Some(o) => o,
        None => create(obj, ctx, &aws, &mut status, &desired, recreated).await?,
    };
    status.integration_id = Some(observed.integration_id.clone());

    let drift = plan::drifted_fields(&desired, &observed.fields, &status.applied_fields, protocol);
    let observed = if drift.is_empty() {
        observed
    } else {
        let body =
            plan::update_request(&desired, &observed.fields, &status.applied_fields, protocol);
        let result = aws
            .update_integration(&spec.api_id, &observed.integration_id, &body)
            .await;
        let written = result.as_ref().map_or(Written::Unknown, Written::Now);
        ctx.after_write(&region, &spec.api_id, &observed.integration_id, written);
        let updated = result?;
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Updated",
            format!(
                "updated {} in integration {}",
                drift.join(", "),
                observed.integration_id
            ),
            "Update",
        )
        .await;
        updated
    };

    let generation = obj.metadata.generation;
    status.api_id = Some(spec.api_id.clone());
    status.region = Some(region);
    status.observed_generation = generation;
    status.applied_fields = desired.set_field_names();
    status.integration_response_selection_expression =
        observed.integration_response_selection_expression.clone();
    status.api_gateway_managed = Some(observed.api_gateway_managed);
    status.create_started_at = None;
    status.last_sync_time = Some(now());
    let still_recreated = drift.is_empty()
        && ready(&status.conditions).is_some_and(|c| {
            c.reason == Reason::Recreated.as_str() && c.observed_generation == generation
        });
    let (reason, message) = if recreated {
        (
            Reason::Recreated,
            format!(
                "integration was deleted outside the operator and re-created as {}",
                observed.integration_id
            ),
        )
    } else if still_recreated {
        // Keep telling the user about the re-creation until the spec next changes.
        let c = ready(&status.conditions).expect("checked above");
        (Reason::Recreated, c.message.clone())
    } else {
        (
            Reason::Synced,
            format!("integration {} matches the spec", observed.integration_id),
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
    write_status(obj, ctx, &status).await?;
    Ok(Action::requeue(jittered(ctx.settings.resync)))
}

/// With no integration ID recorded: the one named by the adoption annotation, or after an interrupted
/// create, the one that create made (matching fields, claimed by no other ApiIntegration).
async fn find_existing(
    obj: &ApiIntegration,
    ctx: &Context,
    aws: &AwsApi,
    status: &ApiIntegrationStatus,
    desired: &IntegrationFields,
    protocol: Protocol,
) -> Result<Option<ObservedIntegration>, Error> {
    let api_id = &obj.spec.api_id;
    if let Some(id) = obj.annotations().get(ADOPT_ANNOTATION) {
        let found = match aws.get_integration(api_id, id).await {
            Ok(o) => o,
            Err(AwsError::NotFound(_)) => {
                return Err(Error::AdoptionRefused(format!(
                    "integration {id} does not exist in API {api_id}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if found.api_gateway_managed {
            return Err(Error::AdoptionRefused(format!(
                "integration {id} is managed by API Gateway (quick create) and cannot be adopted"
            )));
        }
        if let Some(owner) = ctx.claimed_by_other(obj, api_id, id) {
            return Err(Error::AdoptionRefused(format!(
                "integration {id} is already owned by ApiIntegration {owner}"
            )));
        }
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Adopted",
            format!("adopted existing integration {id}"),
            "Adopt",
        )
        .await;
        return Ok(Some(found));
    }
    if status.create_started_at.is_none() {
        return Ok(None);
    }
    let candidates = aws.list_integrations(api_id).await?;
    let found = candidates.into_iter().find(|o| {
        plan::is_same_integration(desired, o, protocol)
            && ctx
                .claimed_by_other(obj, api_id, &o.integration_id)
                .is_none()
    });
    if let Some(o) = &found {
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Recovered",
            format!(
                "found integration {} made by a create that was interrupted; not creating another",
                o.integration_id
            ),
            "Create",
        )
        .await;
    }
    Ok(found)
}

/// Creates the integration: "create in flight" is in status before the call, the ID right after it.
async fn create(
    obj: &ApiIntegration,
    ctx: &Context,
    aws: &AwsApi,
    status: &mut ApiIntegrationStatus,
    desired: &IntegrationFields,
    recreated: bool,
) -> Result<ObservedIntegration, Error> {
    let generation = obj.metadata.generation;
    status.integration_id = None;
    status.create_started_at = Some(now());
    set_condition(
        &mut status.conditions,
        READY,
        false,
        Reason::Creating,
        "creating the integration in API Gateway",
        generation,
        now(),
    );
    write_status(obj, ctx, status).await?;

    let result = aws.create_integration(&obj.spec.api_id, desired).await;
    let (id, written) = match &result {
        Ok(c) => (c.integration_id.as_str(), Written::Now(c)),
        Err(_) => ("", Written::Unknown),
    };
    ctx.after_write(aws.region(), &obj.spec.api_id, id, written);
    let created = match result {
        Ok(c) => c,
        // The API went away since its protocol was cached.
        Err(AwsError::NotFound(_)) => {
            ctx.forget_protocol(aws.region(), &obj.spec.api_id);
            return Err(Error::ApiNotFound(obj.spec.api_id.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    if ctx.settings.failpoint.as_deref() == Some("after-create") {
        tracing::error!(integration_id = %created.integration_id, "failpoint after-create reached: stopping before the status write");
        std::future::pending::<()>().await;
    }
    status.integration_id = Some(created.integration_id.clone());
    status.create_started_at = None;
    write_status(obj, ctx, status).await?;
    let (reason, note) = if recreated {
        (
            "Recreated",
            format!("re-created integration as {}", created.integration_id),
        )
    } else {
        (
            "Created",
            format!("created integration {}", created.integration_id),
        )
    };
    publish(ctx, obj, EventType::Normal, reason, note, "Create").await;
    Ok(created)
}

async fn cleanup(obj: &ApiIntegration, ctx: &Context) -> Result<Action, Error> {
    ctx.settled.lock().unwrap().remove(&ObjectRef::from(obj));
    let spec = &obj.spec;
    let status = obj.status.clone().unwrap_or_default();
    if spec.deletion_policy() == DeletionPolicy::Retain {
        if let Some(id) = &status.integration_id {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Retained",
                format!("deletionPolicy Retain: integration {id} left in API Gateway"),
                "Delete",
            )
            .await;
        }
        return Ok(Action::await_change());
    }
    let region = spec
        .region
        .clone()
        .or(status.region.clone())
        .unwrap_or_else(|| ctx.settings.default_region.clone());
    let aws = ctx.aws(&region);
    let id = match status.integration_id.clone() {
        Some(id) => Some(id),
        // A create may have happened without its ID being recorded: find it so it does not leak.
        None if status.create_started_at.is_some() => {
            let protocol = match ctx.protocol(&aws, &region, &spec.api_id).await {
                Ok(p) => p,
                Err(Error::ApiNotFound(_)) => return Ok(Action::await_change()),
                Err(e) => return fail(obj, ctx, status, e).await,
            };
            let desired = IntegrationFields::from_spec(spec);
            match aws.list_integrations(&spec.api_id).await {
                Ok(list) => list
                    .into_iter()
                    .find(|o| {
                        plan::is_same_integration(&desired, o, protocol)
                            && ctx
                                .claimed_by_other(obj, &spec.api_id, &o.integration_id)
                                .is_none()
                    })
                    .map(|o| o.integration_id),
                Err(AwsError::NotFound(_)) => None,
                Err(e) => return fail(obj, ctx, status, e.into()).await,
            }
        }
        None => None,
    };
    let Some(id) = id else {
        return Ok(Action::await_change());
    };
    let lock = ctx.api_lock(&region, &spec.api_id);
    let _one_change_per_api = lock.lock().await;
    let result = aws.delete_integration(&spec.api_id, &id).await;
    let written = match &result {
        Ok(()) => Written::Gone,
        Err(_) => Written::Unknown,
    };
    ctx.after_write(&region, &spec.api_id, &id, written);
    match result {
        Ok(()) => {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Deleted",
                format!("deleted integration {id}"),
                "Delete",
            )
            .await;
            Ok(Action::await_change())
        }
        Err(e @ AwsError::Conflict(_)) if !e.is_concurrent_modification() => {
            // Routes still target the integration; AWS's message names them.
            let err = Error::DeletionBlocked(format!(
                "API Gateway refused to delete integration {id} because routes still target it; \
                 remove them first ({e})"
            ));
            fail(obj, ctx, status, err).await
        }
        Err(e) => fail(obj, ctx, status, e.into()).await,
    }
}

/// How long to wait before retrying a failed reconcile.
pub fn retry_after(err: &Error, attempt: u32, slow: Duration) -> Duration {
    let inner = match err {
        Error::Finalizer(f) => match f.as_ref() {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            _ => err,
        },
        e => e,
    };
    let exponential = |base: f64, cap: f64| {
        Duration::from_secs_f64((base * 2f64.powi(attempt.min(16) as i32)).min(cap))
    };
    match inner {
        Error::ApiNotFound(_) | Error::AdoptionRefused(_) | Error::DeletionBlocked(_) => slow,
        Error::Aws(AwsError::AccessDenied(_)) => slow,
        Error::Aws(AwsError::BadRequest(_)) => slow, // only reached if the status write after a 400 failed
        Error::Aws(AwsError::Conflict(_)) => exponential(0.5, 10.0),
        Error::Aws(AwsError::Throttled(_)) => exponential(2.0, 120.0),
        _ => exponential(1.0, 300.0),
    }
}

pub fn error_policy(obj: Arc<ApiIntegration>, err: &Error, ctx: Arc<Context>) -> Action {
    let attempt = {
        let mut failures = ctx.failures.lock().unwrap();
        let n = failures.entry(ObjectRef::from(obj.as_ref())).or_default();
        *n += 1;
        *n - 1
    };
    let wait = jittered(retry_after(err, attempt, ctx.settings.slow_retry));
    tracing::info!(name = %obj.name_any(), error = %err, retry_in = ?wait, "reconcile will be retried");
    Action::requeue(wait)
}

/// The metric label for a reconcile's result: `ok` or the class of the error.
fn result_label(result: &Result<Action, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    }
}

/// reconcile, timed and counted.
async fn reconcile_measured(obj: Arc<ApiIntegration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile(obj, ctx.clone()).await;
    ctx.metrics
        .reconciled(result_label(&result), started.elapsed());
    result
}

/// Runs the controller until `shutdown` resolves, then lets in-flight reconciles finish.
pub async fn run(
    client: Client,
    sdk_config: aws_config::SdkConfig,
    settings: Settings,
    stats: Arc<CallStats>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let namespace = settings.namespace.clone();
    let api: Api<ApiIntegration> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list ApiIntegrations ({e}); is the CRD installed? kubectl apply --server-side -f crds/"
        );
    }
    let controller = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown);
    let store = controller.store();
    metrics.watch_store(store.clone());
    // Ready: the API server answered the list above with our credentials and the controller runs.
    // Not Store::wait_until_ready: the controller's applier already waits on that store, and kube-runtime
    // 5's DelayedInit keeps only the last poller's waker, so a second waiter either never wakes or steals
    // the applier's wake-up (seen: a spawned waiter never resolved while the applier went on).
    health
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let ctx = Arc::new(Context::new(
        client, store, sdk_config, settings, stats, metrics,
    ));
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "controller started"
    );
    controller
        .run(reconcile_measured, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => {
                    tracing::debug!(name = %obj.name, namespace = ?obj.namespace, "reconciled")
                }
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    tracing::info!("controller stopped; in-flight reconciles finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classes() {
        let slow = Duration::from_secs(60);
        assert_eq!(retry_after(&Error::ApiNotFound("a".into()), 5, slow), slow);
        assert_eq!(
            retry_after(&AwsError::AccessDenied("x".into()).into(), 0, slow),
            slow
        );
        let t0 = retry_after(&AwsError::Throttled("x".into()).into(), 0, slow);
        let t3 = retry_after(&AwsError::Throttled("x".into()).into(), 3, slow);
        assert_eq!((t0.as_secs(), t3.as_secs()), (2, 16));
        assert_eq!(
            retry_after(&AwsError::Throttled("x".into()).into(), 30, slow).as_secs(),
            120
        );
        assert_eq!(
            retry_after(&AwsError::Unavailable("x".into()).into(), 30, slow).as_secs(),
            300
        );
    }

    #[test]
    fn failure_reasons_follow_the_design() {
        assert_eq!(
            failure_reason(&AwsError::BadRequest("x".into()).into()),
            Reason::InvalidSpec
        );
        assert_eq!(
            failure_reason(&AwsError::AccessDenied("x".into()).into()),
            Reason::AccessDenied
        );
        assert_eq!(
            failure_reason(&AwsError::Throttled("x".into()).into()),
            Reason::Throttled
        );
        assert_eq!(
            failure_reason(&AwsError::Unavailable("x".into()).into()),
            Reason::AwsError
        );
        assert_eq!(
            failure_reason(&Error::ApiNotFound("a".into())),
            Reason::ApiNotFound
        );
        assert_eq!(
            failure_reason(&Error::DeletionBlocked("a".into())),
            Reason::DeletionBlocked
        );
    }
}
