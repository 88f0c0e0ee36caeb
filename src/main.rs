use apigw_operator::aws::CallStats;
use apigw_operator::controller::{self, Settings};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Kubernetes operator for AWS API Gateway V2 integrations.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ApiIntegration CustomResourceDefinition as YAML.
    Crd,
    /// Run the operator.
    Run(RunArgs),
}

#[derive(Parser, Debug)]
struct RunArgs {
    /// Region for ApiIntegrations that do not set spec.region (default: the AWS SDK's region chain).
    #[arg(long, env = "APIGW_REGION")]
    region: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Seconds between drift checks of an in-sync resource (±10 % jitter).
    #[arg(long, env = "APIGW_RESYNC_SECONDS", default_value_t = 600)]
    resync_seconds: u64,
    /// Seconds between retries of conditions someone else must fix (missing API, access denied, routes).
    #[arg(long, env = "APIGW_SLOW_RETRY_SECONDS", default_value_t = 60)]
    slow_retry_seconds: u64,
    /// API Gateway calls per second per region.
    #[arg(long, env = "APIGW_AWS_RATE", default_value_t = 8.0)]
    aws_rate: f64,
    /// Burst of API Gateway calls per region.
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 20)]
    aws_burst: u32,
    /// Resources reconciled at once.
    #[arg(long, env = "APIGW_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,
    /// Append every AWS call (time, operation, outcome) to this file as JSON lines.
    #[arg(long, env = "APIGW_AWS_CALL_LOG")]
    aws_call_log: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "APIGW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("APIGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", apigw_operator::crd::crd_yaml());
            Ok(())
        }
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    anyhow::ensure!(args.aws_rate > 0.0, "--aws-rate must be positive");
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk_config = loader.load().await;
    let default_region = sdk_config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| anyhow::anyhow!("no AWS region: pass --region or set AWS_REGION"))?;
    let failpoint = std::env::var("APIGW_FAILPOINT")
        .ok()
        .filter(|f| !f.is_empty());
    if let Some(f) = &failpoint {
        tracing::warn!(failpoint = %f, "test failpoint armed");
    }
    let settings = Settings {
        default_region,
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        slow_retry: Duration::from_secs(args.slow_retry_seconds.max(1)),
        aws_rate: args.aws_rate,
        aws_burst: args.aws_burst,
        failpoint,
    };
    let call_log = match &args.aws_call_log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let stats = Arc::new(CallStats::new(call_log));
    tracing::info!(region = %settings.default_region, rate = settings.aws_rate, burst = settings.aws_burst,
        resync = ?settings.resync, "starting apigw-operator");
    let client = kube::Client::try_default().await?;
    controller::run(
        client,
        args.watch_namespace,
        sdk_config,
        settings,
        stats,
        args.concurrency,
    )
    .await
}
