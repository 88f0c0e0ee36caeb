//! Running the operator in production: leader election between replicas, /metrics and health endpoints,
//! graceful SIGTERM, and logs that never show credentials. Against the real stack and moto; needs
//! `cargo xtask stack up` (or `cargo xtask test`).

mod common;
mod e2e;

use common::{Manifest, TempNamespace, eventually, kubectl_ok, stack_env};
use e2e::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn is_leader(port: u16) -> Option<bool> {
    let (_, text) = http_get(&format!("http://127.0.0.1:{port}/metrics"))?;
    Some(metric(&text, "apigw_operator_leader")? == 1.0)
}

/// Two replicas on one Lease: only the leader reconciles; SIGKILL of the leader hands over within the
/// lease duration (measured); SIGTERM of a leader releases the Lease at once; no duplicate integration.
#[test]
fn leader_election_hands_over_without_duplicates() {
    // Two replicas side by side: not a Scenario, which runs one operator.
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
                // Writes stop this long (plus the 1 s margin) before the lease could pass.
                "--aws-timeout-seconds",
                "2",
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

    Manifest::http_proxy("first", &api).apply(n);
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
    Manifest::http_proxy("second", &api).apply(n);
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
    a.restart();
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
    let mut s = Scenario::builder("ops-sigterm").with_proxy().start();
    let api = s.moto.create_api("HTTP");
    const ANSWER_DELAY: Duration = Duration::from_secs(4);
    s.proxy().delay(Delay {
        marker: format!("POST /v2/apis/{api}/integrations"),
        by: ANSWER_DELAY,
    });
    let n = &s.ns.name;
    Manifest::http_proxy("in-flight", &api).apply(n);
    eventually("the create to be on the wire", READY_TIMEOUT, || {
        (s.proxy().delayed() >= 1).then_some(())
    });
    let sent = Instant::now();
    let exit =
        s.op.terminate(Duration::from_secs(30))
            .expect("the operator exits within 30 s of SIGTERM");
    let took = sent.elapsed();
    let log = s.op.log_text();
    assert!(exit.success(), "{exit}: {log}");
    assert!(
        took >= ANSWER_DELAY - Duration::from_secs(1),
        "exited {took:?} after SIGTERM, before AWS had answered: {log}"
    );
    assert!(log.contains("in-flight reconciles finished"), "{log}");
    let held = s.moto.integrations(&api);
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
    assert_eq!(s.op.count("CreateIntegration"), 1);
    // Running again, it has nothing to create; dropping it then deletes the resource (finalizer included).
    s.proxy().clear();
    s.op.restart();
    wait_ready("apiintegration/in-flight", n, READY_TIMEOUT);
    assert_eq!(s.op.count("CreateIntegration"), 1);
}

/// A stand-in for the EKS Pod Identity agent: answers GET with temporary credentials when the request
/// carries `token` in its Authorization header, 401 otherwise; counts both.
struct CredentialsAgent {
    url: String,
    served: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl CredentialsAgent {
    fn start(token: &str, access_key: &str) -> CredentialsAgent {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/v1/credentials", listener.local_addr().unwrap());
        let (served, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, r) = (served.clone(), refused.clone());
        let expiration = (std::time::SystemTime::now() + Duration::from_secs(3600))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body = json!({
            "AccessKeyId": access_key,
            "SecretAccessKey": "pod-identity-test-secret-key",
            "Token": "pod-identity-test-session-token",
            "Expiration": aws_smithy_types::DateTime::from_secs(expiration as i64)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap(),
        })
        .to_string();
        let expected = format!("authorization: {token}");
        rt().spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
                    match conn.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..got]).to_ascii_lowercase();
                let reply = if request.lines().any(|l| l.trim() == expected.to_ascii_lowercase()) {
                    s.fetch_add(1, Ordering::SeqCst);
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                    "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                };
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        CredentialsAgent {
            url,
            served,
            refused,
        }
    }
}

/// The access keys API Gateway calls (not STS or other services) were signed with.
fn apigw_access_keys(proxy: &FaultProxy) -> BTreeSet<Option<String>> {
    proxy
        .seen()
        .into_iter()
        .filter(|r| r.text.contains(" /v2/apis"))
        .map(|r| r.access_key)
        .collect()
}

