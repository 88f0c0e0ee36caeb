//! Adoption and rule 2 (create exactly once): one test per branch, then the property tests.

use super::*;

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
            management: ManagementPolicy::Manage,
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
