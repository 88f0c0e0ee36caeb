//! `spec.apiRef` and `spec.connectionRef`: an API or a VPC link named by its Name and Tags instead of its
//! ID, resolved in API Gateway at reconcile time.

use super::ApiProtocolType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
