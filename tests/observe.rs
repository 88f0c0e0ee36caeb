//! managementPolicy Observe against the real API server and moto (design rule 11): an integration made
//! directly in moto (as another tool would) is observed, its drift named in status and in `kubectl get`,
//! with no AWS write; switching to Manage repairs it with exactly one UpdateIntegration; deleting in
//! Observe leaves it in moto. Needs `cargo xtask stack up`.

mod common;
mod e2e;

use common::{Manifest, eventually, kubectl_ok};
use e2e::*;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const WRITES: [&str; 3] = [
    "CreateIntegration",
    "UpdateIntegration",
    "DeleteIntegration",
];

fn writes(op: &Operator) -> usize {
    WRITES.iter().map(|w| op.count(w)).sum()
}

/// Waits until `name`'s Ready condition has `reason` (any status); returns (status, message).
fn wait_reason(name: &str, ns: &str, reason: &str) -> (String, String) {
    eventually(
        &format!("{name}: reason {reason}"),
        TIMEOUT,
        || match ready_of(name, ns) {
            Some((s, r, m)) if r == reason => Some((s, m)),
            _ => None,
        },
    )
}

#[test]
fn observe_reports_drift_without_writing_then_manage_takes_over_with_one_update() {
    let s = Scenario::new("e2e-observe");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("HTTP");
    let theirs = moto.create_integration_http_proxy(&api, "https://legacy.example.com/");
    let observed = Manifest::http_proxy("orders", &api)
        .uri("https://orders.example.com/")
        .spec_field("managementPolicy", "Observe")
        .annotation("apigw.dev/adopt-integration-id", &theirs);
    observed.apply(n);

    let (status, message) = wait_reason("orders", n, "Drifted");
    assert_eq!(status, "True", "{message}");
    assert!(message.contains("integrationUri"), "{message}");
    let obj = get_json("apiintegration/orders", n);
    assert_eq!(
        obj["status"]["drift"],
        json!([{"field": "integrationUri", "spec": "https://orders.example.com/",
                "aws": "https://legacy.example.com/"}])
    );
    assert_eq!(obj["status"]["integrationId"], theirs.as_str());
    assert!(obj["metadata"]["finalizers"].is_null(), "{obj}");
    let table = kubectl_ok(&["get", "apiintegration", "orders", "-n", n]);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains("POLICY"), "{table}");
    assert!(
        table.lines().nth(1).unwrap_or_default().contains("Observe"),
        "{table}"
    );
    eventually("the Drifted Event", TIMEOUT, || {
        event_reasons("orders", n)
            .contains(&"Drifted".to_string())
            .then_some(())
    });
    assert_eq!(writes(op), 0, "{:?}", op.calls());
    assert_eq!(
        moto.integration(&api, &theirs).unwrap()["integrationUri"],
        "https://legacy.example.com/"
    );
    let drifted = r#"apigw_operator_resources{ready="True",reason="Drifted"} 1"#;
    let metrics = op.metrics_text();
    assert!(metrics.contains(drifted), "{metrics}");

    // Observe -> Manage: exactly one UpdateIntegration, then Synced with no drift left.
    observed
        .clone()
        .spec_field("managementPolicy", "Manage")
        .apply(n);
    wait_reason("orders", n, "Synced");
    assert_eq!(op.count("UpdateIntegration"), 1, "{:?}", op.calls());
    assert_eq!(writes(op), 1, "{:?}", op.calls());
    let obj = get_json("apiintegration/orders", n);
    assert!(obj["status"]["drift"].is_null(), "{obj}");
    assert_eq!(
        moto.integration(&api, &theirs).unwrap()["integrationUri"],
        "https://orders.example.com/"
    );

    // Manage -> Observe, then delete: the finalizer Manage put on is released, the integration stays.
    observed.apply(n);
    wait_reason("orders", n, "InSync");
    kubectl_ok(&["delete", "apiintegration/orders", "-n", n, "--timeout=30s"]);
    assert!(moto.integration(&api, &theirs).is_some());
    assert_eq!(op.count("DeleteIntegration"), 0, "{:?}", op.calls());
    assert_eq!(writes(op), 1);
}

#[test]
fn deleting_in_observe_leaves_moto_alone_even_with_deletion_policy_delete() {
    let s = Scenario::new("e2e-observe-del");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("HTTP");
    let theirs = moto.create_integration_http_proxy(&api, "https://example.com/kept");
    Manifest::http_proxy("kept", &api)
        .spec_field("managementPolicy", "Observe")
        .spec_field("deletionPolicy", "Delete")
        .annotation("apigw.dev/adopt-integration-id", &theirs)
        .apply(n);
    let (status, message) = wait_reason("kept", n, "InSync");
    assert_eq!(status, "True", "{message}");
    // Nothing named at all: missing, and nothing created.
    Manifest::http_proxy("unnamed", &api)
        .spec_field("managementPolicy", "Observe")
        .apply(n);
    let (status, _) = wait_reason("unnamed", n, "IntegrationMissing");
    assert_eq!(status, "False");
    kubectl_ok(&[
        "delete",
        "apiintegration/kept",
        "apiintegration/unnamed",
        "-n",
        n,
        "--timeout=30s",
    ]);
    assert!(moto.integration(&api, &theirs).is_some());
    assert_eq!(moto.integrations(&api).len(), 1);
    assert_eq!(writes(op), 0, "{:?}", op.calls());
}

/// An observed object has no finalizer, so its deletion is never reconciled; made again under the same
/// name (a re-import, say), it is another object and is looked at at once, not when the first one's
/// drift check would have been due.
#[test]
fn an_observed_object_deleted_and_made_again_is_looked_at_at_once() {
    let s = Scenario::builder("e2e-observe-again")
        .args(&["--resync-seconds", "600"])
        .start();
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("HTTP");
    let first = moto.create_integration_http_proxy(&api, "https://example.com/first");
    let second = moto.create_integration_http_proxy(&api, "https://example.com/second");
    let observed = |id: &str, uri: &str| {
        Manifest::http_proxy("again", &api)
            .uri(uri)
            .spec_field("managementPolicy", "Observe")
            .annotation("apigw.dev/adopt-integration-id", id)
    };
    observed(&first, "https://example.com/first").apply(n);
    wait_reason("again", n, "InSync");
    kubectl_ok(&["delete", "apiintegration/again", "-n", n, "--timeout=30s"]);
    let started = std::time::Instant::now();
    observed(&second, "https://example.com/other").apply(n);
    let (_, message) = wait_reason("again", n, "Drifted");
    assert!(message.contains(&second), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "looked at after {:?}",
        started.elapsed()
    );
    assert_eq!(
        get_json("apiintegration/again", n)["status"]["integrationId"],
        second.as_str()
    );
    assert_eq!(writes(op), 0, "{:?}", op.calls());
}
