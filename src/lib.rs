//! apigw-operator: keeps AWS API Gateway V2 integrations in step with `ApiIntegration` resources.

pub mod api;
pub mod aws;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod fence;
pub mod lease;
pub mod metrics;
pub mod plan;
pub mod ratelimit;
