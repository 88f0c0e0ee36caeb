//! `ApiIntegration` status: what the operator observed and did, written by the operator only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One field where API Gateway differs from the spec (what Manage would change), with both values as
/// API Gateway spells them (maps as JSON); an absent value is unset on that side.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FieldDrift {
    /// The spec field, e.g. `timeoutInMillis`, or for an integration response
    /// `integrationResponses[KEY]` (the whole response: one side absent when it is only in the spec or
    /// only in API Gateway) or `integrationResponses[KEY].FIELD`.
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
    /// The integration responses of spec.integrationResponses: their IDs in API Gateway, by
    /// integrationResponseKey. Under Manage, those the operator made or took over; under Observe, those
    /// found under the spec's keys (and a recorded one whose key left the spec, while it still exists).
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
