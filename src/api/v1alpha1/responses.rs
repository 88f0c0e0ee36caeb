//! `spec.integrationResponses`: the integration responses of a WebSocket integration that is not a proxy,
//! kept with the integration they belong to. Each is keyed by its `integrationResponseKey`, unique per
//! integration, so the list is a list-map on that key (server-side apply merges entries by key).

use super::ContentHandlingStrategy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many responses per integration. AWS documents no quota of its own for integration
/// responses (its WebSocket quota table lists none); in practice an integration has one per class of
/// backend status (`$default`, `/2\d\d/`, `/4\d\d/`, `/5\d\d/`). The bound keeps the CEL rules that look
/// at the list within the API server's cost budget.
pub const MAX_INTEGRATION_RESPONSES: usize = 32;

/// The key of the catch-all response.
pub const DEFAULT_RESPONSE_KEY: &str = "$default";

/// Message of the rule on each response's key.
pub const RESPONSE_KEY_MESSAGE: &str = "spec.integrationResponses[].integrationResponseKey must be \
     $default or a regular expression between slashes, such as /2\\d\\d/";

/// One integration response: how the backend's answer, selected by `integrationResponseKey`, becomes the
/// message sent back to the WebSocket client (with a two-way route and a route response, made outside
/// this operator).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.integrationResponseKey == '$default' || self.integrationResponseKey.matches('^/.+/$')",
    "message": RESPONSE_KEY_MESSAGE,
    "fieldPath": ".integrationResponseKey",
    "reason": "FieldValueInvalid"
}]))]
pub struct IntegrationResponseSpec {
    /// Which backend answers this response handles: `$default` (any answer no other key selects) or a
    /// regular expression between slashes matched against the backend's status code, e.g. `/2\d\d/`
    /// for HTTP integrations or `/.*Error.*/` against a Lambda error message. Unique within the list.
    #[schemars(length(min = 1, max = 256))]
    pub integration_response_key: String,

    /// Mapping templates (Velocity) keyed by the value templateSelectionExpression selects (for example
    /// a content type, or `$default`), turning the backend's answer into the client's message. Removing a
    /// key here removes it in API Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub response_templates: Option<BTreeMap<String, String>>,

    /// Response parameter mapping, e.g. `method.response.header.x-request-id` to
    /// `integration.response.header.x-request-id`. Removing a key here removes it in API Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub response_parameters: Option<BTreeMap<String, String>>,

    /// Expression selecting which responseTemplates entry applies, e.g. `\$integration.response.header.Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub template_selection_expression: Option<String>,

    /// Convert the backend's payload to binary (CONVERT_TO_BINARY, from base64) or to text
    /// (CONVERT_TO_TEXT, to base64). Unset passes it through. API Gateway cannot unset it once set:
    /// removing it here leaves API Gateway's value as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling_strategy: Option<ContentHandlingStrategy>,
}
