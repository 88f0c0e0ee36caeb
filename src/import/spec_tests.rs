use super::*;
use crate::api::{ConnectionType, PassthroughBehavior, TlsConfig};
use crate::plan::UnknownValue;
use crate::plan::fields::tests::arbitrary_fields;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn api(id: &str, name: &str, protocol: Protocol) -> ApiSummary {
    ApiSummary {
        id: id.into(),
        name: name.into(),
        protocol,
        tags: BTreeMap::new(),
    }
}

fn region(apis: Vec<ApiSummary>) -> Region {
    Region {
        name: "eu-west-1".into(),
        apis,
        vpc_links: vec![
            VpcLinkSummary {
                id: "vl1".into(),
                name: "billing".into(),
                tags: BTreeMap::new(),
            },
            VpcLinkSummary {
                id: "vl2".into(),
                name: "shared".into(),
                tags: BTreeMap::new(),
            },
            VpcLinkSummary {
                id: "vl3".into(),
                name: "shared".into(),
                tags: BTreeMap::new(),
            },
        ],
    }
}

fn observed(fields: IntegrationFields) -> ObservedIntegration {
    ObservedIntegration {
        integration_id: "i1".into(),
        fields,
        ..Default::default()
    }
}

const OBSERVE: Policy = Policy {
    management: ManagementPolicy::Observe,
};

/// An HTTP_PROXY integration as AWS reports one created with type, method and URI only.
fn http_proxy_as_aws_reports_it() -> IntegrationFields {
    IntegrationFields {
        integration_type: Some(IntegrationType::HttpProxy),
        integration_uri: Some("https://orders.example.com/".into()),
        integration_method: Some(IntegrationMethod::Get),
        connection_type: Some(ConnectionType::Internet),
        payload_format_version: Some(PayloadFormatVersion::V1),
        timeout_in_millis: Some(30000),
        description: Some(String::new()),
        request_parameters: Some(BTreeMap::new()),
        tls_config: Some(TlsConfig::default()),
        ..Default::default()
    }
}

#[test]
fn what_aws_fills_in_is_left_out_and_what_the_user_chose_stays() {
    let f = imported_fields(&http_proxy_as_aws_reports_it(), Protocol::Http);
    assert_eq!(
        f,
        IntegrationFields {
            integration_type: Some(IntegrationType::HttpProxy),
            integration_uri: Some("https://orders.example.com/".into()),
            integration_method: Some(IntegrationMethod::Get),
            // HTTP APIs require it at create: kept.
            payload_format_version: Some(PayloadFormatVersion::V1),
            ..Default::default()
        }
    );
    // A timeout other than the default is the user's.
    let mut chosen = http_proxy_as_aws_reports_it();
    chosen.timeout_in_millis = Some(29000);
    assert_eq!(
        imported_fields(&chosen, Protocol::Http).timeout_in_millis,
        Some(29000)
    );
    // ...and 29000 is WebSocket's default.
    assert_eq!(
        imported_fields(&chosen, Protocol::WebSocket).timeout_in_millis,
        None
    );
}

#[test]
fn websocket_defaults_and_the_lambda_method_of_http_apis_are_left_out() {
    let mock = IntegrationFields {
        integration_type: Some(IntegrationType::Mock),
        passthrough_behavior: Some(PassthroughBehavior::WhenNoMatch),
        payload_format_version: Some(PayloadFormatVersion::V1),
        timeout_in_millis: Some(29000),
        ..Default::default()
    };
    assert_eq!(
        imported_fields(&mock, Protocol::WebSocket),
        IntegrationFields {
            integration_type: Some(IntegrationType::Mock),
            ..Default::default()
        }
    );
    let lambda = IntegrationFields {
        integration_type: Some(IntegrationType::AwsProxy),
        integration_uri: Some("arn:aws:lambda:eu-west-1:123456789012:function:orders".into()),
        integration_method: Some(IntegrationMethod::Post),
        payload_format_version: Some(PayloadFormatVersion::V2),
        ..Default::default()
    };
    assert_eq!(
        imported_fields(&lambda, Protocol::Http).integration_method,
        None
    );
    // A WebSocket API's Lambda proxy integration is written with its method.
    assert_eq!(
        imported_fields(&lambda, Protocol::WebSocket).integration_method,
        Some(IntegrationMethod::Post)
    );
}

