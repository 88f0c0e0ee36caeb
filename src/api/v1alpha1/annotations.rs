//! The annotations the operator reads and writes on an ApiIntegration: adoption by ID, and the marker of
//! a first create in flight.

use super::ApiIntegrationSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

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
