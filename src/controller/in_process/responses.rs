//! Integration responses (design rule 12): made after their integration, changed in place, deleted when
//! removed, repaired at the drift check, made again with a re-created integration, never doubled after
//! a lost answer, refused on an HTTP API; and integrations that declare none read nothing more.

use super::{ready_of, settle};
use crate::api::{ApiIntegration, ApiIntegrationSpec};
use crate::aws::AwsError;
use crate::controller::Context;
use crate::fixtures::{FakeAws, integration};
use crate::plan::Protocol;
use serde_json::{Value, json};

fn aws() -> FakeAws {
    FakeAws::default().with_api_tagged("w1", "chat", Protocol::WebSocket, &[])
}

/// A MOCK integration of WebSocket API w1 with these responses.
fn mock(name: &str, responses: Value) -> ApiIntegration {
    let mut obj = integration(name, "w1", "unused");
    obj.spec = serde_json::from_value::<ApiIntegrationSpec>(json!({
        "apiId": "w1", "integrationType": "MOCK",
        "requestTemplates": {"$default": "{\"statusCode\": 200}"},
        "integrationResponses": responses,
    }))
    .unwrap();
    obj
}

fn two() -> Value {
    json!([
        {"integrationResponseKey": "$default", "responseTemplates": {"$default": "{\"ok\":true}"}},
        {"integrationResponseKey": "/4\\d\\d/", "responseTemplates": {"$default": "{\"ok\":false}"}},
    ])
}

