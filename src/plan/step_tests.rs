//! One test per branch of [`next_step`] and [`next_cleanup_step`], named after the rule it checks, and a
//! property test of rule 2 (never a second create while the first one's integration is there to take).
//!
//! Here the shared builders and the steps for a recorded integration and its API (rules 6, 3 and 4,
//! §6 references); `create` holds adoption and rule 2 with its property tests, `cleanup` rule 5.

#[path = "step_tests/cleanup.rs"]
mod cleanup;
#[path = "step_tests/create.rs"]
mod create;

use super::*;
use crate::api::{ConnectionType, IntegrationMethod, IntegrationType};
use proptest::prelude::*;

fn proxy(uri: &str) -> IntegrationFields {
    IntegrationFields {
        integration_type: Some(IntegrationType::HttpProxy),
        integration_uri: Some(uri.into()),
        integration_method: Some(IntegrationMethod::Any),
        ..Default::default()
    }
}

fn held(id: &str, fields: IntegrationFields) -> ObservedIntegration {
    ObservedIntegration {
        integration_id: id.into(),
        fields,
        api_gateway_managed: false,
        integration_response_selection_expression: None,
        unknown_values: vec![],
    }
}

fn managed(id: &str, fields: IntegrationFields) -> ObservedIntegration {
    ObservedIntegration {
        api_gateway_managed: true,
        ..held(id, fields)
    }
}

fn unclaimed(integration: ObservedIntegration) -> Candidate {
    Candidate {
        integration,
        claimed_by: None,
    }
}

fn claimed(integration: ObservedIntegration) -> Candidate {
    Candidate {
        integration,
        claimed_by: Some("team-a/other".into()),
    }
}

fn observed(holding: Holding) -> Observed {
    Observed {
        desired: proxy("https://a.example"),
        previously_applied: vec![],
        protocol: Some(Protocol::Http),
        holding,
        unresolved: None,
        deletion_policy: DeletionPolicy::Delete,
    }
}

fn recorded(found: Option<ObservedIntegration>) -> Holding {
    Holding::Recorded {
        id: "int1".into(),
        found,
    }
}

// ---- rule 6: the API ----

#[test]
fn rule6_missing_api_is_reported_and_nothing_created() {
    for holding in [
        Holding::Nothing,
        recorded(None),
        Holding::InterruptedCreate {
            candidates: vec![],
            sent: None,
        },
    ] {
        let o = Observed {
            protocol: None,
            ..observed(holding)
        };
        assert_eq!(next_step(&o), Step::Report(Blocker::ApiNotFound));
    }
}

// ---- rules 3 and 4: a recorded integration ----

#[test]
fn rule3_recorded_and_matching_is_in_sync() {
    let i = held("int1", proxy("https://a.example"));
    assert_eq!(
        next_step(&observed(recorded(Some(i.clone())))),
        Step::InSync(i)
    );
}

#[test]
fn rule3_aws_defaults_are_not_drift() {
    let mut fields = proxy("https://a.example");
    fields.timeout_in_millis = Some(30000);
    fields.connection_type = Some(ConnectionType::Internet);
    let i = held("int1", fields);
    assert_eq!(
        next_step(&observed(recorded(Some(i.clone())))),
        Step::InSync(i)
    );
}

#[test]
fn rule4_a_changed_field_is_updated_with_type_always_sent() {
    let i = held("int1", proxy("https://old.example"));
    match next_step(&observed(recorded(Some(i.clone())))) {
        Step::Update {
            integration,
            drift,
            body,
        } => {
            assert_eq!(integration, i);
            assert_eq!(drift, vec!["integrationUri"]);
            assert_eq!(body.integration_uri.as_deref(), Some("https://a.example"));
            assert_eq!(body.integration_type, Some(IntegrationType::HttpProxy));
        }
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn rule4_a_field_removed_from_the_spec_is_reset() {
    let mut fields = proxy("https://a.example");
    fields.description = Some("old".into());
    fields.timeout_in_millis = Some(5000);
    let o = Observed {
        previously_applied: vec!["description".into(), "timeoutInMillis".into()],
        ..observed(recorded(Some(held("int1", fields))))
    };
    match next_step(&o) {
        Step::Update { drift, body, .. } => {
            assert_eq!(drift, vec!["description", "timeoutInMillis"]);
            assert_eq!(body.description.as_deref(), Some(""));
            assert_eq!(body.timeout_in_millis, Some(30000));
        }
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn rule3_a_404_on_the_recorded_integration_recreates_it() {
    assert_eq!(
        next_step(&observed(recorded(None))),
        Step::Recreate {
            lost_id: "int1".into()
        }
    );
}

#[test]
fn api_gateway_managed_recorded_integration_is_never_changed() {
    let i = managed("int1", proxy("https://old.example"));
    assert_eq!(
        next_step(&observed(recorded(Some(i)))),
        Step::Report(Blocker::ManagedByApiGateway { id: "int1".into() })
    );
}

// ---- §6: references ----

#[test]
fn references_that_do_not_resolve_to_one_are_reported_before_anything_else() {
    for blocker in [
        Blocker::ApiRefNotFound {
            what: "name \"orders\"".into(),
        },
        Blocker::VpcLinkNotFound {
            what: "name \"link\"".into(),
        },
        Blocker::AmbiguousReference {
            what: "API name \"orders\"".into(),
            ids: vec!["a1".into(), "a2".into()],
        },
    ] {
        // Whatever AWS holds, nothing is created, moved or updated.
        for holding in [
            Holding::Nothing,
            recorded(Some(held("int1", proxy("https://x")))),
        ] {
            let o = Observed {
                unresolved: Some(blocker.clone()),
                ..observed(holding)
            };
            assert_eq!(next_step(&o), Step::Report(blocker.clone()));
        }
    }
}

#[test]
fn an_api_replaced_under_the_same_name_moves_the_integration() {
    let replaced = Holding::OnReplacedApi {
        old_api: "old".into(),
        old_id: "i1".into(),
    };
    assert_eq!(
        next_step(&observed(replaced.clone())),
        Step::MoveToNewApi {
            old_api: "old".into(),
            old_id: "i1".into(),
            delete_old: true
        }
    );
    // Retain: the old integration stays where it is.
    let o = Observed {
        deletion_policy: DeletionPolicy::Retain,
        ..observed(replaced)
    };
    assert_eq!(
        next_step(&o),
        Step::MoveToNewApi {
            old_api: "old".into(),
            old_id: "i1".into(),
            delete_old: false
        }
    );
}
