//! `apigw_operator_resources`: the ApiIntegrations in the controller's cache, counted at scrape time.

use crate::api::ApiIntegration;
use crate::conditions::ready;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReadyLabels {
    ready: String,
    reason: String,
}

/// `apigw_operator_resources{ready,reason}`: ApiIntegrations in the controller's cache, counted per
/// (Ready status, reason) afresh on every scrape. The counts live only in the scrape that computed them,
/// so concurrent scrapes cannot see each other's half-built numbers, and a reason no resource has any
/// more disappears from the output instead of lingering at 0.
pub(super) struct ResourcesCollector {
    /// Set once, when the controller's reflector exists; until then the metric has no series.
    pub(super) store: Arc<OnceLock<Store<ApiIntegration>>>,
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

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use crate::api::ApiIntegration;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;
    use std::sync::Arc;

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
