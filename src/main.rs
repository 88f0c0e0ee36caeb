use anyhow::Context;
use apigw_operator::api::ApiIntegration;
use apigw_operator::aws::CallStats;
use apigw_operator::controller::{self, Settings};
use apigw_operator::fence::{Fence, FenceLayer, LeaseTimings};
use apigw_operator::lease::{self, LeaseConfig};
use apigw_operator::metrics::{self, Health, Metrics};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
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
struct ImportArgs {
    /// Region to import from (default: the AWS SDK's region chain, as `run`).
    #[arg(long, env = "APIGW_REGION")]
    region: Option<String>,
    /// Act as this IAM role (assumed on top of the usual credentials), e.g. a team account's role.
    #[arg(long)]
    role_arn: Option<String>,
    /// External ID for --role-arn, if the role's trust policy asks for one.
    #[arg(long, requires = "role_arn")]
    external_id: Option<String>,
    /// Import this API (repeatable).
    #[arg(long = "api-id", value_name = "ID")]
    api_ids: Vec<String>,
    /// Import the APIs whose Name matches this glob (`*`, `?`; repeatable).
    #[arg(long = "api-name", value_name = "GLOB")]
    api_names: Vec<String>,
    /// Import only APIs carrying this tag (repeatable: every one must match).
    #[arg(long = "api-tag", value_name = "KEY=VALUE")]
    api_tags: Vec<apigw_operator::import::TagFilter>,
    /// metadata.namespace of the objects (and the kustomization's namespace).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Write one file per API and a kustomization.yaml into this directory instead of stdout.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Write managementPolicy Manage instead of Observe: the operator takes over at once.
    #[arg(long)]
    manage: bool,
    /// Most API Gateway calls per second (shared with whatever else uses the account's quota).
    #[arg(long, env = "APIGW_AWS_RATE", default_value_t = 10.0)]
    aws_rate: f64,
    /// Burst of API Gateway calls (the same default as `run`: API Gateway's documented burst).
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 40)]
    aws_burst: u32,
    /// Seconds to wait for one API Gateway answer.
    #[arg(long, env = "APIGW_AWS_TIMEOUT_SECONDS", default_value_t = 10)]
    aws_timeout_seconds: u64,
}

