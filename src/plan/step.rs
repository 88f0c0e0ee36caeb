//! The next step for one ApiIntegration, from what was observed. The controller observes, calls
//! [`next_step`] (or [`next_cleanup_step`] while deleting), carries the step out, and asks again with what
//! the step produced until the answer is [`Step::InSync`], [`Step::Update`] or [`Step::Report`]. Every
//! branch names the rule of the design note (§2) it follows.

use super::diff::{
    IntegrationFields, ObservedIntegration, Protocol, drifted_fields, is_same_integration,
    update_request,
};
use crate::api::{DeletionPolicy, ManagementPolicy};
use std::time::Duration;

/// An integration in AWS that this resource might take as its own, and which other ApiIntegration (as
/// `namespace/name`), if any, already records its ID.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub integration: ObservedIntegration,
    pub claimed_by: Option<String>,
}

/// What API Gateway holds for the resource, as far as it was looked at for this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Holding {
    /// status.integrationId names an integration; `found` is AWS's answer for it (None: it is gone).
    Recorded {
        id: String,
        found: Option<ObservedIntegration>,
    },
    /// No ID recorded; the adoption annotation names integration `id` (None: no such integration).
    AdoptionTarget {
        id: String,
        found: Option<Candidate>,
    },
    /// No ID recorded, but a create was in flight: the API's integrations, one of which that create may
    /// have made, and the fields that create sent (None: not recorded; the current spec stands in).
    InterruptedCreate {
        candidates: Vec<Candidate>,
        sent: Option<IntegrationFields>,
    },
    /// No ID recorded, nothing to adopt, no create started.
    Nothing,
    /// §6: the recorded integration lives on an API the reference no longer resolves to (the API was
    /// replaced under the same name): integration `old_id` of API `old_api`.
    OnReplacedApi { old_api: String, old_id: String },
}

/// Everything [`next_step`] decides from.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// What the spec asks API Gateway to hold.
    pub desired: IntegrationFields,
    /// Spec fields the operator set in AWS at its last sync (status.appliedFields).
    pub previously_applied: Vec<String>,
    /// The API's protocol; None when the API does not exist (then nothing else was looked at).
    pub protocol: Option<Protocol>,
    pub holding: Holding,
    /// §6: a reference that did not resolve to exactly one API or VPC link (then nothing else was
    /// looked at).
    pub unresolved: Option<Blocker>,
    pub deletion_policy: DeletionPolicy,
}

/// Why nothing may be written to AWS until someone acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// Rule 6: the API does not exist (404 on the API).
    ApiNotFound,
    /// The adoption annotation names an integration the API does not have.
    AdoptionTargetMissing { id: String },
    /// §3: integrations made by quick create belong to API Gateway: never adopt or change them.
    ManagedByApiGateway { id: String },
    /// The adoption target is already recorded by another ApiIntegration.
    AdoptionTargetClaimed { id: String, owner: String },
    /// §6: no API matches apiRef (`what` describes the reference).
    ApiRefNotFound { what: String },
    /// §6: the API apiRef resolved to answered 404 and the region's listing, older than that, names
    /// no other; it may be listed again in `relist_in`, when an API re-made under the name is found.
    ApiRefGone { what: String, relist_in: Duration },
    /// §6: no API matches apiRef in a listing older than this look: an API made since (by the tool
    /// that made the API just before the user applied this object) would not be in it. It may be
    /// listed again in `relist_in`; only a listing fetched for this look proves that none matches.
    ApiRefNotListedYet { what: String, relist_in: Duration },
    /// §6: no VPC link matches connectionRef.
    VpcLinkNotFound { what: String },
    /// §6: several APIs or VPC links match: nothing is created on any of them.
    AmbiguousReference { what: String, ids: Vec<String> },
    /// Rule 12: the spec asks for integration responses, and the API turned out to be an HTTP API,
    /// which has none.
    ResponsesOnHttpApi,
}

