//! Rule 11: Observe decides from the same observations as Manage, reports Manage's drift field by
//! field, and never yields an instruction or a deletion step that writes.

use super::*;
use crate::api::{DeletionPolicy, IntegrationType, ManagementPolicy};
use crate::plan::{
    Candidate, CleanupObserved, CleanupStep, Do, Progress, Step, next_cleanup_step, next_step,
};
use std::time::Instant;

fn proxy(uri: &str, timeout: Option<i32>) -> IntegrationFields {
    IntegrationFields {
        integration_type: Some(IntegrationType::HttpProxy),
        integration_uri: Some(uri.into()),
        timeout_in_millis: timeout,
        ..Default::default()
    }
}

fn held(id: &str, fields: IntegrationFields) -> ObservedIntegration {
    ObservedIntegration {
        integration_id: id.into(),
        fields,
        ..Default::default()
    }
}

fn observed(holding: Holding, policy: DeletionPolicy) -> Observed {
    Observed {
        desired: proxy("https://want", Some(5000)),
        previously_applied: vec![],
        protocol: Some(Protocol::Http),
        holding,
        unresolved: None,
        deletion_policy: policy,
    }
}

/// Every kind of holding a reconcile can observe, including those Manage would create, re-create,
/// adopt, recover, move or update for.
fn holdings() -> Vec<Holding> {
    let drifted = held("i1", proxy("https://other", Some(5000)));
    let same = held("i1", proxy("https://want", Some(5000)));
    vec![
        Holding::Nothing,
        Holding::Recorded {
            id: "i1".into(),
            found: None,
        },
        Holding::Recorded {
            id: "i1".into(),
            found: Some(drifted.clone()),
        },
        Holding::Recorded {
            id: "i1".into(),
            found: Some(same.clone()),
        },
        Holding::AdoptionTarget {
            id: "i1".into(),
            found: None,
        },
        Holding::AdoptionTarget {
            id: "i1".into(),
            found: Some(Candidate {
                integration: drifted.clone(),
                claimed_by: None,
            }),
        },
        Holding::InterruptedCreate {
            candidates: vec![Candidate {
                integration: same,
                claimed_by: None,
            }],
            sent: None,
        },
        Holding::OnReplacedApi {
            old_api: "a0".into(),
            old_id: "i0".into(),
        },
    ]
}

#[test]
fn observe_never_gives_an_instruction_that_writes_whatever_was_observed() {
    for holding in holdings() {
        for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
            for finalized in [false, true] {
                let o = observed(holding.clone(), policy);
                let p = Progress::new(
                    o.clone(),
                    "a1".into(),
                    false,
                    Instant::now(),
                    None,
                    finalized,
                )
                .with_management(ManagementPolicy::Observe);
                match p.next() {
                    Do::Observe(found) => assert_eq!(found, observation(&o)),
                    other => panic!("Observe gave {other:?} for {holding:?}"),
                }
            }
        }
    }
}

#[test]
fn deleting_in_observe_releases_without_touching_aws_whatever_the_deletion_policy() {
    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        for recorded in [None, Some("i1".to_string())] {
            for permitted in [false, true] {
                let c = CleanupObserved {
                    policy,
                    management: ManagementPolicy::Observe,
                    recorded_id: recorded.clone(),
                    create_in_flight: recorded.is_none(),
                    permitted,
                    interrupted_create: None,
                    desired: proxy("https://want", None),
                };
                assert_eq!(
                    next_cleanup_step(&c),
                    CleanupStep::Release {
                        id: recorded.clone()
                    }
                );
            }
        }
    }
}

#[test]
fn the_drift_is_exactly_the_fields_manage_would_update_with_both_values() {
    let o = observed(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://other", Some(5000)))),
        },
        DeletionPolicy::Delete,
    );
    let Observation::Drifted { drift, .. } = observation(&o) else {
        panic!("expected drift");
    };
    assert_eq!(
        drift,
        vec![FieldDrift {
            field: "integrationUri".into(),
            spec: Some("https://want".into()),
            aws: Some("https://other".into()),
        }]
    );
    let Step::Update { drift: manage, .. } = next_step(&o) else {
        panic!("Manage would update");
    };
    let names: Vec<_> = drift.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(names, manage);
}

#[test]
fn a_field_only_aws_holds_is_shown_with_the_spec_side_absent() {
    let mut o = observed(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://want", Some(4000)))),
        },
        DeletionPolicy::Delete,
    );
    o.desired.timeout_in_millis = None;
    o.previously_applied = vec!["timeoutInMillis".into()];
    let Observation::Drifted { drift, .. } = observation(&o) else {
        panic!("expected drift");
    };
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].field, "timeoutInMillis");
    assert_eq!(drift[0].spec, None);
    assert_eq!(drift[0].aws.as_deref(), Some("4000"));
}

#[test]
fn aws_defaults_are_not_drift() {
    let mut o = observed(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://want", Some(30000)))),
        },
        DeletionPolicy::Delete,
    );
    o.desired.timeout_in_millis = None;
    assert!(matches!(observation(&o), Observation::InSync(_)));
}

#[test]
fn nothing_to_observe_is_missing_never_a_create() {
    let o = |h| observation(&observed(h, DeletionPolicy::Delete));
    assert_eq!(o(Holding::Nothing), Observation::Missing { id: None });
    assert_eq!(
        o(Holding::Recorded {
            id: "i1".into(),
            found: None
        }),
        Observation::Missing {
            id: Some("i1".into())
        }
    );
    assert_eq!(
        o(Holding::AdoptionTarget {
            id: "i9".into(),
            found: None
        }),
        Observation::Missing {
            id: Some("i9".into())
        }
    );
}

#[test]
fn what_manage_would_refuse_observe_reports_the_same_way() {
    let mut o = observed(Holding::Nothing, DeletionPolicy::Delete);
    o.protocol = None;
    assert_eq!(observation(&o), Observation::Blocked(Blocker::ApiNotFound));
    let mut quick = held("i1", proxy("https://want", Some(5000)));
    quick.api_gateway_managed = true;
    let o = observed(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(quick),
        },
        DeletionPolicy::Delete,
    );
    assert_eq!(
        observation(&o),
        Observation::Blocked(Blocker::ManagedByApiGateway { id: "i1".into() })
    );
    let o = observed(
        Holding::AdoptionTarget {
            id: "i1".into(),
            found: Some(Candidate {
                integration: held("i1", proxy("https://want", Some(5000))),
                claimed_by: Some("team/other".into()),
            }),
        },
        DeletionPolicy::Delete,
    );
    assert!(matches!(
        observation(&o),
        Observation::Blocked(Blocker::AdoptionTargetClaimed { .. })
    ));
}

#[test]
fn maps_are_shown_as_json() {
    let m: std::collections::BTreeMap<String, String> =
        [("append:header.x".to_string(), "1".to_string())].into();
    assert_eq!(
        shown(&FieldValue::RequestParameters(m)),
        r#"{"append:header.x":"1"}"#
    );
}

// Rule 11 with rule 12: an observed integration's responses are read once and reported, never written.
#[path = "observe_tests/responses.rs"]
mod responses;
