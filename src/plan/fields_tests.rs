//! Tests of the field table, and the generator of field values the other unit tests share.

use super::*;
use crate::api::{DeletionPolicy, IntegrationType as Type};
use crate::plan::{Protocol, drifted_fields, update_request};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::BTreeSet;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:/._$-]{1,24}"
}
fn string_map() -> impl Strategy<Value = StringMap> {
    prop::collection::btree_map(text(), text(), 0..4)
}
fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

/// Any value of `field` (strings never empty, as the schema asks).
pub(crate) fn value_of(field: Field) -> BoxedStrategy<FieldValue> {
    use FieldValue as V;
    match field {
        Field::IntegrationType => pick(Type::ALL).prop_map(V::IntegrationType).boxed(),
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
        Field::ResponseParameters => {
            prop::collection::btree_map("[2-5][0-9][0-9]", string_map(), 0..3)
                .prop_map(V::ResponseParameters)
                .boxed()
        }
        Field::TemplateSelectionExpression => {
            text().prop_map(V::TemplateSelectionExpression).boxed()
        }
        Field::ContentHandlingStrategy => pick(ContentHandlingStrategy::ALL)
            .prop_map(V::ContentHandlingStrategy)
            .boxed(),
        Field::PassthroughBehavior => pick(PassthroughBehavior::ALL)
            .prop_map(V::PassthroughBehavior)
            .boxed(),
        Field::TlsConfig => prop::option::of(text())
            .prop_map(|server_name_to_verify| {
                V::TlsConfig(TlsConfig {
                    server_name_to_verify,
                })
            })
            .boxed(),
    }
}

/// Fields as a spec makes them: integrationType always, every other field set or not.
pub(crate) fn arbitrary_fields() -> impl Strategy<Value = IntegrationFields> {
    let values: Vec<_> = Field::ALL
        .iter()
        .map(|&f| prop::option::of(value_of(f)))
        .collect();
    (pick(Type::ALL), values).prop_map(|(integration_type, values)| {
        let mut fields = IntegrationFields::default();
        for v in values.into_iter().flatten() {
            fields.set(v);
        }
        fields.integration_type = Some(integration_type);
        fields
    })
}

/// The spec that asks for `fields` (integrationType from `fields`, HTTP_PROXY when it has none), with the
/// operator's own fields fixed.
pub(crate) fn spec_of(fields: &IntegrationFields) -> ApiIntegrationSpec {
    let typed = IntegrationFields {
        integration_type: Some(fields.integration_type.unwrap_or(Type::HttpProxy)),
        ..fields.clone()
    };
    ApiIntegrationSpec {
        api_id: Some("a1b2c3d4e5".into()),
        region: Some("eu-west-1".into()),
        deletion_policy: Some(DeletionPolicy::Retain),
        ..typed.to_spec().expect("a type was just set")
    }
}

#[test]
fn every_field_appears_once_with_its_own_name() {
    let fields: BTreeSet<Field> = Field::ALL.iter().copied().collect();
    assert_eq!(fields.len(), Field::ALL.len(), "a field is listed twice");
    let names: BTreeSet<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), Field::ALL.len(), "two fields share a name");
    for &f in Field::ALL {
        assert_eq!(f.name().parse::<Field>(), Ok(f));
        assert_eq!(f.to_string(), f.name());
        assert!(f.name().chars().next().unwrap().is_ascii_lowercase());
    }
    assert!("integrationtype".parse::<Field>().is_err());
}

#[test]
fn the_table_names_exactly_the_integration_fields_of_the_spec() {
    // Every field set in the spec (serialized as the CRD spells it), minus the operator's own.
    let all = arbitrary_fields();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut fields = all.new_tree(&mut runner).unwrap().current();
    for &f in Field::ALL {
        if !fields.is_set(f) {
            fields.set(value_of(f).new_tree(&mut runner).unwrap().current());
        }
    }
    let spec = serde_json::to_value(spec_of(&fields)).unwrap();
    let keys: BTreeSet<&str> = spec
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let operator_own = BTreeSet::from(["apiId", "region", "deletionPolicy"]);
    let expected: BTreeSet<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(&keys - &operator_own, expected);
    assert_eq!(fields.set_fields().collect::<Vec<_>>(), Field::ALL);
}

