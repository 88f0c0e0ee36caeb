//! What is kept per AWS account and region (design §7: API Gateway's quota is per account and region):
//! the token bucket and call slots, the integration listings ([`listing`]), the API and VPC link
//! listings that references resolve against ([`references`]), the per-API locks and what is known of
//! each API. [`Scopes`] hands out one [`Scope`] per (account, region).

mod listing;
mod references;

pub use listing::{Cached, ListingCache, Written};
pub use references::{ReferenceCache, Want};

use crate::aws::ratelimit::TokenBucket;
use crate::aws::{AwsError, Gateway, Slots};
use crate::plan::{ApiSummary, ObservedIntegration, Protocol};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One API Gateway API: its region and ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApiKey {
    pub region: String,
    pub api_id: String,
}

impl ApiKey {
    pub fn new(region: impl Into<String>, api_id: impl Into<String>) -> Self {
        ApiKey {
            region: region.into(),
            api_id: api_id.into(),
        }
    }
}

/// Serialises the AWS writes for one API so that two resources on it never race (rule 4).
pub type ApiLock = Arc<tokio::sync::Mutex<()>>;

/// The limits every scope is made with.
#[derive(Clone, Debug)]
pub struct Limits {
    /// AWS calls per second per account and region, and burst.
    pub rate: f64,
    pub burst: u32,
    /// The least calls per second the budget goes down to when throttled.
    pub min_rate: f64,
    /// API Gateway calls in flight at once per account and region.
    pub in_flight: usize,
    /// The drift period: a listing of integrations serves drift checks for a quarter of it, the API and
    /// VPC link listings for all of it.
    pub resync: Duration,
}

/// The scopes, one per (account, region), made on first use.
pub struct Scopes {
    limits: Limits,
    scopes: Mutex<HashMap<(String, String), Arc<Scope>>>,
}

impl Scopes {
    pub fn new(limits: Limits) -> Self {
        Scopes {
            limits,
            scopes: Mutex::default(),
        }
    }

    /// The scope of `account` in `region`.
    pub fn get(&self, account: String, region: &str) -> Arc<Scope> {
        self.scopes
            .lock()
            .unwrap()
            .entry((account, region.to_string()))
            .or_insert_with(|| Arc::new(Scope::new(&self.limits)))
            .clone()
    }
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
    pub aws: Arc<dyn Gateway>,
    pub scope: Arc<Scope>,
}

impl Scope {
    pub fn new(limits: &Limits) -> Self {
        let resync = limits.resync;
        Scope {
            bucket: Arc::new(TokenBucket::with_floor(
                limits.rate,
                limits.burst,
                limits.min_rate,
            )),
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.in_flight.max(1))),
            // A listing serves drift checks for a quarter of the period.
            listings: ListingCache::new(resync.mul_f64(0.25)),
            // Listed once per drift period; a reference that finds nothing may look again after 5 s.
            refs: ReferenceCache::new(resync, Duration::from_secs(5).min(resync)),
            apis: Mutex::default(),
            api_locks: Mutex::default(),
        }
    }

    /// What every gateway acting in this scope shares: the quota and the calls in flight.
    pub fn slots(&self) -> Slots {
        Slots {
            bucket: self.bucket.clone(),
            in_flight: self.in_flight.clone(),
        }
    }

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
        aws: &dyn Gateway,
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
    pub async fn protocol(
        &self,
        aws: &dyn Gateway,
        api: &ApiKey,
    ) -> Result<Option<Protocol>, AwsError> {
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
        aws: &dyn Gateway,
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
