//! spec.integrationResponses end to end (design rule 12): the operator binary against the real API server
//! and moto. Responses are made after their integration, changed in place, removed and added by key,
//! repaired after an out-of-band delete, made again with a re-created integration, gone with the
//! resource; a crash between the integration's create and its responses' leaves exactly one of each;
//! integrations that declare none never read them; and in Observe they are read and reported, never
//! written (rule 11). Needs `cargo xtask stack up`.

mod common;
mod e2e;

use common::{Manifest, eventually, kubectl_ok};
use e2e::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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

/// Every write an Observe resource must never make, to the integration or to its responses.
const WRITES: [&str; 6] = [
    "CreateIntegration",
    "UpdateIntegration",
    "DeleteIntegration",
    "CreateIntegrationResponse",
    "UpdateIntegrationResponse",
    "DeleteIntegrationResponse",
];

fn writes(op: &Operator) -> Vec<String> {
    op.calls()
        .into_iter()
        .filter(|c| WRITES.contains(&c.op.as_str()))
        .map(|c| c.op)
        .collect()
}

/// A MOCK integration made directly in moto (as another tool would), with these responses (key,
/// template under `$default`); returns its ID.
fn mock_in_moto(moto: &Moto, api: &str, list: &[(&str, &str)]) -> String {
    let made = block_on(
        moto.client
            .create_integration()
            .api_id(api)
            .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::Mock)
            .request_templates("$default", "{\"statusCode\": 200}")
            .send(),
    )
    .expect("moto creates the integration");
    let id = made.integration_id.unwrap();
    for (key, template) in list {
        block_on(
            moto.client
                .create_integration_response()
                .api_id(api)
                .integration_id(&id)
                .integration_response_key(*key)
                .response_templates("$default", *template)
                .send(),
        )
        .expect("moto creates the integration response");
    }
    id
}

/// Rule 11 with rule 12: an integration another tool made, with two responses, is observed. The
/// responses AWS holds are reported (their IDs in status.integrationResponses); a change and a delete
/// made outside show in status.drift by key at a later look; responses are read once per look, not in a
/// loop; and nothing at all is written. Switched to Manage, exactly the two listed changes are made.
#[test]
fn observe_reports_the_responses_aws_holds_and_their_drift_without_writing() {
    let s = Scenario::new("e2e-resp-observe");
    let (moto, op, n) = (&s.moto, &s.op, &s.ns.name);
    let api = moto.create_api("WEBSOCKET");
    let ok = "{\"ok\":true}";
    let bad = "{\"ok\":false}";
    let want = [("$default", ok), ("/4\\d\\d/", bad)];
    let theirs = mock_in_moto(moto, &api, &want);
    let (_, held) = responses(moto, &api, &theirs);
    let observed = mock("chat", &api, &want)
        .spec_field("managementPolicy", "Observe")
        .annotation("apigw.dev/adopt-integration-id", &theirs);
    observed.apply(n);

    eventually(
        "chat: InSync recording its responses",
        READY_TIMEOUT,
        || {
            let (ready, reason, _) = ready_of("chat", n)?;
            (ready == "True" && reason == "InSync" && recorded("chat", n) == held).then_some(())
        },
    );
    let status = status_of("chat", n);
    assert!(status["drift"].is_null(), "{status}");
    assert_eq!(status["integrationId"], theirs.as_str());
    assert!(op.count("GetIntegrationResponses") >= 1);

    // Changed and deleted outside: reported by key at a later look, with both sides.
    let changed = "{\"ok\":\"changed\"}";
    block_on(
        moto.client
            .update_integration_response()
            .api_id(&api)
            .integration_id(&theirs)
            .integration_response_id(&held["$default"])
            .integration_response_key("$default")
            .response_templates("$default", changed)
            .send(),
    )
    .expect("moto updates the response");
    delete_response(moto, &api, &theirs, &held["/4\\d\\d/"]);
    let (_, message) = eventually("chat: Drifted", READY_TIMEOUT, || {
        let (ready, reason, message) = ready_of("chat", n)?;
        (reason == "Drifted").then_some((ready, message))
    });
    assert!(
        message.contains("integrationResponses[$default]"),
        "{message}"
    );
    assert_eq!(
        status_of("chat", n)["drift"],
        json!([
            {"field": "integrationResponses[$default].responseTemplates",
             "spec": json!({"$default": ok}).to_string(),
             "aws": json!({"$default": changed}).to_string()},
            {"field": "integrationResponses[/4\\d\\d/]",
             "spec": json!({"integrationResponseKey": "/4\\d\\d/",
                            "responseTemplates": {"$default": bad}}).to_string()},
        ])
    );
    assert_eq!(
        recorded("chat", n),
        BTreeMap::from([("$default".to_string(), held["$default"].clone())]),
        "only the responses still there keep their ID"
    );
    eventually("the Drifted Event", READY_TIMEOUT, || {
        event_reasons("chat", n)
            .contains(&"Drifted".to_string())
            .then_some(())
    });

    // One read per look: three more reads take at least the half period between looks twice over.
    let (start, since) = (op.count("GetIntegrationResponses"), Instant::now());
    eventually("three more looks", READY_TIMEOUT, || {
        (op.count("GetIntegrationResponses") >= start + 3).then_some(())
    });
    assert!(
        since.elapsed() >= Duration::from_secs(4),
        "3 reads in {:?}: not once per look",
        since.elapsed()
    );
    assert_eq!(writes(op), Vec::<String>::new(), "Observe writes nothing");
    let meta = get_json("apiintegration/chat", n)["metadata"].clone();
    assert!(meta.get("finalizers").is_none(), "no finalizer: {meta}");
    let (now, _) = responses(moto, &api, &theirs);
    assert_eq!(
        now,
        BTreeMap::from([("$default".to_string(), changed.to_string())]),
        "moto as it was left"
    );

    // Observe -> Manage: exactly the two changes status.drift listed.
    observed.spec_field("managementPolicy", "Manage").apply(n);
    wait_responses(moto, &api, "chat", n, &want);
    wait_ready("apiintegration/chat", n, READY_TIMEOUT);
    assert_eq!(
        writes(op),
        ["UpdateIntegrationResponse", "CreateIntegrationResponse"],
        "one write per entry status.drift listed"
    );
    assert!(status_of("chat", n)["drift"].is_null());
}
