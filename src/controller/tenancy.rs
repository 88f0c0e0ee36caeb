//! Tenancy (design §7): with `--tenancy policy`, the ApiGatewayAccess policies and the namespaces' labels
//! are watched ([`TenancyView`]), and each policy's status says whether it is in force. What a policy
//! allows a resource is decided at reconcile time, in `steps::permit`.

use crate::api::ApiGatewayAccess;
use crate::plan::access::{self, Policy};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How the operator decides who may manage what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tenancy {
    /// One identity, any API (no ApiGatewayAccess needed).
    #[default]
    Open,
    /// Only what an ApiGatewayAccess allows, with its identity.
    Policy,
}

/// The watched policies and namespaces.
#[derive(Clone)]
pub struct TenancyView {
    pub policies: Store<ApiGatewayAccess>,
    pub namespaces: Store<Namespace>,
    /// Both stores have been filled once: until then no decision is made (an empty store would read as
    /// "no policy" and refuse everything at startup).
    pub ready: Arc<AtomicBool>,
}

impl TenancyView {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn policies(&self) -> Vec<Policy> {
        self.policies
            .state()
            .iter()
            .map(|p| Policy {
                name: p.name_any(),
                spec: p.spec.clone(),
            })
            .collect()
    }

    pub fn namespace_labels(&self, ns: &str) -> Option<std::collections::BTreeMap<String, String>> {
        let found = self.namespaces.get(&ObjectRef::new(ns))?;
        Some(found.labels().clone())
    }
}

/// Starts watching ApiGatewayAccess objects and Namespaces. Returns the view reconciles read, and the
/// stream of "something that matters changed" (a policy added, changed or deleted; a namespace's labels
/// changed) that re-runs every reconcile and refreshes the policies' status.
pub fn watch(
    client: kube::Client,
    notify: Arc<tokio::sync::Notify>,
) -> (
    TenancyView,
    impl futures::Stream<Item = ()> + Send + 'static,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
    let (policies, policy_writer) = reflector::store::<ApiGatewayAccess>();
    let (namespaces, namespace_writer) = reflector::store::<Namespace>();
    let ready = Arc::new(AtomicBool::new(false));
    {
        let (policies, namespaces, ready) = (policies.clone(), namespaces.clone(), ready.clone());
        // One waiter per store (kube-runtime's DelayedInit wakes only its last poller).
        tokio::spawn(async move {
            let _ = policies.wait_until_ready().await;
            let _ = namespaces.wait_until_ready().await;
            ready.store(true, Ordering::SeqCst);
            tracing::info!("tenancy: ApiGatewayAccess policies and namespaces loaded");
        });
    }
    let cfg = watcher::Config::default().any_semantic();
    let policy_changes = watcher(
        kube::Api::<ApiGatewayAccess>::all(client.clone()),
        cfg.clone(),
    )
    .default_backoff()
    .reflect(policy_writer)
    .touched_objects()
    .map(|_| ());
    let label_changes = watcher(kube::Api::<Namespace>::all(client), cfg)
        .default_backoff()
        .reflect(namespace_writer)
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default())
        .map(|_| ());
    let changes = futures::stream::select(policy_changes, label_changes).map(move |()| {
        notify.notify_one();
    });
    let view = TenancyView {
        policies,
        namespaces,
        ready,
    };
    (view, changes)
}

/// Keeps each ApiGatewayAccess's status true: Ready (valid and in force) and how many namespaces its
/// selector matches now. Written only when it changed.
pub async fn write_policy_status(
    client: kube::Client,
    view: TenancyView,
    changes: Arc<tokio::sync::Notify>,
) {
    use crate::api::ApiGatewayAccessStatus;
    use crate::conditions::{READY, Reason, set_condition};
    use kube::api::{Patch, PatchParams};
    use kube::{Api, Resource};
    let api: Api<ApiGatewayAccess> = Api::all(client);
    loop {
        changes.notified().await;
        if !view.is_ready() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            changes.notify_one();
            continue;
        }
        let namespaces = view.namespaces.state();
        for policy in view.policies.state() {
            let selector = &policy.spec.namespace_selector;
            let matched = namespaces
                .iter()
                .filter(|ns| access::selects(selector, ns.labels()))
                .count();
            let unknown_operator = selector.match_expressions.iter().flatten().find(|e| {
                !["In", "NotIn", "Exists", "DoesNotExist"].contains(&e.operator.as_str())
            });
            let mut status = policy.status.clone().unwrap_or_default();
            let generation = policy.metadata.generation;
            match unknown_operator {
                None => set_condition(
                    &mut status.conditions,
                    READY,
                    true,
                    Reason::Synced,
                    format!("In force: selects {matched} namespace(s)."),
                    generation,
                    crate::conditions::now(),
                ),
                Some(e) => set_condition(
                    &mut status.conditions,
                    READY,
                    false,
                    Reason::InvalidSpec,
                    format!(
                        "namespaceSelector uses operator {:?}, which selects nothing; use In, NotIn, Exists or DoesNotExist.",
                        e.operator
                    ),
                    generation,
                    crate::conditions::now(),
                ),
            }
            status.matched_namespaces = Some(matched as i32);
            status.observed_generation = generation;
            if policy.status.as_ref() == Some(&status) {
                continue;
            }
            let patch = serde_json::json!({
                "apiVersion": ApiGatewayAccess::api_version(&()),
                "kind": ApiGatewayAccess::kind(&()),
                "status": ApiGatewayAccessStatus { ..status },
            });
            let pp = PatchParams::apply(super::events::MANAGER).force();
            if let Err(e) = api
                .patch_status(&policy.name_any(), &pp, &Patch::Apply(&patch))
                .await
            {
                tracing::warn!(policy = %policy.name_any(), error = %e, "could not write ApiGatewayAccess status");
            }
        }
    }
}
