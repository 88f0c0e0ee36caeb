//! `--tenancy policy`: a namespace no policy allows makes no AWS call at all, and an allowed one acts in
//! its policy's account.

use super::ready_of;
use crate::api::{ApiGatewayAccess, ApiGatewayAccessSpec};
use crate::controller::{Context, FINALIZER, Settings, Tenancy, TenancyView};
use crate::fixtures::{FakeAws, integration};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The policies given, and namespace "team" labelled `team=<label>`, both loaded.
fn view(policies: &[(&str, serde_json::Value)], label: &str) -> TenancyView {
    let (policy_store, mut policy_writer) = reflector::store::<ApiGatewayAccess>();
    for (name, spec) in policies {
        let spec: ApiGatewayAccessSpec = serde_json::from_value(spec.clone()).unwrap();
        policy_writer.apply_watcher_event(&Event::Apply(ApiGatewayAccess::new(name, spec)));
    }
    let (namespaces, mut namespace_writer) = reflector::store::<Namespace>();
    let mut team = Namespace::default();
    team.metadata.name = Some("team".into());
    team.metadata.labels = Some([("team".to_string(), label.to_string())].into());
    namespace_writer.apply_watcher_event(&Event::Apply(team));
    TenancyView {
        policies: policy_store,
        namespaces,
        ready: Arc::new(AtomicBool::new(true)),
    }
}

fn policy_settings() -> Settings {
    Settings {
        tenancy: Tenancy::Policy,
        ..Settings::test()
    }
}

fn orders_policy() -> serde_json::Value {
    serde_json::json!({
        "namespaceSelector": {"matchLabels": {"team": "orders"}},
        "roleArn": "arn:aws:iam::111122223333:role/orders",
        "apis": [{"name": "orders*"}]
    })
}

#[tokio::test]
async fn a_namespace_no_policy_selects_makes_no_aws_call() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let tenancy = view(&[("orders", orders_policy())], "billing");
    let objects = [integration("web", "a1", "https://a")];
    let h = Context::test_with(&fake, &objects, policy_settings(), Some(tenancy));
    h.reconcile("team", "web").await.unwrap_err();
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert!(h.server.calls().iter().all(|c| !c.is_object_patch()));
    assert_eq!(ready_of(&h, "web").reason, "NotPermitted");
}

#[tokio::test]
async fn an_api_the_policy_does_not_name_is_refused_after_one_read() {
    let fake = FakeAws::default().with_api("a1", "payments");
    let tenancy = view(&[("orders", orders_policy())], "orders");
    let objects = [integration("web", "a1", "https://a")];
    let h = Context::test_with(&fake, &objects, policy_settings(), Some(tenancy));
    h.reconcile("team", "web").await.unwrap_err();
    // The only read before permission: what the API is called, as the policy's role sees it.
    assert_eq!(fake.ops(), ["GetApi"]);
    assert!(fake.writes().is_empty());
    assert_eq!(ready_of(&h, "web").reason, "NotPermitted");
}

#[tokio::test]
async fn an_allowed_resource_acts_in_its_policys_account() {
    let fake = FakeAws::default().with_api("a1", "orders-prod");
    let tenancy = view(&[("orders", orders_policy())], "orders");
    let objects = [integration("web", "a1", "https://a")];
    let h = Context::test_with(&fake, &objects, policy_settings(), Some(tenancy));
    h.reconcile("team", "web").await.unwrap();
    let accounts: Vec<_> = fake.calls().iter().map(|c| c.account.clone()).collect();
    assert!(accounts.iter().all(|a| a == "111122223333"), "{accounts:?}");
    assert_eq!(fake.writes().len(), 1);
    let status = h.server.object("team", "web").status.unwrap();
    assert_eq!(status.account_id.as_deref(), Some("111122223333"));
}

#[tokio::test]
async fn a_deletion_without_permission_keeps_the_finalizer_and_calls_nothing() {
    let fake = FakeAws::default().with_api("a1", "orders");
    let mut obj = integration("web", "a1", "https://a");
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    obj.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    obj.status = Some(crate::api::ApiIntegrationStatus {
        integration_id: Some("int9".into()),
        api_id: Some("a1".into()),
        ..Default::default()
    });
    let tenancy = view(&[("orders", orders_policy())], "billing");
    let h = Context::test_with(&fake, &[obj], policy_settings(), Some(tenancy));
    h.reconcile("team", "web").await.unwrap_err();
    assert!(fake.calls().is_empty());
    let finalizers = h.server.object("team", "web").metadata.finalizers.unwrap();
    assert!(finalizers.iter().any(|f| f == FINALIZER));
}
