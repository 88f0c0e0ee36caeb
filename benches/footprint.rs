//! What the operator costs to run: resident memory and CPU time of the operator process with no
//! resources, after N ApiIntegrations were created (default 500; `APIGW_BENCH_RESOURCES`), and over an
//! idle stretch of drift checks; plus the AWS calls those checks make. Runs the operator binary cargo
//! builds for benches (optimised, as released) against the real local stack and moto:
//!
//!     cargo xtask stack up && cargo bench --bench footprint
//!
//! It prints its figures; it asserts only that the work was done (every resource Ready, one create each).

use serde_json::json;
use std::time::{Duration, Instant};
use testkit::eventually;
use testkit::kubectl::{TempNamespace, kubectl_ok, kubectl_stdin, wait_ready};
use testkit::moto::Moto;
use testkit::operator::Operator;
use testkit::process;

/// (resident KiB, peak resident KiB) of the running operator.
fn memory_kib(pid: u32) -> (u64, u64) {
    process::memory_kib(pid).expect("/proc/<pid>/status of the operator")
}

/// User + system CPU seconds the operator has used.
fn cpu_seconds(pid: u32) -> f64 {
    process::cpu_seconds(pid).expect("/proc/<pid>/stat of the operator")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let resources: usize = std::env::var("APIGW_BENCH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    const RESYNC_S: u64 = 20;
    const IDLE_S: u64 = 60;
    let ns = TempNamespace::new("bench-footprint");
    let n = &ns.name;
    let moto = Moto::new();
    let apis: Vec<String> = (0..10).map(|_| moto.create_api("HTTP")).collect();
    let op = Operator::start(
        n,
        &["--resync-seconds", &RESYNC_S.to_string()],
        &[("APIGW_LOG", "info")],
    );
    let pid = op.pid().expect("operator running");
    std::thread::sleep(Duration::from_secs(3));
    let (idle_rss, _) = memory_kib(pid);
    let cpu_start = cpu_seconds(pid);

    let items: Vec<_> = (0..resources)
        .map(|i| {
            json!({
                "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiIntegration",
                "metadata": {"name": format!("fp-{i:04}")},
                "spec": {"apiId": apis[i % apis.len()], "integrationType": "HTTP_PROXY",
                         "integrationMethod": "GET", "payloadFormatVersion": "1.0",
                         "integrationUri": format!("https://example.com/{i}"),
                         "requestParameters": {"append:header.x-resource": format!("fp-{i:04}")}},
            })
        })
        .collect();
    let started = Instant::now();
    let out = kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_ready(
        "apiintegrations",
        n,
        Duration::from_secs(60 + resources as u64),
    );
    let create_s = started.elapsed().as_secs_f64();
    let cpu_created = cpu_seconds(pid);
    let (rss_created, _) = memory_kib(pid);
    let creates = op.count("CreateIntegration");
    assert_eq!(creates, resources, "one CreateIntegration per resource");

    // Idle: only drift checks run.
    let calls_before = op.calls().len();
    std::thread::sleep(Duration::from_secs(IDLE_S));
    let cpu_idle = cpu_seconds(pid) - cpu_created;
    let idle_calls = op.calls().len() - calls_before;
    let (rss_after_idle, peak) = memory_kib(pid);
    let writes_idle = op
        .calls()
        .iter()
        .skip(calls_before)
        .filter(|c| c.op != "GetIntegrations" && c.op != "GetIntegration" && c.op != "GetApi")
        .count();

    println!(
        "operator footprint, {resources} ApiIntegrations on {} APIs (optimised build)",
        apis.len()
    );
    println!(
        "  resident memory, no resources:         {:7.1} MiB",
        mib(idle_rss)
    );
    println!(
        "  resident memory, {resources} resources Ready: {:7.1} MiB ({:.1} KiB per resource)",
        mib(rss_created),
        (rss_created.saturating_sub(idle_rss)) as f64 / resources as f64
    );
    println!(
        "  resident memory after {IDLE_S} s idle:      {:7.1} MiB (peak {:.1} MiB)",
        mib(rss_after_idle),
        mib(peak)
    );
    println!(
        "  CPU to create {resources} ({create_s:.1} s wall): {:6.2} s",
        cpu_created - cpu_start
    );
    println!(
        "  CPU over {IDLE_S} s idle (resync {RESYNC_S} s):  {:6.2} s ({:.2} % of one core)",
        cpu_idle,
        100.0 * cpu_idle / IDLE_S as f64
    );
    println!(
        "  AWS calls over {IDLE_S} s idle:             {idle_calls} ({writes_idle} writes), {:.2} per resource per resync period",
        idle_calls as f64 / resources as f64 / (IDLE_S as f64 / RESYNC_S as f64)
    );

    // Clean up through the operator, so nothing is left in moto or stuck on a finalizer.
    kubectl_ok(&["delete", "namespace", n, "--wait=false"]);
    eventually(
        "the operator to delete every integration",
        Duration::from_secs(60 + resources as u64),
        || {
            let left: usize = apis.iter().map(|a| moto.integrations(a).len()).sum();
            (left == 0).then_some(())
        },
    );
}
