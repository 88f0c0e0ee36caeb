//! `ApiIntegration` v1alpha1: the spec mirrors API Gateway V2's CreateIntegration request field for field,
//! plus two operator fields (`region`, `deletionPolicy`). Every rule the API server can check is in the
//! schema: simple ones as OpenAPI constraints, cross-field ones as CEL rules built from [`spec_rules`].
//!
//! The spec is here; beside it `references` holds apiRef and connectionRef, `enums` the values spelled as
//! API Gateway spells them, `responses` spec.integrationResponses, `rules` the CEL rules, `status` the
//! status, and `annotations` the annotations the operator reads and writes.

// `printcolumn(type_ = ..)` repeats by design; clippy reads the derive helper arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod annotations;
mod enums;
mod references;
mod responses;
mod rules;
mod status;
pub use annotations::{ADOPT_ANNOTATION, CREATE_STARTED_ANNOTATION, CreateStarted};
pub use enums::{
    ApiProtocolType, ConnectionType, ContentHandlingStrategy, DeletionPolicy, IntegrationMethod,
    IntegrationSubtype, IntegrationType, ManagementPolicy, PassthroughBehavior,
    PayloadFormatVersion,
};
pub use references::{ApiRef, ConnectionRef};
pub use responses::{
    DEFAULT_RESPONSE_KEY, IntegrationResponseSpec, MAX_INTEGRATION_RESPONSES, RESPONSE_KEY_MESSAGE,
};
pub use rules::{RESPONSE_MAPPING_KEY_MESSAGE, SpecRule, spec_rules};
use rules::{add_spec_rules, response_parameters_schema};
pub use status::{ApiIntegrationStatus, FieldDrift};

/// An API Gateway V2 integration (HTTP or WebSocket API) kept in step with this spec by apigw-operator.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apigw.dev",
    version = "v1alpha1",
    kind = "ApiIntegration",
    namespaced,
    shortname = "apiint",
    category = "apigw",
    status = "ApiIntegrationStatus",
    derive = "PartialEq",
    doc = "An integration of an AWS API Gateway V2 API (HTTP or WebSocket), created and kept in sync by apigw-operator.",
    printcolumn(name = "API", type_ = "string", json_path = ".status.apiId"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.integrationType"),
    printcolumn(
        name = "Integration ID",
        type_ = "string",
        json_path = ".status.integrationId"
    ),
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".spec.managementPolicy"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = add_spec_rules)]
pub struct ApiIntegrationSpec {
    /// ID of the API Gateway V2 API (HTTP or WebSocket) the integration belongs to, for example
    /// `a1b2c3d4e5`. Set exactly one of apiId and apiRef; apiRef is the better choice when the same
    /// manifest serves several environments, each with its own API ID. Cannot be changed after creation:
    /// to move an integration, create a new resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-zA-Z0-9]+$"))]
    pub api_id: Option<String>,

    /// The API found by its Name and Tags in API Gateway instead of by ID, so that one manifest works in
    /// every environment whatever tool made the API. Exactly one API in the region must match, else
    /// nothing is created (reason ApiNotFound or AmbiguousReference). If the API is replaced by a new one
    /// under the same name, the integration follows it. status.apiId shows what it resolved to. Cannot be
    /// changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_ref: Option<ApiRef>,

    /// What API Gateway calls. AWS_PROXY: a Lambda function (or, with integrationSubtype, an AWS service
    /// action) receiving the whole request. HTTP_PROXY: an HTTP endpoint receiving the request as is.
    /// AWS, HTTP (with mapping templates) and MOCK exist on WebSocket APIs only.
    pub integration_type: IntegrationType,

    /// Where the request goes. For Lambda, the function ARN (or its invocation URI); for HTTP_PROXY and
    /// HTTP, the endpoint URL, or for a private integration (VPC_LINK) the ARN of the load balancer
    /// listener or Cloud Map service. Required for AWS, HTTP, HTTP_PROXY, and AWS_PROXY without an
    /// integrationSubtype; must be left out when integrationSubtype is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub integration_uri: Option<String>,

    /// The HTTP method API Gateway uses to call the backend. Lambda (AWS_PROXY) integrations of
    /// WebSocket APIs use POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_method: Option<IntegrationMethod>,

    /// For AWS_PROXY integrations of HTTP APIs that call an AWS service action directly (no Lambda in
    /// between). Each subtype needs certain requestParameters keys, for example SQS-SendMessage needs
    /// QueueUrl and MessageBody. Usually paired with credentialsArn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_subtype: Option<IntegrationSubtype>,

    /// INTERNET (the default when unset) or VPC_LINK for a private integration through connectionId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<ConnectionType>,

    /// ID of the VPC link used when connectionType is VPC_LINK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub connection_id: Option<String>,

    /// With connectionType VPC_LINK, instead of connectionId: the VPC link found by its Name and Tags in
    /// API Gateway. Exactly one VPC link must match (reason VpcLinkNotFound or AmbiguousReference
    /// otherwise); a VPC link re-made under the same name is picked up at the next drift check.
    /// status.connectionId shows what it resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,

