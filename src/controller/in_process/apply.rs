//! A live resource: every AWS step (create, adopt, recover, update, re-create), the finalizer and the ID
//! written first, and the status write skipped when nothing is new.

use super::{ready_of, settle};
use crate::api::{ADOPT_ANNOTATION, CREATE_STARTED_ANNOTATION};
use crate::aws::AwsError;
use crate::controller::{Context, Error, FINALIZER};
use crate::fixtures::{FakeAws, Harness, integration};
use crate::plan::{IntegrationFields, ObservedIntegration};
use kube::ResourceExt;

/// "web" synced once at https://first, then its spec changed to https://second (generation 2), not yet
/// reconciled.
async fn synced_then_edited(fake: &FakeAws) -> Harness {
    let h = Context::test(fake, &[integration("web", "a1", "https://first")]);
    h.reconcile("team", "web").await.unwrap();
    let mut edited = h.server.object("team", "web");
    edited.spec.integration_uri = Some("https://second".into());
    edited.metadata.generation = Some(2);
    h.server.put(&edited);
    h
}

fn aws() -> FakeAws {
    FakeAws::default().with_api("a1", "orders")
}

#[tokio::test]
async fn a_new_resource_gets_the_finalizer_and_marker_in_one_write_then_one_create() {
    let h = Context::test(&aws(), &[integration("web", "a1", "https://a.example")]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(h.aws.ops(), ["GetApi", "CreateIntegration"]);
    let patches: Vec<_> = h
        .server
        .calls()
        .into_iter()
        .filter(|c| c.is_object_patch())
        .collect();
    assert_eq!(
        patches.len(),
        1,
        "the finalizer and the marker travel together"
    );
    let obj = h.server.object("team", "web");
    assert!(obj.finalizers().iter().any(|f| f == FINALIZER));
    assert!(obj.annotations().contains_key(CREATE_STARTED_ANNOTATION));
    // The marker was on the object before the create was sent.
    assert!(patches[0].at < h.aws.calls()[1].at);
    let status = obj.status.unwrap();
    assert_eq!(status.integration_id.as_deref(), Some("int1"));
    assert_eq!(status.api_id.as_deref(), Some("a1"));
    assert_eq!(
        h.server.status_writes().len(),
        1,
        "one status write records ID and Ready"
    );
    assert_eq!(ready_of(&h, "web").reason, "Synced");
    assert_eq!(h.server.event_reasons(), ["Created"]);
    assert_eq!(h.aws.integrations("a1").len(), 1);
}

#[tokio::test]
async fn a_settled_resource_is_not_looked_at_again_until_its_check_time() {
    let h = Context::test(&aws(), &[integration("web", "a1", "https://a.example")]);
    h.reconcile("team", "web").await.unwrap();
    h.aws.forget_calls();
    h.server.forget_calls();
    let action = h.reconcile("team", "web").await.unwrap();
    assert!(h.aws.calls().is_empty(), "{:?}", h.aws.calls());
    assert!(h.server.calls().is_empty());
    let debug = format!("{action:?}");
    assert!(debug.contains("requeue_after: Some"), "{debug}");
}

/// A resource in sync, seen by a process that does not remember it (a restart): one shared listing,
/// and no status write, because the status already says everything.
#[tokio::test]
async fn a_drift_check_that_finds_nothing_writes_nothing() {
    let fake = aws();
    let first = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    first.reconcile("team", "web").await.unwrap();
    let synced = first.server.object("team", "web");
    fake.forget_calls();
    let restarted = Context::test(&fake, &[synced]);
    restarted.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.ops(), ["GetApi", "GetIntegrations"]);
    assert!(
        restarted.server.status_writes().is_empty(),
        "the status write is skipped when equal"
    );
    assert!(
        restarted
            .server
            .calls()
            .iter()
            .all(|c| !c.is_object_patch())
    );
}

