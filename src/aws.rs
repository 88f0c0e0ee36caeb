//! The AWS boundary: every API Gateway call goes through [`AwsApi`], which waits on the region's token
//! bucket, counts the call by operation and outcome, and turns SDK errors into [`AwsError`] classes.
//! Also the conversions between [`IntegrationFields`] and the SDK's request and response types.

use crate::api::TlsConfig;
use crate::plan::{ApiSummary, IntegrationFields, ObservedIntegration, Protocol, VpcLinkSummary};
use crate::ratelimit::TokenBucket;
use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewayv2::operation::create_integration::builders::CreateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::operation::update_integration::builders::UpdateIntegrationInputBuilder;
use aws_sdk_apigatewayv2::types::{
    ConnectionType, ContentHandlingStrategy, IntegrationType, PassthroughBehavior, ProtocolType,
    TlsConfigInput,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// An AWS failure, by what the reconciler should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// 400: AWS refuses the request as given; retrying the same spec cannot help.
    #[error("API Gateway rejected the request: {0}")]
    BadRequest(String),
    /// 403: the operator's credentials lack a permission.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// 404: the API or integration does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a route still uses the integration, or a concurrent change to the same API.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429: throttled by AWS.
    #[error("throttled by API Gateway: {0}")]
    Throttled(String),
    /// 5xx, timeouts, connection failures.
    #[error("API Gateway unavailable: {0}")]
    Unavailable(String),
    /// A success answer the operator cannot use: not JSON, cut short, without the integration's ID, or
    /// with a value this operator does not know. Nothing is decided on it; the call is tried again.
    #[error("unusable answer from API Gateway: {0}")]
    Unreadable(String),
    /// The operator found no AWS credentials to sign with.
    #[error(
        "no AWS credentials ({0}). Looked in the environment (AWS_ACCESS_KEY_ID), IRSA (AWS_WEB_IDENTITY_TOKEN_FILE), \
         EKS Pod Identity, the shared config files and instance metadata; see docs/install.md"
    )]
    CredentialsMissing(String),
}

impl AwsError {
    /// Short label for metrics and the call log.
    pub fn outcome(&self) -> &'static str {
        match self {
            AwsError::BadRequest(_) => "bad_request",
            AwsError::AccessDenied(_) => "access_denied",
            AwsError::NotFound(_) => "not_found",
            AwsError::Conflict(_) => "conflict",
            AwsError::Throttled(_) => "throttled",
            AwsError::Unavailable(_) => "unavailable",
            AwsError::Unreadable(_) => "unreadable",
            AwsError::CredentialsMissing(_) => "credentials_missing",
        }
    }

    /// A 409 because another change to the same API was in flight (worth retrying soon), as opposed
    /// to a 409 because routes still target the integration (which needs the user).
    pub fn is_concurrent_modification(&self) -> bool {
        matches!(self, AwsError::Conflict(m) if m.to_ascii_lowercase().contains("concurrent"))
    }
}

