//! Rule 11 with rule 12: an observed integration's responses are read once and reported, never written.

use super::*;
use crate::api::IntegrationResponseSpec;
use crate::plan::{ObservedResponse, Outcome, ResponseStep, WantedResponses};

fn response(key: &str, template: &str) -> IntegrationResponseSpec {
    IntegrationResponseSpec {
        integration_response_key: key.into(),
        response_templates: Some([("$default".to_string(), template.to_string())].into()),
        ..Default::default()
    }
}

fn wanted() -> WantedResponses {
    WantedResponses::new(
        Some(vec![
            response("$default", "new"),
            response("/5\\d\\d/", "x"),
        ]),
        Default::default(),
    )
}

/// AWS holds `$default` with another template and a `/4\d\d/` the spec does not list.
fn their_responses() -> Vec<ObservedResponse> {
    vec![
        ObservedResponse {
            id: "r1".into(),
            fields: response("$default", "old"),
        },
        ObservedResponse {
            id: "r2".into(),
            fields: response("/4\\d\\d/", "y"),
        },
    ]
}

fn observing(holding: Holding, policy: DeletionPolicy, finalized: bool) -> Progress {
    let mut o = observed(holding, policy);
    o.protocol = Some(Protocol::WebSocket);
    Progress::new(o, "a1".into(), false, Instant::now(), None, finalized)
        .with_management(ManagementPolicy::Observe)
        .with_responses(wanted())
}

#[test]
fn observe_reads_the_responses_at_most_once_and_never_writes_whatever_was_observed() {
    for holding in holdings() {
        for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
            for finalized in [false, true] {
                let mut p = observing(holding.clone(), policy, finalized);
                let mut reads = 0;
                let found = loop {
                    match p.next() {
                        Do::Observe(found) => break found,
                        read @ Do::Responses {
                            step: ResponseStep::Read,
                            ..
                        } => {
                            reads += 1;
                            assert_eq!(reads, 1, "read twice for {holding:?}");
                            p.record(
                                &read,
                                Outcome::ResponsesRead(their_responses()),
                                Instant::now(),
                            );
                        }
                        other => panic!("Observe gave {other:?} for {holding:?}"),
                    }
                };
                // Only an integration that is there (in sync or drifted) has responses to read.
                let there = matches!(
                    observation(&p.observed),
                    Observation::InSync(_) | Observation::Drifted { .. }
                );
                assert_eq!(reads, usize::from(there), "{holding:?}");
                if there {
                    let Observation::Drifted { drift, .. } = found else {
                        panic!("the responses differ: {found:?}");
                    };
                    assert!(
                        drift
                            .iter()
                            .any(|d| d.field.starts_with("integrationResponses["))
                    );
                }
            }
        }
    }
}

#[test]
fn an_integration_in_sync_whose_responses_differ_is_drifted_by_key() {
    let same = held("i1", proxy("https://want", Some(5000)));
    let mut p = observing(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(same.clone()),
        },
        DeletionPolicy::Retain,
        false,
    );
    let read = p.next();
    assert_eq!(
        read,
        Do::Responses {
            integration_id: "i1".into(),
            step: ResponseStep::Read
        }
    );
    p.record(
        &read,
        Outcome::ResponsesRead(their_responses()),
        Instant::now(),
    );
    let Do::Observe(Observation::Drifted { integration, drift }) = p.next() else {
        panic!("expected drift");
    };
    assert_eq!(integration, same);
    let fields: Vec<_> = drift.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "integrationResponses[/4\\d\\d/]",
            "integrationResponses[$default].responseTemplates",
            "integrationResponses[/5\\d\\d/]",
        ]
    );
    // What Manage would record, and no more: the ID found under a key the spec lists.
    assert_eq!(
        p.observed_response_ids(),
        [("$default".to_string(), "r1".to_string())].into()
    );
}

#[test]
fn the_integrations_own_drift_comes_first_then_the_responses() {
    let mut p = observing(
        Holding::AdoptionTarget {
            id: "i1".into(),
            found: Some(Candidate {
                integration: held("i1", proxy("https://other", Some(5000))),
                claimed_by: None,
            }),
        },
        DeletionPolicy::Retain,
        false,
    );
    let read = p.next();
    p.record(
        &read,
        Outcome::ResponsesRead(their_responses()),
        Instant::now(),
    );
    let Do::Observe(Observation::Drifted { drift, .. }) = p.next() else {
        panic!("expected drift");
    };
    assert_eq!(drift[0].field, "integrationUri");
    assert_eq!(drift.len(), 4);
}

#[test]
fn responses_matching_the_spec_leave_the_integration_in_sync() {
    let mut p = observing(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://want", Some(5000)))),
        },
        DeletionPolicy::Retain,
        false,
    );
    let read = p.next();
    assert!(
        matches!(
            read,
            Do::Responses {
                step: ResponseStep::Read,
                ..
            }
        ),
        "{read:?}"
    );
    let same: Vec<_> = wanted()
        .declared
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, fields)| ObservedResponse {
            id: format!("r{i}"),
            fields,
        })
        .collect();
    p.record(&read, Outcome::ResponsesRead(same), Instant::now());
    assert!(matches!(p.next(), Do::Observe(Observation::InSync(_))));
}

#[test]
fn a_404_reading_an_adoption_targets_responses_means_it_is_missing() {
    let mut p = observing(
        Holding::AdoptionTarget {
            id: "i1".into(),
            found: Some(Candidate {
                integration: held("i1", proxy("https://want", Some(5000))),
                claimed_by: None,
            }),
        },
        DeletionPolicy::Retain,
        false,
    );
    let read = p.next();
    assert!(
        matches!(
            read,
            Do::Responses {
                step: ResponseStep::Read,
                ..
            }
        ),
        "{read:?}"
    );
    p.record(&read, Outcome::Gone, Instant::now());
    assert_eq!(
        p.next(),
        Do::Observe(Observation::Missing {
            id: Some("i1".into())
        })
    );
}

#[test]
fn without_responses_to_manage_nothing_more_is_read() {
    let mut p = observing(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://want", Some(5000)))),
        },
        DeletionPolicy::Retain,
        false,
    );
    p.responses = WantedResponses::default();
    assert!(matches!(p.next(), Do::Observe(Observation::InSync(_))));
}

#[test]
fn responses_on_an_http_api_are_reported_as_manage_refuses_them() {
    let mut p = observing(
        Holding::Recorded {
            id: "i1".into(),
            found: Some(held("i1", proxy("https://want", Some(5000)))),
        },
        DeletionPolicy::Retain,
        false,
    );
    p.observed.protocol = Some(Protocol::Http);
    assert_eq!(
        p.next(),
        Do::Observe(Observation::Blocked(Blocker::ResponsesOnHttpApi))
    );
}
