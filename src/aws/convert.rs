//! Conversions between [`IntegrationFields`] and the SDK's request and response types, and the check
//! that an answer holds nothing this operator cannot understand.

use super::error::AwsError;
use crate::api::TlsConfig;
use crate::plan::{IntegrationFields, ObservedIntegration};
use aws_sdk_apigatewayv2::operation::create_integration::builders::CreateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::operation::update_integration::builders::UpdateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::types::{
    ConnectionType, ContentHandlingStrategy, IntegrationType, PassthroughBehavior, TlsConfigInput,
};
use std::collections::{BTreeMap, HashMap};

/// Refuses an integration holding a value this operator does not know: it cannot be compared with the
/// spec, and an update would overwrite what someone chose on purpose.
pub fn refuse_unknown_values(i: &ObservedIntegration) -> Result<(), AwsError> {
    match unknown_value(i) {
        None => Ok(()),
        Some((field, value)) => Err(AwsError::Unreadable(format!(
            "integration {} has {field} {value:?}, which this operator does not know; it is left unchanged",
            i.integration_id
        ))),
    }
}

/// A value in an integration that this operator's SDK does not know (API Gateway added it since): the
/// field and the value. The operator neither compares nor overwrites such an integration.
pub fn unknown_value(i: &ObservedIntegration) -> Option<(&'static str, String)> {
    let f = &i.fields;
    let checks: [(&'static str, &Option<String>, &[&str]); 4] = [
        (
            "integrationType",
            &f.integration_type,
            IntegrationType::values(),
        ),
        (
            "connectionType",
            &f.connection_type,
            ConnectionType::values(),
        ),
        (
            "contentHandlingStrategy",
            &f.content_handling_strategy,
            ContentHandlingStrategy::values(),
        ),
        (
            "passthroughBehavior",
            &f.passthrough_behavior,
            PassthroughBehavior::values(),
        ),
    ];
    checks.into_iter().find_map(|(name, value, known)| {
        let v = value.as_deref()?;
        (!known.contains(&v)).then(|| (name, v.to_string()))
    })
}

/// Reads an integration out of any SDK type that has the integration getters (GetIntegration,
/// CreateIntegration and UpdateIntegration outputs, and GetIntegrations items share them).
/// An answer without the integration's ID is refused (never recorded as an empty ID).
macro_rules! observed {
    ($o:expr, $operation:expr) => {{
        let o = &$o;
        let integration_id = match o.integration_id() {
            Some(id) if !id.trim().is_empty() => id.to_string(),
            _ => {
                return Err(AwsError::Unreadable(format!(
                    "the {} answer has no IntegrationId",
                    $operation
                )));
            }
        };
        ObservedIntegration {
            integration_id,
            api_gateway_managed: o.api_gateway_managed().unwrap_or(false),
            integration_response_selection_expression: o
                .integration_response_selection_expression()
                .map(str::to_string),
            fields: IntegrationFields {
                integration_type: o.integration_type().map(|v| v.as_str().to_string()),
                integration_uri: o.integration_uri().map(str::to_string),
                integration_method: o.integration_method().map(str::to_string),
                integration_subtype: o.integration_subtype().map(str::to_string),
                connection_type: o.connection_type().map(|v| v.as_str().to_string()),
                connection_id: o.connection_id().map(str::to_string),
                credentials_arn: o.credentials_arn().map(str::to_string),
                description: o.description().map(str::to_string),
                payload_format_version: o.payload_format_version().map(str::to_string),
                timeout_in_millis: o.timeout_in_millis(),
                request_parameters: o.request_parameters().map(to_btree),
                request_templates: o.request_templates().map(to_btree),
                response_parameters: o
                    .response_parameters()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), to_btree(v))).collect()),
                template_selection_expression: o
                    .template_selection_expression()
                    .map(str::to_string),
                content_handling_strategy: o
                    .content_handling_strategy()
                    .map(|v| v.as_str().to_string()),
                passthrough_behavior: o.passthrough_behavior().map(|v| v.as_str().to_string()),
                tls_config: o.tls_config().map(|t| TlsConfig {
                    server_name_to_verify: t.server_name_to_verify().map(str::to_string),
                }),
            },
        }
    }};
}
pub(crate) use observed;