fn classify<E>(err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (status, code, message) = match &err {
        SdkError::ServiceError(se) => {
            let raw = se.raw();
            let status = raw.status().as_u16();
            let message = match se.err().message() {
                Some(m) if !m.trim().is_empty() => m.to_string(),
                // Not an API Gateway error body (a proxy's HTML page, a cut-off answer): say what came.
                _ => answer_without_message(status, raw.headers().get("content-type"), &err),
            };
            (
                Some(status),
                se.err().code().unwrap_or_default().to_string(),
                message,
            )
        }
        SdkError::ResponseError(re) => {
            let raw = re.raw();
            let status = raw.status().as_u16();
            let content_type = raw.headers().get("content-type");
            (
                Some(status),
                String::new(),
                answer_without_message(status, content_type, &err),
            )
        }
        _ => (None, String::new(), root_cause(&err)),
    };
    // An answer can be megabytes (a proxy's page, an echo of the request): the log and the condition get
    // its start.
    let message = clip(&message, 300);
    if status.is_none() {
        // The request never got an answer: the whole chain is for the log, the root cause for the user.
        tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "API Gateway call got no answer");
        if let Some(refused) = assume_role_failure(&err) {
            return AwsError::AccessDenied(refused);
        }
        if is_missing_credentials(&err) {
            let cause = message
                .trim_end_matches("Attempted:")
                .trim_end_matches(['.', ' ']);
            return AwsError::CredentialsMissing(cause.to_string());
        }
        let kind = match &err {
            SdkError::TimeoutError(_) => "timed out",
            SdkError::DispatchFailure(d) if d.is_timeout() => "timed out",
            SdkError::DispatchFailure(d) if d.is_io() => "could not connect",
            _ => "request failed",
        };
        return AwsError::Unavailable(format!("{kind}: {message}"));
    }
    let text = if code.is_empty() {
        message.clone()
    } else {
        format!("{code}: {message}")
    };
    match (code.as_str(), status) {
        // A success status whose answer could not be read: the request may well have been applied.
        (_, Some(200..=299)) => AwsError::Unreadable(text),
        ("BadRequestException", _) | (_, Some(400)) => AwsError::BadRequest(text),
        ("AccessDeniedException", _) | (_, Some(403)) => AwsError::AccessDenied(text),
        ("NotFoundException", _) | (_, Some(404)) => AwsError::NotFound(text),
        ("ConflictException", _) | (_, Some(409)) => AwsError::Conflict(text),
        ("TooManyRequestsException", _) | (_, Some(429)) => AwsError::Throttled(text),
        _ => AwsError::Unavailable(text),
    }
}

/// The innermost cause's message, on one line.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    clip(&cause.to_string(), 200)
}

/// The first line of `s`, at most `max` characters.
fn clip(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        format!("{}...", line.chars().take(max - 3).collect::<String>())
    }
}

/// What to say of an answer that carries no API Gateway error message: its status, its content type,
/// and (for a success the SDK could not read) why.
fn answer_without_message(
    status: u16,
    content_type: Option<&str>,
    err: &(dyn std::error::Error + 'static),
) -> String {
    let kind = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty())
        .map_or_else(String::new, |c| format!(" ({c})"));
    if (200..300).contains(&status) {
        format!(
            "HTTP {status} answer{kind} that could not be read: {}",
            root_cause(err)
        )
    } else {
        format!("HTTP {status} answer{kind} that is not an API Gateway error")
    }
}

/// Refuses an integration holding a value this operator does not know: it cannot be compared with the
/// spec, and an update would overwrite what someone chose on purpose.
pub fn refuse_unknown_values(i: &ObservedIntegration) -> Result<(), AwsError> {
    match unknown_value(i) {
        None => Ok(()),
        Some((field, value)) => Err(AwsError::Unreadable(format!(
            "integration {} has {field} {value:?}, which this operator does not know; it is left unchanged",
            i.integration_id
        ))),
    }
}

/// A value in an integration that this operator's SDK does not know (API Gateway added it since): the
/// field and the value. The operator neither compares nor overwrites such an integration.
pub fn unknown_value(i: &ObservedIntegration) -> Option<(&'static str, String)> {
    let f = &i.fields;
    let checks: [(&'static str, &Option<String>, &[&str]); 4] = [
        (
            "integrationType",
            &f.integration_type,
            IntegrationType::values(),
        ),
        (
            "connectionType",
            &f.connection_type,
            ConnectionType::values(),
        ),
        (
            "contentHandlingStrategy",
            &f.content_handling_strategy,
            ContentHandlingStrategy::values(),
        ),
        (
            "passthroughBehavior",
            &f.passthrough_behavior,
            PassthroughBehavior::values(),
        ),
    ];
    checks.into_iter().find_map(|(name, value, known)| {
        let v = value.as_deref()?;
        (!known.contains(&v)).then(|| (name, v.to_string()))
    })
}

/// The AssumeRole failure in the chain, if that is why the request could not be signed.
fn assume_role_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(f) = e.downcast_ref::<crate::credentials::AssumeRoleFailed>() {
            return Some(f.to_string());
        }
        cause = e.source();
    }
    None
}

