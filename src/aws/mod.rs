//! The AWS boundary: the controller calls API Gateway through the [`Gateway`] trait; its real
//! implementation, [`AwsApi`], waits for one of its (account,
//! region)'s call slots and then on its token bucket, counts the call by operation and outcome ([`stats`]), and turns SDK errors into
//! [`AwsError`] classes ([`error`]). [`convert`] maps between [`IntegrationFields`] and the SDK's types.

pub mod bucket;
mod convert;
pub mod credentials;
mod error;
mod gateway;
mod pages;
pub mod ratelimit;
mod responses;
mod stats;

pub use convert::{create_input, refuse_unknown_values, unknown_value, update_input};
pub use error::AwsError;
pub use gateway::{Connect, Gateway, SdkConnector, Slots, reader};
pub use pages::{Page, every_page, next_token};
pub use ratelimit::DEFAULT_FLOOR;
pub use responses::{responses_from_sdk, responses_spec_from_sdk};
pub use stats::{CallRecord, CallStats};

// `observed!` expands here and names these.
use crate::api::TlsConfig;
use crate::aws::ratelimit::TokenBucket;
use crate::plan::{ApiSummary, IntegrationFields, ObservedIntegration, Protocol, VpcLinkSummary};
use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewayv2::types::ProtocolType;
use convert::{observed, to_btree};
use error::classify;
use std::sync::Arc;
use std::time::SystemTime;

/// A route as GetRoutes lists it: its key (`GET /orders/{id}`, `$connect`) and target
/// (`integrations/<id>`, when it calls an integration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSummary {
    pub route_key: String,
    pub target: Option<String>,
}

impl RouteSummary {
    /// The integration this route calls, if its target is one.
    pub fn integration_id(&self) -> Option<&str> {
        self.target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
            .filter(|id| !id.is_empty())
    }
}

/// API Gateway V2 in one region.
#[derive(Clone)]
pub struct AwsApi {
    client: Client,
    region: String,
    account: String,
    bucket: Arc<TokenBucket>,
    in_flight: Arc<tokio::sync::Semaphore>,
    stats: Arc<CallStats>,
}

impl AwsApi {
    /// The region this client calls.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A client acting in `account` (for the call log; "self" is the operator's own identity) and
    /// `region`, waiting on `bucket` (API Gateway's quota of that account and region) for every call, and
    /// making at most as many calls at once as `in_flight` has permits (shared by that account and
    /// region's clients).
    pub fn new(
        client: Client,
        account: String,
        region: String,
        bucket: Arc<TokenBucket>,
        in_flight: Arc<tokio::sync::Semaphore>,
        stats: Arc<CallStats>,
    ) -> Self {
        AwsApi {
            client,
            region,
            account,
            bucket,
            in_flight,
            stats,
        }
    }

    /// Waits for a call slot and a token, runs the call, records it. The slot is held until the answer:
    /// reconciles may outnumber the calls in flight, so that their Kubernetes writes overlap AWS calls.
    async fn call<T, E, F>(&self, operation: &'static str, f: F) -> Result<T, AwsError>
    where
        F: std::future::Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let _slot = self
            .in_flight
            .acquire()
            .await
            .expect("the call-slot semaphore is never closed");
        let waiting = std::time::Instant::now();
        self.bucket.acquire().await;
        let at = SystemTime::now();
        let sent = std::time::Instant::now();
        let result = f.await.map_err(classify);
        if let Err(AwsError::Fenced(why)) = &result {
            // Never sent, so not a call: not counted, not in the call log.
            tracing::debug!(operation, region = %self.region, %why, "AWS call not sent");
            return result;
        }
        // A 429 lowers this account's budget (the SDK's own retries are off, so each one is seen here).
        let throttled = matches!(result, Err(AwsError::Throttled(_)));
        self.bucket.answered(sent, throttled);
        self.stats.budget(
            &self.account,
            &self.region,
            self.bucket.allowed_rate(),
            throttled,
            sent - waiting,
        );
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
        every_page(|token| async move { self.apis_page(token.as_deref()).await }).await
    }

    /// Every VPC link in the region, following NextToken.
    pub async fn list_vpc_links(&self) -> Result<Vec<VpcLinkSummary>, AwsError> {
        every_page(|token| async move { self.vpc_links_page(token.as_deref()).await }).await
    }

    /// Every route of the API (its key and target), following NextToken: which routes call which
    /// integration (for `apigw-operator import`'s names).
    pub async fn list_routes(&self, api_id: &str) -> Result<Vec<RouteSummary>, AwsError> {
        every_page(|token| async move { self.routes_page(api_id, token.as_deref()).await }).await
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
        every_page(|token| async move { self.integrations_page(api_id, token.as_deref()).await })
            .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A local stand-in for API Gateway that answers every GetApi after `delay`, and records the most
    /// requests it held at once.
    async fn slow_endpoint(delay: std::time::Duration) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let most_seen = most.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let (now, most) = (now.clone(), most.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request (a GET: no body) at a time on this connection.
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        buf.drain(..end);
                        let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(at_once, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        let body = r#"{"apiId":"a1","name":"n","protocolType":"HTTP"}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, most_seen)
    }

    #[tokio::test]
    async fn calls_in_flight_never_exceed_the_slots() {
        let (url, most) = slow_endpoint(std::time::Duration::from_millis(50)).await;
        let conf = aws_sdk_apigatewayv2::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_apigatewayv2::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url(url)
            .build();
        let aws = AwsApi::new(
            Client::from_conf(conf),
            "self".into(),
            "us-east-1".into(),
            Arc::new(TokenBucket::new(1_000_000.0, 1_000_000)),
            Arc::new(tokio::sync::Semaphore::new(2)),
            Arc::new(CallStats::default()),
        );
        let calls = (0..8).map(|_| aws.get_api("a1"));
        for answer in futures::future::join_all(calls).await {
            assert_eq!(answer.unwrap().name, "n");
        }
        // Eight callers, two slots: the endpoint held two at a time, never more (and, with 50 ms each,
        // certainly two at some point).
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
