//! The spec's CEL rules (cross-field checks the API server runs at `kubectl apply` time, each with a message
//! naming the field and what is allowed) and the schema pieces that carry them into the CRD.

use super::IntegrationSubtype;

/// One CEL rule on the spec: the expression, the message shown on failure (it names the field and says
/// what is allowed), the field it points at, and the Kubernetes reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecRule {
    pub rule: String,
    pub message: String,
    pub field: &'static str,
    pub reason: &'static str,
}

const WEBSOCKET_ONLY: &[&str] = &[
    "requestTemplates",
    "templateSelectionExpression",
    "contentHandlingStrategy",
    "passthroughBehavior",
];
const HTTP_ONLY: &[&str] = &["responseParameters", "tlsConfig", "integrationSubtype"];

fn any_set(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("has(self.{f})"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The cross-field rules of the spec, in the order the API server reports them.
pub fn spec_rules() -> Vec<SpecRule> {
    [
        api_and_region_rules(),
        backend_rules(),
        connection_rules(),
        protocol_rules(),
        value_rules(),
        integration_response_rules(),
        subtype_parameter_rules(),
    ]
    .concat()
}

/// The Kubernetes reasons the rules report.
const INVALID: &str = "FieldValueInvalid";
const REQUIRED: &str = "FieldValueRequired";
const FORBIDDEN: &str = "FieldValueForbidden";

/// apiRef.protocolType says which kind of API the spec is for, before anything is looked up in AWS.
fn api_ref_is(protocol: &str) -> String {
    format!(
        "(has(self.apiRef) && has(self.apiRef.protocolType) && self.apiRef.protocolType == '{protocol}')"
    )
}

/// Which API and region: exactly one of apiId and apiRef, and neither they nor the region change after
/// creation.
fn api_and_region_rules() -> Vec<SpecRule> {
    vec![
        SpecRule {
            rule: "has(self.apiId) != has(self.apiRef)".into(),
            message: "spec.apiId or spec.apiRef is required: set exactly one of them".into(),
            field: "",
            reason: REQUIRED,
        },
        SpecRule {
            rule: "!has(oldSelf.apiId) || !has(self.apiId) || self.apiId == oldSelf.apiId".into(),
            message: "spec.apiId is immutable: create a new ApiIntegration to use another API".into(),
            field: ".apiId",
            reason: INVALID,
        },
        SpecRule {
            rule: "!has(oldSelf.apiRef) || !has(self.apiRef) || self.apiRef == oldSelf.apiRef".into(),
            message: "spec.apiRef is immutable: create a new ApiIntegration to use another API".into(),
            field: ".apiRef",
            reason: INVALID,
        },
        SpecRule {
            rule: "has(self.apiId) == has(oldSelf.apiId) && has(self.apiRef) == has(oldSelf.apiRef)".into(),
            message: "spec cannot switch between apiId and apiRef after creation: create a new ApiIntegration".into(),
            field: "",
            reason: INVALID,
        },
        SpecRule {
            rule: "has(self.region) == has(oldSelf.region) && (!has(self.region) || self.region == oldSelf.region)".into(),
            message: "spec.region is immutable: it can be neither added, changed nor removed after creation".into(),
            field: ".region",
            reason: INVALID,
        },
    ]
}

/// What is called: integrationUri and integrationSubtype.
fn backend_rules() -> Vec<SpecRule> {
    vec![
        SpecRule {
            rule: "has(self.integrationUri) || has(self.integrationSubtype) || self.integrationType == 'MOCK'".into(),
            message: "spec.integrationUri is required for integrationType AWS, HTTP, HTTP_PROXY, and for AWS_PROXY without integrationSubtype".into(),
            field: ".integrationUri",
            reason: REQUIRED,
        },
        SpecRule {
            rule: "!has(self.integrationSubtype) || !has(self.integrationUri)".into(),
            message: "spec.integrationUri must not be set together with integrationSubtype: the subtype names the AWS action itself".into(),
            field: ".integrationUri",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: "!has(self.integrationSubtype) || self.integrationType == 'AWS_PROXY'".into(),
            message: "spec.integrationSubtype is allowed only with integrationType AWS_PROXY".into(),
            field: ".integrationSubtype",
            reason: FORBIDDEN,
        },
    ]
}

/// How it is reached: a VPC link (connectionId or connectionRef) and the TLS settings that go with it.
fn connection_rules() -> Vec<SpecRule> {
    vec![
        SpecRule {
            rule: "!has(self.connectionType) || self.connectionType != 'VPC_LINK' || has(self.connectionId) || has(self.connectionRef)".into(),
            message: "spec.connectionId (or connectionRef) is required when connectionType is VPC_LINK".into(),
            field: ".connectionId",
            reason: REQUIRED,
        },
        SpecRule {
            rule: "!has(self.connectionId) || !has(self.connectionRef)".into(),
            message: "spec.connectionRef cannot be set together with connectionId: set exactly one".into(),
            field: ".connectionRef",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: "!has(self.connectionRef) || (has(self.connectionType) && self.connectionType == 'VPC_LINK')".into(),
            message: "spec.connectionRef is allowed only with connectionType VPC_LINK".into(),
            field: ".connectionRef",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: "!has(self.connectionId) || (has(self.connectionType) && self.connectionType == 'VPC_LINK')".into(),
            message: "spec.connectionId is allowed only with connectionType VPC_LINK".into(),
            field: ".connectionId",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: "!has(self.tlsConfig) || (has(self.connectionType) && self.connectionType == 'VPC_LINK')".into(),
            message: "spec.tlsConfig is allowed only for private integrations (connectionType VPC_LINK)".into(),
            field: ".tlsConfig",
            reason: FORBIDDEN,
        },
    ]
}

/// Which kind of API the fields fit: payload format, WebSocket-only vs. HTTP-API-only fields,
/// integration types, apiRef.protocolType and the WebSocket timeout.
fn protocol_rules() -> Vec<SpecRule> {
    let ws = any_set(WEBSOCKET_ONLY);
    let http = any_set(HTTP_ONLY);
    let ref_ws = api_ref_is("WEBSOCKET");
    let ref_http = api_ref_is("HTTP");
    vec![
        SpecRule {
            rule: "!has(self.payloadFormatVersion) || self.payloadFormatVersion != '2.0' || (self.integrationType == 'AWS_PROXY' && !has(self.integrationSubtype))".into(),
            message: "spec.payloadFormatVersion \"2.0\" is allowed only for Lambda proxy integrations (AWS_PROXY without integrationSubtype); use \"1.0\"".into(),
            field: ".payloadFormatVersion",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!has(self.payloadFormatVersion) || self.payloadFormatVersion != '2.0' || !({ws} || {ref_ws})"),
            message: "spec.payloadFormatVersion \"2.0\" is not allowed for WebSocket APIs (WebSocket-only fields set, or apiRef.protocolType WEBSOCKET): WebSocket integrations take \"1.0\" only".into(),
            field: ".payloadFormatVersion",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!({ws}) || !({http})"),
            message: format!(
                "WebSocket-only fields ({}) and HTTP-API-only fields ({}) cannot be set together in spec",
                WEBSOCKET_ONLY.join(", "),
                HTTP_ONLY.join(", ")
            ),
            field: "",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!(self.integrationType in ['AWS', 'HTTP', 'MOCK']) || !({http})"),
            message: format!(
                "spec.integrationType AWS, HTTP and MOCK exist only on WebSocket APIs, so the HTTP-API-only fields ({}) are not allowed with them",
                HTTP_ONLY.join(", ")
            ),
            field: ".integrationType",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!{ref_http} || (self.integrationType in ['AWS_PROXY', 'HTTP_PROXY'] && !({ws}))"),
            message: format!(
                "spec.apiRef.protocolType HTTP names an HTTP API, which takes only integrationType AWS_PROXY or HTTP_PROXY and none of the WebSocket-only fields ({})",
                WEBSOCKET_ONLY.join(", ")
            ),
            field: ".apiRef.protocolType",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!{ref_ws} || !({http})"),
            message: format!(
                "spec.apiRef.protocolType WEBSOCKET names a WebSocket API, which takes none of the HTTP-API-only fields ({})",
                HTTP_ONLY.join(", ")
            ),
            field: ".apiRef.protocolType",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!(
                "!has(self.timeoutInMillis) || self.timeoutInMillis <= 29000 || !(self.integrationType in ['AWS', 'HTTP', 'MOCK'] || {ws} || {ref_ws})"
            ),
            message: "spec.timeoutInMillis must be between 50 and 29000 for WebSocket API integrations (integrationType AWS, HTTP or MOCK, WebSocket-only fields set, or apiRef.protocolType WEBSOCKET)".into(),
            field: ".timeoutInMillis",
            reason: INVALID,
        },
    ]
}

/// The values of single fields: responseParameters status codes, the credentialsArn ARN, and non-empty
/// requestParameters values with a subtype.
fn value_rules() -> Vec<SpecRule> {
    vec![
        SpecRule {
            rule: "!has(self.responseParameters) || self.responseParameters.all(code, code.matches('^[2-5][0-9][0-9]$'))".into(),
            message: "spec.responseParameters keys must be HTTP status codes from 200 to 599".into(),
            field: ".responseParameters",
            reason: INVALID,
        },
        SpecRule {
            rule: "!has(self.credentialsArn) || self.credentialsArn.matches('^arn:[a-z0-9-]+:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}|[*])?:.+$')".into(),
            message: "spec.credentialsArn must be an ARN such as arn:aws:iam::123456789012:role/name (or arn:aws:iam::*:user/* to pass the caller's identity)".into(),
            field: ".credentialsArn",
            reason: INVALID,
        },
        SpecRule {
            rule: "!has(self.integrationSubtype) || !has(self.requestParameters) || self.requestParameters.all(k, size(self.requestParameters[k]) > 0)".into(),
            message: "spec.requestParameters values must not be empty with integrationSubtype: API Gateway rejects \"\" in a subtype's parameters".into(),
            field: ".requestParameters",
            reason: INVALID,
        },
    ]
}

/// Rule 12: integration responses exist on WebSocket APIs only, and not for proxies (API Gateway
/// passes a proxy's answer on whole). Each response's key is checked on the item, its uniqueness by
/// the list-map, the count by maxItems. HTTP-only fields need no rule of their own: AWS, HTTP and
/// MOCK, the only types left, refuse them already.
fn integration_response_rules() -> Vec<SpecRule> {
    let ref_http = api_ref_is("HTTP");
    vec![
        SpecRule {
            rule: "!has(self.integrationResponses) || !(self.integrationType in ['AWS_PROXY', 'HTTP_PROXY'])".into(),
            message: "spec.integrationResponses is not allowed with integrationType AWS_PROXY or HTTP_PROXY: API Gateway passes a proxy's answer on as it is; use AWS, HTTP or MOCK".into(),
            field: ".integrationResponses",
            reason: FORBIDDEN,
        },
        SpecRule {
            rule: format!("!has(self.integrationResponses) || !{ref_http}"),
            message: "spec.integrationResponses is for WebSocket APIs only, and apiRef.protocolType HTTP names an HTTP API".into(),
            field: ".integrationResponses",
            reason: FORBIDDEN,
        },
    ]
}

/// Each integrationSubtype's required requestParameters keys.
fn subtype_parameter_rules() -> Vec<SpecRule> {
    let mut rules = Vec::new();
    for subtype in IntegrationSubtype::ALL {
        let keys = subtype.required_parameters();
        let list = keys
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        rules.push(SpecRule {
            rule: format!(
                "!has(self.integrationSubtype) || self.integrationSubtype != '{subtype}' || (has(self.requestParameters) && [{list}].all(k, k in self.requestParameters))"
            ),
            message: format!("spec.requestParameters must contain {} for integrationSubtype {subtype}", keys.join(", ")),
            field: ".requestParameters",
            reason: REQUIRED,
        });
    }
    rules
}

/// Message of the per-status-code rule on responseParameters mappings (checked inside each inner map so
/// the API server's CEL cost estimate stays bounded).
pub const RESPONSE_MAPPING_KEY_MESSAGE: &str = "spec.responseParameters mappings must use keys append:header.<name>, \
     overwrite:header.<name>, remove:header.<name> or overwrite:statuscode";

/// responseParameters: status code -> (mapping key -> value), with bounded sizes and a key rule per map.
pub(super) fn response_parameters_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "maxProperties": 64,
        "description": "HTTP APIs only: how to change the backend's response before it is returned, per backend status code (200 to 599). Each code maps keys like `overwrite:statuscode`, `append:header.x-served-by` or `remove:header.server` to a value. Removing a status code here removes it in API Gateway.",
        "additionalProperties": {
            "type": "object",
            "maxProperties": 16,
            "additionalProperties": {"type": "string", "maxLength": 1024},
            "x-kubernetes-validations": [{
                "rule": "self.all(k, k == 'overwrite:statuscode' || k.startsWith('append:header.') || k.startsWith('overwrite:header.') || k.startsWith('remove:header.'))",
                "message": RESPONSE_MAPPING_KEY_MESSAGE,
                "reason": "FieldValueInvalid"
            }]
        }
    })
}

