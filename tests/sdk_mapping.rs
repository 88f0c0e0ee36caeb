//! Every spec field reaches the AWS SDK's CreateIntegration and UpdateIntegration input unchanged: no field
//! dropped, renamed or altered (property test over generated specs).

use apigw_operator::api::*;
use apigw_operator::aws::{create_input, update_input};
use apigw_operator::plan::{Field, FieldValue, IntegrationFields, Protocol, update_request};
use proptest::collection::btree_map;
use proptest::option::of;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:/._$-]{1,24}"
}
fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..5)
}

/// Any value of `field`; the match is over the operator's field table, so a new field is generated
/// here or does not compile.
fn value_of(field: Field) -> BoxedStrategy<FieldValue> {
    use FieldValue as V;
    match field {
        Field::IntegrationType => pick(IntegrationType::ALL)
            .prop_map(V::IntegrationType)
            .boxed(),
        Field::IntegrationUri => text().prop_map(V::IntegrationUri).boxed(),
        Field::IntegrationMethod => pick(IntegrationMethod::ALL)
            .prop_map(V::IntegrationMethod)
            .boxed(),
        Field::IntegrationSubtype => pick(IntegrationSubtype::ALL)
            .prop_map(V::IntegrationSubtype)
            .boxed(),
        Field::ConnectionType => pick(ConnectionType::ALL)
            .prop_map(V::ConnectionType)
            .boxed(),
        Field::ConnectionId => text().prop_map(V::ConnectionId).boxed(),
        Field::CredentialsArn => text().prop_map(V::CredentialsArn).boxed(),
        Field::Description => text().prop_map(V::Description).boxed(),
        Field::PayloadFormatVersion => pick(PayloadFormatVersion::ALL)
            .prop_map(V::PayloadFormatVersion)
            .boxed(),
        Field::TimeoutInMillis => (50..=30000i32).prop_map(V::TimeoutInMillis).boxed(),
        Field::RequestParameters => string_map().prop_map(V::RequestParameters).boxed(),
        Field::RequestTemplates => string_map().prop_map(V::RequestTemplates).boxed(),
        Field::ResponseParameters => btree_map("[2-5][0-9][0-9]", string_map(), 0..4)
            .prop_map(V::ResponseParameters)
            .boxed(),
        Field::TemplateSelectionExpression => {
            text().prop_map(V::TemplateSelectionExpression).boxed()
        }
        Field::ContentHandlingStrategy => pick(ContentHandlingStrategy::ALL)
            .prop_map(V::ContentHandlingStrategy)
            .boxed(),
        Field::PassthroughBehavior => pick(PassthroughBehavior::ALL)
            .prop_map(V::PassthroughBehavior)
            .boxed(),
        Field::TlsConfig => of(text())
            .prop_map(|server_name_to_verify| {
                V::TlsConfig(TlsConfig {
                    server_name_to_verify,
                })
            })
            .boxed(),
    }
}

fn spec() -> impl Strategy<Value = ApiIntegrationSpec> {
    let values: Vec<_> = Field::ALL.iter().map(|&f| of(value_of(f))).collect();
    ("[a-z0-9]{10}", pick(IntegrationType::ALL), values).prop_map(|(api, ty, values)| {
        let mut fields = IntegrationFields::default();
        for v in values.into_iter().flatten() {
            fields.set(v);
        }
        // Taken apart without `..`: a new field does not compile until it reaches the spec.
        let IntegrationFields {
            integration_type: _,
            integration_uri,
            integration_method,
            integration_subtype,
            connection_type,
            connection_id,
            credentials_arn,
            description,
            payload_format_version,
            timeout_in_millis,
            request_parameters,
            request_templates,
            response_parameters,
            template_selection_expression,
            content_handling_strategy,
            passthrough_behavior,
            tls_config,
        } = fields;
        ApiIntegrationSpec {
            api_id: Some(api),
            api_ref: None,
            integration_type: ty,
            integration_uri,
            integration_method,
            integration_subtype,
            connection_type,
            connection_id,
            connection_ref: None,
            credentials_arn,
            description,
            payload_format_version,
            timeout_in_millis,
            request_parameters,
            request_templates,
            response_parameters,
            template_selection_expression,
            content_handling_strategy,
            passthrough_behavior,
            tls_config,
            region: None,
            deletion_policy: None,
            management_policy: None,
            integration_responses: None,
        }
    })
}

fn hm(m: &Option<BTreeMap<String, String>>) -> Option<HashMap<String, String>> {
    m.as_ref().map(|m| m.clone().into_iter().collect())
}
fn hmm(
    m: &Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> Option<HashMap<String, HashMap<String, String>>> {
    m.as_ref().map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone().into_iter().collect()))
            .collect()
    })
}

