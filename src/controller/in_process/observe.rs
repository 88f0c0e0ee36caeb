//! managementPolicy Observe (rule 11): no AWS write and no finalizer whatever is found, the drift
//! reported field by field, deletion that leaves AWS alone, and the switches to and from Manage.

use super::{ready_of, settle};
use crate::api::{ADOPT_ANNOTATION, ApiIntegration, DeletionPolicy, FieldDrift, ManagementPolicy};
use crate::controller::{Context, FINALIZER};
use crate::fixtures::{FakeAws, Harness, integration};
use crate::plan::{IntegrationFields, ObservedIntegration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

/// API a1 with integration "theirs", made outside the operator, proxying to `uri`.
fn aws_with_theirs(uri: &str) -> FakeAws {
    let fake = FakeAws::default().with_api("a1", "orders");
    fake.put(
        "a1",
        ObservedIntegration {
            integration_id: "theirs".into(),
            fields: IntegrationFields::from_spec(&integration("x", "a1", uri).spec),
            ..Default::default()
        },
    );
    fake
}

/// "web" in Observe, proxying to https://a.example, adopting `adopt` if given.
fn observing(adopt: Option<&str>) -> ApiIntegration {
    let mut obj = integration("web", "a1", "https://a.example");
    obj.spec.management_policy = Some(ManagementPolicy::Observe);
    if let Some(id) = adopt {
        obj.annotations_mut()
            .insert(ADOPT_ANNOTATION.into(), id.into());
    }
    obj
}

/// What a user's edit does: the object as the server has it, changed, at the next generation.
fn edit(h: &Harness, change: impl FnOnce(&mut ApiIntegration)) {
    let mut obj = h.server.object("team", "web");
    change(&mut obj);
    obj.metadata.generation = obj.metadata.generation.map(|g| g + 1);
    h.server.put(&obj);
}

fn has_finalizer(h: &Harness) -> bool {
    h.server
        .object("team", "web")
        .finalizers()
        .iter()
        .any(|f| f == FINALIZER)
}

fn drift_of(h: &Harness) -> Vec<FieldDrift> {
    h.server.object("team", "web").status.unwrap().drift
}

fn uri_drift(spec: &str, aws: &str) -> Vec<FieldDrift> {
    vec![FieldDrift {
        field: "integrationUri".into(),
        spec: Some(spec.into()),
        aws: Some(aws.into()),
    }]
}

#[tokio::test]
async fn with_nothing_named_observe_creates_nothing_and_says_so() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let h = Context::test(&fake, &[observing(None)]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert_eq!(fake.ops(), ["GetApi"]);
    assert!(fake.integrations("a1").is_empty());
    assert!(!has_finalizer(&h));
    assert!(h.server.calls().iter().all(|c| !c.is_object_patch()));
    let ready = ready_of(&h, "web");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "IntegrationMissing")
    );
    assert_eq!(h.server.event_reasons(), ["IntegrationMissing"]);
}

#[tokio::test]
async fn an_adoption_target_that_does_not_exist_is_missing_not_created() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let h = Context::test(&fake, &[observing(Some("gone"))]);
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.ops(), ["GetApi", "GetIntegration"]);
    assert!(fake.integrations("a1").is_empty());
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "IntegrationMissing");
    assert!(ready.message.contains("gone"), "{}", ready.message);
}