/// schemars transform: puts [`spec_rules`] on the spec's schema as `x-kubernetes-validations`.
pub(super) fn add_spec_rules(schema: &mut schemars::Schema) {
    let rules: Vec<serde_json::Value> = spec_rules()
        .into_iter()
        .map(|r| {
            let mut v =
                serde_json::json!({"rule": r.rule, "message": r.message, "reason": r.reason});
            if !r.field.is_empty() {
                v["fieldPath"] = r.field.into();
            }
            v
        })
        .collect();
    schema.insert("x-kubernetes-validations".into(), rules.into());
}

#[cfg(test)]
mod tests {
    use super::{HTTP_ONLY, WEBSOCKET_ONLY};
    use crate::plan::{Field, Support};
    use std::collections::BTreeSet;

    /// The CEL rules name the fields API Gateway accepts on one kind of API only; the field table says
    /// the same (in the rules' own order, which the CRD's text keeps).
    #[test]
    fn protocol_only_fields_agree_with_the_field_table() {
        let only = |s: Support| -> BTreeSet<&str> {
            Field::ALL
                .iter()
                .filter(|f| f.rule().support == s)
                .map(|f| f.name())
                .collect()
        };
        let set = |l: &[&'static str]| l.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(set(WEBSOCKET_ONLY), only(Support::WebSocketOnly));
        assert_eq!(set(HTTP_ONLY), only(Support::HttpOnly));
        assert_eq!(set(WEBSOCKET_ONLY).len(), WEBSOCKET_ONLY.len());
        assert_eq!(set(HTTP_ONLY).len(), HTTP_ONLY.len());
    }
}
