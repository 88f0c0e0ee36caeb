//! Tests of the SDK mapping: the closed sets against the SDK's own, unknown values, and the round trip
//! spec → CreateIntegration → what AWS answers → no drift.

use super::*;
use crate::plan::fields::tests::{arbitrary_fields, spec_of};
use crate::plan::{Protocol, drifted_fields, is_same_integration, update_request};
use aws_sdk_apigatewayv2::operation::create_integration::CreateIntegrationInput;
use aws_sdk_apigatewayv2::operation::get_integration::GetIntegrationOutput;
use proptest::prelude::*;

fn read(out: GetIntegrationOutput) -> Result<ObservedIntegration, AwsError> {
    Ok(observed!(out, "GetIntegration"))
}

/// What GetIntegration answers for an integration holding exactly what `input` sent.
fn held(id: &str, input: &CreateIntegrationInput) -> GetIntegrationOutput {
    let mut b = GetIntegrationOutput::builder().integration_id(id);
    for &f in Field::ALL {
        b = match f {
            Field::IntegrationType => b.set_integration_type(input.integration_type().cloned()),
            Field::IntegrationUri => b.set_integration_uri(input.integration_uri().map(Into::into)),
            Field::IntegrationMethod => {
                b.set_integration_method(input.integration_method().map(Into::into))
            }
            Field::IntegrationSubtype => {
                b.set_integration_subtype(input.integration_subtype().map(Into::into))
            }
            Field::ConnectionType => b.set_connection_type(input.connection_type().cloned()),
            Field::ConnectionId => b.set_connection_id(input.connection_id().map(Into::into)),
            Field::CredentialsArn => b.set_credentials_arn(input.credentials_arn().map(Into::into)),
            Field::Description => b.set_description(input.description().map(Into::into)),
            Field::PayloadFormatVersion => {
                b.set_payload_format_version(input.payload_format_version().map(Into::into))
            }
            Field::TimeoutInMillis => b.set_timeout_in_millis(input.timeout_in_millis()),
            Field::RequestParameters => {
                b.set_request_parameters(input.request_parameters().cloned())
            }
            Field::RequestTemplates => b.set_request_templates(input.request_templates().cloned()),
            Field::ResponseParameters => {
                b.set_response_parameters(input.response_parameters().cloned())
            }
            Field::TemplateSelectionExpression => b.set_template_selection_expression(
                input.template_selection_expression().map(Into::into),
            ),
            Field::ContentHandlingStrategy => {
                b.set_content_handling_strategy(input.content_handling_strategy().cloned())
            }
            Field::PassthroughBehavior => {
                b.set_passthrough_behavior(input.passthrough_behavior().cloned())
            }
            Field::TlsConfig => b.set_tls_config(input.tls_config().map(|t| {
                sdk::TlsConfig::builder()
                    .set_server_name_to_verify(t.server_name_to_verify().map(Into::into))
                    .build()
            })),
        };
    }
    b.build()
}

#[test]
fn the_closed_sets_are_the_sdks() {
    for &t in IntegrationType::ALL {
        assert_eq!(integration_type_to_sdk(t).as_str(), t.as_str());
        assert_eq!(
            integration_type_from_sdk(&integration_type_to_sdk(t)),
            Ok(t)
        );
    }
    for v in sdk::IntegrationType::values() {
        assert!(
            integration_type_from_sdk(&sdk::IntegrationType::from(*v)).is_ok(),
            "{v}"
        );
    }
    for &c in ConnectionType::ALL {
        assert_eq!(connection_type_to_sdk(c).as_str(), c.as_str());
        assert_eq!(connection_type_from_sdk(&connection_type_to_sdk(c)), Ok(c));
    }
    for v in sdk::ConnectionType::values() {
        assert!(
            connection_type_from_sdk(&sdk::ConnectionType::from(*v)).is_ok(),
            "{v}"
        );
    }
    for &c in ContentHandlingStrategy::ALL {
        assert_eq!(content_handling_to_sdk(c).as_str(), c.as_str());
        assert_eq!(
            content_handling_from_sdk(&content_handling_to_sdk(c)),
            Ok(c)
        );
    }
    for v in sdk::ContentHandlingStrategy::values() {
        assert!(
            content_handling_from_sdk(&sdk::ContentHandlingStrategy::from(*v)).is_ok(),
            "{v}"
        );
    }
    for &p in PassthroughBehavior::ALL {
        assert_eq!(passthrough_to_sdk(p).as_str(), p.as_str());
        assert_eq!(passthrough_from_sdk(&passthrough_to_sdk(p)), Ok(p));
    }
    for v in sdk::PassthroughBehavior::values() {
        assert!(
            passthrough_from_sdk(&sdk::PassthroughBehavior::from(*v)).is_ok(),
            "{v}"
        );
    }
    // The three the SDK keeps as strings read back what they are sent as.
    for &m in IntegrationMethod::ALL {
        assert_eq!(method_from_sdk(m.as_str()), Ok(m));
        assert_eq!(method_from_sdk(&m.as_str().to_ascii_lowercase()), Ok(m));
    }
    for &s in IntegrationSubtype::ALL {
        assert_eq!(subtype_from_sdk(s.as_str()), Ok(s));
    }
    for &v in PayloadFormatVersion::ALL {
        assert_eq!(payload_format_from_sdk(v.as_str()), Ok(v));
    }
}

