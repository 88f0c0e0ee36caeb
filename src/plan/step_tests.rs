//! One test per branch of [`next_step`] and [`next_cleanup_step`], named after the rule it checks, and a
//! property test of rule 2 (never a second create while the first one's integration is there to take).

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

// ---- adoption ----

fn adopt(found: Option<Candidate>) -> Holding {
    Holding::AdoptionTarget {
        id: "x1".into(),
        found,
    }
}

#[test]
fn adoption_of_an_existing_free_integration() {
    let i = held("x1", proxy("https://other.example"));
    assert_eq!(
        next_step(&observed(adopt(Some(unclaimed(i.clone()))))),
        Step::Adopt(i)
    );
}

#[test]
fn adoption_of_a_missing_integration_is_refused() {
    assert_eq!(
        next_step(&observed(adopt(None))),
        Step::Report(Blocker::AdoptionTargetMissing { id: "x1".into() })
    );
}

#[test]
fn adoption_of_an_api_gateway_managed_integration_is_refused() {
    let i = managed("x1", proxy("https://a.example"));
    assert_eq!(
        next_step(&observed(adopt(Some(unclaimed(i))))),
        Step::Report(Blocker::ManagedByApiGateway { id: "x1".into() })
    );
}

#[test]
fn adoption_of_an_integration_another_resource_claims_is_refused() {
    let i = held("x1", proxy("https://a.example"));
    assert_eq!(
        next_step(&observed(adopt(Some(claimed(i))))),
        Step::Report(Blocker::AdoptionTargetClaimed {
            id: "x1".into(),
            owner: "team-a/other".into()
        })
    );
}

// ---- rule 2: create exactly once ----

fn interrupted(candidates: Vec<Candidate>) -> Holding {
    Holding::InterruptedCreate {
        candidates,
        sent: None,
    }
}

#[test]
fn rule2_nothing_recorded_creates() {
    assert_eq!(next_step(&observed(Holding::Nothing)), Step::Create);
}

#[test]
fn rule2_interrupted_create_takes_the_matching_unclaimed_integration() {
    let other = held("i0", proxy("https://other.example"));
    let mine = held("i1", proxy("https://a.example"));
    let o = observed(interrupted(vec![unclaimed(other), unclaimed(mine.clone())]));
    assert_eq!(next_step(&o), Step::RecoverInterrupted(mine));
}

#[test]
fn rule2_interrupted_create_skips_a_claimed_candidate() {
    let theirs = held("i1", proxy("https://a.example"));
    let mine = held("i2", proxy("https://a.example"));
    let o = observed(interrupted(vec![claimed(theirs), unclaimed(mine.clone())]));
    assert_eq!(next_step(&o), Step::RecoverInterrupted(mine));
    // Only a claimed one matches: the interrupted create made nothing, so create.
    let theirs = held("i1", proxy("https://a.example"));
    assert_eq!(
        next_step(&observed(interrupted(vec![claimed(theirs)]))),
        Step::Create
    );
}

#[test]
fn rule2_interrupted_create_is_looked_for_by_the_spec_it_sent_not_a_newer_one() {
    // The create was sent for a.example, its answer lost; the spec says b.example now.
    let made = held("i1", proxy("https://a.example"));
    let mut o = observed(Holding::InterruptedCreate {
        candidates: vec![unclaimed(made.clone())],
        sent: Some(proxy("https://a.example")),
    });
    o.desired = proxy("https://b.example");
    // Taken (the sync that follows updates it to b.example), not left behind beside a second one.
    assert_eq!(next_step(&o), Step::RecoverInterrupted(made.clone()));
    // Without the record, the newer spec does not recognise it: that is the duplicate the record prevents.
    o.holding = interrupted(vec![unclaimed(made)]);
    assert_eq!(next_step(&o), Step::Create);
}

#[test]
fn rule2_interrupted_create_never_takes_an_api_gateway_managed_integration() {
    let quick = managed("q1", proxy("https://a.example"));
    assert_eq!(
        next_step(&observed(interrupted(vec![unclaimed(quick)]))),
        Step::Create
    );
}