/// The template under `$default` of each response of integration `id`, by key.
fn templates(fake: &FakeAws, id: &str) -> Vec<(String, String)> {
    fake.responses(id)
        .into_iter()
        .map(|r| {
            let t = r.fields.response_templates.unwrap_or_default();
            (
                r.fields.integration_response_key,
                t.get("$default").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// Puts a new spec on the object, as an edit would (generation 2, 3, ...).
fn edit(h: &crate::fixtures::Harness, name: &str, responses: Value) {
    let mut obj = h.server.object("team", name);
    let next = mock(name, responses);
    obj.spec = next.spec;
    obj.metadata.generation = Some(obj.metadata.generation.unwrap_or(1) + 1);
    h.server.put(&obj);
}

#[tokio::test]
async fn responses_are_made_after_their_integration_without_reading_first() {
    let h = Context::test(&aws(), &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    settle().await;
    // A new integration has no responses: nothing to read before making them.
    assert_eq!(
        h.aws.ops(),
        [
            "GetApi",
            "CreateIntegration",
            "CreateIntegrationResponse",
            "CreateIntegrationResponse"
        ]
    );
    assert_eq!(
        templates(&h.aws, "int1"),
        [
            ("$default".to_string(), "{\"ok\":true}".to_string()),
            ("/4\\d\\d/".to_string(), "{\"ok\":false}".to_string())
        ]
    );
    let status = h.server.object("team", "chat").status.unwrap();
    let ids: Vec<_> = status.integration_responses.into_iter().collect();
    assert_eq!(
        ids,
        [
            ("$default".to_string(), "resp2".to_string()),
            ("/4\\d\\d/".to_string(), "resp3".to_string())
        ]
    );
    assert_eq!(ready_of(&h, "chat").reason, "Synced");
    assert_eq!(h.server.status_writes().len(), 1);
}

#[tokio::test]
async fn a_changed_template_is_updated_in_place_and_keys_come_and_go() {
    let h = Context::test(&aws(), &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    h.aws.forget_calls();
    let changed = json!([
        {"integrationResponseKey": "$default", "responseTemplates": {"$default": "{\"ok\":\"yes\"}"}},
        {"integrationResponseKey": "/4\\d\\d/", "responseTemplates": {"$default": "{\"ok\":false}"}},
    ]);
    edit(&h, "chat", changed);
    h.reconcile("team", "chat").await.unwrap();
    assert_eq!(
        h.aws.ops(),
        ["GetIntegrationResponses", "UpdateIntegrationResponse"],
        "the integration from memory, the responses read, one update"
    );
    assert_eq!(templates(&h.aws, "int1")[0].1, "{\"ok\":\"yes\"}");
    assert_eq!(h.aws.responses("int1")[0].id, "resp2", "changed in place");

    h.aws.forget_calls();
    let swapped = json!([
        {"integrationResponseKey": "$default", "responseTemplates": {"$default": "{\"ok\":\"yes\"}"}},
        {"integrationResponseKey": "/5\\d\\d/", "responseTemplates": {"$default": "{\"down\":true}"}},
    ]);
    edit(&h, "chat", swapped);
    h.reconcile("team", "chat").await.unwrap();
    assert_eq!(
        h.aws.ops(),
        [
            "GetIntegrationResponses",
            "DeleteIntegrationResponse",
            "CreateIntegrationResponse"
        ]
    );
    let keys: Vec<_> = templates(&h.aws, "int1").into_iter().map(|t| t.0).collect();
    assert_eq!(keys, ["$default", "/5\\d\\d/"]);
    let status = h.server.object("team", "chat").status.unwrap();
    assert_eq!(
        status.integration_responses.keys().collect::<Vec<_>>(),
        ["$default", "/5\\d\\d/"]
    );
}

#[tokio::test]
async fn removing_the_field_deletes_what_the_resource_made_and_nothing_else() {
    let fake = aws();
    let h = Context::test(&fake, &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    // Another tool adds a response of its own.
    fake.put_response("int1", "/3\\d\\d/");
    let mut obj = h.server.object("team", "chat");
    obj.spec.integration_responses = None;
    obj.metadata.generation = Some(2);
    h.server.put(&obj);
    h.reconcile("team", "chat").await.unwrap();
    let keys: Vec<_> = templates(&fake, "int1").into_iter().map(|t| t.0).collect();
    assert_eq!(
        keys,
        ["/3\\d\\d/"],
        "only the other tool's response is left"
    );
    let status = h.server.object("team", "chat").status.unwrap();
    assert!(status.integration_responses.is_empty());
    // With nothing recorded and nothing declared, the next look reads no responses.
    fake.forget_calls();
    let restarted = Context::test(&fake, &[h.server.object("team", "chat")]);
    restarted.reconcile("team", "chat").await.unwrap();
    assert_eq!(fake.ops(), ["GetApi", "GetIntegrations"]);
}

/// Rule 8 and 12: at a drift check, an integration without responses costs what it always did; one
/// with responses one GetIntegrationResponses more, which also finds a response deleted outside.
#[tokio::test]
async fn the_drift_check_reads_responses_only_where_declared_and_repairs_them() {
    let fake = aws();
    let mut plain = integration("plain", "w1", "unused");
    plain.spec = serde_json::from_value(json!({"apiId": "w1", "integrationType": "MOCK"})).unwrap();
    let first = Context::test(&fake, &[mock("chat", two()), plain]);
    first.reconcile("team", "chat").await.unwrap();
    first.reconcile("team", "plain").await.unwrap();
    let synced = [
        first.server.object("team", "chat"),
        first.server.object("team", "plain"),
    ];
    fake.remove_response("int1", "/4\\d\\d/");
    fake.forget_calls();
    // A restart: nothing remembered, each resource looked at once through its API's listing.
    let restarted = Context::test(&fake, &synced);
    restarted.reconcile("team", "plain").await.unwrap();
    assert_eq!(fake.ops(), ["GetApi", "GetIntegrations"]);
    fake.forget_calls();
    restarted.reconcile("team", "chat").await.unwrap();
    assert_eq!(
        fake.ops(),
        ["GetIntegrationResponses", "CreateIntegrationResponse"],
        "the listing is shared; the responses are read and the lost one made again"
    );
    assert_eq!(templates(&fake, "int1").len(), 2);
    let status = restarted.server.object("team", "chat").status.unwrap();
    assert_eq!(status.integration_responses.len(), 2);
}

#[tokio::test]
async fn a_response_create_whose_answer_was_lost_is_found_not_doubled() {
    let fake = aws();
    let h = Context::test(&fake, &[mock("chat", two())]);
    fake.lose_next_response_create_answer();
    h.reconcile("team", "chat").await.unwrap_err();
    assert_eq!(fake.responses("int1").len(), 1, "made, answer lost");
    h.reconcile("team", "chat").await.unwrap();
    let keys: Vec<_> = templates(&fake, "int1").into_iter().map(|t| t.0).collect();
    assert_eq!(keys, ["$default", "/4\\d\\d/"], "one of each");
    assert_eq!(ready_of(&h, "chat").reason, "Synced");
}

#[tokio::test]
async fn a_re_created_integration_gets_its_responses_again() {
    let fake = aws();
    let first = Context::test(&fake, &[mock("chat", two())]);
    first.reconcile("team", "chat").await.unwrap();
    let synced = first.server.object("team", "chat");
    fake.remove("w1", "int1");
    let restarted = Context::test(&fake, &[synced]);
    restarted.reconcile("team", "chat").await.unwrap();
    let status = restarted.server.object("team", "chat").status.unwrap();
    let id = status.integration_id.unwrap();
    assert_ne!(id, "int1");
    assert_eq!(templates(&fake, &id).len(), 2);
    assert!(
        status
            .integration_responses
            .values()
            .all(|r| fake.responses(&id).iter().any(|f| &f.id == r)),
        "the status names the new responses"
    );
    assert_eq!(ready_of(&restarted, "chat").reason, "Recreated");
}

#[tokio::test]
async fn responses_on_an_http_api_are_invalid_and_nothing_is_written() {
    let fake = FakeAws::default().with_api("h1", "orders");
    let mut obj = mock("chat", two());
    obj.spec.api_id = Some("h1".into());
    let h = Context::test(&fake, &[obj]);
    h.reconcile("team", "chat").await.unwrap();
    assert_eq!(fake.ops(), ["GetApi"]);
    assert!(fake.writes().is_empty());
    assert!(
        h.server.calls().iter().all(|c| !c.is_object_patch()),
        "no finalizer"
    );
    let ready = ready_of(&h, "chat");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("integrationResponses"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn a_failing_response_makes_the_resource_not_ready_naming_its_key() {
    let fake = aws();
    fake.fail_next(
        "CreateIntegrationResponse",
        AwsError::BadRequest("Invalid template".into()),
    );
    let h = Context::test(&fake, &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    let ready = ready_of(&h, "chat");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.contains("integration response $default"),
        "{}",
        ready.message
    );
    assert!(
        ready.message.contains("Invalid template"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn a_deleted_resource_takes_its_responses_with_its_integration() {
    let fake = aws();
    let h = Context::test(&fake, &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    let mut obj = h.server.object("team", "chat");
    obj.metadata.deletion_timestamp = Some(crate::conditions::now());
    h.server.put(&obj);
    fake.forget_calls();
    h.reconcile("team", "chat").await.unwrap();
    assert_eq!(
        fake.ops(),
        ["DeleteIntegration"],
        "one call: the responses go with it"
    );
    assert!(fake.responses("int1").is_empty());
}

/// Rule 8 with rule 12: a drift check that finds the responses as the spec asks writes nothing at all.
#[tokio::test]
async fn a_drift_check_that_finds_the_responses_in_sync_writes_nothing() {
    let fake = aws();
    let first = Context::test(&fake, &[mock("chat", two())]);
    first.reconcile("team", "chat").await.unwrap();
    let synced = first.server.object("team", "chat");
    fake.forget_calls();
    let restarted = Context::test(&fake, &[synced]);
    restarted.reconcile("team", "chat").await.unwrap();
    assert_eq!(
        fake.ops(),
        ["GetApi", "GetIntegrations", "GetIntegrationResponses"]
    );
    assert!(restarted.server.status_writes().is_empty());
    assert!(
        restarted
            .server
            .calls()
            .iter()
            .all(|c| !c.is_object_patch())
    );
}

/// Rule 11 with rule 12: an observed integration's responses are read once per look and reported by key
/// in status.drift, with no write; switching to Manage then makes exactly the changes listed.
#[tokio::test]
async fn observe_reports_the_responses_by_key_and_manage_makes_exactly_those_changes() {
    use crate::api::ManagementPolicy;
    let fake = aws();
    let h = Context::test(&fake, &[mock("chat", two())]);
    h.reconcile("team", "chat").await.unwrap();
    // Out of band: one response deleted, one added under a key the spec does not list.
    fake.remove_response("int1", "/4\\d\\d/");
    fake.put_response("int1", "/5\\d\\d/");
    let mut obj = h.server.object("team", "chat");
    obj.spec.management_policy = Some(ManagementPolicy::Observe);
    obj.metadata.generation = Some(2);
    h.server.put(&obj);
    fake.forget_calls();
    h.reconcile("team", "chat").await.unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    assert_eq!(
        fake.ops()
            .iter()
            .filter(|op| **op == "GetIntegrationResponses")
            .count(),
        1
    );
    let status = h.server.object("team", "chat").status.unwrap();
    let fields: Vec<_> = status.drift.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "integrationResponses[/5\\d\\d/]",
            "integrationResponses[/4\\d\\d/]"
        ],
        "{:?}",
        status.drift
    );
    assert_eq!(ready_of(&h, "chat").reason, "Drifted");
    // Only the response still found under a key the spec lists keeps its ID.
    assert_eq!(
        status.integration_responses.keys().collect::<Vec<_>>(),
        ["$default"]
    );
    // Nothing due until the next drift check: a second reconcile reads nothing.
    fake.forget_calls();
    h.reconcile("team", "chat").await.unwrap();
    assert!(fake.ops().is_empty(), "{:?}", fake.ops());

    obj = h.server.object("team", "chat");
    obj.spec.management_policy = Some(ManagementPolicy::Manage);
    obj.metadata.generation = Some(3);
    h.server.put(&obj);
    h.reconcile("team", "chat").await.unwrap();
    settle().await;
    let writes: Vec<_> = fake.writes().iter().map(|c| c.op).collect();
    assert_eq!(
        writes,
        ["DeleteIntegrationResponse", "CreateIntegrationResponse"],
        "one write per entry status.drift listed"
    );
    assert_eq!(
        templates(&fake, "int1"),
        [
            ("$default".to_string(), "{\"ok\":true}".to_string()),
            ("/4\\d\\d/".to_string(), "{\"ok\":false}".to_string()),
        ]
    );
    let status = h.server.object("team", "chat").status.unwrap();
    assert!(status.drift.is_empty());
    assert_eq!(status.integration_responses.len(), 2);
}
