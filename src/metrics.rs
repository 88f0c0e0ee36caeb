//! Prometheus metrics and the health endpoints (`/metrics`, `/healthz`, `/readyz`) on one small HTTP
//! server. Metric names follow Prometheus conventions with the `apigw_operator_` prefix.
//!
//! The registry and the families the operator counts into are here; the families computed at scrape
//! time have a module each (`resources`: ApiIntegrations by Ready and reason, `process`: CPU and memory
//! from /proc), and `endpoints` serves them over HTTP.

mod endpoints;
mod process;
mod resources;

pub use endpoints::{Health, router};

use crate::api::ApiIntegration;
use kube::runtime::reflector::Store;
use process::ProcessCollector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use resources::ResourcesCollector;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