/// What to do next.
// One per reconcile, moved once: boxing the fields would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Rule 3: AWS holds what the spec asks; nothing to write.
    InSync(ObservedIntegration),
    /// Rule 4: these fields differ; `body` is the UpdateIntegration that makes AWS hold the spec.
    Update {
        integration: ObservedIntegration,
        drift: Vec<&'static str>,
        body: IntegrationFields,
    },
    /// The adoption annotation names this integration: take it as ours, then sync it.
    Adopt(ObservedIntegration),
    /// Rule 2: a create was interrupted before its ID was recorded, and this is what it made.
    RecoverInterrupted(ObservedIntegration),
    /// Rule 2: nothing exists yet: record that a create is starting (with the finalizer, in one write),
    /// create, record the ID.
    Create,
    /// Rule 3: the recorded integration was deleted outside the operator (404): create it again.
    Recreate { lost_id: String },
    /// §6: the API was replaced under the same name: create the integration on the new API, and delete
    /// the old one (if its API still exists) unless deletionPolicy is Retain.
    MoveToNewApi {
        old_api: String,
        old_id: String,
        delete_old: bool,
    },
    /// Nothing may be written until someone acts.
    Report(Blocker),
}

impl Step {
    /// Does carrying this step out leave the resource owning an integration in AWS (so the finalizer
    /// must be on it first)? Only a report owns nothing.
    pub fn owns_integration(&self) -> bool {
        !matches!(self, Step::Report(_))
    }
}

/// The next step for a resource that is not being deleted.
pub fn next_step(observed: &Observed) -> Step {
    // §6: a reference must name exactly one API (and VPC link) before anything is written anywhere.
    if let Some(blocker) = &observed.unresolved {
        return Step::Report(blocker.clone());
    }
    // Rule 6: 404 on the API. Nothing can be created on an API that does not exist.
    let Some(protocol) = observed.protocol else {
        return Step::Report(Blocker::ApiNotFound);
    };
    let desired = &observed.desired;
    match &observed.holding {
        Holding::Recorded {
            found: Some(integration),
            ..
        } => {
            // §3: never change what quick create made (it can only get here if AWS flipped the flag).
            if integration.api_gateway_managed {
                return Step::Report(Blocker::ManagedByApiGateway {
                    id: integration.integration_id.clone(),
                });
            }
            // Rules 3 and 4: compare what the user set, after folding AWS's defaults; update what differs.
            let drift = drifted_fields(
                desired,
                &integration.fields,
                &observed.previously_applied,
                protocol,
            );
            if drift.is_empty() {
                Step::InSync(integration.clone())
            } else {
                let body = update_request(
                    desired,
                    &integration.fields,
                    &observed.previously_applied,
                    protocol,
                );
                Step::Update {
                    integration: integration.clone(),
                    drift,
                    body,
                }
            }
        }
        // Rule 3: 404 on the recorded integration: deleted out of band, create it again.
        Holding::Recorded { id, found: None } => Step::Recreate {
            lost_id: id.clone(),
        },
        // Adoption: only an existing integration that quick create did not make and nobody else owns.
        Holding::AdoptionTarget { id, found: None } => {
            Step::Report(Blocker::AdoptionTargetMissing { id: id.clone() })
        }
        Holding::AdoptionTarget {
            id,
            found: Some(candidate),
        } => {
            if candidate.integration.api_gateway_managed {
                Step::Report(Blocker::ManagedByApiGateway { id: id.clone() })
            } else if let Some(owner) = &candidate.claimed_by {
                Step::Report(Blocker::AdoptionTargetClaimed {
                    id: id.clone(),
                    owner: owner.clone(),
                })
            } else {
                Step::Adopt(candidate.integration.clone())
            }
        }
        // Rule 2: after a crash between CreateIntegration and the status write, take the integration that
        // matches the spec and that no other ApiIntegration claims, instead of creating a second one.
        // The spec that create was sent with, which a later edit may have changed: matched against the new
        // spec, the integration it made would be left behind and a second one made.
        Holding::InterruptedCreate { candidates, sent } => {
            match made_by_interrupted_create(sent.as_ref().unwrap_or(desired), protocol, candidates)
            {
                Some(found) => Step::RecoverInterrupted(found.integration.clone()),
                None => Step::Create,
            }
        }
        // Rule 2: nothing recorded, nothing in flight: create (the controller marks it in flight first).
        Holding::Nothing => Step::Create,
        // §6: the API was re-made under the same name: follow it; rule 5 for the old integration.
        Holding::OnReplacedApi { old_api, old_id } => Step::MoveToNewApi {
            old_api: old_api.clone(),
            old_id: old_id.clone(),
            delete_old: observed.deletion_policy == DeletionPolicy::Delete,
        },
    }
}

