//! Every API Gateway call counted (metrics) and, optionally, logged as a JSON line.

use std::sync::Mutex;
use std::time::SystemTime;

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
    /// Calls made so far, by operation (whatever the outcome).
    counts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl CallStats {
    /// With `log`, each call is appended there as a JSON line (time, operation, outcome, region).
    pub fn new(log: Option<std::fs::File>) -> Self {
        CallStats {
            log: log.map(Mutex::new),
            metrics: None,
            counts: Mutex::default(),
        }
    }

    /// Also counts each call in the Prometheus metrics.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The budget of (account, region) after a call, and how long that call waited for its token.
    pub(super) fn budget(
        &self,
        account: &str,
        region: &str,
        allowed_rate: f64,
        throttled: bool,
        waited: std::time::Duration,
    ) {
        if let Some(m) = &self.metrics {
            m.aws_budget(account, region, allowed_rate, throttled);
            m.aws_token_waited(waited);
        }
    }

    /// The calls made so far, by operation.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.counts.lock().unwrap().clone()
    }

    pub(super) fn record(&self, rec: CallRecord) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(rec.operation)
            .or_default() += 1;
        if let Some(m) = &self.metrics {
            m.aws_call(rec.operation, rec.outcome, &rec.region);
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
