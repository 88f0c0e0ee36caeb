//! spec.integrationResponses end to end (design rule 12): the operator binary against the real API server
//! and moto. Responses are made after their integration, changed in place, removed and added by key,
//! repaired after an out-of-band delete, made again with a re-created integration, gone with the
//! resource; a crash between the integration's create and its responses' leaves exactly one of each; and
//! integrations that declare none never read them. Needs `cargo xtask stack up`.

mod common;
mod e2e;

use common::{Manifest, eventually, kubectl_ok};
use e2e::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The responses moto holds for an integration: template under `$default` (or "") by key, and ID by key.
fn responses(
    moto: &Moto,
    api: &str,
    id: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let out = block_on(
        moto.client
            .get_integration_responses()
            .api_id(api)
            .integration_id(id)
            .send(),
    )
    .expect("moto lists integration responses");
    let mut templates = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for r in out.items() {
        let key = r.integration_response_key().unwrap_or_default().to_string();
        let t = r
            .response_templates()
            .and_then(|t| t.get("$default"))
            .cloned()
            .unwrap_or_default();
        ids.insert(
            key.clone(),
            r.integration_response_id().unwrap().to_string(),
        );
        templates.insert(key, t);
    }
    assert_eq!(ids.len(), out.items().len(), "a key twice in moto: {out:?}");
    (templates, ids)
}

fn delete_response(moto: &Moto, api: &str, id: &str, response: &str) {
    block_on(
        moto.client
            .delete_integration_response()
            .api_id(api)
            .integration_id(id)
            .integration_response_id(response)
            .send(),
    )
    .expect("moto deletes the response");
}

/// A MOCK integration of WebSocket API `api` with these responses (key, template under `$default`).
fn mock(name: &str, api: &str, list: &[(&str, &str)]) -> Manifest {
    let list: Vec<Value> = list
        .iter()
        .map(|(k, t)| json!({"integrationResponseKey": k, "responseTemplates": {"$default": t}}))
        .collect();
    Manifest::new(
        name,
        json!({"apiId": api, "integrationType": "MOCK",
               "requestTemplates": {"$default": "{\"statusCode\": 200}"},
               "integrationResponses": list}),
    )
}

fn status_of(name: &str, ns: &str) -> Value {
    get_json(&format!("apiintegration/{name}"), ns)["status"].clone()
}

