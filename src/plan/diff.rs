//! What the spec asks API Gateway to hold, whether what it holds differs, and exactly what to send in an
//! UpdateIntegration. Each AWS rule we rely on but AWS does not document (map
//! removal tombstones, full maps for subtypes, field resets) is one small named function here.

use crate::api::{ApiIntegrationSpec, TlsConfig};
use std::collections::BTreeMap;

/// The integration's settable fields in API Gateway's own spelling (enums as their wire strings). Used for
/// the desired state (from the spec), the observed state (from AWS) and the body of an update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationFields {
    pub integration_type: Option<String>,
    pub integration_uri: Option<String>,
    pub integration_method: Option<String>,
    pub integration_subtype: Option<String>,
    pub connection_type: Option<String>,
    pub connection_id: Option<String>,
    pub credentials_arn: Option<String>,
    pub description: Option<String>,
    pub payload_format_version: Option<String>,
    pub timeout_in_millis: Option<i32>,
    pub request_parameters: Option<BTreeMap<String, String>>,
    pub request_templates: Option<BTreeMap<String, String>>,
    pub response_parameters: Option<BTreeMap<String, BTreeMap<String, String>>>,
    pub template_selection_expression: Option<String>,
    pub content_handling_strategy: Option<String>,
    pub passthrough_behavior: Option<String>,
    pub tls_config: Option<TlsConfig>,
}

/// An integration as API Gateway reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedIntegration {
    pub integration_id: String,
    pub fields: IntegrationFields,
    pub api_gateway_managed: bool,
    pub integration_response_selection_expression: Option<String>,
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

/// Spec field names (camelCase, as in the CRD) of the fields the operator manages in AWS.
pub const FIELD_NAMES: &[&str] = &[
    "integrationType",
    "integrationUri",
    "integrationMethod",
    "integrationSubtype",
    "connectionType",
    "connectionId",
    "credentialsArn",
    "description",
    "payloadFormatVersion",
    "timeoutInMillis",
    "requestParameters",
    "requestTemplates",
    "responseParameters",
    "templateSelectionExpression",
    "contentHandlingStrategy",
    "passthroughBehavior",
    "tlsConfig",
];

impl IntegrationFields {
    /// What the spec asks for; unset spec fields stay unset.
    pub fn from_spec(spec: &ApiIntegrationSpec) -> Self {
        IntegrationFields {
            integration_type: Some(spec.integration_type.as_str().to_string()),
            integration_uri: spec.integration_uri.clone(),
            integration_method: spec.integration_method.map(|m| m.as_str().to_string()),
            integration_subtype: spec.integration_subtype.map(|s| s.as_str().to_string()),
            connection_type: spec.connection_type.map(|c| c.as_str().to_string()),
            connection_id: spec.connection_id.clone(),
            credentials_arn: spec.credentials_arn.clone(),
            description: spec.description.clone(),
            payload_format_version: spec.payload_format_version.map(|p| p.as_str().to_string()),
            timeout_in_millis: spec.timeout_in_millis,
            request_parameters: spec.request_parameters.clone(),
            request_templates: spec.request_templates.clone(),
            response_parameters: spec.response_parameters.clone(),
            template_selection_expression: spec.template_selection_expression.clone(),
            content_handling_strategy: spec
                .content_handling_strategy
                .map(|c| c.as_str().to_string()),
            passthrough_behavior: spec.passthrough_behavior.map(|p| p.as_str().to_string()),
            tls_config: spec.tls_config.clone(),
        }
    }

    /// Names of the fields that are set, for status.appliedFields.
    pub fn set_field_names(&self) -> Vec<String> {
        FIELD_NAMES
            .iter()
            .filter(|f| self.is_set(f))
            .map(|f| f.to_string())
            .collect()
    }