#[test]
fn get_set_and_clear_address_the_same_field() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for &f in Field::ALL {
        let v = value_of(f).new_tree(&mut runner).unwrap().current();
        assert_eq!(v.field(), f);
        let mut fields = IntegrationFields::default();
        fields.set(v.clone());
        assert_eq!(fields.get(f), Some(v));
        assert_eq!(fields.set_fields().collect::<Vec<_>>(), vec![f]);
        assert_eq!(fields.set_field_names(), vec![f.name().to_string()]);
        fields.clear(f);
        assert_eq!(fields, IntegrationFields::default());
    }
}

#[test]
fn exactly_the_reset_fields_have_a_value_when_unset() {
    let unset = IntegrationFields::unset(30000);
    for &f in Field::ALL {
        assert_eq!(
            unset.is_set(f),
            f.rule().removal == Removal::Reset,
            "{f}: its value when unset and its removal rule disagree"
        );
    }
    assert_eq!(
        IntegrationFields::unset(29000).timeout_in_millis,
        Some(29000)
    );
}

/// A value of `f` that differs from `v` (the same field).
fn another(f: Field, v: &FieldValue) -> FieldValue {
    use FieldValue as V;
    let other = |s: &str| format!("{s}-other");
    let w = match v.clone() {
        V::IntegrationType(t) => V::IntegrationType(if t == Type::Mock {
            Type::Http
        } else {
            Type::Mock
        }),
        V::IntegrationUri(s) => V::IntegrationUri(other(&s)),
        V::IntegrationMethod(m) => V::IntegrationMethod(if m == IntegrationMethod::Get {
            IntegrationMethod::Post
        } else {
            IntegrationMethod::Get
        }),
        V::IntegrationSubtype(s) => {
            V::IntegrationSubtype(if s == IntegrationSubtype::SqsPurgeQueue {
                IntegrationSubtype::SqsSendMessage
            } else {
                IntegrationSubtype::SqsPurgeQueue
            })
        }
        V::ConnectionType(c) => V::ConnectionType(if c == ConnectionType::VpcLink {
            ConnectionType::Internet
        } else {
            ConnectionType::VpcLink
        }),
        V::ConnectionId(s) => V::ConnectionId(other(&s)),
        V::CredentialsArn(s) => V::CredentialsArn(other(&s)),
        V::Description(s) => V::Description(other(&s)),
        V::PayloadFormatVersion(p) => V::PayloadFormatVersion(if p == PayloadFormatVersion::V1 {
            PayloadFormatVersion::V2
        } else {
            PayloadFormatVersion::V1
        }),
        V::TimeoutInMillis(t) => V::TimeoutInMillis(if t == 1000 { 2000 } else { 1000 }),
        V::RequestParameters(mut m) => {
            m.insert("extra key".into(), "x".into());
            V::RequestParameters(m)
        }
        V::RequestTemplates(mut m) => {
            m.insert("extra key".into(), "x".into());
            V::RequestTemplates(m)
        }
        V::ResponseParameters(mut m) => {
            m.insert("600".into(), BTreeMap::from([("k".into(), "v".into())]));
            V::ResponseParameters(m)
        }
        V::TemplateSelectionExpression(s) => V::TemplateSelectionExpression(other(&s)),
        V::ContentHandlingStrategy(c) => {
            V::ContentHandlingStrategy(if c == ContentHandlingStrategy::ConvertToText {
                ContentHandlingStrategy::ConvertToBinary
            } else {
                ContentHandlingStrategy::ConvertToText
            })
        }
        V::PassthroughBehavior(p) => V::PassthroughBehavior(if p == PassthroughBehavior::Never {
            PassthroughBehavior::WhenNoTemplates
        } else {
            PassthroughBehavior::Never
        }),
        V::TlsConfig(t) => V::TlsConfig(TlsConfig {
            server_name_to_verify: Some(other(t.server_name_to_verify.as_deref().unwrap_or("h"))),
        }),
    };
    assert_eq!(w.field(), f);
    w
}

