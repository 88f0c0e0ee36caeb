//! Side-by-side benchmark: `limit` (the emulator's own limit), ours with and without its rate limit, and
//! ACK's controller with 1 and 4 workers, one after the other on the same local stack; then the rows under
//! API Gateway's quota (ours alone, two of ours on one account, ACK alone, ACK beside ours); writes
//! docs/benchmarks.md, docs/benchmarks.json, docs/benchmarks-quota.json and docs/benchmarks-<N>.svg. Run
//! it through xtask, which brings the stack up and builds ACK's controller:
//!
//!     cargo xtask bench --resources 1000,5000 [--only limit,ours-unlimited,...]
//!
//! Settings come from the environment xtask passes: APIGW_BENCH_RESOURCES (comma-separated, default
//! 300), APIGW_BENCH_ONLY (contenders and quota rows, e.g. `ours,quota-ours`), APIGW_QUOTA (the quota of
//! the quota rows, `RATE/BURST`, default 10/40; `off` skips them), APIGW_BENCH_ACK_BIN and APIGW_BENCH_ACK_CRDS (else a cached build is used),
//! APIGW_BENCH_DRIFT_SECONDS, APIGW_BENCH_COMMAND (shown in the report), APIGW_BENCH_STACK,
//! APIGW_BENCH_OUT (default docs/). With APIGW_BENCH_RENDER_ONLY=1 it measures nothing and writes the
//! Markdown and charts again from benchmarks.json.

use std::path::PathBuf;
use testkit::quota::Quota;
use testkit::sidebyside::underquota::Row;
use testkit::sidebyside::{self, AckSetup, Kind, report};

fn main() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let out = var("APIGW_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"));
    if var("APIGW_BENCH_RENDER_ONLY").is_some() {
        report::render(&out).expect("docs/benchmarks.json renders");
        return;
    }
    let sizes: Vec<usize> = var("APIGW_BENCH_RESOURCES")
        .unwrap_or_else(|| "300".into())
        .split(',')
        .map(|n| n.trim().parse().expect("APIGW_BENCH_RESOURCES: numbers"))
        .collect();
    let (contenders, rows): (Vec<Kind>, Vec<Row>) = match var("APIGW_BENCH_ONLY") {
        Some(only) => {
            let names: Vec<&str> = only.split(',').map(str::trim).collect();
            for c in &names {
                assert!(
                    Kind::parse(c).is_some() || Row::parse(c).is_some(),
                    "unknown contender or row {c}"
                );
            }
            (
                names.iter().filter_map(|c| Kind::parse(c)).collect(),
                names.iter().filter_map(|c| Row::parse(c)).collect(),
            )
        }
        None => (Kind::ALL.to_vec(), Row::ALL.to_vec()),
    };
    let quota = Quota::from_env_or(Some(Quota::API_GATEWAY)).expect("APIGW_QUOTA");
    let ack = match (var("APIGW_BENCH_ACK_BIN"), var("APIGW_BENCH_ACK_CRDS")) {
        (Some(bin), Some(crds)) => Some(AckSetup {
            bin: bin.into(),
            crds: crds.into(),
        }),
        _ => sidebyside::cached_ack(),
    };
    let drift: Option<u64> = var("APIGW_BENCH_DRIFT_SECONDS").map(|d| d.parse().expect("seconds"));
    let command = var("APIGW_BENCH_COMMAND").unwrap_or_else(|| {
        format!(
            "APIGW_BENCH_RESOURCES={} cargo bench --bench sidebyside",
            sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    });
    let meta =
        report::Meta::of_this_machine(&command, &var("APIGW_BENCH_STACK").unwrap_or_default());
    let mut runs = Vec::new();
    for n in sizes {
        let mut cfg = sidebyside::config(
            n,
            contenders.clone(),
            ack.clone(),
            env!("CARGO_BIN_EXE_apigw-operator").as_ref(),
        );
        if let Some(d) = drift {
            cfg.drift_s = d;
            cfg.idle_s = d * 5 / 2;
            cfg.settle_max_s = d / 2;
        }
        if !contenders.is_empty() {
            let run = sidebyside::run_blocking(&cfg).expect("the bench runs");
            runs.push(run);
            // After every N, so a long run that fails later keeps what it measured.
            report::write(&out, &meta, &runs).expect("the report is written");
            eprintln!(
                "bench: N={n} written to {}",
                out.join("benchmarks.md").display()
            );
        }
        if let Some(quota) = quota.filter(|_| !rows.is_empty()) {
            let run =
                sidebyside::run_quota_blocking(&cfg, quota, &rows).expect("the quota rows run");
            report::write_quota(&out, &meta, &run).expect("the report is written");
            eprintln!(
                "bench: N={n} under the quota written to {}",
                out.join("benchmarks.md").display()
            );
        }
    }
}