    fn is_set(&self, field: &str) -> bool {
        match field {
            "integrationType" => self.integration_type.is_some(),
            "integrationUri" => self.integration_uri.is_some(),
            "integrationMethod" => self.integration_method.is_some(),
            "integrationSubtype" => self.integration_subtype.is_some(),
            "connectionType" => self.connection_type.is_some(),
            "connectionId" => self.connection_id.is_some(),
            "credentialsArn" => self.credentials_arn.is_some(),
            "description" => self.description.is_some(),
            "payloadFormatVersion" => self.payload_format_version.is_some(),
            "timeoutInMillis" => self.timeout_in_millis.is_some(),
            "requestParameters" => self.request_parameters.is_some(),
            "requestTemplates" => self.request_templates.is_some(),
            "responseParameters" => self.response_parameters.is_some(),
            "templateSelectionExpression" => self.template_selection_expression.is_some(),
            "contentHandlingStrategy" => self.content_handling_strategy.is_some(),
            "passthroughBehavior" => self.passthrough_behavior.is_some(),
            "tlsConfig" => self.tls_config.is_some(),
            _ => false,
        }
    }
}

/// AWS's answer with its defaults and no-op leftovers folded away, so that an unset spec field and
/// AWS's default compare equal. Dropped: `""` request values and `{}` response entries (what a removal
/// leaves behind when maps are replaced rather than merged), and empty maps.
pub fn normalize_observed(observed: &IntegrationFields) -> IntegrationFields {
    let mut o = observed.clone();
    if let Some(m) = o.request_parameters.as_mut() {
        m.retain(|_, v| !v.is_empty());
    }
    if let Some(m) = o.request_templates.as_mut() {
        m.retain(|_, v| !v.is_empty());
    }
    if let Some(m) = o.response_parameters.as_mut() {
        m.retain(|_, v| !v.is_empty());
    }
    o.request_parameters = o.request_parameters.filter(|m| !m.is_empty());
    o.request_templates = o.request_templates.filter(|m| !m.is_empty());
    o.response_parameters = o.response_parameters.filter(|m| !m.is_empty());
    o.tls_config = o.tls_config.filter(|t| {
        t.server_name_to_verify
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    });
    for s in [
        &mut o.integration_uri,
        &mut o.connection_id,
        &mut o.credentials_arn,
        &mut o.description,
        &mut o.template_selection_expression,
    ] {
        if s.as_deref() == Some("") {
            *s = None;
        }
    }
    o.integration_method = o.integration_method.map(|m| m.to_ascii_uppercase());
    o
}

/// Is the observed (normalized) value of a field the one API Gateway has when the field is unset?
fn at_default(field: &str, o: &IntegrationFields, protocol: Protocol) -> bool {
    match field {
        "connectionType" => o.connection_type.as_deref().is_none_or(|c| c == "INTERNET"),
        "timeoutInMillis" => o
            .timeout_in_millis
            .is_none_or(|t| t == protocol.default_timeout()),
        "passthroughBehavior" => o
            .passthrough_behavior
            .as_deref()
            .is_none_or(|p| p == "WHEN_NO_MATCH"),
        // Fields AWS has no way to clear once set: leaving them is the only possible outcome.
        "integrationMethod"
        | "integrationSubtype"
        | "payloadFormatVersion"
        | "contentHandlingStrategy"
        | "integrationType" => true,
        other => !o.is_set(other),
    }
}

