//! Tenancy at reconcile time (design §7): with `--tenancy policy`, a resource is managed only through an
//! ApiGatewayAccess that selects its namespace and allows its region and API, and its calls go with that
//! policy's identity. Checked on every sync and every deletion, not only at admission, so a policy or
//! namespace label change takes effect without a restart.

use super::context::Context;
use super::error::Error;
use crate::api::{ApiGatewayAccess, ApiIntegration};
use crate::credentials::Identity;
use crate::plan::access::{self, ApiFacts, Policy};
use crate::plan::refs::{Resolved, resolve_api};
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

    fn policies(&self) -> Vec<Policy> {
        self.policies
            .state()
            .iter()
            .map(|p| Policy {
                name: p.name_any(),
                spec: p.spec.clone(),
            })
            .collect()
    }

    fn namespace_labels(&self, ns: &str) -> Option<std::collections::BTreeMap<String, String>> {
        let found = self.namespaces.get(&ObjectRef::new(ns))?;
        Some(found.labels().clone())
    }
}

/// Who may act for `obj` in `region` on `api_id` (the recorded or resolved API; None: decide from the
/// spec's apiId or apiRef through each candidate policy's own identity). Open tenancy: the operator's
/// own identity, always.
pub async fn identity_for(
    obj: &ApiIntegration,
    ctx: &Context,
    region: &str,
    recorded_api: Option<&str>,
) -> Result<Identity, Error> {
    // Deleting: the recorded API is the one to check (the reference is not resolved again).
    let deleting = recorded_api.is_some();
    let Some(view) = ctx.tenancy.as_ref() else {
        return Ok(Identity::own());
    };
    let ns = obj.namespace().unwrap_or_default();
    let labels = view.namespace_labels(&ns).unwrap_or_default();
    let policies = view.policies();
    let selecting = access::selecting(&policies, &labels);
    let in_region: Vec<&Policy> = selecting
        .iter()
        .copied()
        .filter(|p| access::allows_region(p, region))
        .collect();
    if in_region.is_empty() {
        // No policy selects the namespace, or none of those allows the region.
        let region_allowed = selecting.is_empty();
        let why = access::refusal(&ns, &selecting, region, region_allowed, None);
        return Err(Error::NotPermitted(why));
    }
    let mut last_seen: Option<ApiFacts> = None;
    for policy in in_region {
        let identity = Identity {
            role_arn: policy.spec.role_arn.clone(),
            external_id: policy.spec.external_id.clone(),
            session_name: format!("apigw-operator-{ns}"),
        };
        if policy.spec.apis.is_none() {
            return Ok(identity);
        }
        // The only AWS read before permission: what the API is called and tagged, as this policy's
        // identity sees it.
        match api_facts(obj, ctx, &identity, region, recorded_api).await? {
            Some(facts) if access::allows_api(policy, &facts) => return Ok(identity),
            Some(facts) => last_seen = Some(facts),
            // Deleting, and the API is gone for this identity: the integration went with it, and the
            // DeleteIntegration that finds nothing touches nothing. The finalizer must not hang on it.
            None if deleting => return Ok(identity),
            None => {}
        }
    }
    let why = access::refusal(&ns, &selecting, region, true, last_seen.as_ref());
    Err(Error::NotPermitted(why))
}

/// The API's ID, Name and Tags as `identity` sees it: by the recorded or spec'd ID (GetApi, cached for a
/// drift period), or by resolving apiRef in the shared listing. None: no such API for this identity.
async fn api_facts(
    obj: &ApiIntegration,
    ctx: &Context,
    identity: &Identity,
    region: &str,
    recorded_api: Option<&str>,
) -> Result<Option<ApiFacts>, Error> {
    let t = ctx.target(identity, region).await;
    let id = match (recorded_api, obj.spec.api_id.as_deref(), &obj.spec.api_ref) {
        (Some(id), _, _) | (None, Some(id), _) => id.to_string(),
        (None, None, Some(r)) => {
            let (apis, _) = t
                .scope
                .refs
                .apis(&t.aws, super::references::Want::UpToAPeriodOld)
                .await?;
            match resolve_api(r, &apis) {
                Resolved::One(id) => id,
                // Not found or ambiguous: the sync reports that once permitted; here it allows nothing.
                _ => return Ok(None),
            }
        }
        (None, None, None) => return Ok(None),
    };
    let key = (region.to_string(), id);
    let found = t.scope.api(&t.aws, &key, ctx.settings.resync).await?;
    Ok(found.map(|a| ApiFacts {
        id: a.id,
        name: a.name,
        tags: a.tags,
    }))
}

/// The part of the decision that needs no AWS read: does any policy select the namespace and allow the
/// region? Checked on every reconcile, so revoking a namespace or region is seen at once.
pub fn namespace_and_region_allowed(
    obj: &ApiIntegration,
    ctx: &Context,
    region: &str,
) -> Result<(), Error> {
    let Some(view) = ctx.tenancy.as_ref() else {
        return Ok(());
    };
    let ns = obj.namespace().unwrap_or_default();
    let labels = view.namespace_labels(&ns).unwrap_or_default();
    let policies = view.policies();
    let selecting = access::selecting(&policies, &labels);
    if selecting.iter().any(|p| access::allows_region(p, region)) {
        return Ok(());
    }
    let why = access::refusal(&ns, &selecting, region, selecting.is_empty(), None);
    Err(Error::NotPermitted(why))
}

/// Waits (at most `limit`) until the policy and namespace caches are filled; true when they are.
pub async fn wait_until_loaded(ctx: &Context, limit: std::time::Duration) -> bool {
    let Some(view) = ctx.tenancy.as_ref() else {
        return true;
    };
    let deadline = tokio::time::Instant::now() + limit;
    while !view.is_ready() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    true
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
                    super::report::now(),
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
                    super::report::now(),
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
            let pp = PatchParams::apply(super::MANAGER).force();
            if let Err(e) = api
                .patch_status(&policy.name_any(), &pp, &Patch::Apply(&patch))
                .await
            {
                tracing::warn!(policy = %policy.name_any(), error = %e, "could not write ApiGatewayAccess status");
            }
        }
    }
}