#[test]
fn a_unique_api_name_becomes_an_api_ref_and_a_shared_one_stays_an_id_with_a_note() {
    let orders = api("a1", "orders", Protocol::Http);
    let r = region(vec![orders.clone(), api("a2", "chat", Protocol::WebSocket)]);
    let d = integration_spec(
        &orders,
        &observed(http_proxy_as_aws_reports_it()),
        &[],
        &r,
        OBSERVE,
    )
    .unwrap();
    assert_eq!(d.spec.api_ref.unwrap().name.as_deref(), Some("orders"));
    assert_eq!(d.spec.api_id, None);
    assert_eq!(d.spec.region.as_deref(), Some("eu-west-1"));
    assert_eq!(d.spec.deletion_policy, Some(DeletionPolicy::Retain));
    assert_eq!(d.spec.management_policy, Some(ManagementPolicy::Observe));
    assert!(d.notes.is_empty());

    let r = region(vec![orders.clone(), api("a3", "orders", Protocol::Http)]);
    let manage = Policy {
        management: ManagementPolicy::Manage,
    };
    let d = integration_spec(
        &orders,
        &observed(http_proxy_as_aws_reports_it()),
        &[],
        &r,
        manage,
    )
    .unwrap();
    assert_eq!(d.spec.api_id.as_deref(), Some("a1"));
    assert_eq!(d.spec.api_ref, None);
    assert_eq!(d.spec.management_policy, Some(ManagementPolicy::Manage));
    assert_eq!(d.notes.len(), 1);
    assert_eq!(d.notes[0].key, "apiId");
    assert!(d.notes[0].text.contains("2 APIs"), "{}", d.notes[0].text);
}

#[test]
fn a_vpc_link_is_named_by_its_name_only_when_unique_and_listed() {
    let orders = api("a1", "orders", Protocol::Http);
    let r = region(vec![orders.clone()]);
    let private = |link: &str| {
        let mut f = http_proxy_as_aws_reports_it();
        f.connection_type = Some(ConnectionType::VpcLink);
        f.connection_id = Some(link.into());
        observed(f)
    };
    let d = integration_spec(&orders, &private("vl1"), &[], &r, OBSERVE).unwrap();
    assert_eq!(d.spec.connection_id, None);
    assert_eq!(
        d.spec.connection_ref.unwrap().name.as_deref(),
        Some("billing")
    );
    assert_eq!(d.spec.connection_type, Some(ConnectionType::VpcLink));
    for (link, says) in [("vl2", "2 VPC links"), ("v1-rest", "does not list")] {
        let d = integration_spec(&orders, &private(link), &[], &r, OBSERVE).unwrap();
        assert_eq!(d.spec.connection_id.as_deref(), Some(link));
        assert_eq!(d.spec.connection_ref, None);
        assert_eq!(d.notes[0].key, "connectionId");
        assert!(d.notes[0].text.contains(says), "{}", d.notes[0].text);
    }
}

#[test]
fn quick_create_and_unknown_values_are_not_imported() {
    let orders = api("a1", "orders", Protocol::Http);
    let r = region(vec![orders.clone()]);
    let mut quick = observed(http_proxy_as_aws_reports_it());
    quick.api_gateway_managed = true;
    assert_eq!(
        integration_spec(&orders, &quick, &[], &r, OBSERVE),
        Err(NotImported::ManagedByApiGateway)
    );
    let mut newer = observed(http_proxy_as_aws_reports_it());
    newer.unknown_values.push(UnknownValue {
        field: Field::ConnectionType,
        value: "PRIVATE_LINK".into(),
    });
    let refused = integration_spec(&orders, &newer, &[], &r, OBSERVE).unwrap_err();
    assert!(refused.to_string().contains("PRIVATE_LINK"), "{refused}");
    let untyped = observed(IntegrationFields::default());
    assert_eq!(
        integration_spec(&orders, &untyped, &[], &r, OBSERVE),
        Err(NotImported::NoType)
    );
}

