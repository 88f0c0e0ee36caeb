//! What the spec asks API Gateway to hold, whether what it holds differs, and exactly what to send in an
//! UpdateIntegration. Each AWS rule we rely on but AWS does not document (map
//! removal tombstones, full maps for subtypes, field resets) is one small named function here.

pub use super::fields::{Field, IntegrationFields};
use super::fields::{Removal, ResponseMap, StringMap};
use crate::api::ConnectionType;
use std::collections::BTreeMap;

/// An integration as API Gateway reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedIntegration {
    pub integration_id: String,
    pub fields: IntegrationFields,
    pub api_gateway_managed: bool,
    pub integration_response_selection_expression: Option<String>,
    /// Values AWS holds that the operator's types have no variant for (API Gateway added them since).
    /// Their fields are unset in `fields`: such a value is never read as something it is not.
    pub unknown_values: Vec<UnknownValue>,
}

/// A value of `field` that AWS reported and this operator does not know, exactly as AWS spelt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    pub field: Field,
    pub value: String,
}

/// The kind of API an integration belongs to (from GetApi; it never changes for an API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http,
    WebSocket,
}

impl Protocol {
    /// API Gateway's timeout when none is set.
    pub fn default_timeout(self) -> i32 {
        match self {
            Protocol::Http => 30000,
            Protocol::WebSocket => 29000,
        }
    }
}

/// AWS's answer with its defaults and no-op leftovers folded away, so that an unset spec field and
/// AWS's default compare equal. Dropped: `""` request values and `{}` response entries (what a removal
/// leaves behind when maps are replaced rather than merged), and empty maps.
pub fn normalize_observed(observed: &IntegrationFields) -> IntegrationFields {
    let mut o = observed.clone();
    // Every field named (no `..`): a new one does not compile until it says how AWS reports it unset.
    let IntegrationFields {
        // Enums and numbers: AWS reports them as set or not at all.
        integration_type: _,
        integration_method: _,
        integration_subtype: _,
        connection_type: _,
        payload_format_version: _,
        timeout_in_millis: _,
        content_handling_strategy: _,
        passthrough_behavior: _,
        // Strings: "" is how a removed one reads back.
        integration_uri,
        connection_id,
        credentials_arn,
        description,
        template_selection_expression,
        // Maps: tombstones and empty maps.
        request_parameters,
        request_templates,
        response_parameters,
        // An empty TLS object.
        tls_config,
    } = &mut o;
    for s in [
        integration_uri,
        connection_id,
        credentials_arn,
        description,
        template_selection_expression,
    ] {
        if s.as_deref() == Some("") {
            *s = None;
        }
    }
    for m in [request_parameters, request_templates] {
        if let Some(map) = m.as_mut() {
            map.retain(|_, v| !v.is_empty());
        }
        if m.as_ref().is_some_and(BTreeMap::is_empty) {
            *m = None;
        }
    }
    if let Some(map) = response_parameters.as_mut() {
        map.retain(|_, v| !v.is_empty());
    }
    if response_parameters.as_ref().is_some_and(BTreeMap::is_empty) {
        *response_parameters = None;
    }
    if tls_config
        .as_ref()
        .is_some_and(|t| t.server_name_to_verify.as_deref().is_none_or(str::is_empty))
    {
        *tls_config = None;
    }
    o
}

/// Is the observed (normalized) value of a field the one API Gateway has when the field is unset?
fn at_default(field: Field, o: &IntegrationFields, protocol: Protocol) -> bool {
    match field.rule().removal {
        // AWS has no way to clear it once set: leaving it is the only possible outcome.
        Removal::Kept => true,
        Removal::Reset => o.get(field).is_none_or(|held| {
            IntegrationFields::unset(protocol.default_timeout()).get(field) == Some(held)
        }),
        Removal::Tombstones => !o.is_set(field),
    }
}

/// Is the observed value what the desired value asks for? (Only called for fields the spec sets.)
fn field_matches(
    field: Field,
    d: &IntegrationFields,
    o: &IntegrationFields,
    protocol: Protocol,
) -> bool {
    match field {
        Field::IntegrationType => d.integration_type == o.integration_type,
        Field::IntegrationUri => d.integration_uri == o.integration_uri,
        Field::IntegrationMethod => d.integration_method == o.integration_method,
        Field::IntegrationSubtype => d.integration_subtype == o.integration_subtype,
        Field::ConnectionType => {
            d.connection_type == Some(o.connection_type.unwrap_or(ConnectionType::Internet))
        }
        Field::ConnectionId => d.connection_id == o.connection_id,
        Field::CredentialsArn => d.credentials_arn == o.credentials_arn,
        Field::Description => {
            d.description.as_deref().unwrap_or("") == o.description.as_deref().unwrap_or("")
        }
        Field::PayloadFormatVersion => d.payload_format_version == o.payload_format_version,
        Field::TimeoutInMillis => {
            d.timeout_in_millis == Some(o.timeout_in_millis.unwrap_or(protocol.default_timeout()))
        }
        Field::RequestParameters => non_empty(&d.request_parameters) == o.request_parameters,
        Field::RequestTemplates => non_empty(&d.request_templates) == o.request_templates,
        Field::ResponseParameters => {
            let d = d.response_parameters.as_ref().map(|m| {
                m.iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<ResponseMap>()
            });
            d.filter(|m| !m.is_empty()) == o.response_parameters
        }
        Field::TemplateSelectionExpression => {
            d.template_selection_expression == o.template_selection_expression
        }
        Field::ContentHandlingStrategy => {
            d.content_handling_strategy == o.content_handling_strategy
        }
        Field::PassthroughBehavior => d.passthrough_behavior == o.passthrough_behavior,
        Field::TlsConfig => {
            let d = d
                .tls_config
                .clone()
                .filter(|t| t.server_name_to_verify.is_some());
            d == o.tls_config
        }
    }
}

