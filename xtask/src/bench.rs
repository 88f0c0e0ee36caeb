//! `cargo xtask bench [--resources N,...] [--only CONTENDER|ROW,...] [--quota RATE/BURST|off] [--ack-src DIR]
//! [--drift-seconds S]`: the side-by-side benchmark. Brings the stack up, builds ACK's controller when it
//! is a contender (and its source is there), then runs the optimised bench binary `benches/sidebyside.rs`,
//! which measures every contender in turn on that one stack, then the rows under API Gateway's quota, and
//! writes docs/benchmarks.md and the charts.

use crate::paths::repo_root;
use crate::proc::run;
use crate::stack;
use crate::tools;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// The contenders, in the order they run (the bench binary knows each by these names).
const CONTENDERS: [&str; 5] = ["limit", "ours-unlimited", "ours", "ack-1", "ack-4"];
/// The rows under the quota, in the order they run.
const QUOTA_ROWS: [&str; 5] = [
    "quota-ours",
    "quota-ours-x2",
    "quota-ack-4",
    "quota-ack-4+ours",
    "quota-ack-4+ours-min-5",
];

pub const USAGE: &str = "  bench          side-by-side benchmark on the local stack; writes docs/benchmarks.md
                 [--resources N,...]      (default 1000,5000)
                 [--only CONTENDER,...]   of limit, ours-unlimited, ours, ack-1, ack-4, and of the rows
                                          under the quota quota-ours, quota-ours-x2, quota-ack-4,
                                          quota-ack-4+ours, quota-ack-4+ours-min-5 (default all)
                 [--quota RATE/BURST]     API Gateway's quota the proxy keeps in the quota rows
                                          (default 10/40; off: no quota rows)
                 [--ack-src DIR]          ACK checkout (default ../shared/peers/ack-apigatewayv2-controller)
                 [--drift-seconds S]      drift period for ours and ACK (default max(30, N/50) per N)";

pub fn run_cmd(args: &[&str]) -> Result<()> {
    let mut resources = "1000,5000".to_string();
    let mut only: Vec<String> = CONTENDERS
        .iter()
        .chain(QUOTA_ROWS.iter())
        .map(|c| c.to_string())
        .collect();
    let mut quota = testkit::quota::Quota::API_GATEWAY.to_string();
    let mut ack_src = repo_root().join("../shared/peers/ack-apigatewayv2-controller");
    let mut drift: Option<String> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .map(|v| v.to_string())
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match *flag {
            "--resources" => resources = value()?,
            "--only" => only = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--ack-src" => ack_src = PathBuf::from(value()?),
            "--drift-seconds" => drift = Some(value()?),
            "--quota" => {
                quota = value()?;
                if quota != "off" {
                    quota
                        .parse::<testkit::quota::Quota>()
                        .map_err(anyhow::Error::msg)?;
                }
            }
            other => bail!("unknown bench argument {other}\n{USAGE}"),
        }
    }
    for n in resources.split(',') {
        match n.trim().parse::<usize>() {
            Ok(n) if n > 0 => {}
            _ => bail!("--resources takes positive numbers separated by commas, not {resources}"),
        }
    }
    if let Some(c) = only
        .iter()
        .find(|c| !CONTENDERS.contains(&c.as_str()) && !QUOTA_ROWS.contains(&c.as_str()))
    {
        bail!(
            "unknown contender {c}; the contenders are {}, the rows under the quota {}",
            CONTENDERS.join(", "),
            QUOTA_ROWS.join(", ")
        );
    }
    if let Some(d) = &drift
        && d.parse::<u64>().map_or(true, |d| d == 0)
    {
        bail!("--drift-seconds takes a positive number of seconds, not {d}");
    }
    let wants_ack = only
        .iter()
        .any(|c| c.starts_with("ack") || (quota != "off" && c.starts_with("quota-ack")));
    let ack = if wants_ack {
        tools::ensure_ack(&ack_src)?
    } else {
        None
    };

    // Build before the stack starts, so it is not kept waiting on the compiler.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(std::process::Command::new(&cargo).args(["bench", "--bench", "sidebyside", "--no-run"]))?;
    let stack = stack::up()?;
    let shown = std::iter::once("cargo xtask bench".to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = stack.command(&cargo);
    cmd.args(["bench", "--bench", "sidebyside"])
        .env("APIGW_BENCH_RESOURCES", &resources)
        .env("APIGW_BENCH_ONLY", only.join(","))
        .env(testkit::quota::QUOTA_ENV, &quota)
        .env("APIGW_BENCH_COMMAND", &shown)
        .env(
            "APIGW_BENCH_STACK",
            format!(
                "kube-apiserver {}, etcd {}, moto {}; ACK's apigatewayv2-controller {} (built with {})",
                tools::KUBERNETES,
                tools::ETCD,
                tools::MOTO,
                tools::ACK_APIGATEWAYV2,
                go_version()
            ),
        )
        .env("APIGW_BENCH_OUT", repo_root().join("docs"));
    if let Some(d) = &drift {
        cmd.env("APIGW_BENCH_DRIFT_SECONDS", d);
    }
    if let Some(ack) = &ack {
        cmd.env("APIGW_BENCH_ACK_BIN", &ack.bin)
            .env("APIGW_BENCH_ACK_CRDS", &ack.crds);
    }
    let result = run(&mut cmd);
    if stack.started_here {
        stack::down()?;
    } else {
        println!("xtask: the stack was already up before the bench and is left running");
    }
    result
}

fn go_version() -> String {
    crate::proc::output(std::process::Command::new("go").arg("version"))
        .map(|v| v.trim().trim_start_matches("go version ").to_string())
        .unwrap_or_else(|_| "an unknown Go".into())
}
