//! The narrow interface the controller calls API Gateway through: [`Gateway`], one region as one
//! identity sees it, and [`Connect`], which hands out a gateway per identity and region. The real ones
//! are [`AwsApi`] and [`SdkConnector`]; the in-process tests put an in-memory API Gateway behind the
//! same two traits.

use super::credentials::{AssumedRole, Identity};
use super::ratelimit::TokenBucket;
use super::{AwsApi, AwsError, CallStats};
use crate::fence::{Fence, FenceInterceptor};
use crate::plan::{ApiSummary, IntegrationFields, ObservedIntegration, VpcLinkSummary};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// API Gateway V2 in one region, as one identity. Every call is one API operation (listings follow
/// NextToken to the end); errors are already classed.
pub trait Gateway: Send + Sync {
    /// The region this gateway calls.
    fn region(&self) -> &str;
    /// The API's name, protocol and tags; NotFound when the API does not exist.
    fn get_api<'a>(&'a self, api_id: &'a str) -> BoxFuture<'a, Result<ApiSummary, AwsError>>;
    /// Every API in the region.
    fn list_apis(&self) -> BoxFuture<'_, Result<Vec<ApiSummary>, AwsError>>;
    /// Every VPC link in the region.
    fn list_vpc_links(&self) -> BoxFuture<'_, Result<Vec<VpcLinkSummary>, AwsError>>;
    fn get_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>>;
    /// Every integration of the API; NotFound when the API does not exist.
    fn list_integrations<'a>(
        &'a self,
        api_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedIntegration>, AwsError>>;
    fn create_integration<'a>(
        &'a self,
        api_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>>;
    fn update_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>>;
    /// Deletes the integration; one that is already gone counts as deleted.
    fn delete_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
}

impl Gateway for AwsApi {
    fn region(&self) -> &str {
        AwsApi::region(self)
    }
    fn get_api<'a>(&'a self, api_id: &'a str) -> BoxFuture<'a, Result<ApiSummary, AwsError>> {
        Box::pin(AwsApi::get_api(self, api_id))
    }
    fn list_apis(&self) -> BoxFuture<'_, Result<Vec<ApiSummary>, AwsError>> {
        Box::pin(AwsApi::list_apis(self))
    }
    fn list_vpc_links(&self) -> BoxFuture<'_, Result<Vec<VpcLinkSummary>, AwsError>> {
        Box::pin(AwsApi::list_vpc_links(self))
    }
    fn get_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(AwsApi::get_integration(self, api_id, integration_id))
    }
    fn list_integrations<'a>(
        &'a self,
        api_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedIntegration>, AwsError>> {
        Box::pin(AwsApi::list_integrations(self, api_id))
    }
    fn create_integration<'a>(
        &'a self,
        api_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(AwsApi::create_integration(self, api_id, fields))
    }
    fn update_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(AwsApi::update_integration(
            self,
            api_id,
            integration_id,
            fields,
        ))
    }
    fn delete_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(AwsApi::delete_integration(self, api_id, integration_id))
    }
}

/// What one AWS account and region's gateways share: API Gateway's quota and the calls in flight.
#[derive(Clone)]
pub struct Slots {
    pub bucket: Arc<TokenBucket>,
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

/// Hands out the gateway acting as an identity in a region.
pub trait Connect: Send + Sync {
    fn connect<'a>(
        &'a self,
        identity: &'a Identity,
        region: &'a str,
        slots: Slots,
    ) -> BoxFuture<'a, Arc<dyn Gateway>>;
}

/// The SDK's clients, one per (identity, region): assumed-role credentials are cached in it. SDK retries
/// are off: every retry is a reconcile decision, counted and rate-limited like any other call.
pub struct SdkConnector {
    sdk_config: aws_config::SdkConfig,
    fence: Arc<Fence>,
    timeout: Duration,
    stats: Arc<CallStats>,
    clients: tokio::sync::Mutex<HashMap<(Identity, String), Arc<AwsApi>>>,
}

impl SdkConnector {
    /// Clients made from `sdk_config`, each call refused once `fence` says this process may no longer
    /// write, answered within `timeout`, and counted in `stats`.
    pub fn new(
        sdk_config: aws_config::SdkConfig,
        fence: Arc<Fence>,
        timeout: Duration,
        stats: Arc<CallStats>,
    ) -> Self {
        SdkConnector {
            sdk_config,
            fence,
            timeout,
            stats,
            clients: tokio::sync::Mutex::default(),
        }
    }
}

impl Connect for SdkConnector {
    fn connect<'a>(
        &'a self,
        identity: &'a Identity,
        region: &'a str,
        slots: Slots,
    ) -> BoxFuture<'a, Arc<dyn Gateway>> {
        Box::pin(async move {
            let mut clients = self.clients.lock().await;
            let key = (identity.clone(), region.to_string());
            if let Some(aws) = clients.get(&key) {
                return aws.clone() as Arc<dyn Gateway>;
            }
            let client = sdk_client(
                &self.sdk_config,
                identity,
                region,
                self.fence.clone(),
                self.timeout,
            )
            .await;
            let aws = Arc::new(AwsApi::new(
                client,
                identity.account(),
                region.to_string(),
                slots.bucket,
                slots.in_flight,
                self.stats.clone(),
            ));
            clients.insert(key, aws.clone());
            aws as Arc<dyn Gateway>
        })
    }
}

/// An API Gateway client acting as `identity` in `region`: the operator's own credentials from
/// `sdk_config`, or an assumed role on top of them; SDK retries off, each call answered within `timeout`
/// and refused once `fence` says this process may no longer write.
async fn sdk_client(
    sdk_config: &aws_config::SdkConfig,
    identity: &Identity,
    region: &str,
    fence: Arc<Fence>,
    timeout: Duration,
) -> aws_sdk_apigatewayv2::Client {
    use aws_sdk_apigatewayv2::config::{Builder, Region, retry::RetryConfig, timeout};
    let mut conf = Builder::from(sdk_config)
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::disabled())
        .interceptor(FenceInterceptor(fence))
        .timeout_config(
            timeout::TimeoutConfig::builder()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .operation_attempt_timeout(timeout)
                .build(),
        );
    if identity.role_arn.is_some() {
        let assumed = AssumedRole::new(identity, sdk_config).await;
        conf = conf.credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(assumed),
        );
    }
    aws_sdk_apigatewayv2::Client::from_conf(conf.build())
}

/// A client of its own for a one-off reader outside the controller (`apigw-operator import`): the same
/// credentials, role, timeout and quota rules as `run`'s clients, with no fence (it writes nothing), at
/// most `rate` calls per second (burst `burst`) and one call at a time, each counted in `stats`.
pub async fn reader(
    sdk_config: &aws_config::SdkConfig,
    identity: &Identity,
    region: &str,
    timeout: Duration,
    (rate, burst): (f64, u32),
    stats: Arc<CallStats>,
) -> AwsApi {
    let client = sdk_client(sdk_config, identity, region, Fence::open(), timeout).await;
    AwsApi::new(
        client,
        identity.account(),
        region.to_string(),
        Arc::new(TokenBucket::new(rate, burst)),
        Arc::new(tokio::sync::Semaphore::new(1)),
        stats,
    )
}
