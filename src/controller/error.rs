//! The reconciler's errors, and the one place that decides what each means: the condition reason a user
//! sees, the metrics label, and when to try again (design §2 rule 6). The error type and how it reads are
//! here; `class` holds the classification (reason, label, retry) and the conflict and fencing checks.

mod class;
pub use class::{Class, Phase, Retry};

use super::scope::ApiKey;
use crate::aws::AwsError;
use crate::plan::Blocker;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("API {0} does not exist in API Gateway")]
    ApiNotFound(String),
    #[error("adoption refused: {0}")]
    AdoptionRefused(String),
    #[error("not permitted: {0}; nothing in AWS is touched until an ApiGatewayAccess allows it")]
    NotPermitted(String),
    #[error("no API in {region} matches apiRef ({what}); nothing is created until one does")]
    ApiRefNotFound { what: String, region: String },
    /// No API matched in a listing older than the look; the region's APIs are listed again in
    /// `relist_in`.
    #[error(
        "no API in {region} matched apiRef ({what}) when the region's APIs were last listed; they are \
         listed again shortly, and nothing is created until one matches"
    )]
    ApiRefNotListedYet {
        what: String,
        region: String,
        relist_in: Duration,
    },
    /// The API apiRef resolved to was deleted; the region's APIs are listed again in `relist_in`.
    #[error(
        "the API in {region} that apiRef ({what}) resolved to was deleted; nothing is created until \
         the region's APIs, listed again shortly, show one that matches"
    )]
    ApiRefGone {
        what: String,
        region: String,
        relist_in: Duration,
    },
    #[error(
        "no VPC link in {region} matches connectionRef ({what}); nothing is created until one does"
    )]
    VpcLinkNotFound { what: String, region: String },
    #[error("{what} matches more than one: {ids}; nothing is created until exactly one matches")]
    AmbiguousReference { what: String, ids: String },
    #[error(
        "API Gateway will not delete integration {id} while routes use it ({detail}); remove those routes first"
    )]
    DeletionBlocked { id: String, detail: AwsError },
    /// Nothing was done: this replica cannot be sure it still leads (design rule 10).
    #[error(transparent)]
    Fenced(#[from] crate::fence::Fenced),
    #[error("status write timed out")]
    StatusTimeout,
    /// A reconcile panicked (a bug in the operator); the panic was caught and the resource is retried.
    #[error("internal error in the operator (a bug; please report it), will retry: {0}")]
    Panicked(String),
    /// Deleting the resource failed (its phase is known: the errors inside are classed as a deletion's).
    #[error(transparent)]
    Cleanup(Box<Error>),
    /// Rule 12: the spec asks for integration responses of an HTTP API's integration.
    #[error(
        "spec.integrationResponses is set, but API {0} is an HTTP API, which has no integration \
         responses; remove the field or use a WebSocket API"
    )]
    ResponsesOnHttpApi(String),
    /// Rule 12: a call about one integration response failed; classed as the AWS error it carries.
    #[error("integration response {key}: {source}")]
    Response { key: String, source: AwsError },
}

impl Error {
    /// The error the reconcile itself failed with, and the phase, out of the deletion's wrapper.
    fn innermost(&self) -> (&Error, Option<Phase>) {
        match self {
            Error::Cleanup(e) => (e.innermost().0, Some(Phase::Delete)),
            e => (e, None),
        }
    }

    /// The error a blocker is reported as.
    pub fn blocked(blocker: Blocker, api: &ApiKey) -> Error {
        let api_id = &api.api_id;
        match blocker {
            Blocker::ApiNotFound => Error::ApiNotFound(api_id.to_string()),
            Blocker::AdoptionTargetMissing { id } => {
                Error::AdoptionRefused(format!("integration {id} does not exist in API {api_id}"))
            }
            Blocker::ManagedByApiGateway { id } => Error::AdoptionRefused(format!(
                "integration {id} is managed by API Gateway (quick create) and cannot be adopted or changed"
            )),
            Blocker::AdoptionTargetClaimed { id, owner } => Error::AdoptionRefused(format!(
                "integration {id} is already owned by ApiIntegration {owner}"
            )),
            Blocker::ApiRefNotFound { what } => Error::ApiRefNotFound {
                what,
                region: api.region.clone(),
            },
            Blocker::ApiRefGone { what, relist_in } => Error::ApiRefGone {
                what,
                region: api.region.clone(),
                relist_in,
            },
            Blocker::ApiRefNotListedYet { what, relist_in } => Error::ApiRefNotListedYet {
                what,
                region: api.region.clone(),
                relist_in,
            },
            Blocker::VpcLinkNotFound { what } => Error::VpcLinkNotFound {
                what,
                region: api.region.clone(),
            },
            Blocker::AmbiguousReference { what, ids } => Error::AmbiguousReference {
                what,
                ids: ids.join(", "),
            },
            Blocker::ResponsesOnHttpApi => Error::ResponsesOnHttpApi(api_id.to_string()),
        }
    }

    /// A Kubernetes write refused because the object is not the version it was decided on: 409 (a
    /// One or two plain sentences for the condition and the Event. The full error chain goes to the log.
    pub fn summary(&self) -> String {
        let (err, _) = self.innermost();
        match err {
            Error::Kube(e) => format!("Kubernetes API error: {}", first_line(&e.to_string())),
            other => first_line(&other.to_string()),
        }
    }
}

/// At most one line of at most 400 characters: condition messages and Events stay readable.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= 400 {
        line.to_string()
    } else {
        let cut: String = line.chars().take(397).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
