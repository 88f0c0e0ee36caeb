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
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    operation: String,
    outcome: String,
    region: String,
}

/// One AWS budget: the account ("self" for the operator's own identity) and the region.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    account: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReadyLabels {
    ready: String,
    reason: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    aws_calls: Family<AwsCallLabels, Counter>,
    aws_allowed_rate: Family<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    aws_throttled: Family<BudgetLabels, Counter>,
    aws_token_wait: Histogram,
    leader: Gauge,
    checks_in_sync: Counter,
    store: Arc<OnceLock<Store<ApiIntegration>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        // The process metrics keep their standard unprefixed names; everything of ours is apigw_operator_*.
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("apigw_operator");
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
            "API Gateway calls by operation, outcome and region",
            aws_calls.clone(),
        );
        let aws_allowed_rate =
            Family::<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "aws_allowed_rate",
            "Calls per second the adaptive budget allows now, per account and region (lowered when API \
             Gateway throttles, raised again over time, never above --aws-rate)",
            aws_allowed_rate.clone(),
        );
        let aws_throttled = Family::<BudgetLabels, Counter>::default();
        registry.register(
            "aws_throttled",
            "API Gateway answers 429 (TooManyRequests), per account and region",
            aws_throttled.clone(),
        );
        let aws_token_wait = Histogram::new([
            0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ]);
        registry.register(
            "aws_token_wait_seconds",
            "Time a call waited for a token of its account's and region's budget before it was sent",
            aws_token_wait.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader lease (or runs without leader election)",
            leader.clone(),
        );
        let checks_in_sync = Counter::default();
        registry.register(
            "checks_in_sync",
            "Looks at AWS (drift checks, mostly) that found the integration already as the spec asks; \
             they write nothing, to AWS or to Kubernetes",
            checks_in_sync.clone(),
        );
        let store = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(ResourcesCollector {
            store: store.clone(),
        }));
        Metrics {
            registry: root,
            reconciles,
            reconcile_duration,
            aws_calls,
            aws_allowed_rate,
            aws_throttled,
            aws_token_wait,
            leader,
            checks_in_sync,
            store,
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

    pub fn checked_in_sync(&self) {
        self.checks_in_sync.inc();
    }

    pub fn aws_call(&self, operation: &str, outcome: &str, region: &str) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                operation: operation.to_string(),
                outcome: outcome.to_string(),
                region: region.to_string(),
            })
            .inc();
    }

    /// After a call: the budget's allowed rate now, and whether AWS throttled the call.
    pub fn aws_budget(&self, account: &str, region: &str, allowed_rate: f64, throttled: bool) {
        let labels = BudgetLabels {
            account: account.to_string(),
            region: region.to_string(),
        };
        self.aws_allowed_rate
            .get_or_create(&labels)
            .set(allowed_rate);
        // The counter exists (at 0) from the first call, so the alert's ratio has a series to divide.
        let throttled_total = self.aws_throttled.get_or_create(&labels);
        if throttled {
            throttled_total.inc();
        }
    }

    pub fn aws_token_waited(&self, waited: Duration) {
        self.aws_token_wait.observe(waited.as_secs_f64());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// `apigw_operator_resources{ready,reason}`: ApiIntegrations in the controller's cache, counted per
/// (Ready status, reason) afresh on every scrape. The counts live only in the scrape that computed them,
/// so concurrent scrapes cannot see each other's half-built numbers, and a reason no resource has any
/// more disappears from the output instead of lingering at 0.
struct ResourcesCollector {
    /// Set once, when the controller's reflector exists; until then the metric has no series.
    store: Arc<OnceLock<Store<ApiIntegration>>>,
}

impl std::fmt::Debug for ResourcesCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourcesCollector")
            .field("watching", &self.store.get().is_some())
            .finish()
    }
}

impl ResourcesCollector {
    fn counts(&self) -> BTreeMap<ReadyLabels, i64> {
        let mut counts = BTreeMap::new();
        for obj in self.store.get().map(Store::state).unwrap_or_default() {
            let (ready, reason) = obj
                .status
                .as_ref()
                .and_then(|s| ready(&s.conditions))
                .map(|c| (c.status.clone(), c.reason.clone()))
                .unwrap_or_else(|| ("Unknown".into(), "Pending".into()));
            *counts.entry(ReadyLabels { ready, reason }).or_insert(0) += 1;
        }
        counts
    }
}

