//! Is anything due for a resource right now? A reconcile runs for every change to what it reads of the
//! object (spec, annotations, finalizers; not the status), and for every requeue; most of them find
//! nothing to do. This decides that
//! without any AWS call (design §2.8: no call and no write when nothing changed).

use crate::api::ApiIntegrationStatus;
use crate::conditions::{Reason, ready};
use std::time::{Duration, Instant};

/// What this process last concluded about a resource, for which generation, and when to look next. Kept
/// in memory because the watch cache can lag behind our own status writes: a stale copy of the object
/// must not cause a second round of AWS calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    pub generation: Option<i64>,
    /// When the next drift check is due: the resource's API's check time (see [`next_check_in`]), so that
    /// every reconcile of the resource in between, whatever woke it, schedules that same instant.
    pub due_at: Instant,
    /// AWS refused this generation (400): nothing to do until the spec changes.
    pub refused: bool,
}

/// When the resource next needs an AWS look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Observe AWS now.
    Now,
    /// In sync: the next drift check is this far away.
    After(Duration),
    /// AWS refused this generation (rule 6, 400): only a spec change can help.
    WhenSpecChanges,
}

/// Decides whether to look at AWS now. `remembered` is this process's own memory of the resource, which
/// wins over a possibly stale status, and alone says when the next drift check is. Without it (after a
/// restart, or after a failure) only a generation AWS refused waits; anything else is looked at now: for
/// a resource in sync that is one shared listing of its API (rule 8), after which it has its API's
/// check time like the others.
pub fn next_check(
    status: Option<&ApiIntegrationStatus>,
    generation: Option<i64>,
    remembered: Option<Settled>,
    now: Instant,
) -> Due {
    if let Some(s) = remembered.filter(|s| s.generation == generation) {
        if s.refused {
            return Due::WhenSpecChanges;
        }
        return match s.due_at.checked_duration_since(now) {
            Some(wait) if !wait.is_zero() => Due::After(wait),
            _ => Due::Now,
        };
    }
    let refused_this_generation = status.is_some_and(|status| {
        status.observed_generation == generation
            && ready(&status.conditions).is_some_and(|c| {
                c.observed_generation == generation && c.reason == Reason::InvalidSpec.as_str()
            })
    });
    if refused_this_generation {
        Due::WhenSpecChanges
    } else {
        Due::Now
    }
}

/// A periodic drift check (nothing changed since the last successful sync) may read the integration from
/// the API's shared listing instead of calling GetIntegration for it (rule 8). After a spec change or a
/// failure, the integration is read on its own.
pub fn may_use_listing(status: &ApiIntegrationStatus, generation: Option<i64>) -> bool {
    status.observed_generation == generation
        && ready(&status.conditions).is_some_and(|c| c.status == "True")
}

/// How long until a resource on API `api_id`, last seen in AWS `seen_ago` ago, is next checked: at the
/// API's next phase point at least half a period after it was seen. Every API has a fixed phase in the
/// period (from its ID, the same in every replica and after restarts), so all of an API's resources come
/// due together, whenever each was created, and one GetIntegrations listing serves them all: one listing
/// per API per period. The first check after a change comes between half a period and one and a half
/// periods later; after that, one period apart. `now_unix` is the wall clock (time since the Unix epoch).
pub fn next_check_in(
    api_id: &str,
    now_unix: Duration,
    seen_ago: Duration,
    resync: Duration,
) -> Duration {
    let period = resync.as_secs_f64().max(1.0);
    let phase = (fnv1a(api_id.as_bytes()) % 1_000_000) as f64 / 1_000_000.0 * period;
    let now = now_unix.as_secs_f64();
    let earliest = now - seen_ago.as_secs_f64() + period / 2.0;
    let point = phase + ((earliest - phase) / period).ceil() * period;
    Duration::from_secs_f64((point - now).max(0.0))
}

