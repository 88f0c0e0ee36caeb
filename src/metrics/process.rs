//! The standard process metrics (CPU, resident memory, start time), read from /proc at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `process_cpu_seconds_total`, `process_resident_memory_bytes` and `process_start_time_seconds`, read from
/// /proc/self on every scrape, under the names every Prometheus client library uses (the Go client exports
/// them by default; prometheus-client does not), so that dashboards can show the operator's CPU and memory
/// from its own target without cAdvisor. Nothing is written where /proc is missing (not Linux).
#[derive(Debug)]
pub(super) struct ProcessCollector;

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

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

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
}