#[derive(Parser, Debug)]
struct RunArgs {
    /// Region for ApiIntegrations that do not set spec.region (default: the AWS SDK's region chain).
    #[arg(long, env = "APIGW_REGION")]
    region: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Seconds between drift checks of an in-sync resource (an API's resources are checked together,
    /// at a time of the period fixed per API, ±2 %).
    #[arg(long, env = "APIGW_RESYNC_SECONDS", default_value_t = 600)]
    resync_seconds: u64,
    /// Seconds between retries of conditions someone else must fix (missing API, access denied, routes).
    #[arg(long, env = "APIGW_SLOW_RETRY_SECONDS", default_value_t = 60)]
    slow_retry_seconds: u64,
    /// Most API Gateway calls per second per account and region: the ceiling of the adaptive budget,
    /// which lowers the rate when API Gateway throttles and raises it again up to this. The default is
    /// API Gateway's documented control-plane quota.
    #[arg(long, env = "APIGW_AWS_RATE", default_value_t = 10.0)]
    aws_rate: f64,
    /// Burst of API Gateway calls per account and region. The default is API Gateway's documented
    /// burst: the bucket starts empty, and a throttled answer drops whatever it saved (the account's
    /// own bucket is empty then), so a burst is only spent when nobody else has spent the account's.
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 40)]
    aws_burst: u32,
    /// Resources reconciled at once. More than --aws-concurrency, so that one reconcile's Kubernetes
    /// reads and writes overlap another's AWS call.
    #[arg(long, env = "APIGW_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// API Gateway calls in flight at once per AWS account and region.
    #[arg(long, env = "APIGW_AWS_CONCURRENCY", default_value_t = 4)]
    aws_concurrency: u16,
    /// Seconds to wait for one API Gateway answer before treating the call as failed (and retrying).
    /// With leader election, writes stop this long (plus --lease-margin-seconds) before the Lease could
    /// pass to a stand-by, so it must be well below --lease-duration-seconds.
    #[arg(long, env = "APIGW_AWS_TIMEOUT_SECONDS", default_value_t = 10)]
    aws_timeout_seconds: u64,
    /// Append every AWS call (time, operation, outcome) to this file as JSON lines.
    #[arg(long, env = "APIGW_AWS_CALL_LOG")]
    aws_call_log: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "APIGW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "APIGW_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Who may manage what: `open` (the operator's identity, any API) or `policy` (only what an
    /// ApiGatewayAccess allows, with its IAM role).
    #[arg(long, env = "APIGW_TENANCY", value_enum, default_value_t = TenancyMode::Open)]
    tenancy: TenancyMode,
    /// Reconcile only while holding a coordination.k8s.io Lease (run several replicas, one works).
    #[arg(long, env = "APIGW_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "APIGW_LEASE_NAME", default_value = "apigw-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Seconds a leader's Lease stays valid without renewal; a stand-by takes over after that.
    #[arg(long, env = "APIGW_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between the end of a leader's writes and the earliest a stand-by may take the Lease,
    /// beyond --aws-timeout-seconds (covers polling and clock-rate differences).
    #[arg(long, env = "APIGW_LEASE_MARGIN_SECONDS", default_value_t = 1.0)]
    lease_margin_seconds: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TenancyMode {
    Open,
    Policy,
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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Crd { dir: None } => {
            print!("{}", apigw_operator::crd::crd_yaml());
            Ok(())
        }
        Command::Crd { dir: Some(dir) } => write_crds(&dir),
        Command::Run(args) => run(args).await,
        Command::Import(args) => import(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause and its chain, with the hint the error carries. No Debug dump and
            // no backtrace (anyhow prints one from `main() -> Result` when RUST_BACKTRACE is set).
            eprintln!("error: {}", one_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    anyhow::ensure!(args.aws_rate > 0.0, "--aws-rate must be positive");
    let sdk_config = sdk_config(args.region.as_deref()).await;
    let default_region = sdk_config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| anyhow::anyhow!("no AWS region: pass --region or set AWS_REGION"))?;
    let settings = settings(&args, default_region);
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let stats = Arc::new(CallStats::new(call_log(&args)?).with_metrics(metrics.clone()));
    tracing::info!(region = %settings.default_region, rate = settings.aws_rate, burst = settings.aws_burst,
        resync = ?settings.resync, "starting apigw-operator");
    tokio::spawn(log_aws_identity(sdk_config.clone()));
    // With leader election, every write goes through the fence: checked once here, refused at start
    // when the timings cannot fence (design rule 10).
    let timings = lease_timings(&args, settings.aws_timeout)?;
    let fence = timings.map_or_else(Fence::open, Fence::leased);
    let config = kube_config().await?;
    let client = kube_client(config.clone(), None).await?;
    ensure_can_list(&client, settings.namespace.as_deref()).await?;
    // The controller's own client: its writes pass the fence first. The plain one reads and keeps the
    // Lease.
    let fenced_client = kube_client(config, Some(fence.clone())).await?;
    serve_http(args.http_addr, metrics.clone(), health.clone()).await?;

    // SIGTERM or Ctrl-C flips this once; everything that must stop watches it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        termination_signal().await;
        tracing::info!("termination signal: finishing in-flight work");
        let _ = stop_tx.send(true);
    });
    let shared = controller::Shared {
        stats,
        metrics,
        health,
        fence,
    };
    let Some(timings) = timings else {
        shared.metrics.set_leader(true);
        return controller::run(
            fenced_client,
            sdk_config,
            settings,
            shared,
            stopped(stop_rx),
        )
        .await;
    };
    let clients = Clients {
        plain: client,
        fenced: fenced_client,
        sdk_config,
    };
    lead_then_run(&args, clients, settings, shared, timings, stop_rx).await
}