/// The fields named in status.appliedFields (a name this version does not know is not one of ours).
fn applied(previously_applied: &[String]) -> Vec<Field> {
    previously_applied
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn non_empty<V: Clone>(m: &Option<BTreeMap<String, V>>) -> Option<BTreeMap<String, V>> {
    m.clone().filter(|m| !m.is_empty())
}

/// Fields where AWS differs from the spec: every field the spec sets, plus fields the operator set before
/// (`previously_applied`) that the spec no longer sets and AWS still holds. Empty means in sync.
pub fn drifted_fields(
    desired: &IntegrationFields,
    observed: &IntegrationFields,
    previously_applied: &[String],
    protocol: Protocol,
) -> Vec<&'static str> {
    let o = normalize_observed(observed);
    let applied = applied(previously_applied);
    Field::ALL
        .iter()
        .copied()
        .filter(|&f| {
            if desired.is_set(f) {
                !field_matches(f, desired, &o, protocol)
            } else {
                applied.contains(&f) && !at_default(f, &o, protocol)
            }
        })
        .map(Field::name)
        .collect()
}

/// The body of the UpdateIntegration that makes AWS hold `desired`: every desired field, resets for
/// removed ones, tombstones for removed map entries, and always integrationType (and the subtype) so AWS
/// validates the integration as the kind it is.
pub fn update_request(
    desired: &IntegrationFields,
    observed: &IntegrationFields,
    previously_applied: &[String],
    protocol: Protocol,
) -> IntegrationFields {
    let o = normalize_observed(observed);
    let mut u = desired.clone();
    u.request_parameters = request_parameters_update(desired, &o);
    u.request_templates =
        string_map_with_removals(&desired.request_templates, &o.request_templates);
    u.response_parameters =
        response_parameters_with_removals(&desired.response_parameters, &o.response_parameters);
    let cleared = IntegrationFields::unset(protocol.default_timeout());
    for field in applied(previously_applied) {
        let removed = !desired.is_set(field);
        if removed && field.rule().removal == Removal::Reset && !at_default(field, &o, protocol) {
            // A field the user removed goes back to what AWS has when it was never set (maps were
            // handled by the removal tombstones above; Kept fields cannot be cleared).
            if let Some(value) = cleared.get(field) {
                u.set(value);
            }
        }
    }
    u
}

/// requestParameters: an integration with a subtype takes the full map on every update and rejects `""`;
/// otherwise each key AWS holds that the spec dropped is sent as `""`, which removes it.
fn request_parameters_update(
    desired: &IntegrationFields,
    o: &IntegrationFields,
) -> Option<StringMap> {
    if desired.integration_subtype.is_some() {
        return desired.request_parameters.clone();
    }
    string_map_with_removals(&desired.request_parameters, &o.request_parameters)
}

/// The desired map plus `""` for every key only AWS still has (AWS merges maps on update).
fn string_map_with_removals(
    desired: &Option<StringMap>,
    observed: &Option<StringMap>,
) -> Option<StringMap> {
    let mut out = desired.clone().unwrap_or_default();
    for k in observed.iter().flat_map(|m| m.keys()) {
        out.entry(k.clone()).or_default();
    }
    (desired.is_some() || !out.is_empty()).then_some(out)
}

/// The desired map plus `{}` for every status code only AWS still has.
fn response_parameters_with_removals(
    desired: &Option<ResponseMap>,
    observed: &Option<ResponseMap>,
) -> Option<ResponseMap> {
    let mut out = desired.clone().unwrap_or_default();
    for k in observed.iter().flat_map(|m| m.keys()) {
        out.entry(k.clone()).or_default();
    }
    (desired.is_some() || !out.is_empty()).then_some(out)
}

/// For crash recovery: could `observed` be the integration an interrupted create made for `desired`?
pub fn is_same_integration(
    desired: &IntegrationFields,
    observed: &ObservedIntegration,
    protocol: Protocol,
) -> bool {
    // A value AWS holds that the operator does not know is never what a spec asked for.
    let unknown_where_set = observed
        .unknown_values
        .iter()
        .any(|u| desired.is_set(u.field));
    !observed.api_gateway_managed
        && !unknown_where_set
        && drifted_fields(desired, &observed.fields, &[], protocol).is_empty()
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
