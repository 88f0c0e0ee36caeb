//! Resolving a spec's references (design §6): apiRef and connectionRef, each to exactly one ID, from the
//! region's shared listings in the resource's [`Scope`](crate::controller::scope::Scope).

use crate::api::ApiIntegration;
use crate::aws::AwsError;
use crate::controller::scope::{ApiKey, Target, Want};
use crate::plan::refs::{self, GoneApi, Resolved};
use crate::plan::{self, Blocker};
use std::time::Instant;

/// What the spec's references resolved to.
pub struct Resolution {
    pub api_id: Option<String>,
    /// The connectionId to send: the spec's own, or what connectionRef resolved to.
    pub connection_id: Option<String>,
    pub unresolved: Option<Blocker>,
}

/// §6: apiRef and connectionRef, each to exactly one ID, from the region's shared listings. A reference
/// that finds nothing looks at a fresh listing once before it is reported. `gone` is the API apiRef
/// resolved to earlier in this reconcile, which then answered 404: it is left out, and unless the
/// listing is newer than that 404, not finding another says when to look again (see
/// [`refs::unresolved_api_ref`]).
pub async fn resolve_references(
    obj: &ApiIntegration,
    t: &Target,
    gone: Option<&GoneApi>,
) -> Result<Resolution, AwsError> {
    let aws = t.aws.as_ref();
    let spec = &obj.spec;
    let mut resolution = Resolution {
        api_id: spec.api_id.clone(),
        connection_id: spec.connection_id.clone(),
        unresolved: None,
    };
    if let Some(r) = &spec.api_ref {
        let what = refs::describe(&r.name, &r.tags);
        let looked_from = Instant::now();
        let (mut apis, mut listed_at) = t.scope.refs.apis(aws, Want::UpToAPeriodOld).await?;
        let mut found = refs::resolve_api_without(r, &apis, gone);
        if found == Resolved::NoMatch {
            (apis, listed_at) = t.scope.refs.apis(aws, Want::Fresh).await?;
            found = refs::resolve_api_without(r, &apis, gone);
        }
        match found {
            Resolved::One(id) => {
                if let Some(a) = apis.iter().find(|a| a.id == id) {
                    t.scope
                        .remember_api(&ApiKey::new(aws.region(), &id), a.clone());
                }
                resolution.api_id = Some(id);
            }
            Resolved::NoMatch => {
                let recheck = t.scope.refs.recheck_after();
                let blocker = refs::unresolved_api_ref(
                    what,
                    gone,
                    listed_at,
                    looked_from,
                    Instant::now(),
                    recheck,
                );
                resolution.unresolved = Some(blocker);
                return Ok(resolution);
            }
            Resolved::Ambiguous(ids) => {
                let what = format!("apiRef ({what})");
                resolution.unresolved = Some(Blocker::AmbiguousReference { what, ids });
                return Ok(resolution);
            }
        }
    }
    if let Some(r) = &spec.connection_ref {
        let what = refs::describe(&r.name, &r.tags);
        let mut links = t.scope.refs.vpc_links(aws, Want::UpToAPeriodOld).await?;
        let mut found = plan::resolve_vpc_link(r, &links);
        if found == Resolved::NoMatch {
            links = t.scope.refs.vpc_links(aws, Want::Fresh).await?;
            found = plan::resolve_vpc_link(r, &links);
        }
        match found {
            Resolved::One(id) => resolution.connection_id = Some(id),
            Resolved::NoMatch => {
                resolution.unresolved = Some(Blocker::VpcLinkNotFound { what });
            }
            Resolved::Ambiguous(ids) => {
                let what = format!("connectionRef ({what})");
                resolution.unresolved = Some(Blocker::AmbiguousReference { what, ids });
            }
        }
    }
    Ok(resolution)
}