#[test]
fn rule2_interrupted_create_that_made_nothing_creates() {
    let other = held("i0", proxy("https://other.example"));
    assert_eq!(
        next_step(&observed(interrupted(vec![unclaimed(other)]))),
        Step::Create
    );
    assert_eq!(next_step(&observed(interrupted(vec![]))), Step::Create);
}

#[test]
fn after_create_or_adoption_the_next_step_is_a_sync() {
    // What the controller does: carry out the step, record what it produced, ask again.
    let made = held("new", proxy("https://a.example"));
    let mut o = observed(Holding::Nothing);
    assert_eq!(next_step(&o), Step::Create);
    o.holding = Holding::Recorded {
        id: "new".into(),
        found: Some(made.clone()),
    };
    assert_eq!(next_step(&o), Step::InSync(made));
    // An adopted integration that differs from the spec is then updated.
    let adopted = held("x1", proxy("https://other.example"));
    let mut o = observed(adopt(Some(unclaimed(adopted.clone()))));
    assert_eq!(next_step(&o), Step::Adopt(adopted.clone()));
    o.holding = Holding::Recorded {
        id: "x1".into(),
        found: Some(adopted),
    };
    assert!(matches!(next_step(&o), Step::Update { .. }));
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

// ---- rule 5: deletion ----

fn cleanup(
    policy: DeletionPolicy,
    recorded_id: Option<&str>,
    interrupted_create: Option<(Option<Protocol>, Vec<Candidate>)>,
) -> CleanupObserved {
    CleanupObserved {
        policy,
        recorded_id: recorded_id.map(String::from),
        create_in_flight: interrupted_create.is_some(),
        permitted: true,
        interrupted_create,
        desired: proxy("https://a.example"),
    }
}

#[test]
fn rule5_retain_is_decided_before_permission_and_delete_needs_it() {
    let mut o = cleanup(DeletionPolicy::Retain, Some("i1"), None);
    o.permitted = false;
    assert_eq!(
        next_cleanup_step(&o),
        CleanupStep::Retain {
            id: Some("i1".into())
        }
    );
    o.policy = DeletionPolicy::Delete;
    assert_eq!(next_cleanup_step(&o), CleanupStep::CheckPermission);
    // Even with nothing recorded: whether anything is owned is only looked at once permitted.
    let mut nothing = cleanup(DeletionPolicy::Delete, None, None);
    nothing.permitted = false;
    assert_eq!(next_cleanup_step(&nothing), CleanupStep::CheckPermission);
}

#[test]
fn rule2_a_create_in_flight_is_looked_for_before_deciding_there_is_nothing() {
    let mut o = cleanup(DeletionPolicy::Delete, None, None);
    o.create_in_flight = true;
    assert_eq!(next_cleanup_step(&o), CleanupStep::LookForInterruptedCreate);
    o.interrupted_create = Some((Some(Protocol::Http), vec![]));
    assert_eq!(next_cleanup_step(&o), CleanupStep::NothingToDelete);
}

#[test]
fn rule5_retain_leaves_the_integration() {
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Retain, Some("i1"), None)),
        CleanupStep::Retain {
            id: Some("i1".into())
        }
    );
    // Retain also leaves whatever an interrupted create made.
    let mine = held("i2", proxy("https://a.example"));
    assert_eq!(
        next_cleanup_step(&cleanup(
            DeletionPolicy::Retain,
            None,
            Some((Some(Protocol::Http), vec![unclaimed(mine)]))
        )),
        CleanupStep::Retain { id: None }
    );
}

#[test]
fn rule5_delete_removes_the_recorded_integration() {
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, Some("i1"), None)),
        CleanupStep::Delete { id: "i1".into() }
    );
}

#[test]
fn rule5_delete_finds_what_an_interrupted_create_made() {
    let mine = held("i2", proxy("https://a.example"));
    let theirs = held("i3", proxy("https://a.example"));
    let step = next_cleanup_step(&cleanup(
        DeletionPolicy::Delete,
        None,
        Some((Some(Protocol::Http), vec![claimed(theirs), unclaimed(mine)])),
    ));
    assert_eq!(step, CleanupStep::Delete { id: "i2".into() });
}