#[tokio::test]
async fn a_drifted_integration_is_reported_field_by_field_and_not_touched() {
    let fake = aws_with_theirs("https://old");
    let h = Context::test(&fake, &[observing(Some("theirs"))]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    assert_eq!(
        fake.integration("a1", "theirs")
            .unwrap()
            .fields
            .integration_uri
            .as_deref(),
        Some("https://old")
    );
    assert!(!has_finalizer(&h));
    assert_eq!(drift_of(&h), uri_drift("https://a.example", "https://old"));
    let status = h.server.object("team", "web").status.unwrap();
    assert_eq!(status.integration_id.as_deref(), Some("theirs"));
    assert!(status.applied_fields.is_empty(), "Observe sent nothing");
    let ready = ready_of(&h, "web");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Drifted")
    );
    assert!(
        ready.message.contains("integrationUri"),
        "{}",
        ready.message
    );
    assert_eq!(h.server.event_reasons(), ["Drifted"]);

    // The same drift seen again (a restarted process, at its drift check) is no news: no Event, no write.
    let again = Context::test(&fake, &[h.server.object("team", "web")]);
    fake.forget_calls();
    again.reconcile("team", "web").await.unwrap();
    settle().await;
    assert!(fake.writes().is_empty());
    assert!(again.server.event_reasons().is_empty());
    assert!(again.server.status_writes().is_empty());

    // Repaired outside the operator: in sync, and an Event says the drift is gone.
    fake.put(
        "a1",
        ObservedIntegration {
            integration_id: "theirs".into(),
            fields: IntegrationFields::from_spec(&observing(None).spec),
            ..Default::default()
        },
    );
    edit(&again, |_| {});
    again.reconcile("team", "web").await.unwrap();
    settle().await;
    assert!(fake.writes().is_empty());
    assert!(drift_of(&again).is_empty());
    assert_eq!(ready_of(&again, "web").reason, "InSync");
    assert_eq!(again.server.event_reasons(), ["InSync"]);
}

#[tokio::test]
async fn an_observed_integration_deleted_outside_is_missing_never_recreated() {
    let fake = aws_with_theirs("https://a.example");
    let h = Context::test(&fake, &[observing(Some("theirs"))]);
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(ready_of(&h, "web").reason, "InSync");
    fake.remove("a1", "theirs");
    edit(&h, |_| {});
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    assert!(fake.integrations("a1").is_empty());
    assert_eq!(ready_of(&h, "web").reason, "IntegrationMissing");
}

#[tokio::test]
async fn deleting_an_observed_resource_touches_nothing_in_aws_even_with_deletion_policy_delete() {
    let fake = aws_with_theirs("https://old");
    let mut obj = observing(Some("theirs"));
    obj.spec.deletion_policy = Some(DeletionPolicy::Delete);
    let h = Context::test(&fake, &[obj]);
    h.reconcile("team", "web").await.unwrap();
    let mut deleted = h.server.object("team", "web");
    assert!(deleted.finalizers().is_empty(), "Observe adds no finalizer");
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    fake.forget_calls();
    let h = Context::test(&fake, &[deleted]);
    h.reconcile("team", "web").await.unwrap();
    assert!(fake.calls().is_empty(), "{:?}", fake.ops());
    assert!(fake.integration("a1", "theirs").is_some());
}

/// A managed resource (with the finalizer) switched to Observe and then deleted: the finalizer is
/// released and the integration stays, although deletionPolicy is Delete.
#[tokio::test]
async fn a_managed_resource_switched_to_observe_is_released_on_deletion_without_a_delete() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let h = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    h.reconcile("team", "web").await.unwrap();
    assert!(has_finalizer(&h));
    let id = h
        .server
        .object("team", "web")
        .status
        .unwrap()
        .integration_id
        .unwrap();
    edit(&h, |o| {
        o.spec.management_policy = Some(ManagementPolicy::Observe)
    });
    let mut deleted = h.server.object("team", "web");
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    fake.forget_calls();
    let h = Context::test(&fake, &[deleted]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    assert!(fake.calls().is_empty(), "{:?}", fake.ops());
    assert!(fake.integration("a1", &id).is_some());
    assert!(!has_finalizer(&h));
    assert_eq!(h.server.event_reasons(), ["Retained"]);
}

