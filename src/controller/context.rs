//! The one [`Context`] every reconcile shares: the Kubernetes client and the objects' cache, the API
//! Gateway clients, the settings, the [`Scopes`] (per account and region) and the [`Memory`] (per object).

use super::events::{MANAGER, Publisher};
use super::memory::Memory;
use super::scope::{Limits, Scopes, Target};
use super::tenancy::{Tenancy, TenancyView};
use crate::api::ApiIntegration;
use crate::aws::credentials::Identity;
use crate::aws::{CallStats, Connect};
use crate::fence::Fence;
use crate::metrics::{Health, Metrics};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

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
    /// The least calls per second the adaptive budget goes down to when throttled.
    pub aws_min_rate: f64,
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

/// What the controller shares with the rest of the process.
pub struct Shared {
    /// The AWS call counts and log.
    pub stats: Arc<CallStats>,
    pub metrics: Arc<Metrics>,
    /// /readyz.
    pub health: Arc<Health>,
    /// Whether this process may write (design rule 10).
    pub fence: Arc<Fence>,
}

/// Everything reconcile needs, shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub events: Publisher,
    pub store: Store<ApiIntegration>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Whether this process may write (design rule 10); the Kubernetes client checks it on every write,
    /// the API Gateway clients on every call but a read.
    pub fence: Arc<Fence>,
    /// The watched policies and namespaces, with `--tenancy policy`.
    pub tenancy: Option<TenancyView>,
    /// What this process remembers about each object.
    pub memory: Memory,
    /// API Gateway's quota, listings, locks and API facts per (account, region).
    scopes: Scopes,
    /// The API Gateway clients, per identity and region.
    gateways: Arc<dyn Connect>,
}

impl Context {
    /// A context whose Kubernetes calls go through `client`, whose API Gateway calls go through the
    /// gateways `gateways` hands out, and whose cache of the objects is `store`.
    pub fn new(
        client: Client,
        store: Store<ApiIntegration>,
        gateways: Arc<dyn Connect>,
        settings: Settings,
        shared: &Shared,
        tenancy: Option<TenancyView>,
    ) -> Self {
        let scopes = Scopes::new(Limits {
            rate: settings.aws_rate,
            burst: settings.aws_burst,
            min_rate: settings.aws_min_rate,
            in_flight: settings.aws_concurrency,
            resync: settings.resync,
        });
        let instance = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok());
        Context {
            events: Publisher::new(client.clone(), MANAGER, instance),
            client,
            store,
            settings,
            metrics: shared.metrics.clone(),
            fence: shared.fence.clone(),
            tenancy,
            scopes,
            gateways,
            memory: Memory::default(),
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

    /// The API Gateway client acting as `identity` in `region`, and its (account, region) scope.
    pub async fn target(&self, identity: &Identity, region: &str) -> Target {
        let scope = self.scopes.get(identity.account(), region);
        let aws = self.gateways.connect(identity, region, scope.slots()).await;
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
}
