//! Every spec field reaches the AWS SDK's CreateIntegration and UpdateIntegration input unchanged: no field
//! dropped, renamed or altered (property test over generated specs).

use apigw_operator::api::*;
use apigw_operator::aws::{create_input, update_input};
use apigw_operator::plan::{IntegrationFields, Protocol, update_request};
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

fn spec() -> impl Strategy<Value = ApiIntegrationSpec> {
    let a = (
        "[a-z0-9]{10}",
        pick(IntegrationType::ALL),
        of(text()),
        of(pick(IntegrationMethod::ALL)),
        of(pick(IntegrationSubtype::ALL)),
        of(pick(ConnectionType::ALL)),
        of(text()),
        of(text()),
        of(text()),
    );
    let b = (
        of(pick(PayloadFormatVersion::ALL)),
        of(50..=30000i32),
        of(string_map()),
        of(string_map()),
        of(btree_map("[2-5][0-9][0-9]", string_map(), 0..4)),
        of(text()),
        of(pick(ContentHandlingStrategy::ALL)),
        of(pick(PassthroughBehavior::ALL)),
        of(of(text()).prop_map(|server_name_to_verify| TlsConfig {
            server_name_to_verify,
        })),
    );
    (a, b).prop_map(
        |(
            (api, ty, uri, method, sub, ct, cid, arn, desc),
            (pfv, timeout, rp, rt, resp, tse, chs, pb, tls),
        )| {
            ApiIntegrationSpec {
                api_id: Some(api),
                api_ref: None,
                integration_type: ty,
                integration_uri: uri,
                integration_method: method,
                integration_subtype: sub,
                connection_type: ct,
                connection_id: cid,
                connection_ref: None,
                credentials_arn: arn,
                description: desc,
                payload_format_version: pfv,
                timeout_in_millis: timeout,
                request_parameters: rp,
                request_templates: rt,
                response_parameters: resp,
                template_selection_expression: tse,
                content_handling_strategy: chs,
                passthrough_behavior: pb,
                tls_config: tls,
                region: None,
                deletion_policy: None,
            }
        },
    )
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
        prop_assert_eq!(
            i.integration_type().map(|v| v.as_str()),
            Some(s.integration_type.as_str())
        );
        prop_assert_eq!(i.integration_uri(), s.integration_uri.as_deref());
        prop_assert_eq!(
            i.integration_method(),
            s.integration_method.map(|v| v.as_str())
        );
        prop_assert_eq!(
            i.integration_subtype(),
            s.integration_subtype.map(|v| v.as_str())
        );
        prop_assert_eq!(
            i.connection_type().map(|v| v.as_str()),
            s.connection_type.map(|v| v.as_str())
        );
        prop_assert_eq!(i.connection_id(), s.connection_id.as_deref());
        prop_assert_eq!(i.credentials_arn(), s.credentials_arn.as_deref());
        prop_assert_eq!(i.description(), s.description.as_deref());
        prop_assert_eq!(
            i.payload_format_version(),
            s.payload_format_version.map(|v| v.as_str())
        );
        prop_assert_eq!(i.timeout_in_millis(), s.timeout_in_millis);
        prop_assert_eq!(
            i.template_selection_expression(),
            s.template_selection_expression.as_deref()
        );
        prop_assert_eq!(
            i.content_handling_strategy().map(|v| v.as_str()),
            s.content_handling_strategy.map(|v| v.as_str())
        );
        prop_assert_eq!(
            i.passthrough_behavior().map(|v| v.as_str()),
            s.passthrough_behavior.map(|v| v.as_str())
        );
        prop_assert_eq!(
            i.tls_config()
                .map(|t| t.server_name_to_verify().map(str::to_string)),
            s.tls_config
                .as_ref()
                .map(|t| t.server_name_to_verify.clone())
        );
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
