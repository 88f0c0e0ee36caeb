//! The one [`Context`] every reconcile shares: Kubernetes and AWS clients, the per-API locks, and what this
//! process remembers between reconciles (API protocols, listings, recent outcomes, failure counts).

use super::events::Publisher;
use super::listing::{ApiKey, Cached, ListingCache};
use super::references::ReferenceCache;
use super::tenancy::{Tenancy, TenancyView};
use crate::api::ApiIntegration;
use crate::aws::credentials::{AssumedRole, Identity};
use crate::aws::ratelimit::TokenBucket;
use crate::aws::{AwsApi, AwsError, CallStats};
use crate::fence::{Fence, FenceInterceptor};
use crate::metrics::Metrics;
use crate::plan::{ApiSummary, ObservedIntegration, Protocol, Settled};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Field manager of the operator's status writes and the Events' reporting controller.
pub const MANAGER: &str = "apigw-operator";

/// Operator settings that shape reconciliation.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Region for resources that do not name one.
    pub default_region: String,
    /// How often an in-sync resource is re-checked against AWS (at its API's check time, ±2 %).
    pub resync: Duration,
    /// Retry period for conditions that need someone else to act (API missing, access denied, routes).
    pub slow_retry: Duration,
    /// AWS calls per second per region, and burst.
    pub aws_rate: f64,
    pub aws_burst: u32,
    /// Who may manage what: open (one identity, any API) or by ApiGatewayAccess policies.
    pub tenancy: Tenancy,
    /// Test hooks (only with the cargo feature `failpoints`).
    pub failpoints: crate::failpoints::Failpoints,
    /// Watch only this namespace (None: all).
    pub namespace: Option<String>,
    /// Resources reconciled at once.
    pub concurrency: u16,
    /// API Gateway calls in flight at once per account and region (reconciles beyond that many spend the
    /// wait on their Kubernetes reads and writes).
    pub aws_concurrency: usize,
    /// Longest wait for one API Gateway answer. A call that hangs would otherwise hold its worker and
    /// the per-API lock for good; a create that times out is looked up before any second create.
    pub aws_timeout: Duration,
}

/// Serialises the AWS writes for one API so that two resources on it never race (rule 4).
pub type ApiLock = Arc<tokio::sync::Mutex<()>>;

type Key = ObjectRef<ApiIntegration>;

/// Everything reconcile needs, shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub events: Publisher,
    pub store: Store<ApiIntegration>,
    pub settings: Settings,
    pub stats: Arc<CallStats>,
    pub metrics: Arc<Metrics>,
    /// Whether this process may write (design rule 10); the Kubernetes client checks it on every write,
    /// the API Gateway clients on every call but a read.
    pub fence: Arc<Fence>,
    sdk_config: aws_config::SdkConfig,
    /// API Gateway's quota, listings, locks and API facts per (account, region).
    scopes: Mutex<HashMap<(String, String), Arc<Scope>>>,
    /// One client per (identity, region): assumed-role credentials are cached in it.
    clients: tokio::sync::Mutex<HashMap<(Identity, String), AwsApi>>,
    /// Failures in a row per object, for the backoff (kube-runtime keeps no per-object error count).
    failures: Mutex<HashMap<Key, u32>>,
    /// The watched policies and namespaces, with `--tenancy policy`.
    pub tenancy: Option<TenancyView>,
    /// What each object was last found to be (in sync, or refused by AWS), at which generation.
    settled: Mutex<HashMap<Key, Settled>>,
    /// What AWS held for each object's integration at its last successful sync (its answer then).
    last_synced: Mutex<HashMap<Key, (ApiKey, ObservedIntegration)>>,
}

/// What is kept per AWS account and region (design §7: API Gateway's quota is per account and region):
/// the token bucket, the integration listings, the API and VPC link listings, the per-API locks and
/// what is known of each API.
pub struct Scope {
    bucket: Arc<TokenBucket>,
    in_flight: Arc<tokio::sync::Semaphore>,
    pub listings: ListingCache,
    /// The region's APIs and VPC links, for apiRef and connectionRef.
    pub refs: ReferenceCache,
    apis: Mutex<HashMap<ApiKey, (Instant, ApiSummary)>>,
    api_locks: Mutex<HashMap<ApiKey, ApiLock>>,
}

/// A client for one identity in one region, and the (account, region) scope it acts in.
#[derive(Clone)]
pub struct Target {
    pub aws: AwsApi,
    pub scope: Arc<Scope>,
}

impl Scope {
    /// One change at a time per API: AWS answers concurrent modification of an API with 409.
    pub fn api_lock(&self, api: &ApiKey) -> ApiLock {
        self.api_locks
            .lock()
            .unwrap()
            .entry(api.clone())
            .or_default()
            .clone()
    }