proptest! {
    /// A field the spec sets drifts exactly when AWS holds another value for it, and the update sends it.
    #[test]
    fn a_set_field_drifts_when_aws_holds_another_value(
        desired in arbitrary_fields(),
        pick_field in 0..Field::ALL.len(),
        ws in any::<bool>(),
    ) {
        let protocol = if ws { Protocol::WebSocket } else { Protocol::Http };
        let f = Field::ALL[pick_field];
        let mut desired = desired;
        // A value that AWS keeps as sent (non-empty maps and a TLS host name; see normalize_observed).
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let v = loop {
            let v = value_of(f).new_tree(&mut runner).unwrap().current();
            let kept = match &v {
                FieldValue::RequestParameters(m) | FieldValue::RequestTemplates(m) => !m.is_empty(),
                FieldValue::ResponseParameters(m) => m.values().any(|r| !r.is_empty()),
                FieldValue::TlsConfig(t) => t.server_name_to_verify.is_some(),
                _ => true,
            };
            if kept { break v; }
        };
        desired.set(v.clone());
        let applied = desired.set_field_names();
        prop_assert!(drifted_fields(&desired, &desired, &applied, protocol).is_empty());
        let mut observed = desired.clone();
        observed.set(another(f, &v));
        prop_assert_eq!(drifted_fields(&desired, &observed, &applied, protocol), vec![f.name()]);
        let body = update_request(&desired, &observed, &applied, protocol);
        if f.rule().removal != Removal::Tombstones {
            prop_assert_eq!(body.get(f), Some(v));
        }
    }
}

/// Removing a field the operator set does what its row says, and once AWS holds that, nothing drifts.
#[test]
fn removing_a_field_follows_its_removal_rule() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for protocol in [Protocol::Http, Protocol::WebSocket] {
        for &f in Field::ALL {
            if f == Field::IntegrationType {
                continue; // the spec always sets it
            }
            let desired = IntegrationFields {
                integration_type: Some(Type::HttpProxy),
                ..Default::default()
            };
            let mut held = desired.clone();
            // A value that is not AWS's value when unset.
            let v = loop {
                let v = value_of(f).new_tree(&mut runner).unwrap().current();
                let unset = IntegrationFields::unset(protocol.default_timeout()).get(f);
                let empty = match &v {
                    FieldValue::RequestParameters(m) | FieldValue::RequestTemplates(m) => {
                        m.is_empty()
                    }
                    FieldValue::ResponseParameters(m) => m.values().all(|r| r.is_empty()),
                    FieldValue::TlsConfig(t) => t.server_name_to_verify.is_none(),
                    _ => false,
                };
                if Some(&v) != unset.as_ref() && !empty {
                    break v;
                }
            };
            held.set(v);
            let applied = vec![f.name().to_string()];
            let drift = drifted_fields(&desired, &held, &applied, protocol);
            let body = update_request(&desired, &held, &applied, protocol);
            match f.rule().removal {
                Removal::Kept => {
                    assert!(drift.is_empty(), "{f}: kept, yet drifts");
                    assert_eq!(body.get(f), None, "{f}: kept, yet sent");
                }
                Removal::Reset => {
                    assert_eq!(drift, vec![f.name()]);
                    let reset = IntegrationFields::unset(protocol.default_timeout()).get(f);
                    assert_eq!(body.get(f), reset, "{f}");
                    let mut after = held.clone();
                    after.set(reset.unwrap());
                    assert!(
                        drifted_fields(&desired, &after, &applied, protocol).is_empty(),
                        "{f}"
                    );
                }
                Removal::Tombstones => {
                    assert_eq!(drift, vec![f.name()]);
                    let sent = body.get(f).unwrap();
                    let tombstones_only = match sent {
                        FieldValue::RequestParameters(m) | FieldValue::RequestTemplates(m) => {
                            !m.is_empty() && m.values().all(String::is_empty)
                        }
                        FieldValue::ResponseParameters(m) => {
                            !m.is_empty() && m.values().all(BTreeMap::is_empty)
                        }
                        other => panic!("{f} is not a map: {other:?}"),
                    };
                    assert!(tombstones_only, "{f}: {body:?}");
                    let mut after = held.clone();
                    after.clear(f);
                    assert!(
                        drifted_fields(&desired, &after, &applied, protocol).is_empty(),
                        "{f}"
                    );
                }
            }
            // A field the operator never set is left alone, whatever AWS holds.
            assert!(
                drifted_fields(&desired, &held, &[], protocol).is_empty(),
                "{f}"
            );
        }
    }
}
