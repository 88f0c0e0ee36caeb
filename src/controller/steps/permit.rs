//! Tenancy at reconcile time (design §7): with `--tenancy policy`, a resource is managed only through an
//! ApiGatewayAccess that selects its namespace and allows its region and API, and its calls go with that
//! policy's identity. Checked on every sync and every deletion, not only at admission, so a policy or
//! namespace label change takes effect without a restart.

use crate::api::ApiIntegration;
use crate::aws::credentials::Identity;
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::scope::{ApiKey, Want};
use crate::plan::access::{self, ApiFacts, Policy};
use crate::plan::refs::{Resolved, resolve_api};
use kube::ResourceExt;

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
                .apis(t.aws.as_ref(), Want::UpToAPeriodOld)
                .await?;
            match resolve_api(r, &apis) {
                Resolved::One(id) => id,
                // Not found or ambiguous: the sync reports that once permitted; here it allows nothing.
                _ => return Ok(None),
            }
        }
        (None, None, None) => return Ok(None),
    };
    let key = ApiKey::new(region, id);
    let found = t
        .scope
        .api(t.aws.as_ref(), &key, ctx.settings.resync)
        .await?;
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