/// FNV-1a: a hash that is the same in every process and every Rust version (std's is not promised to be).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{READY, set_condition};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    const RESYNC: Duration = Duration::from_secs(600);

    fn status(
        reason: Reason,
        generation: i64,
        synced_secs_ago: i64,
        now: Timestamp,
    ) -> ApiIntegrationStatus {
        let mut s = ApiIntegrationStatus {
            integration_id: Some("abc".into()),
            observed_generation: Some(generation),
            last_sync_time: Some(Time(now - jiff_secs(synced_secs_ago))),
            ..Default::default()
        };
        set_condition(
            &mut s.conditions,
            READY,
            reason.is_ready(),
            reason,
            "m",
            Some(generation),
            Time(now),
        );
        s
    }

    fn jiff_secs(s: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(s)
    }

    #[test]
    fn a_new_resource_is_due_now() {
        assert_eq!(next_check(None, Some(1), None, Instant::now()), Due::Now);
    }

    #[test]
    fn without_memory_a_resource_in_sync_is_looked_at_now() {
        // After a restart: one shared listing of its API, after which it has the API's check time.
        let s = status(Reason::Synced, 1, 60, Timestamp::now());
        assert_eq!(
            next_check(Some(&s), Some(1), None, Instant::now()),
            Due::Now
        );
    }

    #[test]
    fn remembered_in_sync_waits_until_its_check_time_and_no_longer() {
        let now = Instant::now();
        let s = status(Reason::Synced, 1, 60, Timestamp::now());
        let settled = |due_at| Settled {
            generation: Some(1),
            due_at,
            refused: false,
        };
        let later = now + Duration::from_secs(700);
        // Further away than a whole period (a check time up to one and a half periods ahead): still the
        // check time, not one period from now.
        assert_eq!(
            next_check(Some(&s), Some(1), Some(settled(later)), now),
            Due::After(Duration::from_secs(700))
        );
        assert_eq!(
            next_check(Some(&s), Some(1), Some(settled(now)), now),
            Due::Now
        );
        assert_eq!(
            next_check(Some(&s), Some(1), Some(settled(now)), later),
            Due::Now
        );
    }

    #[test]
    fn a_spec_change_is_due_now() {
        let now = Instant::now();
        let s = status(Reason::Synced, 1, 1, Timestamp::now());
        let remembered = Settled {
            generation: Some(1),
            due_at: now + RESYNC,
            refused: false,
        };
        assert_eq!(next_check(Some(&s), Some(2), None, now), Due::Now);
        assert_eq!(
            next_check(Some(&s), Some(2), Some(remembered), now),
            Due::Now
        );
    }

    #[test]
    fn a_refused_generation_waits_for_a_spec_change() {
        let s = status(Reason::InvalidSpec, 3, 1, Timestamp::now());
        assert_eq!(
            next_check(Some(&s), Some(3), None, Instant::now()),
            Due::WhenSpecChanges
        );
        assert_eq!(
            next_check(Some(&s), Some(4), None, Instant::now()),
            Due::Now
        );
    }

    #[test]
    fn a_failure_is_not_quiet() {
        let s = status(Reason::AwsError, 1, 1, Timestamp::now());
        assert_eq!(
            next_check(Some(&s), Some(1), None, Instant::now()),
            Due::Now
        );
    }

    #[test]
    fn memory_wins_over_a_stale_status() {
        // The watch cache still shows the status from before our write (no ID yet): memory says synced.
        let now = Instant::now();
        let stale = ApiIntegrationStatus::default();
        let remembered = Settled {
            generation: Some(1),
            due_at: now + RESYNC,
            refused: false,
        };
        assert_eq!(
            next_check(Some(&stale), Some(1), Some(remembered), now),
            Due::After(RESYNC)
        );
        let refused = Settled {
            refused: true,
            ..remembered
        };
        assert_eq!(
            next_check(Some(&stale), Some(1), Some(refused), now),
            Due::WhenSpecChanges
        );
        // Memory of another generation does not count.
        assert_eq!(
            next_check(Some(&stale), Some(2), Some(remembered), now),
            Due::Now
        );
    }

    #[test]
    fn listing_only_for_periodic_checks() {
        let s = status(Reason::Synced, 1, 1, Timestamp::now());
        assert!(may_use_listing(&s, Some(1)));
        assert!(!may_use_listing(&s, Some(2)));
        let failed = status(Reason::AwsError, 1, 1, Timestamp::now());
        assert!(!may_use_listing(&failed, Some(1)));
    }

    #[test]
    fn resources_of_one_api_come_due_together_whenever_they_were_seen() {
        let resync = Duration::from_secs(600);
        let now = Duration::from_secs(1_800_000_000);
        // Seen at different moments of the last period: all due at the same instant.
        let due: Vec<Duration> = [0u64, 50, 170, 299]
            .iter()
            .map(|ago| now + next_check_in("api-a", now, Duration::from_secs(*ago), resync))
            .collect();
        assert!(due.windows(2).all(|w| w[0] == w[1]), "{due:?}");
        // At least half a period after it was seen, at most one and a half.
        for ago in [0u64, 50, 170, 299, 599] {
            let wait = next_check_in("api-a", now, Duration::from_secs(ago), resync);
            let since_seen = wait + Duration::from_secs(ago);
            assert!(since_seen >= resync / 2, "{ago}: {since_seen:?}");
            assert!(since_seen <= resync * 3 / 2, "{ago}: {since_seen:?}");
        }
        // Once aligned, one period apart.
        let first = next_check_in("api-a", now, Duration::ZERO, resync);
        let then = now + first;
        assert_eq!(next_check_in("api-a", then, Duration::ZERO, resync), resync);
    }

    #[test]
    fn apis_have_their_own_phases() {
        let resync = Duration::from_secs(600);
        let now = Duration::from_secs(1_800_000_000);
        let phases: std::collections::BTreeSet<u128> = ["a1", "b2", "c3", "d4", "e5"]
            .iter()
            .map(|api| next_check_in(api, now, Duration::ZERO, resync).as_millis())
            .collect();
        assert!(phases.len() >= 4, "APIs share phases: {phases:?}");
    }
}