/// What AWS may report beyond a spec's values: the empty leftovers and defaults it fills in.
fn as_aws_reports(
    mut f: IntegrationFields,
    protocol: Protocol,
    fill: [bool; 4],
) -> IntegrationFields {
    if fill[0] && f.timeout_in_millis.is_none() {
        f.timeout_in_millis = Some(protocol.default_timeout());
    }
    if fill[1] && f.connection_type.is_none() {
        f.connection_type = Some(ConnectionType::Internet);
    }
    if fill[2] {
        f.description.get_or_insert_with(String::new);
        f.request_parameters.get_or_insert_with(BTreeMap::new);
    }
    if fill[3] && f.payload_format_version.is_none() {
        f.payload_format_version = Some(PayloadFormatVersion::V1);
    }
    f
}

proptest! {
    /// Whatever AWS holds, the imported spec is one the operator's diff finds in sync with it (applying
    /// it changes nothing), and importing what that spec would make gives the same spec again.
    #[test]
    fn the_imported_spec_is_in_sync_with_what_aws_holds(
        fields in arbitrary_fields(), ws in any::<bool>(), fill in any::<[bool; 4]>()
    ) {
        let protocol = if ws { Protocol::WebSocket } else { Protocol::Http };
        let held = as_aws_reports(fields, protocol, fill);
        let imported = imported_fields(&held, protocol);
        prop_assert_eq!(drifted_fields(&imported, &held, &[], protocol), Vec::<&str>::new());
        let again = imported_fields(&as_aws_reports(imported.clone(), protocol, fill), protocol);
        prop_assert_eq!(again, imported);
        let orders = api("a1", "orders", protocol);
        let d = integration_spec(&orders, &observed(held), &[], &region(vec![orders.clone()]), OBSERVE);
        prop_assert!(d.is_ok(), "{:?}", d);
    }
}

#[test]
fn a_value_the_spec_cannot_hold_is_left_out_and_said_so() {
    let chat = api("w1", "chat", Protocol::WebSocket);
    let r = region(vec![chat.clone()]);
    let mut f = http_proxy_as_aws_reports_it();
    f.payload_format_version = None;
    f.timeout_in_millis = Some(30000);
    let d = integration_spec(&chat, &observed(f.clone()), &[], &r, OBSERVE).unwrap();
    assert_eq!(d.spec.timeout_in_millis, None);
    assert_eq!(d.left_out.len(), 1);
    assert!(
        d.left_out[0].contains("timeoutInMillis 30000"),
        "{:?}",
        d.left_out
    );
    // On an HTTP API, 30000 is the default and simply not written.
    let orders = api("a1", "orders", Protocol::Http);
    let d = integration_spec(
        &orders,
        &observed(f),
        &[],
        &region(vec![orders.clone()]),
        OBSERVE,
    )
    .unwrap();
    assert!(d.left_out.is_empty());
}

fn response(id: &str, key: &str) -> ObservedResponse {
    ObservedResponse {
        id: id.into(),
        fields: IntegrationResponseSpec {
            integration_response_key: key.into(),
            ..Default::default()
        },
    }
}

fn websocket_mock() -> IntegrationFields {
    IntegrationFields {
        integration_type: Some(IntegrationType::Mock),
        passthrough_behavior: Some(PassthroughBehavior::WhenNoMatch),
        payload_format_version: Some(PayloadFormatVersion::V1),
        timeout_in_millis: Some(29000),
        ..Default::default()
    }
}

#[test]
fn only_a_websocket_apis_integrations_that_are_not_proxies_have_responses() {
    for (protocol, t, has) in [
        (Protocol::WebSocket, Some(IntegrationType::Mock), true),
        (Protocol::WebSocket, Some(IntegrationType::Aws), true),
        (Protocol::WebSocket, Some(IntegrationType::Http), true),
        (Protocol::WebSocket, Some(IntegrationType::AwsProxy), false),
        (Protocol::WebSocket, Some(IntegrationType::HttpProxy), false),
        (Protocol::WebSocket, None, false),
        (Protocol::Http, Some(IntegrationType::AwsProxy), false),
        (Protocol::Http, Some(IntegrationType::HttpProxy), false),
        (Protocol::Http, Some(IntegrationType::Http), false),
    ] {
        let f = IntegrationFields {
            integration_type: t,
            ..Default::default()
        };
        assert_eq!(
            has_integration_responses(protocol, &f),
            has,
            "{protocol:?} {t:?}"
        );
    }
}

