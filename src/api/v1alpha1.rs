//! `ApiIntegration` v1alpha1: the spec mirrors API Gateway V2's CreateIntegration request field for field,
//! plus two operator fields (`region`, `deletionPolicy`). Every rule the API server can check is in the
//! schema: simple ones as OpenAPI constraints, cross-field ones as CEL rules built from [`spec_rules`].

// `printcolumn(type_ = ..)` repeats by design; clippy reads the derive helper arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod responses;
mod rules;
pub use responses::{
    DEFAULT_RESPONSE_KEY, IntegrationResponseSpec, MAX_INTEGRATION_RESPONSES, RESPONSE_KEY_MESSAGE,
};
pub use rules::{RESPONSE_MAPPING_KEY_MESSAGE, SpecRule, spec_rules};
use rules::{add_spec_rules, response_parameters_schema};

/// Annotation that, on create, makes the operator take over an integration that already exists in API
/// Gateway instead of creating a new one.
pub const ADOPT_ANNOTATION: &str = "apigw.dev/adopt-integration-id";

/// Annotation the operator writes, together with its finalizer and in the same request, just before a
/// resource's first CreateIntegration: where that create is made. Until status records an integration ID,
/// its presence means "a create may have happened": the next run (or the deletion) looks for what it
/// made instead of making another or leaking it. Once an ID is recorded it is history and is ignored.
pub const CREATE_STARTED_ANNOTATION: &str = "apigw.dev/create-started";

/// The value of [`CREATE_STARTED_ANNOTATION`] (JSON).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateStarted {
    /// The API the integration is created on.
    pub api_id: String,
    /// The VPC link it uses, when connectionRef resolved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The spec the create is sent with: what it made is looked for by this spec, not by the current one,
    /// which may have been edited since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ApiIntegrationSpec>,
    /// When the create was started.
    pub at: Time,
}

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

/// An API named by what API Gateway knows it by: its Name, its Tags, or both.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.name) || has(self.tags)",
    "message": "spec.apiRef needs name or tags (or both)",
    "reason": "FieldValueRequired"
}]))]
pub struct ApiRef {
    /// The API's Name in API Gateway, matched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Tags the API must carry, each with exactly this value (the API may carry more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub tags: Option<BTreeMap<String, String>>,
    /// Only APIs of this protocol match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_type: Option<ApiProtocolType>,
}

/// A VPC link named by what API Gateway knows it by: its Name, its Tags, or both.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.name) || has(self.tags)",
    "message": "spec.connectionRef needs name or tags (or both)",
    "reason": "FieldValueRequired"
}]))]
pub struct ConnectionRef {
    /// The VPC link's Name in API Gateway, matched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Tags the VPC link must carry, each with exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub tags: Option<BTreeMap<String, String>>,
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

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value as API Gateway spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }
    };
}

wire_enum!(
    /// The protocol of an API.
    ApiProtocolType {
        Http = "HTTP",
        WebSocket = "WEBSOCKET",
    }
);

wire_enum!(
    /// The kind of backend.
    IntegrationType {
        Aws = "AWS",
        AwsProxy = "AWS_PROXY",
        Http = "HTTP",
        HttpProxy = "HTTP_PROXY",
        Mock = "MOCK",
    }
);

wire_enum!(
    /// HTTP method used to call the backend.
    IntegrationMethod {
        Any = "ANY",
        Get = "GET",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Head = "HEAD",
        Options = "OPTIONS",
    }
);

wire_enum!(
    /// AWS service actions an HTTP API can call directly.
    IntegrationSubtype {
        EventBridgePutEvents = "EventBridge-PutEvents",
        SqsSendMessage = "SQS-SendMessage",
        SqsReceiveMessage = "SQS-ReceiveMessage",
        SqsDeleteMessage = "SQS-DeleteMessage",
        SqsPurgeQueue = "SQS-PurgeQueue",
        AppConfigGetConfiguration = "AppConfig-GetConfiguration",
        KinesisPutRecord = "Kinesis-PutRecord",
        StepFunctionsStartExecution = "StepFunctions-StartExecution",
        StepFunctionsStartSyncExecution = "StepFunctions-StartSyncExecution",
        StepFunctionsStopExecution = "StepFunctions-StopExecution",
    }
);

