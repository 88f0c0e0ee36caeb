//! Conversions between [`IntegrationFields`] and the SDK's request and response types, and the check
//! that an answer holds nothing this operator cannot understand.

use super::error::AwsError;
use crate::api::{
    ConnectionType, ContentHandlingStrategy, IntegrationMethod, IntegrationSubtype,
    IntegrationType, PassthroughBehavior, PayloadFormatVersion, TlsConfig,
};
use crate::plan::{Field, IntegrationFields, ObservedIntegration, UnknownValue};
use aws_sdk_apigatewayv2::operation::create_integration::builders::CreateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::operation::update_integration::builders::UpdateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::types as sdk;
use std::collections::{BTreeMap, HashMap};

/// Refuses an integration holding a value this operator does not know: it cannot be compared with the
/// spec, and an update would overwrite what someone chose on purpose.
pub fn refuse_unknown_values(i: &ObservedIntegration) -> Result<(), AwsError> {
    match unknown_value(i) {
        None => Ok(()),
        Some(UnknownValue { field, value }) => Err(AwsError::Unreadable(format!(
            "integration {} has {field} {value:?}, which this operator does not know; it is left unchanged",
            i.integration_id
        ))),
    }
}

/// The first value in an integration that this operator does not know (API Gateway added it since).
/// The operator neither compares nor overwrites such an integration.
pub fn unknown_value(i: &ObservedIntegration) -> Option<&UnknownValue> {
    i.unknown_values.first()
}

// ---- the closed sets: the operator's enums to the SDK's and back ----
// To the SDK: exhaustive over the operator's variants. From the SDK: a value the operator has no variant
// for (the SDK's `Unknown`, or one it knows and the operator does not) comes back as AWS spelt it.

fn integration_type_to_sdk(t: IntegrationType) -> sdk::IntegrationType {
    match t {
        IntegrationType::Aws => sdk::IntegrationType::Aws,
        IntegrationType::AwsProxy => sdk::IntegrationType::AwsProxy,
        IntegrationType::Http => sdk::IntegrationType::Http,
        IntegrationType::HttpProxy => sdk::IntegrationType::HttpProxy,
        IntegrationType::Mock => sdk::IntegrationType::Mock,
    }
}

pub(super) fn integration_type_from_sdk(t: &sdk::IntegrationType) -> Result<IntegrationType, &str> {
    match t {
        sdk::IntegrationType::Aws => Ok(IntegrationType::Aws),
        sdk::IntegrationType::AwsProxy => Ok(IntegrationType::AwsProxy),
        sdk::IntegrationType::Http => Ok(IntegrationType::Http),
        sdk::IntegrationType::HttpProxy => Ok(IntegrationType::HttpProxy),
        sdk::IntegrationType::Mock => Ok(IntegrationType::Mock),
        other => Err(other.as_str()),
    }
}

fn connection_type_to_sdk(c: ConnectionType) -> sdk::ConnectionType {
    match c {
        ConnectionType::Internet => sdk::ConnectionType::Internet,
        ConnectionType::VpcLink => sdk::ConnectionType::VpcLink,
    }
}

pub(super) fn connection_type_from_sdk(c: &sdk::ConnectionType) -> Result<ConnectionType, &str> {
    match c {
        sdk::ConnectionType::Internet => Ok(ConnectionType::Internet),
        sdk::ConnectionType::VpcLink => Ok(ConnectionType::VpcLink),
        other => Err(other.as_str()),
    }
}

pub(super) fn content_handling_to_sdk(c: ContentHandlingStrategy) -> sdk::ContentHandlingStrategy {
    match c {
        ContentHandlingStrategy::ConvertToBinary => sdk::ContentHandlingStrategy::ConvertToBinary,
        ContentHandlingStrategy::ConvertToText => sdk::ContentHandlingStrategy::ConvertToText,
    }
}

pub(super) fn content_handling_from_sdk(
    c: &sdk::ContentHandlingStrategy,
) -> Result<ContentHandlingStrategy, &str> {
    match c {
        sdk::ContentHandlingStrategy::ConvertToBinary => {
            Ok(ContentHandlingStrategy::ConvertToBinary)
        }
        sdk::ContentHandlingStrategy::ConvertToText => Ok(ContentHandlingStrategy::ConvertToText),
        other => Err(other.as_str()),
    }
}

fn passthrough_to_sdk(p: PassthroughBehavior) -> sdk::PassthroughBehavior {
    match p {
        PassthroughBehavior::WhenNoMatch => sdk::PassthroughBehavior::WhenNoMatch,
        PassthroughBehavior::Never => sdk::PassthroughBehavior::Never,
        PassthroughBehavior::WhenNoTemplates => sdk::PassthroughBehavior::WhenNoTemplates,
    }
}

pub(super) fn passthrough_from_sdk(
    p: &sdk::PassthroughBehavior,
) -> Result<PassthroughBehavior, &str> {
    match p {
        sdk::PassthroughBehavior::WhenNoMatch => Ok(PassthroughBehavior::WhenNoMatch),
        sdk::PassthroughBehavior::Never => Ok(PassthroughBehavior::Never),
        sdk::PassthroughBehavior::WhenNoTemplates => Ok(PassthroughBehavior::WhenNoTemplates),
        other => Err(other.as_str()),
    }
}

