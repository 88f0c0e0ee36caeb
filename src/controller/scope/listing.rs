//! Recent GetIntegrations answers per API (design §2 rule 8): periodic drift checks of many resources on
//! one API share one listing instead of one GetIntegration each. Our own writes keep the cached listing
//! true (writes and listings of one API are serialised by its lock, so nothing else of ours changed it).

use super::ApiKey;
use crate::plan::ObservedIntegration;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a write of ours left in AWS for one integration.
pub enum Written<'a> {
    /// AWS answered with the integration's new state.
    Now(&'a ObservedIntegration),
    /// Deleted.
    Gone,
    /// The write failed: its effect is unknown.
    Unknown,
}

/// What the cache knows about one integration.
#[allow(clippy::large_enum_variant)] // a return value, used at once
#[derive(Clone, Debug, PartialEq)]
pub enum Cached {
    /// A fresh listing of the API, fetched at the instant given, has it (Some) or does not (None).
    Listed(Option<ObservedIntegration>, Instant),
    /// No listing of the API fresh enough: fetch one.
    Stale,
}

struct Listing {
    fetched: Instant,
    by_id: HashMap<String, ObservedIntegration>,
}

/// The listings, each good for `fresh_for` after it was fetched.
pub struct ListingCache {
    fresh_for: Duration,
    listings: Mutex<HashMap<ApiKey, Listing>>,
}

impl ListingCache {
    pub fn new(fresh_for: Duration) -> Self {
        ListingCache {
            fresh_for,
            listings: Mutex::default(),
        }
    }

    /// Integration `id` of `api` as of the API's cached listing, if that listing is fresh at `now`.
    pub fn lookup(&self, api: &ApiKey, id: &str, now: Instant) -> Cached {
        let listings = self.listings.lock().unwrap();
        match listings.get(api) {
            Some(l) if now.saturating_duration_since(l.fetched) < self.fresh_for => {
                Cached::Listed(l.by_id.get(id).cloned(), l.fetched)
            }
            _ => Cached::Stale,
        }
    }

    /// Keeps a listing just fetched.
    pub fn insert(&self, api: ApiKey, items: Vec<ObservedIntegration>, fetched: Instant) {
        let by_id = items
            .into_iter()
            .map(|o| (o.integration_id.clone(), o))
            .collect();
        self.listings
            .lock()
            .unwrap()
            .insert(api, Listing { fetched, by_id });
    }

    /// Keeps the API's listing true to our own write to integration `id`: AWS's answer replaces the
    /// entry, a delete removes it, and a failed write, whose effect is unknown, drops the whole listing.
    pub fn after_write(&self, api: &ApiKey, id: &str, written: Written<'_>) {
        let mut listings = self.listings.lock().unwrap();
        match written {
            Written::Now(o) => {
                if let Some(l) = listings.get_mut(api) {
                    l.by_id.insert(id.to_string(), o.clone());
                }
            }
            Written::Gone => {
                if let Some(l) = listings.get_mut(api) {
                    l.by_id.remove(id);
                }
            }
            Written::Unknown => {
                listings.remove(api);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::IntegrationFields;

    fn key() -> ApiKey {
        ApiKey::new("us-east-1", "api1")
    }

    fn integration(id: &str, uri: &str) -> ObservedIntegration {
        ObservedIntegration {
            integration_id: id.into(),
            fields: IntegrationFields {
                integration_uri: Some(uri.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn nothing_cached_is_stale() {
        let cache = ListingCache::new(Duration::from_secs(10));
        assert_eq!(cache.lookup(&key(), "a", Instant::now()), Cached::Stale);
    }

    #[test]
    fn a_fresh_listing_answers_for_its_members_and_its_absentees() {
        let cache = ListingCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert(key(), vec![integration("a", "u1")], t0);
        assert_eq!(
            cache.lookup(&key(), "a", t0 + Duration::from_secs(9)),
            Cached::Listed(Some(integration("a", "u1")), t0)
        );
        assert_eq!(cache.lookup(&key(), "b", t0), Cached::Listed(None, t0));
        // Another API has no listing.
        let other = ApiKey::new("us-east-1", "api2");
        assert_eq!(cache.lookup(&other, "a", t0), Cached::Stale);
    }

    #[test]
    fn a_listing_goes_stale_after_its_window() {
        let cache = ListingCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert(key(), vec![integration("a", "u1")], t0);
        assert_eq!(
            cache.lookup(&key(), "a", t0 + Duration::from_secs(10)),
            Cached::Stale
        );
    }

    #[test]
    fn our_writes_keep_the_listing_true() {
        let cache = ListingCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert(
            key(),
            vec![integration("a", "u1"), integration("b", "u1")],
            t0,
        );
        // An update or create answer replaces or adds the entry.
        let updated = integration("a", "u2");
        cache.after_write(&key(), "a", Written::Now(&updated));
        let created = integration("c", "u3");
        cache.after_write(&key(), "c", Written::Now(&created));
        assert_eq!(
            cache.lookup(&key(), "a", t0),
            Cached::Listed(Some(updated), t0)
        );
        assert_eq!(
            cache.lookup(&key(), "c", t0),
            Cached::Listed(Some(created), t0)
        );
        // A delete removes it.
        cache.after_write(&key(), "b", Written::Gone);
        assert_eq!(cache.lookup(&key(), "b", t0), Cached::Listed(None, t0));
        // A failed write drops the listing: the next check lists again.
        cache.after_write(&key(), "a", Written::Unknown);
        assert_eq!(cache.lookup(&key(), "a", t0), Cached::Stale);
    }

    #[test]
    fn writes_without_a_listing_do_not_invent_one() {
        let cache = ListingCache::new(Duration::from_secs(10));
        cache.after_write(&key(), "a", Written::Now(&integration("a", "u")));
        assert_eq!(cache.lookup(&key(), "a", Instant::now()), Cached::Stale);
    }
}