    /// ARN of the IAM role API Gateway assumes to call the backend, e.g.
    /// `arn:aws:iam::123456789012:role/apigw-invoke`. `arn:aws:iam::*:user/*` passes the caller's own
    /// identity on (WebSocket AWS integrations). Leave unset to rely on the backend's resource policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub credentials_arn: Option<String>,

    /// Free text shown in the API Gateway console; at most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// Version of the event format sent to a Lambda proxy integration on HTTP APIs: "2.0" (simpler event,
    /// Lambda proxy only) or "1.0" (REST-API-compatible). Every other integration takes "1.0" only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<PayloadFormatVersion>,

    /// How long API Gateway waits for the backend, in milliseconds: 50 to 30000 on HTTP APIs, 50 to 29000
    /// on WebSocket APIs. Unset means API Gateway's default (30000 on HTTP APIs, 29000 on WebSocket APIs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 50, max = 30000))]
    pub timeout_in_millis: Option<i32>,

    /// Request parameter mapping. HTTP APIs: keys like `append:header.x-team`, `overwrite:path` or
    /// `remove:querystring.debug`, values a static string or `$request.header.name`-style reference.
    /// WebSocket APIs: keys like `integration.request.header.x-id`, values like
    /// `route.request.header.x-id`. With integrationSubtype: the action's parameters (e.g. QueueUrl).
    /// Removing a key here removes it in API Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub request_parameters: Option<BTreeMap<String, String>>,

    /// WebSocket APIs only: mapping templates (Velocity) keyed by content type, applied to the request
    /// before it reaches the backend; the key chosen is set by templateSelectionExpression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    pub request_templates: Option<BTreeMap<String, String>>,

    /// HTTP APIs only: how to change the backend's response before it is returned, per backend status
    /// code (200 to 599). Each code maps keys like `overwrite:statuscode`, `append:header.x-served-by`
    /// or `remove:header.server` to a value. Removing a status code here removes it in API Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "response_parameters_schema")]
    pub response_parameters: Option<BTreeMap<String, BTreeMap<String, String>>>,

    /// WebSocket APIs only: the expression that selects which requestTemplates entry applies, e.g.
    /// `\$request.body.action` or `\${request.header.Content-Type}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub template_selection_expression: Option<String>,

    /// WebSocket APIs only: convert the payload to binary (CONVERT_TO_BINARY, from base64) or to text
    /// (CONVERT_TO_TEXT, to base64). Unset passes it through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling_strategy: Option<ContentHandlingStrategy>,

    /// WebSocket APIs only: what happens to a request whose content type has no requestTemplates entry.
    /// WHEN_NO_MATCH passes it through, NEVER rejects it, WHEN_NO_TEMPLATES passes it through only when
    /// no template is defined at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<PassthroughBehavior>,

    /// WebSocket APIs only, and only for integrations that are not proxies (AWS, HTTP, MOCK: API
    /// Gateway passes a proxy's answer on by itself): the integration responses that turn the backend's
    /// answer into the message sent back to the client, one per integrationResponseKey. They are created
    /// after the integration, changed in place, deleted when removed from this list, and go with the
    /// integration. An empty list removes them all. Leaving the field out removes the responses this
    /// resource made (status.integrationResponses) and leaves any others to other tools: without the
    /// field, and once none of its own remain, the operator does not read them at all. A two-way route and its route response
    /// belong to the API, not to this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["integrationResponseKey"],
        "maxItems" = MAX_INTEGRATION_RESPONSES
    ))]
    pub integration_responses: Option<Vec<IntegrationResponseSpec>>,

    /// HTTP APIs only, private integrations (VPC_LINK): makes API Gateway talk HTTPS to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,

    /// AWS region of the API, e.g. `eu-west-1`. Unset means the operator's own region. Cannot be changed
    /// after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,

    /// What deleting this resource does to the integration in API Gateway: Delete (the default when unset)
    /// removes it, Retain leaves it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Manage (the default when unset): the operator creates, updates and deletes the integration to
    /// match this spec. Observe: it only reads. The integration is found by the
    /// apigw.dev/adopt-integration-id annotation (or status.integrationId) and never created, changed or
    /// deleted, whatever this spec or deletionPolicy says; no finalizer is added, and deleting the
    /// resource leaves the integration alone. status.drift lists what Manage would change. Switching to
    /// Manage takes the integration over with at most one update, of exactly the fields status.drift
    /// listed; switching back stops every write at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,
}

/// TLS settings of a private integration.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// Host name API Gateway expects in the backend's certificate (and sends as SNI). Unset means the
    /// host of integrationUri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name_to_verify: Option<String>,
}

impl ApiIntegrationSpec {
    /// The deletion policy in force (Delete when unset).
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.deletion_policy.unwrap_or(DeletionPolicy::Delete)
    }

    /// The management policy in force (Manage when unset).
    pub fn management_policy(&self) -> ManagementPolicy {
        self.management_policy.unwrap_or(ManagementPolicy::Manage)
    }
}
