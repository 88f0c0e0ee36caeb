//! managementPolicy Observe (design rule 11): what a read-only resource reports, decided from the same
//! [`Observed`] that Manage decides from. There is no step here that writes: an observation is only
//! ever reported. [`Progress::next`](super::Progress::next) answers with [`Do::Observe`] in Observe,
//! before any finalizer, ID write or AWS step, and [`next_cleanup_step`](super::next_cleanup_step)
//! releases the object without touching AWS.
//!
//! [`Do::Observe`]: super::Do::Observe

use super::diff::{ObservedIntegration, Protocol, drifted_fields, normalize_observed};
use super::fields::{Field, FieldValue, IntegrationFields};
use super::responses::{ObservedResponse, WantedResponses, response_drift};
use super::step::{Blocker, Holding, Observed};
use crate::api::FieldDrift;

/// What an Observe reconcile found.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The integration matches the spec: Manage would change nothing.
    InSync(ObservedIntegration),
    /// The integration differs from the spec in these fields: what Manage's first update would send.
    Drifted {
        integration: ObservedIntegration,
        drift: Vec<FieldDrift>,
    },
    /// There is nothing to observe: the adoption annotation or status names an integration the API does
    /// not have (`id`), or nothing names one at all (None). Observe never creates.
    Missing { id: Option<String> },
    /// Why even Manage could do nothing (the API is gone, a reference does not resolve, the integration
    /// is API Gateway's own or another resource's): reported like Manage reports it.
    Blocked(Blocker),
}

/// What an Observe reconcile reports, from what was read. The drift is Manage's: the fields
/// [`drifted_fields`] names, with the same defaults folded and the same `previously_applied`, so that
/// switching to Manage updates exactly these fields.
pub fn observation(observed: &Observed) -> Observation {
    if let Some(blocker) = &observed.unresolved {
        return Observation::Blocked(blocker.clone());
    }
    let Some(protocol) = observed.protocol else {
        return Observation::Blocked(Blocker::ApiNotFound);
    };
    let integration = match &observed.holding {
        Holding::Recorded {
            found: Some(integration),
            ..
        } => integration,
        Holding::AdoptionTarget {
            id,
            found: Some(candidate),
        } => {
            if let Some(owner) = &candidate.claimed_by {
                return Observation::Blocked(Blocker::AdoptionTargetClaimed {
                    id: id.clone(),
                    owner: owner.clone(),
                });
            }
            &candidate.integration
        }
        Holding::Recorded { id, found: None } | Holding::AdoptionTarget { id, found: None } => {
            return Observation::Missing {
                id: Some(id.clone()),
            };
        }
        // §6: the recorded integration is on an API the reference no longer names: not on this one.
        Holding::OnReplacedApi { old_id, .. } => {
            return Observation::Missing {
                id: Some(old_id.clone()),
            };
        }
        Holding::InterruptedCreate { .. } | Holding::Nothing => {
            return Observation::Missing { id: None };
        }
    };
    // §3: what quick create made is API Gateway's; Manage would refuse it, so Observe says so too.
    if integration.api_gateway_managed {
        return Observation::Blocked(Blocker::ManagedByApiGateway {
            id: integration.integration_id.clone(),
        });
    }
    let drift = field_drift(
        &observed.desired,
        &integration.fields,
        &observed.previously_applied,
        protocol,
    );
    if drift.is_empty() {
        Observation::InSync(integration.clone())
    } else {
        Observation::Drifted {
            integration: integration.clone(),
            drift,
        }
    }
}

/// Rule 11 with rule 12: `found` (what [`observation`] made of the integration), with what Manage would
/// change about the integration's responses (as read: `responses`) added to its drift. An integration
/// in sync whose responses differ is drifted; a missing or blocked one stays as it was.
pub fn with_responses(
    found: Observation,
    wanted: &WantedResponses,
    responses: &[ObservedResponse],
) -> Observation {
    let more = response_drift(wanted, responses);
    if more.is_empty() {
        return found;
    }
    match found {
        Observation::InSync(integration) => Observation::Drifted {
            integration,
            drift: more,
        },
        Observation::Drifted {
            integration,
            mut drift,
        } => {
            drift.extend(more);
            Observation::Drifted { integration, drift }
        }
        other => other,
    }
}

/// Each field [`drifted_fields`] names, with the spec's value and AWS's (after AWS's defaults are
/// folded away, as the comparison sees it).
pub fn field_drift(
    desired: &IntegrationFields,
    held: &IntegrationFields,
    previously_applied: &[String],
    protocol: Protocol,
) -> Vec<FieldDrift> {
    let aws = normalize_observed(held);
    drifted_fields(desired, held, previously_applied, protocol)
        .into_iter()
        .filter_map(|name| name.parse::<Field>().ok())
        .map(|field| FieldDrift {
            field: field.name().to_string(),
            spec: desired.get(field).map(|v| shown(&v)),
            aws: aws.get(field).map(|v| shown(&v)),
        })
        .collect()
}

/// A value as API Gateway spells it; maps and objects as JSON.
pub fn shown(value: &FieldValue) -> String {
    let json = |v: serde_json::Result<String>| v.unwrap_or_default();
    match value {
        FieldValue::IntegrationType(v) => v.to_string(),
        FieldValue::IntegrationMethod(v) => v.to_string(),
        FieldValue::IntegrationSubtype(v) => v.to_string(),
        FieldValue::ConnectionType(v) => v.to_string(),
        FieldValue::PayloadFormatVersion(v) => v.to_string(),
        FieldValue::ContentHandlingStrategy(v) => v.to_string(),
        FieldValue::PassthroughBehavior(v) => v.to_string(),
        FieldValue::IntegrationUri(s)
        | FieldValue::ConnectionId(s)
        | FieldValue::CredentialsArn(s)
        | FieldValue::Description(s)
        | FieldValue::TemplateSelectionExpression(s) => s.clone(),
        FieldValue::TimeoutInMillis(n) => n.to_string(),
        FieldValue::RequestParameters(m) | FieldValue::RequestTemplates(m) => {
            json(serde_json::to_string(m))
        }
        FieldValue::ResponseParameters(m) => json(serde_json::to_string(m)),
        FieldValue::TlsConfig(t) => json(serde_json::to_string(t)),
    }
}

/// The names of the drifted fields, for a sentence.
pub fn drift_names(drift: &[FieldDrift]) -> String {
    drift
        .iter()
        .map(|d| d.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