#[test]
fn the_responses_aws_holds_become_the_spec_by_key_and_none_leave_the_field_out() {
    let chat = api("w1", "chat", Protocol::WebSocket);
    let r = region(vec![chat.clone()]);
    let mut two_xx = response("r2", "/2\\d\\d/");
    two_xx.fields.response_parameters = Some(BTreeMap::new());
    let mut default = response("r1", "$default");
    default.fields.response_templates = Some(BTreeMap::from([
        ("$default".to_string(), "{\"ok\":true}".to_string()),
        // A key removed earlier, which AWS may keep as "".
        ("text/plain".to_string(), String::new()),
    ]));
    let d = integration_spec(
        &chat,
        &observed(websocket_mock()),
        &[two_xx, default],
        &r,
        OBSERVE,
    )
    .unwrap();
    assert!(d.left_out.is_empty(), "{:?}", d.left_out);
    assert_eq!(
        d.spec.integration_responses,
        Some(vec![
            IntegrationResponseSpec {
                integration_response_key: "$default".into(),
                response_templates: Some(BTreeMap::from([(
                    "$default".to_string(),
                    "{\"ok\":true}".to_string()
                )])),
                ..Default::default()
            },
            IntegrationResponseSpec {
                integration_response_key: "/2\\d\\d/".into(),
                ..Default::default()
            },
        ])
    );
    // Without responses the spec is the one an import wrote before responses existed.
    let without = integration_spec(&chat, &observed(websocket_mock()), &[], &r, OBSERVE).unwrap();
    assert_eq!(without.spec.integration_responses, None);
    assert_eq!(
        without.spec,
        ApiIntegrationSpec {
            integration_responses: None,
            ..d.spec
        }
    );
}

#[test]
fn responses_the_spec_cannot_hold_in_sync_are_left_out_and_said_so() {
    let chat = api("w1", "chat", Protocol::WebSocket);
    let r = region(vec![chat.clone()]);
    let cases: Vec<(Vec<ObservedResponse>, &str)> = vec![
        // Two responses under one key: the operator's diff would delete the second.
        (
            vec![response("r1", "$default"), response("r2", "$default")],
            "would still delete response \"$default\"",
        ),
        // A key the CRD refuses.
        (vec![response("r1", "2xx")], "key \"2xx\""),
        (vec![response("r1", "//")], "key \"//\""),
        (
            (0..=MAX_INTEGRATION_RESPONSES)
                .map(|i| response(&format!("r{i}"), &format!("/{i}/")))
                .collect(),
            "33 responses",
        ),
        (
            vec![{
                let mut r = response("r1", "$default");
                r.fields.response_templates = Some(
                    (0..=16)
                        .map(|i| (format!("t{i}"), "x".to_string()))
                        .collect(),
                );
                r
            }],
            "more than 16",
        ),
    ];
    for (held, why) in cases {
        let d = integration_spec(&chat, &observed(websocket_mock()), &held, &r, OBSERVE).unwrap();
        assert_eq!(d.spec.integration_responses, None, "{why}");
        assert_eq!(d.left_out.len(), 1, "{:?}", d.left_out);
        assert!(
            d.left_out[0].starts_with("integrationResponses: ") && d.left_out[0].contains(why),
            "{:?} should say {why}",
            d.left_out
        );
    }
    // Responses beside a proxy integration (which AWS refuses to make) are not written either.
    let mut proxy = http_proxy_as_aws_reports_it();
    proxy.payload_format_version = None;
    proxy.timeout_in_millis = Some(29000);
    let d = integration_spec(
        &chat,
        &observed(proxy),
        &[response("r1", "$default")],
        &r,
        OBSERVE,
    )
    .unwrap();
    assert_eq!(d.spec.integration_responses, None);
    assert!(d.left_out[0].contains("1 response(s)"), "{:?}", d.left_out);
}
