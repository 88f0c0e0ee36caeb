//! The clients' configuration from the environment, and the start-up checks that report a missing
//! CRD, RBAC, cluster or AWS identity in words that name the fix.

use crate::LOG_TARGET;
use crate::one_line;
use anyhow::Context;
use apigw_operator::api::ApiIntegration;
use apigw_operator::fence::{Fence, FenceLayer};
use std::sync::Arc;
use std::time::Duration;

/// The AWS SDK's configuration from the environment (credentials chain, AWS_ENDPOINT_URL), in `region`
/// when given.
pub(crate) async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

pub(crate) async fn kube_config() -> anyhow::Result<kube::Config> {
    kube::Config::infer().await.context(
        "no usable Kubernetes configuration: run in a pod with a service account, \
         or set KUBECONFIG (default ~/.kube/config) to a valid kubeconfig",
    )
}

/// A client for the cluster from the environment (in-cluster service account, else KUBECONFIG or
/// ~/.kube/config), checked by asking the API server for its version, so that an unreachable server or
/// a rejected token is reported as such at startup.
/// With `fence`, every write of this client is checked against it first (see [`apigw_operator::fence`]).
pub(crate) async fn kube_client(
    config: kube::Config,
    fence: Option<Arc<Fence>>,
) -> anyhow::Result<kube::Client> {
    let url = config.cluster_url.clone();
    let builder = kube::client::ClientBuilder::try_from(config)
        .with_context(|| format!("cannot build a Kubernetes client for {url}"))?;
    let client = match fence {
        Some(fence) => builder.with_layer(&FenceLayer(fence)).build(),
        None => builder.build(),
    };
    match client.apiserver_version().await {
        Ok(_) => Ok(client),
        Err(kube::Error::Api(s)) if s.code == 401 => anyhow::bail!(
            "the Kubernetes API server at {url} does not accept the operator's credentials (401 {}); \
             check the kubeconfig's user, or the pod's service account token",
            s.message
        ),
        Err(e) => Err(kube_error(e)).with_context(|| {
            format!(
                "cannot reach the Kubernetes API server at {url}; check the kubeconfig's server, CA \
                 and network"
            )
        }),
    }
}

/// Fails, naming the fix, when the operator cannot list ApiIntegrations where it watches them: the CRD
/// is not installed (404), or its Kubernetes identity lacks the RBAC (403). Checked before waiting for the
/// lease, so a stand-by replica reports it too.
pub(crate) async fn ensure_can_list(
    client: &kube::Client,
    namespace: Option<&str>,
) -> anyhow::Result<()> {
    let api: kube::Api<ApiIntegration> = match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    let scope = match namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in all namespaces".to_string(),
    };
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => anyhow::bail!(
            "the API server does not serve ApiIntegrations (apigw.dev/v1alpha1): the CRD is not \
             installed. Install it with `kubectl apply --server-side -f crds/` (or `apigw-operator crd \
             | kubectl apply --server-side -f -`), or install the Helm chart, which includes it"
        ),
        Err(kube::Error::Api(s)) if s.code == 403 => anyhow::bail!(
            "the operator may not list ApiIntegrations {scope}: {}. The Helm chart's RBAC grants what \
             it needs (with watchNamespace set, in that namespace only: run with the same \
             --watch-namespace)",
            s.message
        ),
        Err(e) => Err(kube_error(e).context(format!("cannot list ApiIntegrations {scope}"))),
    }
}

/// A kube error for people: an API server's answer as `code reason: message`, without the Debug dump
/// of the whole Status that kube's own text appends.
fn kube_error(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => anyhow::anyhow!(
            "the API server answered {} {}: {}",
            s.code,
            s.reason,
            s.message
        ),
        e => e.into(),
    }
}

/// How long the startup identity check waits for STS, retries included.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks STS who the operator is (GetCallerIdentity needs no IAM permission) with the same configuration
/// as the API Gateway clients (credentials chain, region, AWS_ENDPOINT_URL), and logs the account and
/// ARN, or one warning when there is no usable identity. Never fatal: credentials may appear later (a
/// projected IRSA token, a Secret mounted after start), and the SDK looks for them again on every call.
/// A client of its own, so the call is not counted or rate-limited as an API Gateway call.
pub(crate) async fn log_aws_identity(sdk_config: aws_config::SdkConfig) {
    let config = aws_sdk_sts::config::Builder::from(&sdk_config)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(IDENTITY_TIMEOUT)
                .build(),
        )
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    match sts.get_caller_identity().send().await {
        Ok(who) => tracing::info!(
            target: LOG_TARGET,
            account = who.account().unwrap_or("?"),
            arn = who.arn().unwrap_or("?"),
            "AWS identity"
        ),
        Err(e) => tracing::warn!(
            target: LOG_TARGET,
            cause = %one_line(std::iter::successors(
                Some(&e as &(dyn std::error::Error + 'static)),
                |e| e.source()
            )),
            "no usable AWS identity: STS GetCallerIdentity failed. The operator keeps running and uses \
             credentials once they appear; docs/install.md (section 2, \"Give the operator an AWS \
             identity\") explains how to give it credentials"
        ),
    }
}
