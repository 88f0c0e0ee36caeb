//! Prometheus metrics and the health endpoints (`/metrics`, `/healthz`, `/readyz`) on one small HTTP
//! server. Metric names follow Prometheus conventions with the `apigw_operator_` prefix.

use crate::api::ApiIntegration;
use crate::conditions::ready;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub ready: String,
    pub reason: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub aws_calls: Family<AwsCallLabels, Counter>,
    resources: Family<ReadyLabels, Gauge>,
    leader: Gauge,
    store: OnceLock<Store<ApiIntegration>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("apigw_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (ok or the error class)",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, AWS calls and rate-limit waits included",
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "API Gateway calls by operation and outcome",
            aws_calls.clone(),
        );
        let resources = Family::<ReadyLabels, Gauge>::default();
        registry.register(
            "resources",
            "ApiIntegrations watched, by Ready status and reason",
            resources.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader lease (or runs without leader election)",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            reconciles,
            reconcile_duration,
            aws_calls,
            resources,
            leader,
            store: OnceLock::new(),
        }
    }

    /// The controller's cache, from which the per-reason resource gauge is computed at scrape time.
    pub fn watch_store(&self, store: Store<ApiIntegration>) {
        let _ = self.store.set(store);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn reconciled(&self, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn aws_call(&self, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        if let Some(store) = self.store.get() {
            self.resources.clear();
            for obj in store.state() {
                let (ready, reason) = obj
                    .status
                    .as_ref()
                    .and_then(|s| ready(&s.conditions))
                    .map(|c| (c.status.clone(), c.reason.clone()))
                    .unwrap_or_else(|| ("Unknown".into(), "Pending".into()));
                self.resources
                    .get_or_create(&ReadyLabels { ready, reason })
                    .inc();
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().unwrap())
            .expect("writing to a String cannot fail");
        out
    }
}

/// What the health endpoints report.
#[derive(Default)]
pub struct Health {
    /// Set once this process can do its job: leading with its cache filled, or standing by for the lease.
    pub ready: AtomicBool,
}

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(serve_ready))
        .with_state(ServerState { metrics, health })
}

async fn serve_metrics(State(s): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn serve_ready(State(s): State<ServerState>) -> impl IntoResponse {
    if s.health.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// Serves the router on `addr` until the process ends.
pub async fn serve(addr: std::net::SocketAddr, router: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.reconciled("ok", Duration::from_millis(20));
        m.aws_call("CreateIntegration", "ok");
        m.aws_call("CreateIntegration", "ok");
        m.set_leader(true);
        let text = m.encode();
        assert!(
            text.contains("apigw_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("apigw_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("apigw_operator_leader 1"), "{text}");
    }
}