/// Did the request fail for want of credentials? The SDK reports that as a failure to resolve the signing
/// identity, with aws-credential-types' error somewhere in the chain: no provider had any, one timed
/// out, or one failed (e.g. IRSA's token exchange was refused).
fn is_missing_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(ce) =
            e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            // Whatever went wrong (no provider had any, one timed out, one failed): no credentials.
            let _ = ce;
            return true;
        }
        let text = e.to_string();
        if text.contains("no credentials") || text.contains("credential provider was not enabled") {
            return true;
        }
        cause = e.source();
    }
    false
}

/// One AWS call, as recorded.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub at: SystemTime,
    pub operation: &'static str,
    pub outcome: &'static str,
    pub region: String,
    /// The account the call acted in: a role's account, or "self" for the operator's own identity.
    pub account: String,
}

/// Counts every AWS call by (operation, outcome) in the metrics and keeps an optional log of each call.
#[derive(Default)]
pub struct CallStats {
    log: Option<Mutex<std::fs::File>>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl CallStats {
    /// With `log`, each call is appended there as a JSON line (time, operation, outcome, region).
    pub fn new(log: Option<std::fs::File>) -> Self {
        CallStats {
            log: log.map(Mutex::new),
            metrics: None,
        }
    }

    /// Also counts each call in the Prometheus metrics.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn record(&self, rec: CallRecord) {
        if let Some(m) = &self.metrics {
            m.aws_call(rec.operation, rec.outcome);
        }
        if let Some(log) = &self.log {
            use std::io::Write;
            let ms = rec
                .at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let line = serde_json::json!({"ms": ms as u64, "op": rec.operation, "outcome": rec.outcome,
                "region": rec.region, "account": rec.account});
            let _ = writeln!(log.lock().unwrap(), "{line}");
        }
    }
}

/// Reads an integration out of any SDK type that has the integration getters (GetIntegration,
/// CreateIntegration and UpdateIntegration outputs, and GetIntegrations items share them).
/// An answer without the integration's ID is refused (never recorded as an empty ID).
macro_rules! observed {
    ($o:expr, $operation:expr) => {{
        let o = &$o;
        let integration_id = match o.integration_id() {
            Some(id) if !id.trim().is_empty() => id.to_string(),
            _ => {
                return Err(AwsError::Unreadable(format!(
                    "the {} answer has no IntegrationId",
                    $operation
                )));
            }
        };
        ObservedIntegration {
            integration_id,
            api_gateway_managed: o.api_gateway_managed().unwrap_or(false),
            integration_response_selection_expression: o
                .integration_response_selection_expression()
                .map(str::to_string),
            fields: IntegrationFields {
                integration_type: o.integration_type().map(|v| v.as_str().to_string()),
                integration_uri: o.integration_uri().map(str::to_string),
                integration_method: o.integration_method().map(str::to_string),
                integration_subtype: o.integration_subtype().map(str::to_string),
                connection_type: o.connection_type().map(|v| v.as_str().to_string()),
                connection_id: o.connection_id().map(str::to_string),
                credentials_arn: o.credentials_arn().map(str::to_string),
                description: o.description().map(str::to_string),
                payload_format_version: o.payload_format_version().map(str::to_string),
                timeout_in_millis: o.timeout_in_millis(),
                request_parameters: o.request_parameters().map(to_btree),
                request_templates: o.request_templates().map(to_btree),
                response_parameters: o
                    .response_parameters()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), to_btree(v))).collect()),
                template_selection_expression: o
                    .template_selection_expression()
                    .map(str::to_string),
                content_handling_strategy: o
                    .content_handling_strategy()
                    .map(|v| v.as_str().to_string()),
                passthrough_behavior: o.passthrough_behavior().map(|v| v.as_str().to_string()),
                tls_config: o.tls_config().map(|t| TlsConfig {
                    server_name_to_verify: t.server_name_to_verify().map(str::to_string),
                }),
            },
        }
    }};
}

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

