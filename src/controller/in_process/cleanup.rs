//! Deleting a resource: Delete, Retain (decided once, before any permission or AWS call), what an
//! interrupted create made, and a deletion AWS refuses.

use super::settle;
use crate::api::{ApiIntegration, DeletionPolicy};
use crate::aws::AwsError;
use crate::controller::{Context, Error, FINALIZER};
use crate::fixtures::{FakeAws, Harness, integration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

fn aws() -> FakeAws {
    FakeAws::default().with_api("a1", "orders")
}

/// A resource reconciled once (created, with its finalizer), then marked for deletion.
async fn created_then_deleted(fake: &FakeAws, obj: ApiIntegration) -> Harness {
    let name = obj.metadata.name.clone().unwrap();
    let first = Context::test(fake, &[obj]);
    first.reconcile("team", &name).await.unwrap();
    let mut deleted = first.server.object("team", &name);
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    fake.forget_calls();
    Context::test(fake, &[deleted])
}

fn has_finalizer(h: &Harness, name: &str) -> bool {
    h.server
        .object("team", name)
        .metadata
        .finalizers
        .unwrap_or_default()
        .iter()
        .any(|f| f == FINALIZER)
}

#[tokio::test]
async fn deleting_removes_the_integration_then_the_finalizer() {
    let fake = aws();
    let h = created_then_deleted(&fake, integration("web", "a1", "https://a")).await;
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(fake.ops(), ["DeleteIntegration"]);
    assert!(fake.integrations("a1").is_empty());
    assert!(!has_finalizer(&h, "web"));
    assert_eq!(h.server.event_reasons(), ["Deleted"]);
}

#[tokio::test]
async fn retain_leaves_the_integration_and_touches_no_aws_api() {
    let fake = aws();
    let mut obj = integration("web", "a1", "https://a");
    obj.spec.deletion_policy = Some(DeletionPolicy::Retain);
    let h = created_then_deleted(&fake, obj).await;
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert_eq!(fake.integrations("a1").len(), 1);
    assert!(!has_finalizer(&h, "web"));
    assert_eq!(h.server.event_reasons(), ["Retained"]);
}

/// The create's answer was lost, and the resource is deleted before any retry: what the create made
/// is found by the marker and deleted, so it does not leak.
#[tokio::test]
async fn deleting_finds_and_removes_what_an_interrupted_create_made() {
    let fake = aws();
    fake.lose_next_create_answer();
    let first = Context::test(&fake, &[integration("web", "a1", "https://a")]);
    first.reconcile("team", "web").await.unwrap_err();
    let mut deleted = first.server.object("team", "web");
    assert_eq!(deleted.status.as_ref().unwrap().integration_id, None);
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    fake.forget_calls();
    let h = Context::test(&fake, &[deleted]);
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(
        fake.ops(),
        ["GetApi", "GetIntegrations", "DeleteIntegration"]
    );
    assert!(fake.integrations("a1").is_empty());
    assert!(!has_finalizer(&h, "web"));
}

#[tokio::test]
async fn routes_on_the_integration_keep_the_finalizer_and_say_why() {
    let fake = aws();
    let h = created_then_deleted(&fake, integration("web", "a1", "https://a")).await;
    fake.fail_next(
        "DeleteIntegration",
        AwsError::Conflict("Cannot delete: routes target this integration".into()),
    );
    let err = h.reconcile("team", "web").await.unwrap_err();
    assert!(matches!(err, Error::Cleanup(_)), "{err}");
    assert!(has_finalizer(&h, "web"));
    let status = h.server.object("team", "web").status.unwrap();
    let ready = crate::conditions::ready(&status.conditions).unwrap();
    assert_eq!(ready.reason, "DeletionBlocked");
}

#[tokio::test]
async fn nothing_owned_and_nothing_in_flight_means_nothing_to_delete() {
    let fake = aws();
    let mut obj = integration("web", "a1", "https://a");
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    obj.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let h = Context::test(&fake, &[obj]);
    h.reconcile("team", "web").await.unwrap();
    assert!(fake.calls().is_empty());
    assert!(!has_finalizer(&h, "web"));
}