fn integration_id(name: &str, ns: &str) -> String {
    status_of(name, ns)["integrationId"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no status.integrationId"))
        .to_string()
}

/// The status's response IDs by key.
fn recorded(name: &str, ns: &str) -> BTreeMap<String, String> {
    serde_json::from_value(status_of(name, ns)["integrationResponses"].clone()).unwrap_or_default()
}

/// Waits until moto holds exactly `want` (key -> template) for `name`'s integration and the status
/// records those responses' IDs; returns the IDs.
fn wait_responses(
    moto: &Moto,
    api: &str,
    name: &str,
    ns: &str,
    want: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect();
    eventually(
        &format!("moto and status.integrationResponses of {name} to hold {want:?}"),
        READY_TIMEOUT,
        || {
            let id = status_of(name, ns)["integrationId"].as_str()?.to_string();
            let (templates, ids) = responses(moto, api, &id);
            (templates == want && recorded(name, ns) == ids).then_some(ids)
        },
    )
}

#[test]
fn responses_are_created_changed_removed_added_repaired_and_deleted_with_their_integration() {
    let s = Scenario::new("e2e-responses");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("WEBSOCKET");
    let ok = "{\"ok\":true}";
    let bad = "{\"ok\":false}";

    // Create with two keys.
    mock("chat", &api, &[("$default", ok), ("/4\\d\\d/", bad)]).apply(n);
    wait_ready("apiintegration/chat", n, READY_TIMEOUT);
    let first = wait_responses(
        moto,
        &api,
        "chat",
        n,
        &[("$default", ok), ("/4\\d\\d/", bad)],
    );
    assert_eq!(op.count("CreateIntegrationResponse"), 2);
    assert_eq!(
        op.count("GetIntegrationResponses"),
        0,
        "a new integration has nothing to read"
    );

    // Change a template: one update, in place.
    let yes = "{\"ok\":\"yes\"}";
    mock("chat", &api, &[("$default", yes), ("/4\\d\\d/", bad)]).apply(n);
    let changed = wait_responses(
        moto,
        &api,
        "chat",
        n,
        &[("$default", yes), ("/4\\d\\d/", bad)],
    );
    assert_eq!(changed, first, "updated in place: same IDs");
    assert_eq!(op.count("UpdateIntegrationResponse"), 1);

    // Remove a key, then add one.
    mock("chat", &api, &[("$default", yes)]).apply(n);
    wait_responses(moto, &api, "chat", n, &[("$default", yes)]);
    assert_eq!(op.count("DeleteIntegrationResponse"), 1);
    let down = "{\"down\":true}";
    mock("chat", &api, &[("$default", yes), ("/5\\d\\d/", down)]).apply(n);
    let added = wait_responses(
        moto,
        &api,
        "chat",
        n,
        &[("$default", yes), ("/5\\d\\d/", down)],
    );
    assert_eq!(op.count("CreateIntegrationResponse"), 3);

    // Deleted out of band: the drift check (resync 5 s) makes it again.
    let id = integration_id("chat", n);
    delete_response(moto, &api, &id, &added["/5\\d\\d/"]);
    let repaired = wait_responses(
        moto,
        &api,
        "chat",
        n,
        &[("$default", yes), ("/5\\d\\d/", down)],
    );
    assert_ne!(repaired["/5\\d\\d/"], added["/5\\d\\d/"]);
    assert_eq!(repaired["$default"], added["$default"]);

    // The integration deleted out of band: re-created, with its responses.
    moto.delete_integration(&api, &id);
    let second = eventually("a new integration ID in status", READY_TIMEOUT, || {
        let now = status_of("chat", n)["integrationId"].as_str()?.to_string();
        (now != id).then_some(now)
    });
    wait_responses(
        moto,
        &api,
        "chat",
        n,
        &[("$default", yes), ("/5\\d\\d/", down)],
    );
    assert_eq!(integration_id("chat", n), second);

    // Deleting the resource deletes the integration, and its responses with it.
    let deletes_before = op.count("DeleteIntegrationResponse");
    kubectl_ok(&["delete", "apiintegration/chat", "-n", n, "--timeout=30s"]);
    assert!(moto.integrations(&api).is_empty());
    assert_eq!(
        op.count("DeleteIntegrationResponse"),
        deletes_before,
        "no call of their own"
    );
}

/// The operator is stopped for good right after CreateIntegration (failpoint `after-create`), so its
/// responses were never made; restarted, it recovers that integration and makes each response once.
#[test]
fn a_crash_between_the_integration_and_its_responses_leaves_one_of_each() {
    let mut s = Scenario::builder("e2e-resp-crash")
        .failpoint("after-create")
        .start();
    let (moto, op, n) = (&s.moto, &mut s.op, &s.ns.name);
    let api = moto.create_api("WEBSOCKET");
    mock("crashy", &api, &[("$default", "a"), ("/4\\d\\d/", "b")]).apply(n);
    op.wait_for_failpoint(READY_TIMEOUT);
    op.kill();
    let made = moto.integrations(&api);
    assert_eq!(made.len(), 1, "the create happened");
    let id = made[0]["integrationId"].as_str().unwrap().to_string();
    assert!(responses(moto, &api, &id).1.is_empty(), "no response yet");

    op.restart_without_failpoint();
    wait_ready("apiintegration/crashy", n, READY_TIMEOUT);
    wait_responses(
        moto,
        &api,
        "crashy",
        n,
        &[("$default", "a"), ("/4\\d\\d/", "b")],
    );
    assert_eq!(moto.integrations(&api).len(), 1, "exactly one integration");
    assert_eq!(integration_id("crashy", n), id);
    assert_eq!(op.count("CreateIntegrationResponse"), 2);
}

/// Stopped for good right after its first CreateIntegrationResponse (failpoint
/// `after-response-create`): restarted, the operator finds that response under its key and makes only
/// the other one.
#[test]
fn a_crash_after_a_response_create_does_not_double_it() {
    let mut s = Scenario::builder("e2e-resp-crash2")
        .failpoint("after-response-create")
        .start();
    let (moto, op, n) = (&s.moto, &mut s.op, &s.ns.name);
    let api = moto.create_api("WEBSOCKET");
    mock("crashy", &api, &[("$default", "a"), ("/4\\d\\d/", "b")]).apply(n);
    eventually("the failpoint to be reached", READY_TIMEOUT, || {
        op.log_text()
            .contains("failpoint after-response-create reached")
            .then_some(())
    });
    op.kill();
    let id = moto.integrations(&api)[0]["integrationId"]
        .as_str()
        .unwrap()
        .to_string();
    let (before, _) = responses(moto, &api, &id);
    assert_eq!(before.len(), 1, "one response made before the crash");

    op.restart_without_failpoint();
    wait_ready("apiintegration/crashy", n, READY_TIMEOUT);
    wait_responses(
        moto,
        &api,
        "crashy",
        n,
        &[("$default", "a"), ("/4\\d\\d/", "b")],
    );
    assert_eq!(
        op.count("CreateIntegrationResponse"),
        2,
        "one before the crash, one after"
    );
}

/// Rule 8 and 12: drift checks of integrations without responses never read responses; one that
/// declares them reads them once per check.
#[test]
fn only_integrations_that_declare_responses_read_them_at_drift_checks() {
    let s = Scenario::new("e2e-resp-cost");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("WEBSOCKET");
    for name in ["plain-a", "plain-b"] {
        Manifest::new(name, json!({"apiId": api, "integrationType": "MOCK"})).apply(n);
        wait_ready(&format!("apiintegration/{name}"), n, READY_TIMEOUT);
    }
    let checks =
        || metric(&op.metrics_text(), "apigw_operator_checks_in_sync_total").unwrap_or(0.0);
    let start = checks();
    eventually(
        "3 drift checks of each plain integration",
        READY_TIMEOUT,
        || (checks() >= start + 6.0).then_some(()),
    );
    assert_eq!(op.count("GetIntegrationResponses"), 0);

    mock("chat", &api, &[("$default", "x")]).apply(n);
    wait_ready("apiintegration/chat", n, READY_TIMEOUT);
    let reads = op.count("GetIntegrationResponses");
    let listings = op.count("GetIntegrations");
    let start = checks();
    eventually(
        "3 more drift checks of each integration",
        READY_TIMEOUT,
        || (checks() >= start + 9.0).then_some(()),
    );
    let (reads, listings) = (
        op.count("GetIntegrationResponses") - reads,
        op.count("GetIntegrations") - listings,
    );
    // About three checks of chat, one read each (a check may finish just outside the window).
    assert!(
        (2..=5).contains(&reads),
        "{reads} GetIntegrationResponses for 3 checks of one integration"
    );
    assert!(
        listings <= 5,
        "{listings} listings: still one per API per period"
    );
    assert_eq!(op.count("CreateIntegrationResponse"), 1);
}

/// The API is an HTTP API (apiId, so the CEL rules cannot tell): InvalidSpec, and nothing written.
#[test]
fn responses_on_an_http_api_are_refused_with_nothing_written() {
    let s = Scenario::new("e2e-resp-http");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("HTTP");
    mock("wrong", &api, &[("$default", "x")]).apply(n);
    eventually(
        "InvalidSpec naming integrationResponses",
        READY_TIMEOUT,
        || {
            let (status, reason, message) = ready_of("wrong", n)?;
            (status == "False"
                && reason == "InvalidSpec"
                && message.contains("integrationResponses"))
            .then_some(())
        },
    );
    let meta = get_json("apiintegration/wrong", n)["metadata"].clone();
    assert!(meta.get("finalizers").is_none(), "no finalizer: {meta}");
    assert!(moto.integrations(&api).is_empty());
    let writes: Vec<_> = op
        .calls()
        .into_iter()
        .filter(|c| !c.op.starts_with("Get"))
        .collect();
    assert!(
        writes.is_empty(),
        "no AWS write: {:?}",
        writes.iter().map(|c| &c.op).collect::<Vec<_>>()
    );
}
