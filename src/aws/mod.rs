//! The AWS boundary: every API Gateway call goes through [`AwsApi`], which waits on its (account, region)
//! token bucket, counts the call by operation and outcome ([`stats`]), and turns SDK errors into
//! [`AwsError`] classes ([`error`]). [`convert`] maps between [`IntegrationFields`] and the SDK's types.

mod convert;
mod error;
mod stats;

pub use convert::{create_input, refuse_unknown_values, unknown_value, update_input};
pub use error::AwsError;
pub use stats::{CallRecord, CallStats};

// `observed!` expands here and names these.
use crate::api::TlsConfig;
use crate::plan::{ApiSummary, IntegrationFields, ObservedIntegration, Protocol, VpcLinkSummary};
use crate::ratelimit::TokenBucket;
use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewayv2::types::ProtocolType;
use convert::{observed, to_btree};
use error::classify;
use std::sync::Arc;
use std::time::SystemTime;

/// API Gateway V2 in one region.
#[derive(Clone)]
pub struct AwsApi {
    client: Client,
    region: String,
    account: String,
    bucket: Arc<TokenBucket>,
    stats: Arc<CallStats>,
}

impl AwsApi {
    /// The region this client calls.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A client acting in `account` (for the call log; "self" is the operator's own identity) and
    /// `region`, waiting on `bucket` (API Gateway's quota of that account and region) for every call.
    pub fn new(
        client: Client,
        account: String,
        region: String,
        bucket: Arc<TokenBucket>,
        stats: Arc<CallStats>,
    ) -> Self {
        AwsApi {
            client,
            region,
            account,
            bucket,
            stats,
        }
    }

    /// Waits for a token, runs the call, records it.
    async fn call<T, E, F>(&self, operation: &'static str, f: F) -> Result<T, AwsError>
    where
        F: std::future::Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.bucket.acquire().await;
        let at = SystemTime::now();
        let result = f.await.map_err(classify);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        tracing::debug!(operation, outcome, region = %self.region, "AWS call");
        self.stats.record(CallRecord {
            at,
            operation,
            outcome,
            region: self.region.clone(),
            account: self.account.clone(),
        });
        result
    }

    /// The API's name, protocol and tags; NotFound when the API does not exist.
    pub async fn get_api(&self, api_id: &str) -> Result<ApiSummary, AwsError> {
        let out = self
            .call("GetApi", self.client.get_api().api_id(api_id).send())
            .await?;
        Ok(ApiSummary {
            id: api_id.to_string(),
            name: out.name().unwrap_or_default().to_string(),
            protocol: match out.protocol_type() {
                Some(ProtocolType::Websocket) => Protocol::WebSocket,
                _ => Protocol::Http,
            },
            tags: out.tags().map(to_btree).unwrap_or_default(),
        })
    }

    /// Every API in the region, following NextToken (for references, design §6).
    pub async fn list_apis(&self) -> Result<Vec<ApiSummary>, AwsError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client
                .get_apis()
                .max_results("100")
                .set_next_token(token.clone());
            let out = self.call("GetApis", req.send()).await?;
            all.extend(out.items().iter().map(|a| ApiSummary {
                id: a.api_id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                protocol: match a.protocol_type() {
                    Some(ProtocolType::Websocket) => Protocol::WebSocket,
                    _ => Protocol::Http,
                },
                tags: a.tags().map(to_btree).unwrap_or_default(),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(all),
            }
        }
    }

    /// Every VPC link in the region, following NextToken.
    pub async fn list_vpc_links(&self) -> Result<Vec<VpcLinkSummary>, AwsError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client
                .get_vpc_links()
                .max_results("100")
                .set_next_token(token.clone());
            let out = self.call("GetVpcLinks", req.send()).await?;
            all.extend(out.items().iter().map(|l| VpcLinkSummary {
                id: l.vpc_link_id().unwrap_or_default().to_string(),
                name: l.name().unwrap_or_default().to_string(),
                tags: l.tags().map(to_btree).unwrap_or_default(),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(all),
            }
        }
    }

    pub async fn get_integration(
        &self,
        api_id: &str,
        integration_id: &str,
    ) -> Result<ObservedIntegration, AwsError> {
        let out = self
            .call(
                "GetIntegration",
                self.client
                    .get_integration()
                    .api_id(api_id)
                    .integration_id(integration_id)
                    .send(),
            )
            .await?;
        Ok(observed!(out, "GetIntegration"))
    }

    /// Every integration of the API, following NextToken.
    pub async fn list_integrations(
        &self,
        api_id: &str,
    ) -> Result<Vec<ObservedIntegration>, AwsError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client
                .get_integrations()
                .api_id(api_id)
                .max_results("100")
                .set_next_token(token.clone());
            let out = self.call("GetIntegrations", req.send()).await?;
            for i in out.items() {
                all.push(observed!(i, "GetIntegrations"));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(all),
            }
        }
    }

    pub async fn create_integration(
        &self,
        api_id: &str,
        fields: &IntegrationFields,
    ) -> Result<ObservedIntegration, AwsError> {
        let out = self
            .call(
                "CreateIntegration",
                create_input(api_id, fields).send_with(&self.client),
            )
            .await?;
        Ok(observed!(out, "CreateIntegration"))
    }

    pub async fn update_integration(
        &self,
        api_id: &str,
        integration_id: &str,
        fields: &IntegrationFields,
    ) -> Result<ObservedIntegration, AwsError> {
        let out = self
            .call(
                "UpdateIntegration",
                update_input(api_id, integration_id, fields).send_with(&self.client),
            )
            .await?;
        Ok(observed!(out, "UpdateIntegration"))
    }

    /// Deletes the integration; one that is already gone counts as deleted.
    pub async fn delete_integration(
        &self,
        api_id: &str,
        integration_id: &str,
    ) -> Result<(), AwsError> {
        let req = self
            .client
            .delete_integration()
            .api_id(api_id)
            .integration_id(integration_id)
            .send();
        match self.call("DeleteIntegration", req).await {
            Ok(_) | Err(AwsError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