    /// What API Gateway says about the API (name, protocol, tags), from a GetApi or a listing at most
    /// `max_age` old; None when the API does not exist.
    pub async fn api(
        &self,
        aws: &AwsApi,
        api: &ApiKey,
        max_age: Duration,
    ) -> Result<Option<ApiSummary>, AwsError> {
        if let Some((at, known)) = self.apis.lock().unwrap().get(api)
            && at.elapsed() < max_age
        {
            return Ok(Some(known.clone()));
        }
        match aws.get_api(&api.api_id).await {
            Ok(found) => {
                self.remember_api(api, found.clone());
                Ok(Some(found))
            }
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The API's protocol (it never changes for an API); None when the API does not exist.
    pub async fn protocol(&self, aws: &AwsApi, api: &ApiKey) -> Result<Option<Protocol>, AwsError> {
        Ok(self.api(aws, api, Duration::MAX).await?.map(|a| a.protocol))
    }

    /// An API seen in a listing (saves a GetApi).
    pub fn remember_api(&self, api: &ApiKey, summary: ApiSummary) {
        self.apis
            .lock()
            .unwrap()
            .insert(api.clone(), (Instant::now(), summary));
    }

    /// The API went away: ask again if it comes back.
    pub fn forget_api(&self, api: &ApiKey) {
        self.apis.lock().unwrap().remove(api);
    }

    /// The integration as a periodic drift check sees it: from the API's shared listing while that is
    /// fresh, else from a new listing. An ID missing from the listing is asked for directly, so a listing
    /// older than a create can never make us re-create. Ok(None): it is gone. NotFound: the API is gone.
    /// The instant is when what is returned was read from AWS: resources checked against one listing
    /// count their next check from it, so that they come due together and share the next listing too.
    pub async fn integration_via_listing(
        &self,
        aws: &AwsApi,
        api: &ApiKey,
        id: &str,
    ) -> Result<(Option<ObservedIntegration>, Instant), AwsError> {
        let (listed, fetched) = match self.listings.lookup(api, id, Instant::now()) {
            Cached::Listed(found, fetched) => (found, fetched),
            Cached::Stale => {
                let items = aws.list_integrations(&api.api_id).await?;
                // When AWS answered, not when the call was queued: under a backlog of writes the call can
                // wait for the rate limit longer than a listing stays fresh.
                let fetched = Instant::now();
                let found = items.iter().find(|o| o.integration_id == id).cloned();
                self.listings.insert(api.clone(), items, fetched);
                (found, fetched)
            }
        };
        if listed.is_some() {
            return Ok((listed, fetched));
        }
        match aws.get_integration(&api.api_id, id).await {
            Ok(o) => Ok((Some(o), Instant::now())),
            Err(AwsError::NotFound(_)) => Ok((None, Instant::now())),
            Err(e) => Err(e),
        }
    }
}

impl Context {
    pub fn new(
        client: Client,
        store: Store<ApiIntegration>,
        sdk_config: aws_config::SdkConfig,
        settings: Settings,
        stats: Arc<CallStats>,
        metrics: Arc<Metrics>,
        fence: Arc<Fence>,
    ) -> Self {
        let instance = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok());
        Context {
            events: Publisher::new(client.clone(), MANAGER, instance),
            client,
            store,
            settings,
            stats,
            metrics,
            fence,
            sdk_config,
            tenancy: None,
            scopes: Mutex::default(),
            clients: tokio::sync::Mutex::default(),
            failures: Mutex::default(),
            settled: Mutex::default(),
            last_synced: Mutex::default(),
        }
    }

    /// The region a resource's integration lives in.
    pub fn region_of(&self, obj: &ApiIntegration) -> String {
        obj.spec
            .region
            .clone()
            .or_else(|| obj.status.as_ref().and_then(|s| s.region.clone()))
            .unwrap_or_else(|| self.settings.default_region.clone())
    }

    /// The (account, region) scope of `identity` in `region`.
    fn scope(&self, identity: &Identity, region: &str) -> Arc<Scope> {
        let resync = self.settings.resync;
        self.scopes
            .lock()
            .unwrap()
            .entry((identity.account(), region.to_string()))
            .or_insert_with(|| {
                Arc::new(Scope {
                    bucket: Arc::new(TokenBucket::new(
                        self.settings.aws_rate,
                        self.settings.aws_burst,
                    )),
                    in_flight: Arc::new(tokio::sync::Semaphore::new(
                        self.settings.aws_concurrency.max(1),
                    )),
                    // A listing serves drift checks for a quarter of the period.
                    listings: ListingCache::new(resync.mul_f64(0.25)),
                    // Listed once per drift period; a reference that finds nothing may look again
                    // after 5 s.
                    refs: ReferenceCache::new(resync, Duration::from_secs(5).min(resync)),
                    apis: Mutex::default(),
                    api_locks: Mutex::default(),
                })
            })
            .clone()
    }

    /// The API Gateway client acting as `identity` in `region`, and its scope. SDK retries are off:
    /// every retry is a reconcile decision, counted and rate-limited like any other call.
    pub async fn target(&self, identity: &Identity, region: &str) -> Target {
        use aws_sdk_apigatewayv2::config::{Builder, Region, retry::RetryConfig, timeout};
        let scope = self.scope(identity, region);
        let mut clients = self.clients.lock().await;
        let key = (identity.clone(), region.to_string());
        if let Some(aws) = clients.get(&key) {
            return Target {
                aws: aws.clone(),
                scope,
            };
        }
        let mut conf = Builder::from(&self.sdk_config)
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            .interceptor(FenceInterceptor(self.fence.clone()))
            .timeout_config(
                timeout::TimeoutConfig::builder()
                    .connect_timeout(self.settings.aws_timeout.min(Duration::from_secs(5)))
                    .operation_attempt_timeout(self.settings.aws_timeout)
                    .build(),
            );
        if identity.role_arn.is_some() {
            let assumed = AssumedRole::new(identity, &self.sdk_config).await;
            conf = conf.credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(assumed),
            );
        }
        let aws = AwsApi::new(
            aws_sdk_apigatewayv2::Client::from_conf(conf.build()),
            identity.account(),
            region.to_string(),
            scope.bucket.clone(),
            scope.in_flight.clone(),
            self.stats.clone(),
        );
        clients.insert(key, aws.clone());
        Target { aws, scope }
    }