/// The credential sources a cluster gives a pod, with the static keys gone: IRSA (a web identity token
/// exchanged at STS, here moto's) and EKS Pod Identity (a credentials agent over HTTP). In each case the
/// API Gateway calls are signed with the credentials that source handed out, and the resource is Ready.
#[test]
fn credentials_from_irsa_and_eks_pod_identity() {
    let static_key = stack_env()["AWS_ACCESS_KEY_ID"].clone();
    let dir = std::env::temp_dir().join(format!("apigw-creds-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    // A scenario whose operator does not see the stack's static keys.
    let without_static_keys = |prefix: &str| {
        Scenario::builder(prefix)
            .with_proxy()
            .without_env("AWS_ACCESS_KEY_ID")
            .without_env("AWS_SECRET_ACCESS_KEY")
    };

    // IRSA: a projected service-account token and a role to assume with it.
    let token_file = dir.join("web-identity-token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcGlndy1vcGVyYXRvciJ9.",
    )
    .unwrap();
    let s = without_static_keys("ops-creds-irsa")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .env(
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/apigw-operator",
        )
        .env("AWS_ROLE_SESSION_NAME", "apigw-operator")
        .start();
    let (proxy, n) = (s.proxy(), &s.ns.name);
    let api = s.moto.create_api("HTTP");
    Manifest::http_proxy("via-irsa", &api).apply(n);
    wait_ready("apiintegration/via-irsa", n, READY_TIMEOUT);
    let assumed: Vec<SeenRequest> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.text.contains("Action=AssumeRoleWithWebIdentity"))
        .collect();
    assert_eq!(assumed.len(), 1, "one STS exchange, then cached");
    let keys = apigw_access_keys(proxy);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys.into_iter().next().unwrap().expect("signed requests");
    assert_ne!(
        key, static_key,
        "signed with the static key that was removed"
    );
    drop(s);

    // EKS Pod Identity: the agent's URL and the token file the pod gets.
    let pod_token = "pod-identity-test-token";
    let pod_token_file = dir.join("eks-pod-identity-token");
    std::fs::write(&pod_token_file, pod_token).unwrap();
    let agent = CredentialsAgent::start(pod_token, "ASIAPODIDENTITYTEST1");
    let s = without_static_keys("ops-creds-pod")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.url.as_str())
        .env(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            pod_token_file.to_str().unwrap(),
        )
        .start();
    let n = &s.ns.name;
    Manifest::http_proxy("via-pod-identity", &api).apply(n);
    wait_ready("apiintegration/via-pod-identity", n, READY_TIMEOUT);
    assert!(agent.served.load(Ordering::SeqCst) >= 1);
    assert_eq!(agent.refused.load(Ordering::SeqCst), 0);
    assert_eq!(
        apigw_access_keys(s.proxy()),
        BTreeSet::from([Some("ASIAPODIDENTITYTEST1".to_string())])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// /metrics moves with the work done; /healthz and /readyz answer.
#[test]
fn metrics_count_reconciles_aws_calls_and_resources() {
    let port = free_port();
    let s = Scenario::builder("ops-metrics")
        .args(&["--http-addr", &format!("127.0.0.1:{port}")])
        .start();
    let (op, n) = (&s.op, &s.ns.name);
    let api = s.moto.create_api("HTTP");
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
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\",region=\"us-east-1\"}"
        ),
        None
    );

    Manifest::http_proxy("counted", &api).apply(n);
    Manifest::http_proxy("also-counted", &api).apply(n);
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
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\",region=\"us-east-1\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "apigw_operator_aws_calls_total{operation=\"CreateIntegration\",outcome=\"ok\",region=\"us-east-1\"}"
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
    Manifest::http_proxy("orphan", "nosuchapi1").apply(n);
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
        Manifest::http_proxy("quiet", &api).apply(n);
        wait_ready("apiintegration/quiet", n, READY_TIMEOUT);
        // An error path too: failure messages are logged and go to status.
        Manifest::http_proxy("loud", "nosuchapi2").apply(n);
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
    Manifest::http_proxy("loud", "nosuchapi3").apply(n);
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