/// Asserts that the built input `$i` carries every field of `$s` (a spec) exactly.
macro_rules! assert_carries_spec {
    ($i:expr, $s:expr) => {{
        let (i, s) = (&$i, &$s);
        prop_assert_eq!(i.api_id(), s.api_id.as_deref());
        for &field in Field::ALL {
            match field {
                Field::IntegrationType => prop_assert_eq!(
                    i.integration_type().map(|v| v.as_str()),
                    Some(s.integration_type.as_str())
                ),
                Field::IntegrationUri => {
                    prop_assert_eq!(i.integration_uri(), s.integration_uri.as_deref())
                }
                Field::IntegrationMethod => prop_assert_eq!(
                    i.integration_method(),
                    s.integration_method.map(|v| v.as_str())
                ),
                Field::IntegrationSubtype => prop_assert_eq!(
                    i.integration_subtype(),
                    s.integration_subtype.map(|v| v.as_str())
                ),
                Field::ConnectionType => prop_assert_eq!(
                    i.connection_type().map(|v| v.as_str()),
                    s.connection_type.map(|v| v.as_str())
                ),
                Field::ConnectionId => {
                    prop_assert_eq!(i.connection_id(), s.connection_id.as_deref())
                }
                Field::CredentialsArn => {
                    prop_assert_eq!(i.credentials_arn(), s.credentials_arn.as_deref())
                }
                Field::Description => prop_assert_eq!(i.description(), s.description.as_deref()),
                Field::PayloadFormatVersion => prop_assert_eq!(
                    i.payload_format_version(),
                    s.payload_format_version.map(|v| v.as_str())
                ),
                Field::TimeoutInMillis => {
                    prop_assert_eq!(i.timeout_in_millis(), s.timeout_in_millis)
                }
                // Maps: each test checks them, as a create sends them unchanged and an update adds
                // removal tombstones.
                Field::RequestParameters | Field::RequestTemplates | Field::ResponseParameters => {}
                Field::TemplateSelectionExpression => prop_assert_eq!(
                    i.template_selection_expression(),
                    s.template_selection_expression.as_deref()
                ),
                Field::ContentHandlingStrategy => prop_assert_eq!(
                    i.content_handling_strategy().map(|v| v.as_str()),
                    s.content_handling_strategy.map(|v| v.as_str())
                ),
                Field::PassthroughBehavior => prop_assert_eq!(
                    i.passthrough_behavior().map(|v| v.as_str()),
                    s.passthrough_behavior.map(|v| v.as_str())
                ),
                Field::TlsConfig => prop_assert_eq!(
                    i.tls_config()
                        .map(|t| t.server_name_to_verify().map(str::to_string)),
                    s.tls_config
                        .as_ref()
                        .map(|t| t.server_name_to_verify.clone())
                ),
            }
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn create_input_carries_every_field(s in spec()) {
        let input = create_input(s.api_id.as_deref().unwrap(), &IntegrationFields::from_spec(&s)).build().unwrap();
        assert_carries_spec!(input, s);
        prop_assert_eq!(input.request_parameters().cloned(), hm(&s.request_parameters));
        prop_assert_eq!(input.request_templates().cloned(), hm(&s.request_templates));
        prop_assert_eq!(input.response_parameters().cloned(), hmm(&s.response_parameters));
    }

    /// Against any state AWS may hold, the update carries every spec field unchanged; map entries the
    /// spec lacks appear only as removal tombstones ("" values, {} status codes), never with a value.
    #[test]
    fn update_input_carries_every_field(s in spec(), other in spec(), ws in any::<bool>()) {
        let desired = IntegrationFields::from_spec(&s);
        let observed = IntegrationFields::from_spec(&other);
        let protocol = if ws { Protocol::WebSocket } else { Protocol::Http };
        let input = update_input(s.api_id.as_deref().unwrap(), "int123", &update_request(&desired, &observed, &[], protocol)).build().unwrap();
        prop_assert_eq!(input.integration_id(), Some("int123"));
        assert_carries_spec!(input, s);
        for (sent, spec_map) in [
            (input.request_parameters(), &s.request_parameters),
            (input.request_templates(), &s.request_templates),
        ] {
            let sent = sent.cloned().unwrap_or_default();
            for (k, v) in spec_map.iter().flatten() {
                prop_assert_eq!(sent.get(k), Some(v));
            }
            for (k, v) in &sent {
                prop_assert!(spec_map.as_ref().is_some_and(|m| m.contains_key(k)) || v.is_empty());
            }
        }
        let sent_resp = input.response_parameters().cloned().unwrap_or_default();
        for (code, mapping) in s.response_parameters.iter().flatten() {
            prop_assert_eq!(sent_resp.get(code), Some(&mapping.clone().into_iter().collect()));
        }
        for (code, mapping) in &sent_resp {
            prop_assert!(s.response_parameters.as_ref().is_some_and(|m| m.contains_key(code)) || mapping.is_empty());
        }
    }
}