fn answer(integration_type: &str, passthrough: Option<&str>) -> GetIntegrationOutput {
    GetIntegrationOutput::builder()
        .integration_id("abc123")
        .integration_type(sdk::IntegrationType::from(integration_type))
        .set_passthrough_behavior(passthrough.map(sdk::PassthroughBehavior::from))
        .build()
}

#[test]
fn values_the_operator_does_not_know_are_named_and_refused() {
    let known = read(answer("HTTP_PROXY", None)).unwrap();
    assert_eq!(unknown_value(&known), None);
    assert_eq!(
        known.fields.integration_type,
        Some(IntegrationType::HttpProxy)
    );
    let known = read(answer("AWS_PROXY", Some("WHEN_NO_MATCH"))).unwrap();
    assert_eq!(unknown_value(&known), None);
    assert_eq!(
        known.fields.passthrough_behavior,
        Some(PassthroughBehavior::WhenNoMatch)
    );

    let new_type = read(answer("SOMETHING_NEW", None)).unwrap();
    assert_eq!(
        unknown_value(&new_type),
        Some(&UnknownValue {
            field: Field::IntegrationType,
            value: "SOMETHING_NEW".into()
        })
    );
    // Never read as some other value.
    assert_eq!(new_type.fields.integration_type, None);
    let new_passthrough = read(answer("HTTP", Some("SOMETIMES"))).unwrap();
    assert_eq!(
        new_passthrough.unknown_values,
        vec![UnknownValue {
            field: Field::PassthroughBehavior,
            value: "SOMETIMES".into()
        }]
    );
    assert_eq!(new_passthrough.fields.passthrough_behavior, None);

    let refused = refuse_unknown_values(&new_type).unwrap_err();
    assert_eq!(refused.outcome(), "unreadable");
    let text = refused.to_string();
    assert!(
        text.contains("abc123") && text.contains("integrationType \"SOMETHING_NEW\""),
        "{text}"
    );
}

#[test]
fn string_fields_outside_the_closed_sets_are_unknown_too() {
    let out = GetIntegrationOutput::builder()
        .integration_id("abc123")
        .integration_type(sdk::IntegrationType::HttpProxy)
        .integration_method("get")
        .integration_subtype("SNS-Publish")
        .payload_format_version("3.0")
        .build();
    let i = read(out).unwrap();
    // API Gateway answers the method in any case.
    assert_eq!(i.fields.integration_method, Some(IntegrationMethod::Get));
    assert_eq!(
        i.unknown_values,
        vec![
            UnknownValue {
                field: Field::IntegrationSubtype,
                value: "SNS-Publish".into()
            },
            UnknownValue {
                field: Field::PayloadFormatVersion,
                value: "3.0".into()
            },
        ]
    );
    let text = refuse_unknown_values(&i).unwrap_err().to_string();
    assert!(
        text.contains("integrationSubtype \"SNS-Publish\""),
        "{text}"
    );
}

#[test]
fn an_unknown_value_where_the_spec_sets_the_field_is_not_the_same_integration() {
    // An unknown connectionType must not pass for the INTERNET the spec asks (or AWS's default).
    let out = GetIntegrationOutput::builder()
        .integration_id("abc123")
        .integration_type(sdk::IntegrationType::HttpProxy)
        .integration_uri("https://example.com")
        .connection_type(sdk::ConnectionType::from("PRIVATE_LINK"))
        .build();
    let seen = read(out).unwrap();
    let mut desired = IntegrationFields {
        integration_type: Some(IntegrationType::HttpProxy),
        integration_uri: Some("https://example.com".into()),
        ..Default::default()
    };
    // Not set in the spec: not compared (as any field the spec leaves out).
    assert!(is_same_integration(&desired, &seen, Protocol::Http));
    desired.connection_type = Some(ConnectionType::Internet);
    assert!(!is_same_integration(&desired, &seen, Protocol::Http));
}

#[test]
fn an_answer_without_an_id_is_refused() {
    let out = GetIntegrationOutput::builder()
        .integration_type(sdk::IntegrationType::Mock)
        .build();
    assert_eq!(read(out).unwrap_err().outcome(), "unreadable");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// spec → CreateIntegration → AWS holding what was sent → no drift and nothing unknown.
    #[test]
    fn a_spec_sent_and_read_back_does_not_drift(fields in arbitrary_fields(), ws in any::<bool>()) {
        let protocol = if ws { Protocol::WebSocket } else { Protocol::Http };
        let spec = spec_of(&fields);
        let desired = IntegrationFields::from_spec(&spec);
        prop_assert_eq!(&desired, &fields);
        let input = create_input("a1b2c3d4e5", &desired).build().unwrap();
        let seen = read(held("i1", &input)).unwrap();
        prop_assert!(seen.unknown_values.is_empty(), "{:?}", seen.unknown_values);
        let applied = desired.set_field_names();
        prop_assert_eq!(drifted_fields(&desired, &seen.fields, &applied, protocol), Vec::<&str>::new());
        prop_assert!(is_same_integration(&desired, &seen, protocol));

        // Nothing to remove: an update against that answer is the spec itself.
        prop_assert_eq!(&update_request(&desired, &seen.fields, &applied, protocol), &desired);
    }
}