fn to_btree(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
fn tls_input(t: &TlsConfig) -> TlsConfigInput {
    TlsConfigInput::builder()
        .set_server_name_to_verify(t.server_name_to_verify.clone())
        .build()
}

/// Sets every field of `$fields` on a Create- or UpdateIntegrationInputBuilder.
macro_rules! with_fields {
    ($builder:expr, $f:expr) => {{
        let f: &IntegrationFields = $f;
        $builder
            .set_integration_type(f.integration_type.as_deref().map(IntegrationType::from))
            .set_integration_uri(f.integration_uri.clone())
            .set_integration_method(f.integration_method.clone())
            .set_integration_subtype(f.integration_subtype.clone())
            .set_connection_type(f.connection_type.as_deref().map(ConnectionType::from))
            .set_connection_id(f.connection_id.clone())
            .set_credentials_arn(f.credentials_arn.clone())
            .set_description(f.description.clone())
            .set_payload_format_version(f.payload_format_version.clone())
            .set_timeout_in_millis(f.timeout_in_millis)
            .set_request_parameters(f.request_parameters.as_ref().map(to_hash))
            .set_request_templates(f.request_templates.as_ref().map(to_hash))
            .set_response_parameters(
                f.response_parameters
                    .as_ref()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), to_hash(v))).collect()),
            )
            .set_template_selection_expression(f.template_selection_expression.clone())
            .set_content_handling_strategy(
                f.content_handling_strategy
                    .as_deref()
                    .map(ContentHandlingStrategy::from),
            )
            .set_passthrough_behavior(
                f.passthrough_behavior
                    .as_deref()
                    .map(PassthroughBehavior::from),
            )
            .set_tls_config(f.tls_config.as_ref().map(tls_input))
    }};
}

/// The CreateIntegration request for `fields` on API `api_id`.
pub fn create_input(api_id: &str, fields: &IntegrationFields) -> CreateIntegrationInputBuilder {
    with_fields!(
        CreateIntegrationInputBuilder::default().api_id(api_id),
        fields
    )
}

/// The UpdateIntegration request that sends `fields` (already including resets and tombstones).
pub fn update_input(
    api_id: &str,
    integration_id: &str,
    fields: &IntegrationFields,
) -> UpdateIntegrationInputBuilder {
    with_fields!(
        UpdateIntegrationInputBuilder::default()
            .api_id(api_id)
            .integration_id(integration_id),
        fields
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(integration_type: &str, passthrough: Option<&str>) -> ObservedIntegration {
        ObservedIntegration {
            integration_id: "abc123".into(),
            fields: IntegrationFields {
                integration_type: Some(integration_type.into()),
                passthrough_behavior: passthrough.map(str::to_string),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn values_the_sdk_does_not_know_are_named_and_refused() {
        assert_eq!(unknown_value(&integration("HTTP_PROXY", None)), None);
        assert_eq!(
            unknown_value(&integration("AWS_PROXY", Some("WHEN_NO_MATCH"))),
            None
        );
        assert_eq!(
            unknown_value(&integration("SOMETHING_NEW", None)),
            Some(("integrationType", "SOMETHING_NEW".to_string()))
        );
        assert_eq!(
            unknown_value(&integration("HTTP", Some("SOMETIMES"))),
            Some(("passthroughBehavior", "SOMETIMES".to_string()))
        );
        let refused = refuse_unknown_values(&integration("SOMETHING_NEW", None)).unwrap_err();
        assert_eq!(refused.outcome(), "unreadable");
        let text = refused.to_string();
        assert!(
            text.contains("abc123") && text.contains("\"SOMETHING_NEW\""),
            "{text}"
        );
    }

    #[test]
    fn clipped_to_one_short_line() {
        assert_eq!(clip("short\nsecond", 10), "short");
        let huge = "x".repeat(5_000_000);
        let clipped = clip(&huge, 300);
        assert_eq!(clipped.chars().count(), 300);
        assert!(clipped.ends_with("..."));
        assert_eq!(clip("héllo wörld", 8), "héllo...");
    }
}
