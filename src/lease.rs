//! The leader Lease (coordination.k8s.io/v1): taken, renewed and released by this process, each
//! successful renewal recorded in the [`Fence`] with the instant its request was sent.
//!
//! Our own loop rather than kube-lease-manager's, for three things that one does not give: the instant of
//! each successful renewal (the fence needs it), updates conditional on the resourceVersion read (two
//! replicas can never both believe a write of theirs took the Lease), and expiry judged by the stand-by's
//! own clock from when it first saw a renewal, as client-go does, instead of comparing the holder's wall
//! clock (`renewTime`) with its own, which clock skew between nodes would break.
//!
//! The decision is pure ([`decide`]); [`spawn`] carries it out.

use crate::fence::{Fence, LeaseTimings, boot_time};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the Lease says, as far as choosing a move goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub holder: Option<String>,
    /// The holder's last renewal as written (compared, never read as a time).
    pub renew_time: Option<String>,
    pub duration_seconds: Option<i32>,
}

impl Holding {
    pub fn of(lease: &Lease) -> Holding {
        let spec = lease.spec.as_ref();
        Holding {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            renew_time: spec
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string()),
            duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
        }
    }
}

/// The last distinct holding a stand-by saw, and when ([`boot_time`]) it first saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sighting {
    pub holding: Holding,
    pub since: Duration,
}

/// What to do about the Lease as just read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Move {
    /// It is ours: renew it.
    Renew,
    /// Nobody holds it (released, or never held), or its holder's renewal has not changed for a whole
    /// lease duration (`expired`): take it.
    Take { expired: bool },
    /// Another replica holds it: look again after this long.
    Wait(Duration),
}

/// The move for `holding` read at `now`, by the replica `me` that last saw `seen`; `poll` bounds a wait.
pub fn decide(
    holding: &Holding,
    me: &str,
    seen: &mut Option<Sighting>,
    now: Duration,
    poll: Duration,
) -> Move {
    let Some(holder) = &holding.holder else {
        return Move::Take { expired: false };
    };
    if holder == me {
        return Move::Renew;
    }
    let Some(seconds) = holding.duration_seconds.filter(|s| *s > 0) else {
        // Held without a duration: not a lease anyone can judge; treat it as free.
        return Move::Take { expired: false };
    };
    if seen.as_ref().is_none_or(|s| s.holding != *holding) {
        *seen = Some(Sighting {
            holding: holding.clone(),
            since: now,
        });
    }
    let since = seen.as_ref().map_or(now, |s| s.since);
    let age = now.saturating_sub(since);
    let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if age >= duration {
        Move::Take { expired: true }
    } else {
        Move::Wait((duration - age).min(poll))
    }
}

