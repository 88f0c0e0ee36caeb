//! `apigw-operator run`: wires the clients, the fence, the HTTP server and the stop signal to the
//! controller, and with leader election waits for the Lease first.

use crate::LOG_TARGET;
use crate::cli::{LogFormat, RunArgs, TenancyMode};
use crate::startup::{ensure_can_list, kube_client, kube_config, log_aws_identity, sdk_config};
use anyhow::Context;
use apigw_operator::aws::CallStats;
use apigw_operator::controller::{self, Settings};
use apigw_operator::fence::{Fence, LeaseTimings};
use apigw_operator::lease::{self, LeaseConfig};
use apigw_operator::metrics::{self, Health, Metrics};
use std::sync::Arc;
use std::time::Duration;

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

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
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
    tracing::info!(target: LOG_TARGET, region = %settings.default_region, rate = settings.aws_rate, burst = settings.aws_burst,
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
        tracing::info!(target: LOG_TARGET, "termination signal: finishing in-flight work");
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
    tracing::info!(target: LOG_TARGET, addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let router = metrics::router(metrics, health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(target: LOG_TARGET, error = %e, "metrics server stopped");
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
    tracing::info!(target: LOG_TARGET, lease = %args.lease_name, namespace = %lease_namespace, %identity,
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
    tracing::info!(target: LOG_TARGET, %identity, "leading: starting the controller");
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
        tracing::warn!(target: LOG_TARGET, error = %e, "lease task failed");
    }
    metrics.set_leader(false);
    Ok(())
}

async fn termination_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
