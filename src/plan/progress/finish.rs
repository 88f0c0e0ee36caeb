//! The end of a sync: what the Ready condition says (a re-creation is told until the spec next changes)
//! and when the next drift check comes.

use crate::conditions::Reason;
use crate::plan::diff::ObservedIntegration;
use crate::plan::due::next_check_in;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::time::{Duration, Instant};

/// Why an integration was created again.
#[derive(Clone, Debug, PartialEq)]
pub enum Recreation {
    /// Deleted outside the operator (rule 3).
    Lost,
    /// Its API was replaced under the same name (§6).
    Moved {
        old_api: String,
        new_api: String,
        old_id: String,
        old_deleted: bool,
    },
}

impl Recreation {
    /// For the Ready condition and the Recreated Event, once the new integration's ID is known.
    pub fn message(&self, id: &str) -> String {
        match self {
            Recreation::Lost => {
                format!("Integration was deleted outside the operator and re-created as {id}.")
            }
            Recreation::Moved {
                old_api,
                new_api,
                old_id,
                old_deleted,
            } => {
                let old = if *old_deleted {
                    format!("integration {old_id} there was deleted")
                } else {
                    format!("integration {old_id} there was left in place (deletionPolicy Retain)")
                };
                format!(
                    "API {old_api} was replaced by API {new_api} under the same name: re-created the \
                     integration there as {id}; {old}."
                )
            }
        }
    }
}

/// The end of a sync: AWS holds what the spec asks.
#[derive(Clone, Debug, PartialEq)]
pub struct Finish {
    pub integration: ObservedIntegration,
    /// Nothing was written to AWS in this reconcile.
    pub unchanged: bool,
    /// The integration was re-created in this reconcile: what to tell the user.
    pub recreated: Option<String>,
    /// When AWS was read or written for what is reported (for a drift check, when the shared listing was
    /// fetched): the next check is counted from it.
    pub seen_at: Instant,
}

impl Finish {
    /// The Ready condition's reason and message, given the Ready condition the status has now and the
    /// object's generation. A re-creation is told until the spec next changes.
    pub fn ready(&self, previous: Option<&Condition>, generation: Option<i64>) -> (Reason, String) {
        if let Some(message) = &self.recreated {
            return (Reason::Recreated, message.clone());
        }
        let still_recreated = previous.filter(|c| {
            self.unchanged
                && c.reason == Reason::Recreated.as_str()
                && c.observed_generation == generation
        });
        match still_recreated {
            Some(c) => (Reason::Recreated, c.message.clone()),
            None => {
                let id = &self.integration.integration_id;
                (
                    Reason::Synced,
                    format!("Integration {id} matches the spec."),
                )
            }
        }
    }

    /// How long from `now` until the next drift check: its API's check time (see [`next_check_in`]),
    /// moved by `spread` (a fraction in 0..1, drawn by the caller) within ±2 % of the period, so that the
    /// API's resources do not all wake in the same millisecond yet still share one listing. `now_unix`
    /// is the wall clock.
    pub fn next_check(
        &self,
        api_id: &str,
        now_unix: Duration,
        now: Instant,
        resync: Duration,
        spread: f64,
    ) -> Duration {
        next_check_spread(self.seen_at, api_id, now_unix, now, resync, spread)
    }
}

/// [`Finish::next_check`] for anything seen in AWS at `seen_at` (an Observe look, too).
pub fn next_check_spread(
    seen_at: Instant,
    api_id: &str,
    now_unix: Duration,
    now: Instant,
    resync: Duration,
    spread: f64,
) -> Duration {
    let seen_ago = now.saturating_duration_since(seen_at);
    let next = next_check_in(api_id, now_unix, seen_ago, resync);
    let spread = resync.mul_f64(spread.clamp(0.0, 1.0) * 0.04);
    (next + spread).saturating_sub(resync.mul_f64(0.02))
}
