//! The command line: subcommands and their flags, each flag with its environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Kubernetes operator for AWS API Gateway V2 integrations.
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print the CustomResourceDefinitions (ApiIntegration, ApiGatewayAccess) as YAML.
    Crd {
        /// Write one file per CRD into this directory instead (as committed under crds/).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the operator.
    Run(RunArgs),
    /// Write an ApiIntegration for each integration API Gateway already holds.
    ///
    /// For integrations made by Terraform, CloudFormation, the console, ...: applying the output changes
    /// nothing (adopted by ID, deletionPolicy Retain, managementPolicy Observe unless --manage). Makes
    /// list calls only (GetApis, GetIntegrations, GetRoutes, GetVpcLinks, and GetIntegrationResponses
    /// once per AWS, HTTP or MOCK integration of a WebSocket API, whose responses it writes into the
    /// spec) and writes nothing to AWS. docs/migrating.md is the guide.
    Import(ImportArgs),
}

#[derive(Parser, Debug)]
pub(crate) struct ImportArgs {
    /// Region to import from (default: the AWS SDK's region chain, as `run`).
    #[arg(long, env = "APIGW_REGION")]
    pub(crate) region: Option<String>,
    /// Act as this IAM role (assumed on top of the usual credentials), e.g. a team account's role.
    #[arg(long)]
    pub(crate) role_arn: Option<String>,
    /// External ID for --role-arn, if the role's trust policy asks for one.
    #[arg(long, requires = "role_arn")]
    pub(crate) external_id: Option<String>,
    /// Import this API (repeatable).
    #[arg(long = "api-id", value_name = "ID")]
    pub(crate) api_ids: Vec<String>,
    /// Import the APIs whose Name matches this glob (`*`, `?`; repeatable).
    #[arg(long = "api-name", value_name = "GLOB")]
    pub(crate) api_names: Vec<String>,
    /// Import only APIs carrying this tag (repeatable: every one must match).
    #[arg(long = "api-tag", value_name = "KEY=VALUE")]
    pub(crate) api_tags: Vec<apigw_operator::import::TagFilter>,
    /// metadata.namespace of the objects (and the kustomization's namespace).
    #[arg(long, short = 'n')]
    pub(crate) namespace: Option<String>,
    /// Write one file per API and a kustomization.yaml into this directory instead of stdout.
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
    /// Write managementPolicy Manage instead of Observe: the operator takes over at once.
    #[arg(long)]
    pub(crate) manage: bool,
    /// Most API Gateway calls per second (shared with whatever else uses the account's quota).
    #[arg(long, env = "APIGW_AWS_RATE", default_value_t = 10.0)]
    pub(crate) aws_rate: f64,
    /// Burst of API Gateway calls (the same default as `run`: API Gateway's documented burst).
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 40)]
    pub(crate) aws_burst: u32,
    /// Seconds to wait for one API Gateway answer.
    #[arg(long, env = "APIGW_AWS_TIMEOUT_SECONDS", default_value_t = 10)]
    pub(crate) aws_timeout_seconds: u64,
}

#[derive(Parser, Debug)]
pub(crate) struct RunArgs {
    /// Region for ApiIntegrations that do not set spec.region (default: the AWS SDK's region chain).
    #[arg(long, env = "APIGW_REGION")]
    pub(crate) region: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub(crate) watch_namespace: Option<String>,
    /// Seconds between drift checks of an in-sync resource (an API's resources are checked together,
    /// at a time of the period fixed per API, ±2 %).
    #[arg(long, env = "APIGW_RESYNC_SECONDS", default_value_t = 600)]
    pub(crate) resync_seconds: u64,
    /// Seconds between retries of conditions someone else must fix (missing API, access denied, routes).
    #[arg(long, env = "APIGW_SLOW_RETRY_SECONDS", default_value_t = 60)]
    pub(crate) slow_retry_seconds: u64,
    /// Most API Gateway calls per second per account and region: the ceiling of the adaptive budget,
    /// which lowers the rate when API Gateway throttles and raises it again up to this. The default is
    /// API Gateway's documented control-plane quota.
    #[arg(long, env = "APIGW_AWS_RATE", default_value_t = 10.0)]
    pub(crate) aws_rate: f64,
    /// Burst of API Gateway calls per account and region. The default is API Gateway's documented
    /// burst: the bucket starts empty, and a throttled answer drops whatever it saved (the account's
    /// own bucket is empty then), so a burst is only spent when nobody else has spent the account's.
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 40)]
    pub(crate) aws_burst: u32,
    /// Resources reconciled at once. More than --aws-concurrency, so that one reconcile's Kubernetes
    /// reads and writes overlap another's AWS call.
    #[arg(long, env = "APIGW_CONCURRENCY", default_value_t = 16)]
    pub(crate) concurrency: u16,
    /// API Gateway calls in flight at once per AWS account and region.
    #[arg(long, env = "APIGW_AWS_CONCURRENCY", default_value_t = 4)]
    pub(crate) aws_concurrency: u16,
    /// Seconds to wait for one API Gateway answer before treating the call as failed (and retrying).
    /// With leader election, writes stop this long (plus --lease-margin-seconds) before the Lease could
    /// pass to a stand-by, so it must be well below --lease-duration-seconds.
    #[arg(long, env = "APIGW_AWS_TIMEOUT_SECONDS", default_value_t = 10)]
    pub(crate) aws_timeout_seconds: u64,
    /// Append every AWS call (time, operation, outcome) to this file as JSON lines.
    #[arg(long, env = "APIGW_AWS_CALL_LOG")]
    pub(crate) aws_call_log: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "APIGW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "APIGW_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub(crate) http_addr: std::net::SocketAddr,
    /// Who may manage what: `open` (the operator's identity, any API) or `policy` (only what an
    /// ApiGatewayAccess allows, with its IAM role).
    #[arg(long, env = "APIGW_TENANCY", value_enum, default_value_t = TenancyMode::Open)]
    pub(crate) tenancy: TenancyMode,
    /// Reconcile only while holding a coordination.k8s.io Lease (run several replicas, one works).
    #[arg(long, env = "APIGW_LEADER_ELECTION")]
    pub(crate) leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "APIGW_LEASE_NAME", default_value = "apigw-operator")]
    pub(crate) lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub(crate) lease_namespace: Option<String>,
    /// Seconds a leader's Lease stays valid without renewal; a stand-by takes over after that.
    #[arg(long, env = "APIGW_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub(crate) lease_duration_seconds: u64,
    /// Seconds between the end of a leader's writes and the earliest a stand-by may take the Lease,
    /// beyond --aws-timeout-seconds (covers polling and clock-rate differences).
    #[arg(long, env = "APIGW_LEASE_MARGIN_SECONDS", default_value_t = 1.0)]
    pub(crate) lease_margin_seconds: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum TenancyMode {
    Open,
    Policy,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}