/// Observe → Manage: one UpdateIntegration, of exactly the fields status.drift listed; then in sync.
#[tokio::test]
async fn switching_to_manage_takes_over_with_one_update_of_the_drifted_fields() {
    let fake = aws_with_theirs("https://old");
    let h = Context::test(&fake, &[observing(Some("theirs"))]);
    h.reconcile("team", "web").await.unwrap();
    let listed = drift_of(&h);
    assert_eq!(listed, uri_drift("https://a.example", "https://old"));
    edit(&h, |o| {
        o.spec.management_policy = Some(ManagementPolicy::Manage)
    });
    fake.forget_calls();
    h.server.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    let writes: Vec<_> = fake.writes().iter().map(|c| c.op).collect();
    assert_eq!(writes, ["UpdateIntegration"], "{:?}", fake.ops());
    assert_eq!(
        fake.integration("a1", "theirs").unwrap().fields,
        IntegrationFields::from_spec(&observing(None).spec)
    );
    assert!(has_finalizer(&h), "Manage owns it now");
    assert!(drift_of(&h).is_empty());
    assert_eq!(ready_of(&h, "web").reason, "Synced");
    // The Updated Event names exactly the fields status.drift listed.
    let updated: Vec<_> = h
        .server
        .calls()
        .into_iter()
        .filter(|c| c.event_reason() == Some("Updated"))
        .collect();
    assert_eq!(updated.len(), 1);
    let note = updated[0].body["note"].as_str().unwrap_or_default();
    assert_eq!(note, "Updated integrationUri of integration theirs.");
    assert_eq!(fake.integrations("a1").len(), 1, "nothing created");
}

/// Manage → Observe: a change made outside is reported, not repaired.
#[tokio::test]
async fn switching_to_observe_stops_writes_at_once() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let h = Context::test(&fake, &[integration("web", "a1", "https://a.example")]);
    h.reconcile("team", "web").await.unwrap();
    let id = h
        .server
        .object("team", "web")
        .status
        .unwrap()
        .integration_id
        .unwrap();
    let mut changed = fake.integration("a1", &id).unwrap();
    changed.fields.integration_uri = Some("https://elsewhere".into());
    fake.put("a1", changed);
    edit(&h, |o| {
        o.spec.management_policy = Some(ManagementPolicy::Observe)
    });
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    assert_eq!(
        drift_of(&h),
        uri_drift("https://a.example", "https://elsewhere")
    );
    assert_eq!(ready_of(&h, "web").reason, "Drifted");
    // The spec edited too: still no write.
    edit(&h, |o| {
        o.spec.integration_uri = Some("https://third".into())
    });
    h.reconcile("team", "web").await.unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    assert_eq!(
        drift_of(&h),
        uri_drift("https://third", "https://elsewhere")
    );

    // The spec back as Manage last synced it, and then Manage again: the one update repairs what Observe
    // listed; this process's memory of its last sync in Manage (which matches this spec) is not
    // mistaken for what AWS holds.
    edit(&h, |o| {
        o.spec.integration_uri = Some("https://a.example".into())
    });
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(
        drift_of(&h),
        uri_drift("https://a.example", "https://elsewhere")
    );
    edit(&h, |o| {
        o.spec.management_policy = Some(ManagementPolicy::Manage)
    });
    fake.forget_calls();
    h.reconcile("team", "web").await.unwrap();
    let writes: Vec<_> = fake.writes().iter().map(|c| c.op).collect();
    assert_eq!(writes, ["UpdateIntegration"], "{:?}", fake.ops());
    let held = fake.integration("a1", &id).unwrap();
    assert_eq!(
        held.fields.integration_uri.as_deref(),
        Some("https://a.example")
    );
    assert!(drift_of(&h).is_empty());
    assert_eq!(ready_of(&h, "web").reason, "Synced");
}

/// An observer records the integration it found, and so claims it: a second resource cannot adopt it
/// into Manage behind the observer's back.
#[tokio::test]
async fn an_observed_integration_is_not_adopted_by_another_resource() {
    let fake = aws_with_theirs("https://a.example");
    let h = Context::test(&fake, &[observing(Some("theirs"))]);
    h.reconcile("team", "web").await.unwrap();
    let observer = h.server.object("team", "web");
    let mut adopter = integration("grab", "a1", "https://a.example");
    adopter
        .annotations_mut()
        .insert(ADOPT_ANNOTATION.into(), "theirs".into());
    fake.forget_calls();
    let h = Context::test(&fake, &[observer, adopter]);
    h.reconcile("team", "grab").await.unwrap_err();
    assert!(fake.writes().is_empty(), "{:?}", fake.ops());
    let ready = ready_of(&h, "grab");
    assert_eq!(ready.reason, "AdoptionRefused");
    assert!(ready.message.contains("team/web"), "{}", ready.message);
}