/// The Lease as `me` holding it, renewed at `now`: a new holder also sets acquireTime and counts a
/// transition. The resourceVersion read stays, so the update is refused if anyone wrote meanwhile.
pub fn claimed(lease: &Lease, me: &str, now: Timestamp, duration: Duration) -> Lease {
    let mut lease = lease.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let ours = spec.holder_identity.as_deref() == Some(me);
    if !ours {
        spec.holder_identity = Some(me.to_string());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds =
        Some(i32::try_from(duration.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX));
    lease
}

/// The Lease as released: no holder, so a stand-by takes it at once.
pub fn released(lease: &Lease) -> Lease {
    let mut lease = lease.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.acquire_time = None;
    spec.renew_time = None;
    spec.lease_duration_seconds = None;
    lease
}

/// Where the Lease lives and who we are.
#[derive(Clone)]
pub struct LeaseConfig {
    /// A client without the fence: the Lease is how the fence opens.
    pub api: Api<Lease>,
    pub name: String,
    pub identity: String,
    pub timings: LeaseTimings,
}

/// Starts the lease task. The channel says whether this process leads; once it has led and then says
/// false, the Lease is lost for good (the process should exit and start again as a stand-by). Dropping
/// every receiver releases the Lease (if held) and ends the task.
pub fn spawn(
    config: LeaseConfig,
    fence: Arc<Fence>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(run(config, fence, tx));
    (rx, task)
}

async fn run(cfg: LeaseConfig, fence: Arc<Fence>, tx: watch::Sender<bool>) {
    let poll = cfg.timings.renew_every().max(Duration::from_millis(200));
    // A request slower than the write window could not keep the fence open anyway.
    let call_timeout = cfg.timings.write_window().max(Duration::from_secs(1));
    let mut seen = None;
    let mut leading = false;
    loop {
        let read = tokio::select! {
            _ = tx.closed() => return release(&cfg, &fence, leading, call_timeout).await,
            read = tokio::time::timeout(call_timeout, get_or_create(&cfg)) => read,
        };
        let wait = match read {
            Ok(Ok(lease)) => {
                let holding = Holding::of(&lease);
                match decide(&holding, &cfg.identity, &mut seen, boot_time(), poll) {
                    Move::Wait(wait) => {
                        if leading {
                            tracing::warn!(holder = ?holding.holder, "the leader Lease is held by another replica: lost it");
                            fence.revoke();
                            let _ = tx.send(false);
                            return;
                        }
                        wait
                    }
                    Move::Renew | Move::Take { .. } => {
                        let sent = boot_time();
                        let claim = claimed(
                            &lease,
                            &cfg.identity,
                            Timestamp::now(),
                            cfg.timings.duration,
                        );
                        let params = PostParams::default();
                        let update = cfg.api.replace(&cfg.name, &params, &claim);
                        match tokio::time::timeout(call_timeout, update).await {
                            Ok(Ok(_)) => {
                                fence.renewed(sent);
                                if !leading {
                                    leading = true;
                                    tracing::info!(lease = %cfg.name, identity = %cfg.identity,
                                        previous = ?holding.holder, "acquired the leader Lease");
                                    let _ = tx.send(true);
                                }
                                poll
                            }
                            // Someone wrote it since our read: read again at once.
                            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Duration::ZERO,
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "could not renew the leader Lease");
                                poll / 2
                            }
                            Err(_) => {
                                tracing::warn!("renewing the leader Lease timed out");
                                poll / 2
                            }
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the leader Lease");
                poll / 2
            }
            Err(_) => {
                tracing::warn!("reading the leader Lease timed out");
                poll / 2
            }
        };
        if leading
            && fence
                .renewed_at()
                .is_none_or(|r| cfg.timings.may_have_passed(r, boot_time()))
        {
            tracing::warn!("no renewal of the leader Lease for a lease duration: stepping down");
            fence.revoke();
            let _ = tx.send(false);
            return;
        }
        tokio::select! {
            _ = tx.closed() => return release(&cfg, &fence, leading, call_timeout).await,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn get_or_create(cfg: &LeaseConfig) -> Result<Lease, kube::Error> {
    if let Some(lease) = cfg.api.get_opt(&cfg.name).await? {
        return Ok(lease);
    }
    let empty = Lease {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec::default()),
    };
    match cfg.api.create(&PostParams::default(), &empty).await {
        Ok(created) => Ok(created),
        // Another replica made it first.
        Err(kube::Error::Api(s)) if s.code == 409 => cfg.api.get(&cfg.name).await,
        Err(e) => Err(e),
    }
}

/// Gives the Lease up (if still ours), so a stand-by takes over without waiting for it to expire. Only
/// called once the controller has stopped: nothing of ours is in flight any more.
async fn release(cfg: &LeaseConfig, fence: &Fence, leading: bool, call_timeout: Duration) {
    fence.revoke();
    if !leading {
        return;
    }
    let give_up = async {
        let lease = cfg.api.get(&cfg.name).await?;
        if Holding::of(&lease).holder.as_deref() != Some(cfg.identity.as_str()) {
            return Ok(false);
        }
        cfg.api
            .replace(&cfg.name, &PostParams::default(), &released(&lease))
            .await
            .map(|_| true)
    };
    match tokio::time::timeout(call_timeout, give_up).await {
        Ok(Ok(true)) => tracing::info!("lease released"),
        Ok(Ok(false)) => tracing::info!("the Lease was no longer ours; nothing to release"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
        Err(_) => tracing::warn!("releasing the lease timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str, renewed: &str) -> Holding {
        Holding {
            holder: Some(by.into()),
            renew_time: Some(renewed.into()),
            duration_seconds: Some(6),
        }
    }

    const POLL: Duration = Duration::from_secs(1);

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn our_own_lease_is_renewed_and_a_free_one_taken() {
        let mut seen = None;
        assert_eq!(
            decide(&held("me", "t1"), "me", &mut seen, at(0), POLL),
            Move::Renew
        );
        let free = Holding {
            holder: None,
            renew_time: None,
            duration_seconds: None,
        };
        assert_eq!(
            decide(&free, "me", &mut seen, at(0), POLL),
            Move::Take { expired: false }
        );
    }

    #[test]
    fn another_holder_expires_a_duration_after_its_renewal_was_first_seen() {
        let mut seen = None;
        assert_eq!(
            decide(&held("a", "t1"), "b", &mut seen, at(100), POLL),
            Move::Wait(POLL)
        );
        assert_eq!(
            decide(&held("a", "t1"), "b", &mut seen, at(105), POLL),
            Move::Wait(at(1))
        );
        // A renews at 105.5: the count starts again from when b sees it.
        assert_eq!(
            decide(&held("a", "t2"), "b", &mut seen, at(106), POLL),
            Move::Wait(POLL)
        );
        assert_eq!(
            decide(&held("a", "t2"), "b", &mut seen, at(111), POLL),
            Move::Wait(at(1))
        );
        assert_eq!(
            decide(&held("a", "t2"), "b", &mut seen, at(112), POLL),
            Move::Take { expired: true }
        );
    }

    #[test]
    fn the_holders_wall_clock_is_never_trusted() {
        // A renewTime far in the past (a skewed holder clock) does not make the lease expire early.
        let mut seen = None;
        let old = held("a", "1999-01-01T00:00:00Z");
        assert_eq!(decide(&old, "b", &mut seen, at(50), POLL), Move::Wait(POLL));
    }

    #[test]
    fn a_claim_keeps_the_resource_version_and_counts_a_new_holder() {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("l".into()),
                resource_version: Some("42".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("a".into()),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
        };
        let now = Timestamp::from_second(1_000).unwrap();
        let taken = claimed(&lease, "b", now, Duration::from_secs(15));
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("42"));
        let spec = taken.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        let later = Timestamp::from_second(1_005).unwrap();
        let renewed = claimed(&taken, "b", later, Duration::from_secs(15));
        let spec = renewed.spec.unwrap();
        assert_eq!(
            spec.lease_transitions,
            Some(4),
            "a renewal is no transition"
        );
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(spec.renew_time, Some(MicroTime(later)));
        let free = released(&taken);
        assert_eq!(Holding::of(&free).holder, None);
    }
}
