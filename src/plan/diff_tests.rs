//! Unit tests of the field diff and the UpdateIntegration builder.

use super::*;
use crate::api::{
    ConnectionType, IntegrationMethod, IntegrationSubtype, IntegrationType, PayloadFormatVersion,
};

fn m(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
fn proxy() -> IntegrationFields {
    IntegrationFields {
        integration_type: Some(IntegrationType::HttpProxy),
        integration_uri: Some("https://example.com".into()),
        integration_method: Some(IntegrationMethod::Any),
        ..Default::default()
    }
}

#[test]
fn unset_fields_and_aws_defaults_are_not_drift() {
    let desired = proxy();
    let observed = IntegrationFields {
        connection_type: Some(ConnectionType::Internet),
        timeout_in_millis: Some(30000),
        payload_format_version: Some(PayloadFormatVersion::V1),
        ..proxy()
    };
    assert!(drifted_fields(&desired, &observed, &[], Protocol::Http).is_empty());
    // connectionType INTERNET set in the spec matches AWS leaving it unset (as moto does).
    let desired = IntegrationFields {
        connection_type: Some(ConnectionType::Internet),
        ..proxy()
    };
    assert!(drifted_fields(&desired, &proxy(), &[], Protocol::Http).is_empty());
}

#[test]
fn changed_field_is_drift() {
    let observed = IntegrationFields {
        integration_uri: Some("https://other".into()),
        ..proxy()
    };
    assert_eq!(
        drifted_fields(&proxy(), &observed, &[], Protocol::Http),
        vec!["integrationUri"]
    );
}

#[test]
fn extra_map_key_in_aws_is_drift_and_is_tombstoned() {
    let desired = IntegrationFields {
        request_parameters: m(&[("append:header.a", "1")]),
        ..proxy()
    };
    let observed = IntegrationFields {
        request_parameters: m(&[("append:header.a", "1"), ("append:header.b", "2")]),
        ..proxy()
    };
    assert_eq!(
        drifted_fields(&desired, &observed, &[], Protocol::Http),
        vec!["requestParameters"]
    );
    let u = update_request(&desired, &observed, &[], Protocol::Http);
    assert_eq!(
        u.request_parameters,
        m(&[("append:header.a", "1"), ("append:header.b", "")])
    );
    assert_eq!(u.integration_type, Some(IntegrationType::HttpProxy));
}

#[test]
fn leftover_tombstones_from_a_replacing_backend_are_not_drift() {
    let desired = IntegrationFields {
        request_parameters: m(&[("a", "1")]),
        response_parameters: Some(BTreeMap::from([(
            "200".into(),
            m(&[("overwrite:statuscode", "201")]).unwrap(),
        )])),
        ..proxy()
    };
    let observed = IntegrationFields {
        request_parameters: m(&[("a", "1"), ("b", "")]),
        response_parameters: Some(BTreeMap::from([
            ("200".into(), m(&[("overwrite:statuscode", "201")]).unwrap()),
            ("404".into(), BTreeMap::new()),
        ])),
        ..proxy()
    };
    assert!(drifted_fields(&desired, &observed, &[], Protocol::Http).is_empty());
}

#[test]
fn removed_status_code_is_sent_as_empty_map() {
    let desired = IntegrationFields {
        response_parameters: Some(BTreeMap::from([(
            "200".into(),
            m(&[("overwrite:statuscode", "201")]).unwrap(),
        )])),
        ..proxy()
    };
    let observed = IntegrationFields {
        response_parameters: Some(BTreeMap::from([
            ("200".into(), m(&[("overwrite:statuscode", "201")]).unwrap()),
            ("500".into(), m(&[("overwrite:statuscode", "503")]).unwrap()),
        ])),
        ..proxy()
    };
    let u = update_request(&desired, &observed, &[], Protocol::Http);
    let rp = u.response_parameters.unwrap();
    assert_eq!(rp["500"], BTreeMap::new());
    assert_eq!(rp["200"]["overwrite:statuscode"], "201");
}

#[test]
fn subtype_update_sends_the_full_map_without_tombstones() {
    let desired = IntegrationFields {
        integration_type: Some(IntegrationType::AwsProxy),
        integration_subtype: Some(IntegrationSubtype::SqsSendMessage),
        request_parameters: m(&[("QueueUrl", "q2"), ("MessageBody", "b")]),
        ..Default::default()
    };
    let observed = IntegrationFields {
        request_parameters: m(&[
            ("QueueUrl", "q1"),
            ("MessageBody", "b"),
            ("MessageGroupId", "g"),
        ]),
        ..desired.clone()
    };
    let u = update_request(&desired, &observed, &[], Protocol::Http);
    assert_eq!(u.request_parameters, desired.request_parameters);
    assert_eq!(
        u.integration_subtype,
        Some(IntegrationSubtype::SqsSendMessage)
    );
}

#[test]
fn removed_scalars_go_back_to_defaults() {
    let applied: Vec<String> = [
        "integrationType",
        "integrationUri",
        "description",
        "timeoutInMillis",
        "tlsConfig",
        "requestParameters",
    ]
    .map(String::from)
    .to_vec();
    let desired = IntegrationFields {
        integration_type: Some(IntegrationType::Http),
        integration_uri: Some("https://x".into()),
        ..Default::default()
    };
    let observed = IntegrationFields {
        description: Some("old".into()),
        timeout_in_millis: Some(1000),
        request_parameters: m(&[("integration.request.header.a", "'x'")]),
        ..desired.clone()
    };
    assert_eq!(
        drifted_fields(&desired, &observed, &applied, Protocol::WebSocket),
        vec!["description", "timeoutInMillis", "requestParameters"]
    );
    let u = update_request(&desired, &observed, &applied, Protocol::WebSocket);
    assert_eq!(u.description.as_deref(), Some(""));
    assert_eq!(u.timeout_in_millis, Some(29000));
    assert_eq!(
        u.request_parameters,
        m(&[("integration.request.header.a", "")])
    );
    assert_eq!(
        u.tls_config, None,
        "tlsConfig was not held by AWS, so nothing to reset"
    );
    // Once AWS holds the defaults, nothing is left to do.
    let after = IntegrationFields {
        description: Some(String::new()),
        timeout_in_millis: Some(29000),
        request_parameters: None,
        ..desired.clone()
    };
    assert!(drifted_fields(&desired, &after, &applied, Protocol::WebSocket).is_empty());
}

#[test]
fn fields_never_applied_by_us_are_left_alone() {
    let desired = proxy();
    let observed = IntegrationFields {
        description: Some("set by someone else".into()),
        ..proxy()
    };
    assert!(drifted_fields(&desired, &observed, &[], Protocol::Http).is_empty());
}

#[test]
fn crash_recovery_match_requires_equal_fields_and_not_managed() {
    let desired = proxy();
    let mut seen = ObservedIntegration {
        integration_id: "i1".into(),
        fields: proxy(),
        ..Default::default()
    };
    assert!(is_same_integration(&desired, &seen, Protocol::Http));
    seen.api_gateway_managed = true;
    assert!(!is_same_integration(&desired, &seen, Protocol::Http));
    seen.api_gateway_managed = false;
    seen.fields.integration_uri = Some("https://elsewhere".into());
    assert!(!is_same_integration(&desired, &seen, Protocol::Http));
}
