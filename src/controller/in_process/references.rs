//! apiRef: resolved against the region's one listing; not found and ambiguous are reported with no
//! write; an API re-made under the same name is followed.

use super::{ready_of, settle};
use crate::api::ApiIntegration;
use crate::controller::Context;
use crate::fixtures::{FakeAws, integration};
use crate::plan::Protocol;

/// An ApiIntegration whose apiRef names the API `orders` tagged env=prod.
fn by_ref(name: &str) -> ApiIntegration {
    let mut obj = integration(name, "unused", "https://a");
    obj.spec.api_id = None;
    obj.spec.api_ref = Some(
        serde_json::from_value(serde_json::json!({"name": "orders", "tags": {"env": "prod"}}))
            .unwrap(),
    );
    obj
}

fn prod(aws: FakeAws, id: &str) -> FakeAws {
    aws.with_api_tagged(id, "orders", Protocol::Http, &[("env", "prod")])
}

#[tokio::test]
async fn an_api_ref_resolves_through_the_shared_listing() {
    let fake = prod(FakeAws::default(), "p1").with_api_tagged(
        "s1",
        "orders",
        Protocol::Http,
        &[("env", "staging")],
    );
    let h = Context::test(&fake, &[by_ref("web"), by_ref("api")]);
    h.reconcile("team", "web").await.unwrap();
    h.reconcile("team", "api").await.unwrap();
    // One listing serves both; the API found in it needs no GetApi.
    assert_eq!(
        fake.ops(),
        ["GetApis", "CreateIntegration", "CreateIntegration"]
    );
    assert_eq!(fake.integrations("p1").len(), 2);
    let status = h.server.object("team", "web").status.unwrap();
    assert_eq!(status.api_id.as_deref(), Some("p1"));
}

#[tokio::test]
async fn an_api_ref_that_finds_nothing_is_reported_without_a_write() {
    let fake = FakeAws::default().with_api("x", "other");
    let h = Context::test(&fake, &[by_ref("web")]);
    h.reconcile("team", "web").await.unwrap_err();
    assert!(fake.writes().is_empty());
    assert!(fake.ops().iter().all(|op| *op == "GetApis"));
    assert!(
        h.server.calls().iter().all(|c| !c.is_object_patch()),
        "no finalizer"
    );
    assert_eq!(ready_of(&h, "web").reason, "ApiNotFound");
}

#[tokio::test]
async fn an_ambiguous_api_ref_creates_nothing_anywhere() {
    let fake = prod(prod(FakeAws::default(), "p1"), "p2");
    let h = Context::test(&fake, &[by_ref("web")]);
    h.reconcile("team", "web").await.unwrap_err();
    assert!(fake.writes().is_empty());
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "AmbiguousReference");
    assert!(
        ready.message.contains("p1") && ready.message.contains("p2"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn an_api_made_again_under_the_same_name_takes_the_integration_along() {
    let fake = prod(FakeAws::default(), "p1");
    let first = Context::test(&fake, &[by_ref("web")]);
    first.reconcile("team", "web").await.unwrap();
    let synced = first.server.object("team", "web");
    // The API is replaced: the old one (with the integration) still exists but lost its tag.
    fake.remove_api("p1");
    let fake = prod(fake.with_api("p1", "orders-old"), "p2");
    fake.put(
        "p1",
        crate::plan::ObservedIntegration {
            integration_id: "int1".into(),
            ..Default::default()
        },
    );
    fake.forget_calls();
    let h = Context::test(&fake, &[synced]);
    h.reconcile("team", "web").await.unwrap();
    settle().await;
    let writes: Vec<_> = fake
        .writes()
        .iter()
        .map(|c| (c.op, c.api_id.clone()))
        .collect();
    assert_eq!(
        writes,
        [
            ("DeleteIntegration", "p1".to_string()),
            ("CreateIntegration", "p2".to_string())
        ]
    );
    let ready = ready_of(&h, "web");
    assert_eq!(ready.reason, "Recreated");
    assert!(
        ready.message.contains("API p1 was replaced by API p2"),
        "{}",
        ready.message
    );
    assert!(h.server.event_reasons().contains(&"Recreated".to_string()));
}
