//! Pure decision logic, no I/O. The controller observes (Kubernetes status, API Gateway), asks this module
//! what to do, carries that out and reports it.
//!
//! - [`diff`]: what the spec asks API Gateway to hold, whether what it holds differs, and exactly what to
//!   send in an UpdateIntegration.
//! - [`fields`]: the table of the integration's fields: their names, types and how AWS treats each.
//! - [`step`]: the next step for a resource from what was observed: adopt, recover an interrupted create,
//!   create, re-create, update, nothing, or report why nothing may be done; and the same for deletion.
//! - [`refs`]: which API (VPC link) an apiRef (connectionRef) names, from the region's listings.
//! - [`access`]: which ApiGatewayAccess policy lets a namespace manage an API in a region (tenancy).
//! - [`progress`]: one reconcile as a sequence of instructions ([`Do`]), from its bookkeeping
//!   ([`Progress`]): the finalizer first, the ID written before an update, the AWS step, the finish.
//! - [`observe`]: managementPolicy Observe: what a read-only resource reports (in sync, drifted and
//!   how, missing), never a write.
//! - [`due`]: whether a resource needs looking at now, or when its next drift check is.
//! - [`responses`]: a WebSocket integration's responses (rule 12): what differs, the next create, update
//!   or delete, and the spec an import writes for the responses found.

pub mod access;
pub mod diff;
pub mod due;
pub mod fields;
pub mod observe;
pub mod progress;
pub mod refs;
pub mod responses;
pub mod step;

pub use diff::{
    ObservedIntegration, Protocol, UnknownValue, drifted_fields, is_same_integration,
    normalize_observed, update_request,
};
pub use due::{Due, Settled, may_use_listing, next_check, next_check_in};
pub use fields::{Field, FieldRule, FieldValue, IntegrationFields, Removal, Support};
pub use observe::{Observation, field_drift, observation};
pub use progress::{Do, Finish, Outcome, Progress, Recreation, ResponseStep, next_check_spread};
pub use refs::{ApiSummary, Resolved, VpcLinkSummary, resolve_api, resolve_vpc_link};
pub use responses::{
    ObservedResponse, ResponseChange, WantedResponses, WrittenResponse, spec_from_observed,
};
pub use step::{
    Blocker, Candidate, CleanupObserved, CleanupStep, Holding, Observed, Step, next_cleanup_step,
    next_step,
};
