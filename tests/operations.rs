//! Running the operator in production: leader election between replicas, /metrics and health endpoints,
//! graceful SIGTERM, and logs that never show credentials. Against the real stack and moto; needs
//! `cargo xtask stack up` (or `cargo xtask test`).

mod common;
mod e2e;

use common::{TempNamespace, eventually, kubectl_ok, stack_env};
use e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn http_proxy_manifest(name: &str, api: &str) -> String {
    json!({
        "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiIntegration",
        "metadata": {"name": name},
        "spec": {"apiId": api, "integrationType": "HTTP_PROXY", "integrationMethod": "GET",
                 "integrationUri": format!("https://example.com/{name}"), "payloadFormatVersion": "1.0"},
    })
    .to_string()
}

fn is_leader(port: u16) -> Option<bool> {
    let (_, text) = http_get(&format!("http://127.0.0.1:{port}/metrics"))?;
    Some(metric(&text, "apigw_operator_leader")? == 1.0)
}

/// Two replicas on one Lease: only the leader reconciles; SIGKILL of the leader hands over within the
/// lease duration (measured); SIGTERM of a leader releases the Lease at once; no duplicate integration.
#[test]
fn leader_election_hands_over_without_duplicates() {
    let ns = TempNamespace::new("ops-lease");
    let n = &ns.name;
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let lease = format!("apigw-{}", n);
    const LEASE_SECONDS: u64 = 6;
    let start = |port: u16| {
        Operator::start(
            n,
            &[
                "--leader-election",
                "--lease-name",
                &lease,
                "--lease-namespace",
                n,
                "--lease-duration-seconds",
                &LEASE_SECONDS.to_string(),
                "--http-addr",
                &format!("127.0.0.1:{port}"),
            ],
            &[],
        )
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start(port_a);
    eventually("replica A to lead", READY_TIMEOUT, || {
        is_leader(port_a).filter(|l| *l)
    });
    let mut b = start(port_b);
    // B is up, healthy and ready, and stands by.
    eventually("replica B to serve /readyz", READY_TIMEOUT, || {
        let (status, _) = http_get(&format!("http://127.0.0.1:{port_b}/readyz"))?;
        (status == 200).then_some(())
    });
    assert_eq!(is_leader(port_b), Some(false));

    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("first", &api),
    );
    wait_ready("apiintegration/first", n, READY_TIMEOUT);
    assert_eq!(a.count("CreateIntegration"), 1);
    assert_eq!(b.calls().len(), 0, "the stand-by made AWS calls");

    // SIGKILL: the lease is not released; B takes over once it expires.
    let killed_at = Instant::now();
    a.kill();
    eventually(
        "replica B to lead",
        Duration::from_secs(LEASE_SECONDS * 4),
        || is_leader(port_b).filter(|l| *l),
    );
    let handover = killed_at.elapsed();
    println!("hand-over after SIGKILL of the leader: {handover:.1?} (lease {LEASE_SECONDS} s)");
    assert!(
        handover <= Duration::from_secs(LEASE_SECONDS + 3),
        "hand-over took {handover:?}, lease is {LEASE_SECONDS} s"
    );
    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("second", &api),
    );
    wait_ready("apiintegration/second", n, READY_TIMEOUT);
    assert_eq!(
        b.count("CreateIntegration"),
        1,
        "B created only the new one"
    );
    assert_eq!(
        moto.integrations(&api).len(),
        2,
        "no duplicate after hand-over"
    );

    // A comes back as stand-by; SIGTERM of the leader B releases the Lease, so A leads well before
    // the lease would have expired.
    a.restart_with(&[]);
    eventually("replica A to be up again", READY_TIMEOUT, || {
        is_leader(port_a).filter(|l| !*l)
    });
    let term_at = Instant::now();
    let status = b.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "B did not exit cleanly: {status:?}\n{}",
        b.log_text()
    );
    let holder = kubectl_ok(&[
        "get",
        "lease",
        &lease,
        "-n",
        n,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    eventually("replica A to lead after B's SIGTERM", READY_TIMEOUT, || {
        is_leader(port_a).filter(|l| *l)
    });
    let graceful = term_at.elapsed();
    println!(
        "hand-over after SIGTERM of the leader: {graceful:.1?} (lease holder right after exit: {holder:?})"
    );
    assert!(b.log_text().contains("lease released"), "{}", b.log_text());
    assert_eq!(holder, "", "B's SIGTERM left the Lease held");
    assert!(
        graceful <= Duration::from_secs(LEASE_SECONDS + 3),
        "hand-over after SIGTERM took {graceful:?}"
    );
    assert_eq!(moto.integrations(&api).len(), 2);
}

/// SIGTERM while a CreateIntegration waits for AWS's answer: the operator lets that reconcile finish (the
/// integration ID reaches status, Ready) and then exits 0; nothing is created twice.
#[test]
fn sigterm_lets_the_in_flight_create_finish() {
    let ns = TempNamespace::new("ops-sigterm");
    let n = &ns.name;
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let proxy = FaultProxy::start();
    const ANSWER_DELAY: Duration = Duration::from_secs(4);
    proxy.delay(Delay {
        marker: format!("POST /v2/apis/{api}/integrations"),
        by: ANSWER_DELAY,
    });
    let mut op = Operator::start(n, &[], &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())]);
    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("in-flight", &api),
    );
    eventually("the create to be on the wire", READY_TIMEOUT, || {
        (proxy.delayed() >= 1).then_some(())
    });
    let sent = Instant::now();
    let exit = op
        .terminate(Duration::from_secs(30))
        .expect("the operator exits within 30 s of SIGTERM");
    let took = sent.elapsed();
    let log = op.log_text();
    assert!(exit.success(), "{exit}: {log}");
    assert!(
        took >= ANSWER_DELAY - Duration::from_secs(1),
        "exited {took:?} after SIGTERM, before AWS had answered: {log}"
    );
    assert!(log.contains("in-flight reconciles finished"), "{log}");
    let held = moto.integrations(&api);
    assert_eq!(held.len(), 1, "{held:#?}");
    let status = get_json("apiintegration/in-flight", n)["status"].clone();
    assert_eq!(
        status["integrationId"], held[0]["integrationId"],
        "{status}"
    );
    assert_eq!(
        ready_of("in-flight", n).map(|r| r.0).as_deref(),
        Some("True")
    );
    assert_eq!(op.count("CreateIntegration"), 1);
}

