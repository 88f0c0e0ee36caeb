use super::*;
use crate::api::ContentHandlingStrategy;

fn spec(key: &str, templates: &[(&str, &str)]) -> IntegrationResponseSpec {
    IntegrationResponseSpec {
        integration_response_key: key.into(),
        response_templates: (!templates.is_empty()).then(|| {
            templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        ..Default::default()
    }
}

fn seen(id: &str, fields: IntegrationResponseSpec) -> ObservedResponse {
    ObservedResponse {
        id: id.into(),
        fields,
    }
}

fn declared(list: Vec<IntegrationResponseSpec>) -> WantedResponses {
    WantedResponses::new(Some(list), BTreeMap::new())
}

#[test]
fn nothing_declared_nothing_recorded_is_not_managed() {
    let none = WantedResponses::default();
    assert!(!none.managed());
    assert!(!none.asks_for_any());
    // Responses another tool made are not ours: no change, whatever AWS holds.
    let theirs = [seen("r1", spec("$default", &[("$default", "x")]))];
    assert_eq!(next_response_change(&none, &theirs), None);
    assert!(declared(vec![]).managed());
    assert!(!declared(vec![]).asks_for_any());
    let recorded = WantedResponses::new(None, [("$default".into(), "r1".into())].into());
    assert!(recorded.managed());
}

#[test]
fn creates_in_spec_order_then_nothing_left() {
    let wanted = declared(vec![
        spec("$default", &[("$default", "{\"ok\":true}")]),
        spec("/4\\d\\d/", &[]),
    ]);
    let mut observed = Vec::new();
    let first = next_response_change(&wanted, &observed).unwrap();
    assert_eq!(first, ResponseChange::Create(wanted.desired()[0].clone()));
    apply_written(
        &mut observed,
        &WrittenResponse::Made(seen("r1", wanted.desired()[0].clone())),
    );
    let second = next_response_change(&wanted, &observed).unwrap();
    assert_eq!(second.key(), "/4\\d\\d/");
    assert!(matches!(second, ResponseChange::Create(_)));
    apply_written(
        &mut observed,
        &WrittenResponse::Made(seen("r2", wanted.desired()[1].clone())),
    );
    assert_eq!(next_response_change(&wanted, &observed), None);
    assert_eq!(
        response_ids(&wanted, &observed),
        [
            ("$default".to_string(), "r1".to_string()),
            ("/4\\d\\d/".to_string(), "r2".to_string())
        ]
        .into()
    );
}

#[test]
fn a_found_response_is_not_created_again() {
    // Rule 12: a create whose answer was lost left the response in AWS; the list read before any
    // write shows it, and the plan takes it instead of making a second one.
    let want = spec("$default", &[("$default", "a")]);
    let wanted = declared(vec![want.clone()]);
    assert_eq!(next_response_change(&wanted, &[seen("r1", want)]), None);
}

#[test]
fn a_changed_template_is_one_update_with_the_removed_key_as_a_tombstone() {
    let have = spec(
        "$default",
        &[("$default", "old"), ("application/json", "j")],
    );
    let want = spec("$default", &[("$default", "new")]);
    let change = next_response_change(&declared(vec![want]), &[seen("r1", have)]).unwrap();
    let ResponseChange::Update { id, drift, body } = change else {
        panic!("expected an update, got {change:?}");
    };
    assert_eq!(id, "r1");
    assert_eq!(drift, vec!["responseTemplates"]);
    assert_eq!(
        body.response_templates.unwrap(),
        [
            ("$default".to_string(), "new".to_string()),
            ("application/json".to_string(), String::new())
        ]
        .into()
    );
    // Only what differs is sent.
    assert_eq!(body.response_parameters, None);
    assert_eq!(body.template_selection_expression, None);
    assert_eq!(body.content_handling_strategy, None);
}

#[test]
fn tombstones_left_in_aws_read_as_absent() {
    let have = spec("$default", &[("$default", "new"), ("application/json", "")]);
    let want = spec("$default", &[("$default", "new")]);
    assert_eq!(drifted_response_fields(&want, &have), Vec::<&str>::new());
}

#[test]
fn scalars_compare_as_the_spec_says() {
    let mut want = spec("$default", &[]);
    let mut have = spec("$default", &[]);
    have.template_selection_expression = Some("\\$default".into());
    have.content_handling_strategy = Some(ContentHandlingStrategy::ConvertToText);
    // A removed expression is cleared with ""; an unset strategy is left to AWS (it cannot be cleared).
    assert_eq!(
        drifted_response_fields(&want, &have),
        vec!["templateSelectionExpression"]
    );
    assert_eq!(
        update_body(&want, &have).template_selection_expression,
        Some(String::new())
    );
    want.content_handling_strategy = Some(ContentHandlingStrategy::ConvertToBinary);
    assert_eq!(
        drifted_response_fields(&want, &have),
        vec!["templateSelectionExpression", "contentHandlingStrategy"]
    );
    assert_eq!(
        update_body(&want, &have).content_handling_strategy,
        Some(ContentHandlingStrategy::ConvertToBinary)
    );
}

#[test]
fn a_removed_key_is_deleted_before_anything_else() {
    let wanted = declared(vec![spec("$default", &[]), spec("/5\\d\\d/", &[])]);
    let observed = [
        seen("r1", spec("$default", &[])),
        seen("r2", spec("/4\\d\\d/", &[])),
    ];
    assert_eq!(
        next_response_change(&wanted, &observed),
        Some(ResponseChange::Delete {
            id: "r2".into(),
            key: "/4\\d\\d/".into()
        })
    );
}

#[test]
fn a_doubled_key_keeps_the_first_and_deletes_the_second() {
    let want = spec("$default", &[]);
    let observed = [seen("r1", want.clone()), seen("r9", want.clone())];
    assert_eq!(
        next_response_change(&declared(vec![want]), &observed),
        Some(ResponseChange::Delete {
            id: "r9".into(),
            key: "$default".into()
        })
    );
}

#[test]
fn without_the_field_only_recorded_responses_are_deleted() {
    let wanted = WantedResponses::new(None, [("$default".into(), "r1".into())].into());
    let observed = [
        seen("r0", spec("/2\\d\\d/", &[])),
        seen("r1", spec("$default", &[])),
    ];
    assert_eq!(
        next_response_change(&wanted, &observed),
        Some(ResponseChange::Delete {
            id: "r1".into(),
            key: "$default".into()
        })
    );
    let after = [seen("r0", spec("/2\\d\\d/", &[]))];
    assert_eq!(next_response_change(&wanted, &after), None);
    assert!(response_ids(&wanted, &after).is_empty());
}

#[test]
fn an_empty_list_deletes_every_response() {
    let observed = [seen("r0", spec("/2\\d\\d/", &[]))];
    assert_eq!(
        next_response_change(&declared(vec![]), &observed),
        Some(ResponseChange::Delete {
            id: "r0".into(),
            key: "/2\\d\\d/".into()
        })
    );
}

#[test]
fn import_round_trips_exactly() {
    let mut messy = spec("$default", &[("$default", "t"), ("text/plain", "")]);
    messy.response_parameters = Some(BTreeMap::new());
    messy.template_selection_expression = Some(String::new());
    let mut other = spec("/4\\d\\d/", &[]);
    other.content_handling_strategy = Some(ContentHandlingStrategy::ConvertToText);
    other.response_parameters = Some([("a".to_string(), "b".to_string())].into());
    let observed = vec![
        seen("r2", other.clone()),
        seen("r1", messy),
        seen(
            "r3",
            spec("$default", &[("x", "ignored: second under its key")]),
        ),
    ];
    let imported = spec_from_observed(&observed);
    assert_eq!(
        imported,
        vec![spec("$default", &[("$default", "t")]), other],
        "sorted by key, tombstones and empty values left out, the first of a doubled key kept"
    );
    // A resource made from the import changes nothing but the doubled key's extra response.
    let wanted = declared(imported);
    assert_eq!(
        next_response_change(&wanted, &observed),
        Some(ResponseChange::Delete {
            id: "r3".into(),
            key: "$default".into()
        })
    );
    assert_eq!(next_response_change(&wanted, &observed[..2]), None);
}

#[test]
fn create_body_leaves_empty_maps_out() {
    let mut want = spec("$default", &[]);
    want.response_templates = Some(BTreeMap::new());
    assert_eq!(create_body(&want).response_templates, None);
}

// Rule 11: what Observe reports of the responses is the list of Manage's changes.

/// A stand-in for API Gateway: carries out `change` on `held` as AWS would answer it (an update's
/// answer holds the spec's response, since the update sent every differing field).
fn carry_out(held: &mut Vec<ObservedResponse>, wanted: &WantedResponses, change: &ResponseChange) {
    let written = match change {
        ResponseChange::Create(body) => WrittenResponse::Made(seen(
            &format!("new-{}", body.integration_response_key),
            body.clone(),
        )),
        ResponseChange::Update { id, body, .. } => {
            let want = wanted
                .desired()
                .iter()
                .find(|w| w.integration_response_key == body.integration_response_key)
                .unwrap();
            WrittenResponse::Made(seen(id, want.clone()))
        }
        ResponseChange::Delete { id, .. } => WrittenResponse::Removed { id: id.clone() },
    };
    apply_written(held, &written);
}

/// One of each: a key only AWS has, a key twice, a changed template, a key only the spec has.
fn mixed() -> (WantedResponses, Vec<ObservedResponse>) {
    let wanted = declared(vec![
        spec("$default", &[("$default", "new")]),
        spec("/2\\d\\d/", &[]),
        spec("/5\\d\\d/", &[("$default", "down")]),
    ]);
    let held = vec![
        seen("r1", spec("$default", &[("$default", "old")])),
        seen("r2", spec("/4\\d\\d/", &[])),
        seen("r3", spec("/2\\d\\d/", &[])),
        seen("r4", spec("/2\\d\\d/", &[("$default", "twice")])),
    ];
    (wanted, held)
}

#[test]
fn the_list_of_changes_is_what_manage_makes_one_step_at_a_time() {
    let (wanted, mut held) = mixed();
    let all = response_changes(&wanted, &held);
    let mut made = Vec::new();
    while let Some(change) = next_response_change(&wanted, &held) {
        assert!(made.len() < 10, "no end: {made:?}");
        carry_out(&mut held, &wanted, &change);
        made.push(change);
    }
    assert_eq!(made, all);
    let kinds: Vec<_> = all
        .iter()
        .map(|c| match c {
            ResponseChange::Create(_) => "create",
            ResponseChange::Update { .. } => "update",
            ResponseChange::Delete { .. } => "delete",
        })
        .collect();
    assert_eq!(kinds, ["delete", "delete", "update", "create"]);
    assert!(response_changes(&wanted, &held).is_empty());
}

#[test]
fn the_drift_names_each_key_and_field_with_both_sides() {
    let (wanted, held) = mixed();
    let drift = response_drift(&wanted, &held);
    let fd = |field: &str, spec: Option<&str>, aws: Option<&str>| FieldDrift {
        field: field.into(),
        spec: spec.map(String::from),
        aws: aws.map(String::from),
    };
    assert_eq!(
        drift,
        vec![
            fd(
                "integrationResponses[/4\\d\\d/]",
                None,
                Some(r#"{"integrationResponseId":"r2","integrationResponseKey":"/4\\d\\d/"}"#)
            ),
            fd(
                "integrationResponses[/2\\d\\d/]",
                None,
                Some(
                    r#"{"integrationResponseId":"r4","integrationResponseKey":"/2\\d\\d/","responseTemplates":{"$default":"twice"}}"#
                )
            ),
            fd(
                "integrationResponses[$default].responseTemplates",
                Some(r#"{"$default":"new"}"#),
                Some(r#"{"$default":"old"}"#)
            ),
            fd(
                "integrationResponses[/5\\d\\d/]",
                Some(
                    r#"{"integrationResponseKey":"/5\\d\\d/","responseTemplates":{"$default":"down"}}"#
                ),
                None
            ),
        ]
    );
    assert!(response_drift(&wanted, &[]).iter().all(|d| d.aws.is_none()));
}

#[test]
fn drifted_scalars_and_tombstones_are_shown_as_the_comparison_sees_them() {
    let mut want = spec("$default", &[]);
    want.content_handling_strategy = Some(ContentHandlingStrategy::ConvertToText);
    want.template_selection_expression = Some("\\$default".into());
    let mut have = spec("$default", &[("$default", "")]);
    have.content_handling_strategy = Some(ContentHandlingStrategy::ConvertToBinary);
    have.template_selection_expression = Some(String::new());
    let drift = response_drift(&declared(vec![want]), &[seen("r1", have)]);
    let shown: Vec<_> = drift
        .iter()
        .map(|d| (d.field.as_str(), d.spec.as_deref(), d.aws.as_deref()))
        .collect();
    // The `""` template is a tombstone, read as absent: no drift in responseTemplates.
    assert_eq!(
        shown,
        [
            (
                "integrationResponses[$default].templateSelectionExpression",
                Some("\\$default"),
                None
            ),
            (
                "integrationResponses[$default].contentHandlingStrategy",
                Some("CONVERT_TO_TEXT"),
                Some("CONVERT_TO_BINARY")
            ),
        ]
    );
}

#[test]
fn without_the_field_observe_reports_only_what_manage_would_delete() {
    let theirs = seen("r1", spec("$default", &[("$default", "x")]));
    assert!(response_drift(&WantedResponses::default(), std::slice::from_ref(&theirs)).is_empty());
    let ours = seen("r2", spec("/4\\d\\d/", &[]));
    let recorded = WantedResponses::new(None, [("/4\\d\\d/".into(), "r2".into())].into());
    let drift = response_drift(&recorded, &[theirs, ours]);
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].field, "integrationResponses[/4\\d\\d/]");
    assert_eq!(drift[0].spec, None);
}

#[test]
fn observe_records_the_ids_found_under_the_spec_and_those_manage_would_still_delete() {
    let wanted = WantedResponses::new(
        Some(vec![spec("$default", &[])]),
        [
            ("/4\\d\\d/".to_string(), "r2".to_string()),
            ("/5\\d\\d/".to_string(), "gone".to_string()),
        ]
        .into(),
    );
    let held = [
        seen("r1", spec("$default", &[])),
        seen("r2", spec("/4\\d\\d/", &[])),
        seen("r3", spec("/3\\d\\d/", &[])),
    ];
    assert_eq!(
        observed_response_ids(&wanted, &held),
        [
            ("$default".to_string(), "r1".to_string()),
            ("/4\\d\\d/".to_string(), "r2".to_string()),
        ]
        .into()
    );
    // A key the spec lists but AWS lacks has no ID yet.
    assert!(observed_response_ids(&declared(vec![spec("$default", &[])]), &[]).is_empty());
}