    /// Another ApiIntegration of the same API already records integration `id`: its `namespace/name`.
    pub fn claimed_by_other(&self, me: &ApiIntegration, api_id: &str, id: &str) -> Option<String> {
        self.store.state().iter().find_map(|o| {
            let same_object = o.uid() == me.uid();
            let status = o.status.as_ref();
            let on_same_api = status
                .and_then(|s| s.api_id.as_deref())
                .or(o.spec.api_id.as_deref())
                == Some(api_id);
            let claims =
                on_same_api && status.and_then(|s| s.integration_id.as_deref()) == Some(id);
            (!same_object && claims)
                .then(|| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
        })
    }

    /// What this process remembers about `obj` (see [`Settled`]).
    pub fn remembered(&self, obj: &ApiIntegration) -> Option<Settled> {
        self.settled
            .lock()
            .unwrap()
            .get(&ObjectRef::from(obj))
            .copied()
    }

    /// Remembers that `obj`'s current generation was settled (in sync, next checked at `due_at`; or
    /// refused by AWS), and clears its failure count.
    pub fn remember_settled(&self, obj: &ApiIntegration, refused: bool, due_at: Instant) {
        let key = ObjectRef::from(obj);
        self.failures.lock().unwrap().remove(&key);
        self.settled.lock().unwrap().insert(
            key,
            Settled {
                generation: obj.metadata.generation,
                due_at,
                refused,
            },
        );
    }

    /// `obj` is no longer settled (a failure, or it is being deleted). What AWS held at its last sync is
    /// forgotten too: after a failure, whose effect may be unknown, the next look is a fresh read.
    pub fn forget_settled(&self, obj: &ApiIntegration) {
        let key = ObjectRef::from(obj);
        self.settled.lock().unwrap().remove(&key);
        self.last_synced.lock().unwrap().remove(&key);
    }

    /// Remembers what AWS held for `obj`'s integration when it was just synced.
    pub fn remember_synced(&self, obj: &ApiIntegration, api: ApiKey, held: &ObservedIntegration) {
        self.last_synced
            .lock()
            .unwrap()
            .insert(ObjectRef::from(obj), (api, held.clone()));
    }

    /// What AWS held for integration `id` of `api` at `obj`'s last successful sync by this process.
    pub fn last_synced(
        &self,
        obj: &ApiIntegration,
        api: &ApiKey,
        id: &str,
    ) -> Option<ObservedIntegration> {
        let last = self.last_synced.lock().unwrap();
        let (at, held) = last.get(&ObjectRef::from(obj))?;
        (at == api && held.integration_id == id).then(|| held.clone())
    }

    /// `obj` is gone: forget everything about it.
    pub fn forget(&self, obj: &ApiIntegration) {
        let key = ObjectRef::from(obj);
        self.settled.lock().unwrap().remove(&key);
        self.failures.lock().unwrap().remove(&key);
        self.last_synced.lock().unwrap().remove(&key);
    }

    /// Counts one more failure in a row for `obj`; returns how many came before it.
    pub fn count_failure(&self, obj: &ApiIntegration) -> u32 {
        let mut failures = self.failures.lock().unwrap();
        let n = failures.entry(ObjectRef::from(obj)).or_default();
        *n += 1;
        *n - 1
    }
}