pub(super) fn to_btree(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
fn tls_input(t: &TlsConfig) -> TlsConfigInput {
    TlsConfigInput::builder()
        .set_server_name_to_verify(t.server_name_to_verify.clone())
        .build()
}

/// Sets every field of `$fields` on a Create- or UpdateIntegrationInputBuilder.
macro_rules! with_fields {
    ($builder:expr, $f:expr) => {{
        let f: &IntegrationFields = $f;
        $builder
            .set_integration_type(f.integration_type.as_deref().map(IntegrationType::from))
            .set_integration_uri(f.integration_uri.clone())
            .set_integration_method(f.integration_method.clone())
            .set_integration_subtype(f.integration_subtype.clone())
            .set_connection_type(f.connection_type.as_deref().map(ConnectionType::from))
            .set_connection_id(f.connection_id.clone())
            .set_credentials_arn(f.credentials_arn.clone())
            .set_description(f.description.clone())
            .set_payload_format_version(f.payload_format_version.clone())
            .set_timeout_in_millis(f.timeout_in_millis)
            .set_request_parameters(f.request_parameters.as_ref().map(to_hash))
            .set_request_templates(f.request_templates.as_ref().map(to_hash))
            .set_response_parameters(
                f.response_parameters
                    .as_ref()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), to_hash(v))).collect()),
            )
            .set_template_selection_expression(f.template_selection_expression.clone())
            .set_content_handling_strategy(
                f.content_handling_strategy
                    .as_deref()
                    .map(ContentHandlingStrategy::from),
            )
            .set_passthrough_behavior(
                f.passthrough_behavior
                    .as_deref()
                    .map(PassthroughBehavior::from),
            )
            .set_tls_config(f.tls_config.as_ref().map(tls_input))
    }};
}

/// The CreateIntegration request for `fields` on API `api_id`.
pub fn create_input(api_id: &str, fields: &IntegrationFields) -> CreateIntegrationInputBuilder {
    with_fields!(
        CreateIntegrationInputBuilder::default().api_id(api_id),
        fields
    )
}

/// The UpdateIntegration request that sends `fields` (already including resets and tombstones).
pub fn update_input(
    api_id: &str,
    integration_id: &str,
    fields: &IntegrationFields,
) -> UpdateIntegrationInputBuilder {
    with_fields!(
        UpdateIntegrationInputBuilder::default()
            .api_id(api_id)
            .integration_id(integration_id),
        fields
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(integration_type: &str, passthrough: Option<&str>) -> ObservedIntegration {
        ObservedIntegration {
            integration_id: "abc123".into(),
            fields: IntegrationFields {
                integration_type: Some(integration_type.into()),
                passthrough_behavior: passthrough.map(str::to_string),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn values_the_sdk_does_not_know_are_named_and_refused() {
        assert_eq!(unknown_value(&integration("HTTP_PROXY", None)), None);
        assert_eq!(
            unknown_value(&integration("AWS_PROXY", Some("WHEN_NO_MATCH"))),
            None
        );
        assert_eq!(
            unknown_value(&integration("SOMETHING_NEW", None)),
            Some(("integrationType", "SOMETHING_NEW".to_string()))
        );
        assert_eq!(
            unknown_value(&integration("HTTP", Some("SOMETIMES"))),
            Some(("passthroughBehavior", "SOMETIMES".to_string()))
        );
        let refused = refuse_unknown_values(&integration("SOMETHING_NEW", None)).unwrap_err();
        assert_eq!(refused.outcome(), "unreadable");
        let text = refused.to_string();
        assert!(
            text.contains("abc123") && text.contains("\"SOMETHING_NEW\""),
            "{text}"
        );
    }
}
