//! `ApiGatewayAccess` v1alpha1 (design §7): a cluster-scoped policy, written by cluster admins, that says
//! which namespaces may manage integrations of which APIs, in which regions, and with which IAM role. It
//! counts only when the operator runs with `--tenancy policy`.

// `printcolumn(type_ = ..)` repeats by design; clippy reads the derive helper arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which namespaces may manage ApiIntegrations of which APIs, and with which IAM role.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apigw.dev",
    version = "v1alpha1",
    kind = "ApiGatewayAccess",
    shortname = "apigwaccess",
    category = "apigw",
    status = "ApiGatewayAccessStatus",
    derive = "PartialEq",
    doc = "Which namespaces may manage ApiIntegrations of which API Gateway APIs, in which regions, and with which IAM role (apigw-operator with --tenancy policy).",
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.roleArn"),
    printcolumn(
        name = "Namespaces",
        type_ = "integer",
        json_path = ".status.matchedNamespaces"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.externalId) || has(self.roleArn)",
    "message": "spec.externalId is sent with AssumeRole, so it needs spec.roleArn",
    "fieldPath": ".externalId",
    "reason": "FieldValueForbidden"
}]))]
pub struct ApiGatewayAccessSpec {
    /// The namespaces this policy applies to, by their labels. `{}` selects every namespace.
    pub namespace_selector: LabelSelector,

    /// An IAM role the operator assumes (STS AssumeRole, on top of its own credentials) for every call
    /// it makes for these namespaces; the integrations then live in that role's account. Unset: the
    /// operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"))]
    pub role_arn: Option<String>,

    /// Sent with AssumeRole when the role's trust policy asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,

    /// Regions these namespaces may use. Unset: every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub regions: Option<Vec<Region>>,

    /// APIs these namespaces may attach integrations to: an API is allowed if any entry matches it.
    /// Unset: every API the role reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub apis: Option<Vec<ApiMatch>>,
}

/// A region name such as eu-west-1.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct Region(#[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))] pub String);

/// One allowlist entry: exactly one of id, name or tags.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.id), has(self.name), has(self.tags)].filter(x, x).size() == 1",
    "message": "each entry of spec.apis sets exactly one of id, name and tags",
    "reason": "FieldValueInvalid"
}]))]
pub struct ApiMatch {
    /// The API's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-zA-Z0-9]+$"))]
    pub id: Option<String>,
    /// A glob on the API's Name: `*` matches any run of characters, `?` one character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Tags the API must carry, each with exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16, "minProperties" = 1))]
    pub tags: Option<BTreeMap<String, String>>,
}

/// What the operator found the policy to be.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayAccessStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many namespaces the selector matches now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_namespaces: Option<i32>,
    /// `Ready`: the policy is valid and in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