#[test]
fn rule5_nothing_to_delete() {
    // Never created.
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, None, None)),
        CleanupStep::NothingToDelete
    );
    // Interrupted create that made nothing (only another resource's integration matches).
    let theirs = held("i3", proxy("https://a.example"));
    assert_eq!(
        next_cleanup_step(&cleanup(
            DeletionPolicy::Delete,
            None,
            Some((Some(Protocol::Http), vec![claimed(theirs)]))
        )),
        CleanupStep::NothingToDelete
    );
    // The API is gone, and its integrations with it.
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, None, Some((None, vec![])))),
        CleanupStep::NothingToDelete
    );
}

// ---- property: rule 2 holds for any mix of candidates ----

fn fields_strategy() -> impl Strategy<Value = IntegrationFields> {
    (
        prop::sample::select(vec!["https://a.example", "https://b.example"]),
        prop::sample::select(vec![IntegrationMethod::Any, IntegrationMethod::Get]),
        prop::option::of(prop::sample::select(vec!["d1", "d2", ""])),
        prop::option::of(prop::sample::select(vec![30000, 5000])),
        prop::option::of(prop::sample::select(vec![ConnectionType::Internet])),
    )
        .prop_map(|(uri, method, description, timeout, connection)| {
            let mut f = proxy(uri);
            f.integration_method = Some(method);
            f.description = description.map(String::from);
            f.timeout_in_millis = timeout;
            f.connection_type = connection;
            f
        })
}

fn candidate_strategy() -> impl Strategy<Value = Candidate> {
    (fields_strategy(), any::<bool>(), any::<bool>(), 0u32..1000).prop_map(
        |(fields, is_managed, is_claimed, n)| Candidate {
            integration: ObservedIntegration {
                integration_id: format!("i{n}"),
                fields,
                api_gateway_managed: is_managed,
                integration_response_selection_expression: None,
                unknown_values: vec![],
            },
            claimed_by: is_claimed.then(|| "ns/other".to_string()),
        },
    )
}

proptest! {
    #[test]
    fn never_creates_while_a_matching_unclaimed_candidate_exists(
        desired in fields_strategy(),
        candidates in prop::collection::vec(candidate_strategy(), 0..6),
    ) {
        let o = Observed {
            desired: desired.clone(),
            previously_applied: vec![],
            protocol: Some(Protocol::Http),
            holding: Holding::InterruptedCreate {
                candidates: candidates.clone(),
                sent: None,
            },
            unresolved: None,
            deletion_policy: DeletionPolicy::Delete,
        };
        let takeable = candidates.iter().any(|c| {
            c.claimed_by.is_none() && is_same_integration(&desired, &c.integration, Protocol::Http)
        });
        let step = next_step(&o);
        if takeable {
            prop_assert!(step != Step::Create, "created a second integration: {step:?}");
            match step {
                Step::RecoverInterrupted(i) => {
                    let c = candidates.iter().find(|c| c.integration == i).unwrap();
                    prop_assert!(c.claimed_by.is_none() && !i.api_gateway_managed);
                }
                other => prop_assert!(false, "expected a recovery, got {other:?}"),
            }
        } else {
            prop_assert_eq!(step, Step::Create);
        }
        // Deleting the same resource removes the same integration the apply would have recovered.
        let c = CleanupObserved {
            policy: DeletionPolicy::Delete,
            recorded_id: None,
            create_in_flight: true,
            permitted: true,
            interrupted_create: Some((Some(Protocol::Http), candidates)),
            desired,
        };
        prop_assert_eq!(takeable, matches!(next_cleanup_step(&c), CleanupStep::Delete { .. }));
    }

    #[test]
    fn a_recorded_integration_is_never_created_again_while_it_exists(
        desired in fields_strategy(),
        fields in fields_strategy(),
    ) {
        let o = Observed {
            desired,
            previously_applied: vec![],
            protocol: Some(Protocol::Http),
            holding: Holding::Recorded { id: "i1".into(), found: Some(held("i1", fields)) },
            unresolved: None,
            deletion_policy: DeletionPolicy::Delete,
        };
        let step = next_step(&o);
        let synced = matches!(step, Step::InSync(_) | Step::Update { .. });
        prop_assert!(synced, "{:?}", step);
    }
}