#[tokio::test]
async fn drift_made_outside_is_repaired_with_one_update() {
    let fake = aws();
    let first = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    first.reconcile("team", "web").await.unwrap();
    let synced = first.server.object("team", "web");
    let mut changed = fake.integration("a1", "int1").unwrap();
    changed.fields.integration_uri = Some("https://elsewhere".into());
    fake.put("a1", changed);
    fake.forget_calls();
    let h = Context::test(&fake, &[synced]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(
        fake.ops(),
        ["GetApi", "GetIntegrations", "UpdateIntegration"]
    );
    let held = fake.integration("a1", "int1").unwrap();
    assert_eq!(
        held.fields.integration_uri.as_deref(),
        Some("https://a.example")
    );
    assert_eq!(h.server.event_reasons(), ["Updated"]);
    assert_eq!(ready_of(&h, "web").reason, "Synced");
}

/// Adopting an integration that differs from the spec: it is taken, updated, and nothing is created.
/// (The adoption annotation names it until the status does, so the update needs no earlier write.)
#[tokio::test]
async fn an_adopted_integration_that_differs_is_updated_not_recreated() {
    let fake = aws();
    fake.put(
        "a1",
        ObservedIntegration {
            integration_id: "theirs".into(),
            fields: IntegrationFields {
                integration_uri: Some("https://old".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut obj = integration("web", "a1", "https://a.example");
    obj.annotations_mut()
        .insert(ADOPT_ANNOTATION.into(), "theirs".into());
    let h = Context::test(&fake, &[obj]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(
        fake.ops(),
        ["GetApi", "GetIntegration", "UpdateIntegration"]
    );
    let held = fake.integration("a1", "theirs").unwrap();
    assert_eq!(
        held.fields.integration_uri.as_deref(),
        Some("https://a.example")
    );
    // The finalizer went on before the integration was touched.
    let patch = h
        .server
        .calls()
        .into_iter()
        .find(|c| c.is_object_patch())
        .unwrap();
    assert!(patch.at < fake.writes()[0].at);
    let status = h.server.object("team", "web").status.unwrap();
    assert_eq!(status.integration_id.as_deref(), Some("theirs"));
    assert_eq!(h.server.event_reasons(), ["Adopted", "Updated"]);
    assert_eq!(fake.integrations("a1").len(), 1, "nothing created");
}

#[tokio::test]
async fn an_integration_deleted_outside_is_created_again_and_the_user_told() {
    let fake = aws();
    let first = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    first.reconcile("team", "web").await.unwrap();
    let synced = first.server.object("team", "web");
    fake.remove("a1", "int1");
    fake.forget_calls();
    let h = Context::test(&fake, &[synced]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(
        fake.ops(),
        [
            "GetApi",
            "GetIntegrations",
            "GetIntegration",
            "CreateIntegration"
        ]
    );
    // The status stopped naming the lost integration (with the create marked) before the create.
    let writes = h.server.status_writes();
    assert_eq!(writes.len(), 2);
    assert!(writes[0].body["status"]["createStartedAt"].is_string());
    assert!(writes[0].body["status"]["integrationId"].is_null());
    assert!(writes[0].at < fake.writes()[0].at);
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "Recreated");
    assert!(
        ready.message.contains("re-created as int2"),
        "{}",
        ready.message
    );
    assert_eq!(h.server.event_reasons(), ["Recreating", "Recreated"]);
}

/// A create whose answer was lost: the retry finds what it made instead of making another.
#[tokio::test]
async fn a_lost_create_answer_is_recovered_not_repeated() {
    let fake = aws();
    fake.lose_next_create_answer();
    let h = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    let err = h.reconcile("team", "web").await.unwrap_err();
    assert!(matches!(err, Error::Aws(AwsError::Unavailable(_))), "{err}");
    assert_eq!(fake.integrations("a1").len(), 1, "AWS made it");
    assert_eq!(ready_of(&h, "web").status, "False");
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    let creates = fake
        .ops()
        .iter()
        .filter(|op| **op == "CreateIntegration")
        .count();
    assert_eq!(creates, 1, "{:?}", fake.ops());
    assert_eq!(fake.integrations("a1").len(), 1);
    let status = h.server.object("team", "web").status.unwrap();
    assert_eq!(status.integration_id.as_deref(), Some("int1"));
    assert!(h.server.event_reasons().contains(&"Recovered".to_string()));
}

/// The spec changed while a create was in flight: what that create made is found by the spec it was
/// sent with, then updated to the new one (its ID recorded first).
#[tokio::test]
async fn an_interrupted_create_is_found_by_the_spec_it_sent() {
    let fake = aws();
    fake.lose_next_create_answer();
    let h = Context::test(&fake, &[integration("web", "a1", "https://first")]);
    h.reconcile("team", "web").await.unwrap_err();
    let mut edited = h.server.object("team", "web");
    edited.spec.integration_uri = Some("https://second".into());
    edited.metadata.generation = Some(2);
    h.server.put(&edited);
    h.server.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.integrations("a1").len(), 1, "no second integration");
    let held = fake.integration("a1", "int1").unwrap();
    assert_eq!(
        held.fields.integration_uri.as_deref(),
        Some("https://second")
    );
    let writes = h.server.status_writes();
    assert_eq!(writes[0].body["status"]["integrationId"], "int1");
    let update = fake
        .writes()
        .into_iter()
        .find(|c| c.op == "UpdateIntegration")
        .unwrap();
    assert!(writes[0].at < update.at);
}

#[tokio::test]
async fn a_missing_api_is_reported_and_nothing_is_written() {
    let h = Context::test(
        &FakeAws::default(),
        &[integration("web", "gone", "https://a")],
    );
    h.reconcile("team", "web").await.unwrap_err();
    assert_eq!(h.aws.ops(), ["GetApi"]);
    assert!(
        h.server.calls().iter().all(|c| !c.is_object_patch()),
        "no finalizer"
    );
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "ApiNotFound");
}

/// After a spec change, the update is computed from what this process last saw (no read); when AWS
/// answers that the integration is gone, it is created again.
#[tokio::test]
async fn an_update_from_memory_that_finds_the_integration_gone_recreates_it() {
    let fake = aws();
    let h = synced_then_edited(&fake).await;
    fake.remove("a1", "int1");
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    // The API's protocol is remembered from the first reconcile: no read at all before the update.
    assert_eq!(fake.ops(), ["UpdateIntegration", "CreateIntegration"]);
    let held = fake.integration("a1", "int2").unwrap();
    assert_eq!(
        held.fields.integration_uri.as_deref(),
        Some("https://second")
    );
    assert_eq!(ready_of(&h, "web").reason, "Recreated");
}

#[tokio::test]
async fn adopting_an_integration_another_resource_records_is_refused() {
    let fake = aws();
    fake.put(
        "a1",
        ObservedIntegration {
            integration_id: "shared".into(),
            ..Default::default()
        },
    );
    let mut owner = integration("owner", "a1", "https://a");
    owner.status = Some(crate::api::ApiIntegrationStatus {
        integration_id: Some("shared".into()),
        api_id: Some("a1".into()),
        ..Default::default()
    });
    let mut taker = integration("taker", "a1", "https://a");
    taker
        .annotations_mut()
        .insert(ADOPT_ANNOTATION.into(), "shared".into());
    let h = Context::test(&fake, &[owner, taker]);
    h.reconcile("team", "taker").await.unwrap_err();
    assert!(fake.writes().is_empty());
    let ready = ready_of(&h, "taker");
    assert_eq!(ready.reason, "AdoptionRefused");
    assert!(ready.message.contains("team/owner"), "{}", ready.message);
}

#[tokio::test]
async fn a_throttled_update_is_reported_and_retried() {
    let fake = aws();
    let h = synced_then_edited(&fake).await;
    fake.fail_next("UpdateIntegration", AwsError::Throttled("slow down".into()));
    let err = h.reconcile("team", "web").await.unwrap_err();
    assert!(matches!(err, Error::Aws(AwsError::Throttled(_))), "{err}");
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "Throttled");
    // A 429 is refused before anything is done: the next try updates from what it remembers of the
    // integration, without a read (which would spend the quota the refusal asked to spare).
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.ops(), ["UpdateIntegration"]);
    assert_eq!(ready_of(&h, "web").reason, "Synced");
}

#[tokio::test]
async fn after_a_failure_that_may_hide_a_change_the_next_try_reads_first() {
    let fake = aws();
    let h = synced_then_edited(&fake).await;
    // A 5xx (or a timeout) may come after AWS acted: what the process remembers no longer stands.
    fake.fail_next(
        "UpdateIntegration",
        AwsError::Unavailable("internal error".into()),
    );
    h.reconcile("team", "web").await.unwrap_err();
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.ops(), ["GetIntegration", "UpdateIntegration"]);
    assert_eq!(ready_of(&h, "web").reason, "Synced");
}
