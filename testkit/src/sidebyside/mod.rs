//! The side-by-side benchmark (issue 13): `limit`, ours (limiter off and defaults) and ACK's controller
//! (1 and 4 workers), each in turn on the same local stack, counted the same way. `benches/sidebyside.rs`
//! runs it at full size and writes docs/benchmarks.md; `tests/bench_smoke.rs` runs it small inside
//! `cargo xtask test` so that it cannot rot. Every contender's AWS calls are counted by the same
//! [`crate::proxy::FaultProxy`] in front of moto, with no fault rule set.

pub mod procs;
pub mod report;
pub mod run;
pub mod underquota;
pub mod watch;

pub use run::{AckSetup, Config, Kind, RunResult};

use crate::paths::{cache_dir, stack_dir, target_dir};
use crate::stack::stack_env;
use std::path::{Path, PathBuf};

/// ACK's controller as an earlier `cargo xtask bench` cached it (xtask's tools.rs builds it; this only
/// looks), or None.
pub fn cached_ack() -> Option<AckSetup> {
    let version = "v1.4.1";
    let bin = cache_dir()
        .join("bin")
        .join(format!("ack-apigatewayv2-controller-{version}"));
    let crds = cache_dir()
        .join("crds")
        .join(format!("ack-apigatewayv2-controller-{version}"));
    (bin.is_file()
        && crds
            .join("apigatewayv2.services.k8s.aws_integrations.yaml")
            .is_file())
    .then_some(AckSetup { bin, crds })
}

/// A configuration for `resources` on the running stack (found as the tests find it), with the bench's
/// default drift period, idle time and quiet time for that size.
pub fn config(
    resources: usize,
    contenders: Vec<Kind>,
    ack: Option<AckSetup>,
    operator_bin: &Path,
) -> Config {
    let env = stack_env();
    let drift_s = Config::default_drift_s(resources);
    let mut stack_env: Vec<(String, String)> =
        env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    stack_env.sort();
    Config {
        resources,
        contenders,
        drift_s,
        idle_s: drift_s * 5 / 2,
        quiet_s: 5.0,
        settle_max_s: drift_s / 2,
        ack,
        operator_bin: operator_bin.to_path_buf(),
        apply_concurrency: 8,
        kubeconfig: PathBuf::from(&env["KUBECONFIG"]),
        moto_endpoint: env["AWS_ENDPOINT_URL"].clone(),
        region: env
            .get("AWS_REGION")
            .cloned()
            .unwrap_or_else(|| "us-east-1".into()),
        stack_env,
        stack_dir: stack_dir(),
        log_dir: target_dir().join("bench-logs"),
    }
}

/// Runs the rows under the quota on a runtime of its own, with `cfg`'s stack and sizes.
pub fn run_quota_blocking(
    cfg: &Config,
    quota: crate::quota::Quota,
    rows: &[underquota::Row],
) -> anyhow::Result<underquota::QuotaRun> {
    std::fs::create_dir_all(&cfg.log_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(underquota::run(cfg, quota, rows))
}

/// Runs `cfg` on a runtime of its own.
pub fn run_blocking(cfg: &Config) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&cfg.log_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run::run(cfg))
}
