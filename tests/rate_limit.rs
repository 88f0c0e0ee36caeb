//! The client-side token bucket under load: 200 resources applied at once with the AWS rate limit at
//! 5 calls/s. Every call the operator makes is in its call log (time the request was sent); the test
//! checks every window of the run against the bucket's bound and that all resources become Ready with
//! exactly one CreateIntegration each; then deletes them all, checked the same way, with nothing left in
//! moto. Needs `cargo xtask stack up` (or `cargo xtask test`).

mod common;
mod e2e;

use common::{Manifest, kubectl_ok, kubectl_stdin};
use e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

const RESOURCES: usize = 200;
const RATE: f64 = 5.0;
const BURST: usize = 5;

/// The most calls in any window of `window_ms` (sliding over the call times).
fn max_in_window(times: &[u64], window_ms: u64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[test]
fn two_hundred_resources_stay_within_five_calls_per_second() {
    let s = Scenario::builder("e2e-rate")
        .args(&[
            "--aws-rate",
            &RATE.to_string(),
            "--aws-burst",
            &BURST.to_string(),
            "--resync-seconds",
            "600",
            "--concurrency",
            "8",
        ])
        .start();
    let (moto, op, ns) = (&s.moto, &s.op, &s.ns);
    let apis: Vec<String> = (0..4).map(|_| moto.create_api("HTTP")).collect();
    let items: Vec<_> = (0..RESOURCES)
        .map(|i| {
            Manifest::http_proxy(&format!("load-{i:03}"), &apis[i % apis.len()])
                .uri(&format!("https://example.com/{i}"))
                .json()
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let started = Instant::now();
    let out = kubectl_stdin(&["apply", "-n", &ns.name, "-f", "-"], &list);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_ready("apiintegrations", &ns.name, Duration::from_secs(300));
    let elapsed = started.elapsed();

    let calls = op.calls();
    let mut times: Vec<u64> = calls.iter().map(|c| c.ms).collect();
    times.sort_unstable();
    let creates = calls
        .iter()
        .filter(|c| c.op == "CreateIntegration" && c.outcome == "ok")
        .count();
    assert_eq!(
        creates, RESOURCES,
        "exactly one CreateIntegration per resource"
    );
    let held: usize = apis.iter().map(|a| moto.integrations(a).len()).sum();
    assert_eq!(
        held, RESOURCES,
        "moto holds exactly one integration per resource"
    );

    println!(
        "{RESOURCES} resources Ready in {:.1} s; {} AWS calls; rate {RATE}/s burst {BURST}",
        elapsed.as_secs_f64(),
        calls.len()
    );
    check_within_rate(&times);

    // Deleting them all: every integration leaves moto, one DeleteIntegration each, within the rate.
    let started = Instant::now();
    let phase_start_ms = times[times.len() - 1];
    kubectl_ok(&[
        "delete",
        "apiintegrations",
        "--all",
        "-n",
        &ns.name,
        "--timeout=300s",
    ]);
    let elapsed = started.elapsed();
    let held: usize = apis.iter().map(|a| moto.integrations(a).len()).sum();
    assert_eq!(
        held, 0,
        "integrations left in moto after every resource was deleted"
    );
    let calls: Vec<Call> = op
        .calls()
        .into_iter()
        .filter(|c| c.ms > phase_start_ms)
        .collect();
    let deletes = calls
        .iter()
        .filter(|c| c.op == "DeleteIntegration" && c.outcome == "ok")
        .count();
    assert_eq!(
        deletes, RESOURCES,
        "exactly one DeleteIntegration per resource"
    );
    println!(
        "{RESOURCES} resources deleted; kubectl delete returned after {:.1} s (kubectl sends its own \
         deletes at about 5/s); {} AWS calls",
        elapsed.as_secs_f64(),
        calls.len()
    );
    let mut times: Vec<u64> = calls.iter().map(|c| c.ms).collect();
    times.sort_unstable();
    check_within_rate(&times);
}

/// Every window of the call times within the token bucket's bound, and the sustained rate at most RATE.
fn check_within_rate(times: &[u64]) {
    for window_s in [1u64, 2, 5, 10, 30] {
        let most = max_in_window(times, window_s * 1000);
        // A token bucket allows at most `burst` plus `rate` per second of window; 1 call of slack for
        // the millisecond resolution of the log.
        let bound = BURST + (RATE * window_s as f64) as usize + 1;
        println!("  busiest {window_s:>2} s window: {most:>3} calls (bound {bound})");
        assert!(
            most <= bound,
            "{most} calls in a {window_s} s window, more than {bound}"
        );
    }
    let span_s = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
    // Beyond the initial burst, the bucket refills at RATE: (calls - burst) / span <= RATE.
    let average = (times.len() - BURST) as f64 / span_s;
    println!("  sustained rate over {span_s:.1} s: {average:.2} calls/s");
    assert!(
        average <= RATE * 1.02,
        "sustained {average:.2}/s above {RATE}/s"
    );
}

#[test]
fn window_counting_is_right() {
    assert_eq!(max_in_window(&[0, 100, 999, 1000, 1500], 1000), 3);
    assert_eq!(max_in_window(&[0, 5000], 1000), 1);
    assert_eq!(max_in_window(&[7, 7, 7], 1), 3);
}
