//! apigw-operator: keeps AWS API Gateway V2 integrations in step with `ApiIntegration` resources.

pub mod api;
pub mod aws;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod failpoints;
pub mod fence;
#[cfg(test)]
pub mod fixtures;
pub mod import;
pub mod lease;
pub mod metrics;
pub mod plan;