impl Collector for ResourcesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "resources",
            "ApiIntegrations watched, by Ready status and reason",
            None,
            MetricType::Gauge,
        )?;
        for (labels, n) in self.counts() {
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `process_cpu_seconds_total`, `process_resident_memory_bytes` and `process_start_time_seconds`, read from
/// /proc/self on every scrape, under the names every Prometheus client library uses (the Go client exports
/// them by default; prometheus-client does not), so that dashboards can show the operator's CPU and memory
/// from its own target without cAdvisor. Nothing is written where /proc is missing (not Linux).
#[derive(Debug)]
struct ProcessCollector;

/// /proc reports times in USER_HZ ticks, 100 per second on every architecture Kubernetes runs on.
const USER_HZ: f64 = 100.0;

#[derive(Debug, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: i64,
    start_time_seconds: f64,
}

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        Self::parse(
            &std::fs::read_to_string("/proc/self/stat").ok()?,
            &std::fs::read_to_string("/proc/self/status").ok()?,
            &std::fs::read_to_string("/proc/stat").ok()?,
        )
    }

    /// From /proc/self/stat (utime, stime and starttime, fields 14, 15 and 22), /proc/self/status (VmRSS)
    /// and /proc/stat (btime, the boot time in seconds since the epoch).
    fn parse(stat: &str, status: &str, system: &str) -> Option<ProcessStats> {
        // Field 2, the command name, is in parentheses and may itself hold spaces and parentheses.
        let after_comm: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| -> Option<f64> { after_comm.get(n - 3)?.parse().ok() };
        let cpu_seconds = (field(14)? + field(15)?) / USER_HZ;
        let resident_kib: i64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let boot: f64 = system
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(ProcessStats {
            cpu_seconds,
            resident_bytes: resident_kib * 1024,
            start_time_seconds: boot + field(22)? / USER_HZ,
        })
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        ConstCounter::new(p.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?)?;
        ConstGauge::new(p.resident_bytes).encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(p.start_time_seconds).encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.reconciled("ok", Duration::from_millis(20));
        m.aws_call("CreateIntegration", "ok", "eu-west-1");
        m.aws_call("CreateIntegration", "ok", "eu-west-1");
        m.aws_budget("self", "eu-west-1", 7.0, true);
        m.aws_budget("self", "eu-west-1", 7.5, false);
        m.aws_token_waited(Duration::from_millis(300));
        m.set_leader(true);
        let text = m.encode();
        assert!(
            text.contains("apigw_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\",region=\"eu-west-1\"} 2"
            ),
            "{text}"
        );
        for line in [
            "apigw_operator_aws_allowed_rate{account=\"self\",region=\"eu-west-1\"} 7.5",
            "apigw_operator_aws_throttled_total{account=\"self\",region=\"eu-west-1\"} 1",
            "apigw_operator_aws_token_wait_seconds_bucket{le=\"0.5\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(
            text.contains("apigw_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("apigw_operator_leader 1"), "{text}");
    }

    #[test]
    fn process_metrics_come_from_proc_under_their_standard_names() {
        let stat = "4242 (apigw (op) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 9 0 \
                    123456 40000000 5000 18446744073709551615";
        let status =
            "Name:\tapigw-operator\nVmPeak:\t  90000 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        let system = "cpu  1 2 3\nbtime 1700000000\nprocesses 99\n";
        assert_eq!(
            ProcessStats::parse(stat, status, system),
            Some(ProcessStats {
                cpu_seconds: 3.8,
                resident_bytes: 20 * 1024 * 1024,
                start_time_seconds: 1_700_001_234.56,
            })
        );
        assert_eq!(ProcessStats::parse("garbage", status, system), None);

        let text = Metrics::new().encode();
        for want in [
            "# TYPE process_cpu_seconds counter",
            "process_cpu_seconds_total ",
            "# TYPE process_resident_memory_bytes gauge",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(want), "no {want:?} in\n{text}");
        }
        assert!(!text.contains("apigw_operator_process"), "{text}");
    }

    fn integration(name: &str, ready: Option<(&str, &str)>) -> ApiIntegration {
        let mut obj = serde_json::json!({
            "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiIntegration",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"apiId": "a1b2c3", "integrationType": "HTTP_PROXY",
                     "integrationUri": "https://example.com", "integrationMethod": "GET",
                     "payloadFormatVersion": "1.0"},
        });
        if let Some((status, reason)) = ready {
            obj["status"] = serde_json::json!({"conditions": [{
                "type": "Ready", "status": status, "reason": reason, "message": "",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }]});
        }
        serde_json::from_value(obj).unwrap()
    }

    fn resources(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with("apigw_operator_resources"))
            .collect()
    }

    #[test]
    fn resources_are_counted_per_ready_and_reason_on_every_scrape() {
        let m = Arc::new(Metrics::new());
        let text = m.encode();
        assert!(
            text.contains("# TYPE apigw_operator_resources gauge"),
            "{text}"
        );
        assert!(resources(&text).is_empty(), "no store yet: {text}");

        let mut writer = Writer::<ApiIntegration>::default();
        m.watch_store(writer.as_reader());
        for (name, ready) in [
            ("a", Some(("True", "Synced"))),
            ("b", Some(("True", "Synced"))),
            ("c", Some(("False", "ApiNotFound"))),
            ("d", None),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(integration(name, ready)));
        }
        let want = [
            "apigw_operator_resources{ready=\"False\",reason=\"ApiNotFound\"} 1",
            "apigw_operator_resources{ready=\"True\",reason=\"Synced\"} 2",
            "apigw_operator_resources{ready=\"Unknown\",reason=\"Pending\"} 1",
        ];
        // Many scrapes at once, each seeing exactly the store's counts (the old gauge was cleared and
        // refilled in place, so overlapping scrapes added to each other's numbers).
        let scrapes: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| m.encode())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for text in &scrapes {
            assert_eq!(resources(text), want, "{text}");
        }

        // A reason no resource has any more is gone, not left at its last value.
        writer.apply_watcher_event(&watcher::Event::Delete(integration(
            "c",
            Some(("False", "ApiNotFound")),
        )));
        writer.apply_watcher_event(&watcher::Event::Apply(integration(
            "d",
            Some(("True", "Synced")),
        )));
        let text = m.encode();
        assert_eq!(
            resources(&text),
            ["apigw_operator_resources{ready=\"True\",reason=\"Synced\"} 3"],
            "{text}"
        );
    }
}