/// Rule 2's lookup, shared by apply and cleanup: the integration an interrupted create made for `desired`
/// (its fields match, quick create did not make it, no other ApiIntegration records it).
pub fn made_by_interrupted_create<'a>(
    desired: &IntegrationFields,
    protocol: Protocol,
    candidates: &'a [Candidate],
) -> Option<&'a Candidate> {
    candidates
        .iter()
        .find(|c| c.claimed_by.is_none() && is_same_integration(desired, &c.integration, protocol))
}

/// Everything [`next_cleanup_step`] decides from; the controller fills it in as the steps ask.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupObserved {
    pub policy: DeletionPolicy,
    /// Rule 11: in Observe nothing in AWS is the resource's to delete, whatever `policy` says.
    pub management: ManagementPolicy,
    /// status.integrationId.
    pub recorded_id: Option<String>,
    /// No ID is recorded, but the object records a create in flight.
    pub create_in_flight: bool,
    /// Tenancy allows this deletion to touch AWS (always so with open tenancy, once checked).
    pub permitted: bool,
    /// After a look for what a create in flight made: the API's protocol and integrations (protocol
    /// None: the API is gone, and its integrations with it).
    pub interrupted_create: Option<(Option<Protocol>, Vec<Candidate>)>,
    /// What the create in flight sent (or, not recorded, the current spec).
    pub desired: IntegrationFields,
}

/// What deleting a resource does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CleanupStep {
    /// Rule 11, managementPolicy Observe: leave AWS untouched and release the object (it has the
    /// finalizer only if it was managed before). No permission is needed.
    Release { id: Option<String> },
    /// Rule 5, deletionPolicy Retain: leave the integration (if any) in AWS. Nothing in AWS is
    /// touched, so no permission is needed.
    Retain { id: Option<String> },
    /// §7: deleting in AWS needs permission like any other change; without it the finalizer stays.
    CheckPermission,
    /// Rule 2: list the API's integrations to find what the create in flight made.
    LookForInterruptedCreate,
    /// Rule 5: delete this integration (404 counts as deleted; 409 is told apart by its message).
    Delete { id: String },
    /// Nothing in AWS belongs to the resource: the finalizer can go.
    NothingToDelete,
}

/// The next step in deleting a resource's integration.
pub fn next_cleanup_step(observed: &CleanupObserved) -> CleanupStep {
    if observed.management == ManagementPolicy::Observe {
        return CleanupStep::Release {
            id: observed.recorded_id.clone(),
        };
    }
    if observed.policy == DeletionPolicy::Retain {
        return CleanupStep::Retain {
            id: observed.recorded_id.clone(),
        };
    }
    if !observed.permitted {
        return CleanupStep::CheckPermission;
    }
    if let Some(id) = &observed.recorded_id {
        return CleanupStep::Delete { id: id.clone() };
    }
    if observed.create_in_flight && observed.interrupted_create.is_none() {
        return CleanupStep::LookForInterruptedCreate;
    }
    // Rule 2 again: a create may have happened without its ID being recorded; find it so it does not leak.
    match &observed.interrupted_create {
        Some((Some(protocol), candidates)) => {
            match made_by_interrupted_create(&observed.desired, *protocol, candidates) {
                Some(c) => CleanupStep::Delete {
                    id: c.integration.integration_id.clone(),
                },
                None => CleanupStep::NothingToDelete,
            }
        }
        // The API is gone, and every integration it had with it.
        Some((None, _)) => CleanupStep::NothingToDelete,
        None => CleanupStep::NothingToDelete,
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