/// /metrics moves with the work done; /healthz and /readyz answer.
#[test]
fn metrics_count_reconciles_aws_calls_and_resources() {
    let ns = TempNamespace::new("ops-metrics");
    let n = &ns.name;
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let port = free_port();
    let op = Operator::start(n, &["--http-addr", &format!("127.0.0.1:{port}")], &[]);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    eventually("/healthz and /readyz to answer 200", READY_TIMEOUT, || {
        let (h, _) = http_get(&url("/healthz"))?;
        let (r, _) = http_get(&url("/readyz"))?;
        (h == 200 && r == 200).then_some(())
    });
    let before = http_get(&url("/metrics")).unwrap().1;
    assert_eq!(
        metric(
            &before,
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\"}"
        ),
        None
    );

    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("counted", &api),
    );
    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("also-counted", &api),
    );
    wait_ready("apiintegrations", n, READY_TIMEOUT);
    let text = eventually(
        "the resources gauge to show 2 Synced",
        READY_TIMEOUT,
        || {
            let (_, text) = http_get(&url("/metrics"))?;
            (metric(
                &text,
                "apigw_operator_resources{ready=\"True\",reason=\"Synced\"}",
            ) == Some(2.0))
            .then_some(text)
        },
    );
    assert_eq!(
        metric(
            &text,
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\"}"
        ),
        Some(op.count("CreateIntegration") as f64),
        "metrics and the call log agree"
    );
    let reconciles = metric(&text, "apigw_operator_reconciles_total{result=\"ok\"}").unwrap();
    assert!(reconciles >= 2.0, "{text}");
    let observed = metric(&text, "apigw_operator_reconcile_duration_seconds_count").unwrap();
    assert!(observed >= reconciles, "{text}");
    assert_eq!(metric(&text, "apigw_operator_leader"), Some(1.0));

    // A failing resource shows up by reason.
    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("orphan", "nosuchapi1"),
    );
    eventually(
        "the resources gauge to show ApiNotFound",
        READY_TIMEOUT,
        || {
            let (_, text) = http_get(&url("/metrics"))?;
            (metric(
                &text,
                "apigw_operator_resources{ready=\"False\",reason=\"ApiNotFound\"}",
            ) == Some(1.0)
                && metric(
                    &text,
                    "apigw_operator_reconciles_total{result=\"api_not_found\"}",
                )
                .is_some_and(|v| v >= 1.0))
            .then_some(())
        },
    );
    kubectl_ok(&["delete", "apiintegration/orphan", "-n", n, "--timeout=30s"]);
}

/// JSON logs by flag; neither text nor JSON logs (at debug level, dependencies included) nor the
/// resource's status ever contain the secret key the operator was given.
#[test]
fn logs_are_json_on_request_and_never_contain_the_secret_key() {
    let ns = TempNamespace::new("ops-logs");
    let n = &ns.name;
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let secret = stack_env()["AWS_SECRET_ACCESS_KEY"].clone();
    assert!(secret.len() >= 16);
    let json_log = {
        let op = Operator::start(n, &["--log-format", "json"], &[("APIGW_LOG", "debug")]);
        common::kubectl_stdin(
            &["apply", "-n", n, "-f", "-"],
            &http_proxy_manifest("quiet", &api),
        );
        wait_ready("apiintegration/quiet", n, READY_TIMEOUT);
        // An error path too: failure messages are logged and go to status.
        common::kubectl_stdin(
            &["apply", "-n", n, "-f", "-"],
            &http_proxy_manifest("loud", "nosuchapi2"),
        );
        eventually("the failure to be reported", READY_TIMEOUT, || {
            let (_, reason, _) = ready_of("loud", n)?;
            (reason == "ApiNotFound").then_some(())
        });
        kubectl_ok(&["delete", "apiintegration/loud", "-n", n, "--timeout=30s"]);
        op.log_text()
    };
    let lines: Vec<&str> = json_log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 20, "too little logged to judge: {json_log}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
    }

    // The default text format, same scenario; no colour codes when the output is not a terminal.
    let op = Operator::start(n, &[], &[("APIGW_LOG", "debug")]);
    common::kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        &http_proxy_manifest("loud", "nosuchapi3"),
    );
    eventually("the failure to be reported", READY_TIMEOUT, || {
        let (_, reason, _) = ready_of("loud", n)?;
        (reason == "ApiNotFound").then_some(())
    });
    let text_log = op.log_text();
    assert!(text_log.contains(" INFO "), "{text_log}");
    assert!(!text_log.contains('\u{1b}'), "ANSI escapes in a log file");
    for (format, log) in [("JSON", &json_log), ("text", &text_log)] {
        assert!(
            !log.contains(&secret),
            "the AWS secret key appears in the operator's {format} logs"
        );
    }
    let status = kubectl_ok(&["get", "apiint", "-n", n, "-o", "json"]);
    assert!(!status.contains(&secret));
    let events = kubectl_ok(&["get", "events", "-n", n, "-o", "json"]);
    assert!(!events.contains(&secret));
}