/// Is the observed value what the desired value asks for? (Only called for fields the spec sets.)
fn field_matches(
    field: &str,
    d: &IntegrationFields,
    o: &IntegrationFields,
    protocol: Protocol,
) -> bool {
    match field {
        "integrationType" => d.integration_type == o.integration_type,
        "integrationUri" => d.integration_uri == o.integration_uri,
        "integrationMethod" => {
            d.integration_method.as_deref().map(str::to_ascii_uppercase) == o.integration_method
        }
        "integrationSubtype" => d.integration_subtype == o.integration_subtype,
        "connectionType" => {
            d.connection_type.as_deref() == Some(o.connection_type.as_deref().unwrap_or("INTERNET"))
        }
        "connectionId" => d.connection_id == o.connection_id,
        "credentialsArn" => d.credentials_arn == o.credentials_arn,
        "description" => {
            d.description.as_deref().unwrap_or("") == o.description.as_deref().unwrap_or("")
        }
        "payloadFormatVersion" => d.payload_format_version == o.payload_format_version,
        "timeoutInMillis" => {
            d.timeout_in_millis == Some(o.timeout_in_millis.unwrap_or(protocol.default_timeout()))
        }
        "requestParameters" => non_empty(&d.request_parameters) == o.request_parameters,
        "requestTemplates" => non_empty(&d.request_templates) == o.request_templates,
        "responseParameters" => {
            let d = d.response_parameters.as_ref().map(|m| {
                m.iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            });
            d.filter(|m| !m.is_empty()) == o.response_parameters
        }
        "templateSelectionExpression" => {
            d.template_selection_expression == o.template_selection_expression
        }
        "contentHandlingStrategy" => d.content_handling_strategy == o.content_handling_strategy,
        "passthroughBehavior" => d.passthrough_behavior == o.passthrough_behavior,
        "tlsConfig" => {
            let d = d
                .tls_config
                .clone()
                .filter(|t| t.server_name_to_verify.is_some());
            d == o.tls_config
        }
        _ => true,
    }
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
    FIELD_NAMES
        .iter()
        .copied()
        .filter(|f| {
            if desired.is_set(f) {
                !field_matches(f, desired, &o, protocol)
            } else {
                previously_applied.iter().any(|p| p == f) && !at_default(f, &o, protocol)
            }
        })
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
    for field in FIELD_NAMES.iter().copied() {
        let removed = !desired.is_set(field) && previously_applied.iter().any(|p| p == field);
        if removed && !at_default(field, &o, protocol) {
            reset_removed_field(&mut u, field, protocol);
        }
    }
    u
}

/// requestParameters: an integration with a subtype takes the full map on every update and rejects `""`;
/// otherwise each key AWS holds that the spec dropped is sent as `""`, which removes it.
fn request_parameters_update(
    desired: &IntegrationFields,
    o: &IntegrationFields,
) -> Option<BTreeMap<String, String>> {
    if desired.integration_subtype.is_some() {
        return desired.request_parameters.clone();
    }
    string_map_with_removals(&desired.request_parameters, &o.request_parameters)
}

/// The desired map plus `""` for every key only AWS still has (AWS merges maps on update).
fn string_map_with_removals(
    desired: &Option<BTreeMap<String, String>>,
    observed: &Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let mut out = desired.clone().unwrap_or_default();
    for k in observed.iter().flat_map(|m| m.keys()) {
        out.entry(k.clone()).or_default();
    }
    (desired.is_some() || !out.is_empty()).then_some(out)
}

/// The desired map plus `{}` for every status code only AWS still has.
fn response_parameters_with_removals(
    desired: &Option<BTreeMap<String, BTreeMap<String, String>>>,
    observed: &Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = desired.clone().unwrap_or_default();
    for k in observed.iter().flat_map(|m| m.keys()) {
        out.entry(k.clone()).or_default();
    }
    (desired.is_some() || !out.is_empty()).then_some(out)
}

/// A field the user removed goes back to what AWS has when it was never set: its default where there is
/// one, `""` for strings, an empty TLS config. Maps were handled by the removal tombstones above.
fn reset_removed_field(u: &mut IntegrationFields, field: &str, protocol: Protocol) {
    match field {
        "timeoutInMillis" => u.timeout_in_millis = Some(protocol.default_timeout()),
        "connectionType" => u.connection_type = Some("INTERNET".into()),
        "passthroughBehavior" => u.passthrough_behavior = Some("WHEN_NO_MATCH".into()),
        "integrationUri" => u.integration_uri = Some(String::new()),
        "connectionId" => u.connection_id = Some(String::new()),
        "credentialsArn" => u.credentials_arn = Some(String::new()),
        "description" => u.description = Some(String::new()),
        "templateSelectionExpression" => u.template_selection_expression = Some(String::new()),
        "tlsConfig" => u.tls_config = Some(TlsConfig::default()),
        _ => {}
    }
}

/// For crash recovery: could `observed` be the integration an interrupted create made for `desired`?
pub fn is_same_integration(
    desired: &IntegrationFields,
    observed: &ObservedIntegration,
    protocol: Protocol,
) -> bool {
    !observed.api_gateway_managed
        && drifted_fields(desired, &observed.fields, &[], protocol).is_empty()
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