// The SDK has plain strings for these three; API Gateway answers the method in any case.

pub(super) fn method_from_sdk(m: &str) -> Result<IntegrationMethod, &str> {
    m.to_ascii_uppercase().parse().map_err(|_| m)
}

pub(super) fn subtype_from_sdk(s: &str) -> Result<IntegrationSubtype, &str> {
    s.parse().map_err(|_| s)
}

pub(super) fn payload_format_from_sdk(v: &str) -> Result<PayloadFormatVersion, &str> {
    v.parse().map_err(|_| v)
}

/// The value of `field` as read by `from_sdk`: unset when AWS sent none, and also when the operator does
/// not know it, which is then recorded in `unknown` as AWS spelt it.
pub(super) fn known<T>(
    field: Field,
    read: Option<Result<T, &str>>,
    unknown: &mut Vec<UnknownValue>,
) -> Option<T> {
    match read? {
        Ok(v) => Some(v),
        Err(value) => {
            unknown.push(UnknownValue {
                field,
                value: value.to_string(),
            });
            None
        }
    }
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
        use $crate::aws::convert as c;
        use $crate::plan::Field;
        let mut unknown_values = Vec::new();
        let u = &mut unknown_values;
        let fields = IntegrationFields {
            integration_type: c::known(
                Field::IntegrationType,
                o.integration_type().map(c::integration_type_from_sdk),
                u,
            ),
            integration_uri: o.integration_uri().map(str::to_string),
            integration_method: c::known(
                Field::IntegrationMethod,
                o.integration_method().map(c::method_from_sdk),
                u,
            ),
            integration_subtype: c::known(
                Field::IntegrationSubtype,
                o.integration_subtype().map(c::subtype_from_sdk),
                u,
            ),
            connection_type: c::known(
                Field::ConnectionType,
                o.connection_type().map(c::connection_type_from_sdk),
                u,
            ),
            connection_id: o.connection_id().map(str::to_string),
            credentials_arn: o.credentials_arn().map(str::to_string),
            description: o.description().map(str::to_string),
            payload_format_version: c::known(
                Field::PayloadFormatVersion,
                o.payload_format_version().map(c::payload_format_from_sdk),
                u,
            ),
            timeout_in_millis: o.timeout_in_millis(),
            request_parameters: o.request_parameters().map(to_btree),
            request_templates: o.request_templates().map(to_btree),
            response_parameters: o
                .response_parameters()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), to_btree(v))).collect()),
            template_selection_expression: o.template_selection_expression().map(str::to_string),
            content_handling_strategy: c::known(
                Field::ContentHandlingStrategy,
                o.content_handling_strategy()
                    .map(c::content_handling_from_sdk),
                u,
            ),
            passthrough_behavior: c::known(
                Field::PassthroughBehavior,
                o.passthrough_behavior().map(c::passthrough_from_sdk),
                u,
            ),
            tls_config: o.tls_config().map(|t| TlsConfig {
                server_name_to_verify: t.server_name_to_verify().map(str::to_string),
            }),
        };
        ObservedIntegration {
            integration_id,
            api_gateway_managed: o.api_gateway_managed().unwrap_or(false),
            integration_response_selection_expression: o
                .integration_response_selection_expression()
                .map(str::to_string),
            fields,
            unknown_values,
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
fn tls_input(t: &TlsConfig) -> sdk::TlsConfigInput {
    sdk::TlsConfigInput::builder()
        .set_server_name_to_verify(t.server_name_to_verify.clone())
        .build()
}

/// Sets every field of `$fields` on a Create- or UpdateIntegrationInputBuilder. The fields are taken
/// apart without `..`, so a new field does not compile until it is sent.
macro_rules! with_fields {
    ($builder:expr, $f:expr) => {{
        let IntegrationFields {
            integration_type,
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
        }: &IntegrationFields = $f;
        $builder
            .set_integration_type(integration_type.map(integration_type_to_sdk))
            .set_integration_uri(integration_uri.clone())
            .set_integration_method(integration_method.map(|m| m.as_str().to_string()))
            .set_integration_subtype(integration_subtype.map(|s| s.as_str().to_string()))
            .set_connection_type(connection_type.map(connection_type_to_sdk))
            .set_connection_id(connection_id.clone())
            .set_credentials_arn(credentials_arn.clone())
            .set_description(description.clone())
            .set_payload_format_version(payload_format_version.map(|v| v.as_str().to_string()))
            .set_timeout_in_millis(*timeout_in_millis)
            .set_request_parameters(request_parameters.as_ref().map(to_hash))
            .set_request_templates(request_templates.as_ref().map(to_hash))
            .set_response_parameters(
                response_parameters
                    .as_ref()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), to_hash(v))).collect()),
            )
            .set_template_selection_expression(template_selection_expression.clone())
            .set_content_handling_strategy(content_handling_strategy.map(content_handling_to_sdk))
            .set_passthrough_behavior(passthrough_behavior.map(passthrough_to_sdk))
            .set_tls_config(tls_config.as_ref().map(tls_input))
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
#[path = "convert_tests.rs"]
mod tests;
