//! The region's API and VPC link listings that every reference (apiRef, connectionRef) is resolved
//! against (design §6): one GetApis and one GetVpcLinks listing per region serve every resource. A
//! listing is refreshed once per drift period, and sooner — at most once per `recheck_after` — when a
//! reference finds nothing in it or its API turned out to be gone.

use crate::aws::{AwsError, Gateway};
use crate::plan::{ApiSummary, VpcLinkSummary};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a listing may be for this lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The usual: up to one drift period old.
    UpToAPeriodOld,
    /// The reference found nothing (or its API is gone): as fresh as the recheck limit allows.
    Fresh,
}

struct Listing<T> {
    fetched: Instant,
    /// Marked stale by a caller that found the API gone: the next lookup refreshes (rate-limited).
    stale: bool,
    items: Arc<Vec<T>>,
}

#[derive(Default)]
struct Region {
    apis: Option<Listing<ApiSummary>>,
    links: Option<Listing<VpcLinkSummary>>,
}

pub struct ReferenceCache {
    period: Duration,
    recheck_after: Duration,
    /// One async lock per region: while one reconcile fetches a listing, the others wait for it instead
    /// of fetching their own.
    regions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Region>>>>,
}

/// Is a listing fetched at `fetched` good enough for `want` at `now`?
fn usable(
    fetched: Instant,
    stale: bool,
    want: Want,
    now: Instant,
    period: Duration,
    recheck_after: Duration,
) -> bool {
    let age = now.saturating_duration_since(fetched);
    let fresh_enough = match (want, stale) {
        (Want::UpToAPeriodOld, false) => age < period,
        _ => false,
    };
    // Never list more often than once per `recheck_after`, whatever is asked.
    fresh_enough || age < recheck_after
}

impl ReferenceCache {
    pub fn new(period: Duration, recheck_after: Duration) -> Self {
        ReferenceCache {
            period,
            recheck_after,
            regions: Mutex::default(),
        }
    }

    fn region(&self, region: &str) -> Arc<tokio::sync::Mutex<Region>> {
        self.regions
            .lock()
            .unwrap()
            .entry(region.to_string())
            .or_default()
            .clone()
    }

    /// The region's APIs, and when they were listed.
    pub async fn apis(
        &self,
        aws: &dyn Gateway,
        want: Want,
    ) -> Result<(Arc<Vec<ApiSummary>>, Instant), AwsError> {
        let region = self.region(aws.region());
        let mut r = region.lock().await;
        self.cached(&mut r.apis, want, || aws.list_apis()).await
    }

    /// The least time between two listings of a region that a reference asks for.
    pub fn recheck_after(&self) -> Duration {
        self.recheck_after
    }

    /// The region's VPC links.
    pub async fn vpc_links(
        &self,
        aws: &dyn Gateway,
        want: Want,
    ) -> Result<Arc<Vec<VpcLinkSummary>>, AwsError> {
        let region = self.region(aws.region());
        let mut r = region.lock().await;
        let (links, _) = self
            .cached(&mut r.links, want, || aws.list_vpc_links())
            .await?;
        Ok(links)
    }

    /// The listing in `slot` if it is good enough for `want`, else a new one from `fetch`; and when it
    /// was fetched.
    async fn cached<T, F>(
        &self,
        slot: &mut Option<Listing<T>>,
        want: Want,
        fetch: impl FnOnce() -> F,
    ) -> Result<(Arc<Vec<T>>, Instant), AwsError>
    where
        F: std::future::Future<Output = Result<Vec<T>, AwsError>>,
    {
        let (period, recheck) = (self.period, self.recheck_after);
        if let Some(l) = slot.as_ref()
            && usable(l.fetched, l.stale, want, Instant::now(), period, recheck)
        {
            return Ok((l.items.clone(), l.fetched));
        }
        let items = Arc::new(fetch().await?);
        let fetched = Instant::now();
        *slot = Some(Listing {
            fetched,
            stale: false,
            items: items.clone(),
        });
        Ok((items, fetched))
    }

    /// An API the listing named is gone: refresh at the next lookup (still at most once per recheck).
    pub async fn api_gone(&self, region: &str) {
        let region = self.region(region);
        if let Some(l) = region.lock().await.apis.as_mut() {
            l.stale = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(600);
    const RECHECK: Duration = Duration::from_secs(5);

    #[test]
    fn a_listing_serves_a_whole_period() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert!(usable(
            t0,
            false,
            Want::UpToAPeriodOld,
            at(599),
            PERIOD,
            RECHECK
        ));
        assert!(!usable(
            t0,
            false,
            Want::UpToAPeriodOld,
            at(600),
            PERIOD,
            RECHECK
        ));
    }

    #[test]
    fn a_fresh_look_or_a_stale_mark_refreshes_but_not_more_than_once_per_recheck() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert!(usable(t0, false, Want::Fresh, at(4), PERIOD, RECHECK));
        assert!(!usable(t0, false, Want::Fresh, at(5), PERIOD, RECHECK));
        assert!(usable(
            t0,
            true,
            Want::UpToAPeriodOld,
            at(4),
            PERIOD,
            RECHECK
        ));
        assert!(!usable(
            t0,
            true,
            Want::UpToAPeriodOld,
            at(6),
            PERIOD,
            RECHECK
        ));
    }
}