/// `apigw-operator import`: list, build, write; progress and the call count on stderr.
async fn import(args: ImportArgs) -> anyhow::Result<()> {
    use apigw_operator::api::ManagementPolicy;
    use apigw_operator::aws::credentials::Identity;
    use apigw_operator::import::{self, Options, Policy, Selection, render};
    anyhow::ensure!(args.aws_rate > 0.0, "--aws-rate must be positive");
    let started = std::time::Instant::now();
    let sdk_config = sdk_config(args.region.as_deref()).await;
    let region = sdk_config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| anyhow::anyhow!("no AWS region: pass --region or set AWS_REGION"))?;
    let identity = Identity {
        role_arn: args.role_arn.clone(),
        external_id: args.external_id.clone(),
        session_name: "apigw-operator-import".into(),
    };
    let stats = Arc::new(CallStats::default());
    let aws = apigw_operator::aws::reader(
        &sdk_config,
        &identity,
        &region,
        Duration::from_secs(args.aws_timeout_seconds.max(1)),
        (args.aws_rate, args.aws_burst),
        stats.clone(),
    )
    .await;
    let selection = Selection {
        ids: args.api_ids.clone(),
        name_globs: args.api_names.clone(),
        tags: args.api_tags.clone(),
    };
    let mut listed = 0usize;
    let retry = import::retry::Retry::IMPORT;
    let (listings, region_info) = import::list::list(&aws, &selection, &retry, |p| {
        if let import::list::Progress::Listed { listing, .. } = &p {
            listed += listing.integrations.len();
            eprintln!("import: {p} ({listed} integrations so far)");
        } else {
            eprintln!("import: {p}");
        }
    })
    .await
    .with_context(|| format!("cannot list API Gateway in {region}"))?;
    let options = Options {
        namespace: args.namespace.clone(),
        policy: Policy {
            management: if args.manage {
                ManagementPolicy::Manage
            } else {
                ManagementPolicy::Observe
            },
        },
    };
    let result = import::import(&listings, &region_info, &options);
    for s in result.skipped() {
        eprintln!("import: {s}");
    }
    for o in result.objects() {
        for l in &o.left_out {
            let name = o.object.metadata.name.as_deref().unwrap_or_default();
            eprintln!("import: {name}: {l}");
        }
    }
    match &args.out_dir {
        None => print!("{}", render::stream(&result)),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create --out-dir {}", dir.display()))?;
            for (name, text) in render::out_dir_files(&result, args.namespace.as_deref()) {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    let counts = stats.counts();
    let calls: u64 = counts.values().sum();
    let by_op: Vec<String> = counts.iter().map(|(op, n)| format!("{op} {n}")).collect();
    eprintln!(
        "import: {} ApiIntegrations written, {} integrations skipped, from {} APIs in {region} in \
         {:.1} s; {calls} AWS calls ({})",
        result.objects().count(),
        result.skipped().count(),
        result.files.len(),
        started.elapsed().as_secs_f64(),
        by_op.join(", ")
    );
    if result.files.is_empty() {
        eprintln!("import: no API in {region} matched the selection");
    }
    Ok(())
}

/// The AWS SDK's configuration from the environment (credentials chain, AWS_ENDPOINT_URL), in `region`
/// when given.
async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// Resolves once the stop channel says stop.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

/// The controller's settings from the command line (and, with the feature, the test hooks).
fn settings(args: &RunArgs, default_region: String) -> Settings {
    Settings {
        default_region,
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        slow_retry: Duration::from_secs(args.slow_retry_seconds.max(1)),
        aws_rate: args.aws_rate,
        aws_burst: args.aws_burst,
        failpoints: apigw_operator::failpoints::Failpoints::from_env(),
        namespace: args.watch_namespace.clone(),
        concurrency: args.concurrency,
        aws_concurrency: usize::from(args.aws_concurrency),
        aws_timeout: Duration::from_secs(args.aws_timeout_seconds.max(1)),
        tenancy: match args.tenancy {
            TenancyMode::Open => controller::Tenancy::Open,
            TenancyMode::Policy => controller::Tenancy::Policy,
        },
    }
}

/// The file `--aws-call-log` names, opened for appending.
fn call_log(args: &RunArgs) -> anyhow::Result<Option<std::fs::File>> {
    let Some(p) = &args.aws_call_log else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .with_context(|| format!("cannot open --aws-call-log {}", p.display()))?;
    Ok(Some(file))
}

/// With leader election, the lease's timings, checked to be able to fence the writes.
fn lease_timings(args: &RunArgs, aws_timeout: Duration) -> anyhow::Result<Option<LeaseTimings>> {
    if !args.leader_election {
        return Ok(None);
    }
    let margin = Duration::try_from_secs_f64(args.lease_margin_seconds)
        .map_err(|_| anyhow::anyhow!("--lease-margin-seconds must be a positive number"))?;
    let timings = LeaseTimings::new(
        Duration::from_secs(args.lease_duration_seconds),
        aws_timeout,
        margin,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some(timings))
}

/// Serves /metrics, /healthz and /readyz on `addr` in the background.
async fn serve_http(
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on --http-addr {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let router = metrics::router(metrics, health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

/// The clients the process runs with.
struct Clients {
    /// Reads, and keeps the Lease.
    plain: kube::Client,
    /// The controller's: its writes pass the fence first.
    fenced: kube::Client,
    sdk_config: aws_config::SdkConfig,
}

/// With leader election: stand by until this replica holds the Lease, then run the controller until
/// the Lease is lost (an error: the process restarts clean) or the process is told to stop.
async fn lead_then_run(
    args: &RunArgs,
    clients: Clients,
    settings: Settings,
    shared: controller::Shared,
    timings: LeaseTimings,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let lease_namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| clients.plain.default_namespace().to_string());
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        format!(
            "{}-{:08x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "apigw-operator".into()),
            rand::random::<u32>()
        )
    });
    let (mut leading, lease_task) = lease::spawn(
        LeaseConfig {
            api: kube::Api::namespaced(clients.plain.clone(), &lease_namespace),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            timings,
        },
        shared.fence.clone(),
    );
    // A stand-by is healthy and ready: it is doing its job, which is to wait.
    shared
        .health
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (metrics, fence) = (shared.metrics.clone(), shared.fence.clone());
    metrics.set_leader(false);
    tracing::info!(lease = %args.lease_name, namespace = %lease_namespace, %identity,
        write_window = ?timings.write_window(), renew_every = ?timings.renew_every(), "waiting to lead");
    let became_leader = tokio::select! {
        r = leading.wait_for(|l| *l) => r.is_ok(),
        _ = stopped(stop_rx.clone()) => false,
    };
    if !became_leader {
        drop(leading);
        let _ = lease_task.await;
        return Ok(());
    }
    tracing::info!(%identity, "leading: starting the controller");
    metrics.set_leader(true);
    let lost = {
        let mut rx = leading.clone();
        async move {
            let _ = rx.wait_for(|l| !*l).await.map(|_| ());
        }
    };
    let lost_leadership = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shutdown = {
        let flag = lost_leadership.clone();
        let stop = stopped(stop_rx);
        async move {
            tokio::select! {
                _ = lost => flag.store(true, std::sync::atomic::Ordering::SeqCst),
                _ = stop => {}
            }
        }
    };
    controller::run(
        clients.fenced,
        clients.sdk_config,
        settings,
        shared,
        shutdown,
    )
    .await?;
    if lost_leadership.load(std::sync::atomic::Ordering::SeqCst) {
        // Another replica leads now (or may): restart clean rather than run a second controller.
        metrics.set_leader(false);
        anyhow::bail!(
            "lost the leader lease ({} writes refused by the fence)",
            fence.refused()
        );
    }
    // Closing the channel makes the lease task release the Lease, so a stand-by takes over at once.
    drop(leading);
    if let Err(e) = lease_task.await {
        tracing::warn!(error = %e, "lease task failed");
    }
    metrics.set_leader(false);
    Ok(())
}

fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    for (file, yaml) in apigw_operator::crd::crds() {
        let path = dir.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn kube_config() -> anyhow::Result<kube::Config> {
    kube::Config::infer().await.context(
        "no usable Kubernetes configuration: run in a pod with a service account, \
         or set KUBECONFIG (default ~/.kube/config) to a valid kubeconfig",
    )
}

/// A client for the cluster from the environment (in-cluster service account, else KUBECONFIG or
/// ~/.kube/config), checked by asking the API server for its version, so that an unreachable server or
/// a rejected token is reported as such at startup.
/// With `fence`, every write of this client is checked against it first (see [`apigw_operator::fence`]).
async fn kube_client(
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
async fn ensure_can_list(client: &kube::Client, namespace: Option<&str>) -> anyhow::Result<()> {
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
async fn log_aws_identity(sdk_config: aws_config::SdkConfig) {
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
            account = who.account().unwrap_or("?"),
            arn = who.arn().unwrap_or("?"),
            "AWS identity"
        ),
        Err(e) => tracing::warn!(
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

/// An error chain (the error, then its sources) on one line, `a: b: c`, leaving out a source whose
/// text is already shown: kube's and the AWS SDK's errors often print their source in their own text.
fn one_line<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for e in chain {
        let text = e.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

async fn termination_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_is_one_line_without_repeats() {
        let io = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(io)
            .context("tcp connect error: connection refused")
            .context("cannot reach the Kubernetes API server at https://127.0.0.1:1/;\ncheck it");
        assert_eq!(
            one_line(e.chain()),
            "cannot reach the Kubernetes API server at https://127.0.0.1:1/; check it: \
             tcp connect error: connection refused"
        );
    }
}