impl IntegrationSubtype {
    /// The requestParameters keys API Gateway requires for this action.
    pub fn required_parameters(self) -> &'static [&'static str] {
        use IntegrationSubtype::*;
        match self {
            EventBridgePutEvents => &["Detail", "DetailType", "Source"],
            SqsSendMessage => &["QueueUrl", "MessageBody"],
            SqsReceiveMessage => &["QueueUrl"],
            SqsDeleteMessage => &["QueueUrl", "ReceiptHandle"],
            SqsPurgeQueue => &["QueueUrl"],
            AppConfigGetConfiguration => {
                &["Application", "Environment", "Configuration", "ClientId"]
            }
            KinesisPutRecord => &["StreamName", "Data", "PartitionKey"],
            StepFunctionsStartExecution | StepFunctionsStartSyncExecution => &["StateMachineArn"],
            StepFunctionsStopExecution => &["ExecutionArn"],
        }
    }
}

wire_enum!(
    /// How API Gateway reaches the backend.
    ConnectionType {
        Internet = "INTERNET",
        VpcLink = "VPC_LINK",
    }
);

wire_enum!(
    /// Payload (event) format version.
    PayloadFormatVersion {
        V1 = "1.0",
        V2 = "2.0",
    }
);

wire_enum!(
    /// Payload encoding conversion (WebSocket APIs).
    ContentHandlingStrategy {
        ConvertToBinary = "CONVERT_TO_BINARY",
        ConvertToText = "CONVERT_TO_TEXT",
    }
);

wire_enum!(
    /// Handling of requests without a matching mapping template (WebSocket APIs).
    PassthroughBehavior {
        WhenNoMatch = "WHEN_NO_MATCH",
        Never = "NEVER",
        WhenNoTemplates = "WHEN_NO_TEMPLATES",
    }
);

wire_enum!(
    /// What deleting the resource does in AWS.
    DeletionPolicy {
        Delete = "Delete",
        Retain = "Retain",
    }
);

wire_enum!(
    /// Whether the operator writes to AWS for the resource, or only reads.
    ManagementPolicy {
        Manage = "Manage",
        Observe = "Observe",
    }
);

/// One field where API Gateway differs from the spec (what Manage would change), with both values as
/// API Gateway spells them (maps as JSON); an absent value is unset on that side.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FieldDrift {
    /// The spec field, e.g. `timeoutInMillis`.
    pub field: String,
    /// The value the spec asks for (absent: the spec no longer sets a field the operator set before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// The value API Gateway holds (absent: unset there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<String>,
}

/// Observed state, written by the operator only.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiIntegrationStatus {
    /// ID of the integration in API Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// API the integration lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// Region the integration lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The AWS account the integration lives in, when an ApiGatewayAccess role put it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The VPC link the integration uses (connectionId, or what connectionRef resolved to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// As reported by API Gateway (WebSocket APIs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_response_selection_expression: Option<String>,
    /// True when API Gateway made the integration itself (quick create); the operator never changes those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_gateway_managed: Option<bool>,
    /// When the operator last found the integration matching the spec and had something new to say here
    /// (a create, an update, a repair, a new generation). Drift checks that find nothing to change do not
    /// rewrite it: an unchanged resource costs no Kubernetes write (see the checks_in_sync metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Set just before an integration the status records is replaced by a new CreateIntegration (it was
    /// deleted outside the operator, or its API was re-made) and cleared once the new ID is recorded: if
    /// the operator stops in between, the next run looks for the integration it may have made instead of
    /// making another. (A first create is marked by the apigw.dev/create-started annotation instead.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_started_at: Option<Time>,
    /// While a create is in flight: the spec it was sent with (JSON). The integration an interrupted
    /// create made is looked for by this spec, not by the current one, which may have changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_spec: Option<String>,
    /// Spec fields the operator last sent to API Gateway; a field that leaves the spec later is reset there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_fields: Vec<String>,
    /// The integration responses the operator manages (spec.integrationResponses): their IDs in API
    /// Gateway, by integrationResponseKey.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub integration_responses: BTreeMap<String, String>,
    /// managementPolicy Observe: each field where API Gateway differs from the spec, that is, exactly
    /// what an update would change when the policy becomes Manage. Empty when in sync (and in Manage,
    /// which repairs drift instead of reporting it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<FieldDrift>,
    /// Standard conditions; `Ready` says whether API Gateway holds what the spec asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
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
