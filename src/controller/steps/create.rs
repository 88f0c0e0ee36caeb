//! The create (design §2 rule 2): the re-create's status marker, CreateIntegration, and the ID put into
//! the status; and what an interrupted create sent, for the search that follows it.

use crate::api::{ApiIntegration, ApiIntegrationStatus, CreateInFlight};
use crate::aws::AwsError;
use crate::conditions::{EventReason, READY, Reason, set_condition};
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::scope::{ApiKey, Target, Written};
use crate::controller::status::{now, publish};
use crate::plan::{IntegrationFields, ObservedIntegration, Recreation};
use kube::ResourceExt;

/// The status marker of a re-create is written only if the object is still the version this reconcile
/// decided on (server-side apply with metadata.resourceVersion answers 409 otherwise). The controller's
/// cache can lag behind the operator's own writes, e.g. while its watch is re-established after an API
/// server restart; a create decided on such a stale copy does not see the marker (or the ID) an earlier
/// attempt wrote, and would make a second integration. On 409 nothing is created; the retry reads a
/// fresher copy. (The first-create marker has the same condition in its JSON patch, see `finalizer`.)
async fn write_create_marker(
    obj: &ApiIntegration,
    resource_version: Option<&str>,
    ctx: &Context,
    status: &ApiIntegrationStatus,
) -> Result<(), Error> {
    let api: kube::Api<ApiIntegration> =
        kube::Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = create_marker_patch(resource_version, status);
    let pp = kube::api::PatchParams::apply(crate::controller::events::MANAGER).force();
    match tokio::time::timeout(
        std::time::Duration::from_secs(15),
        api.patch_status(&obj.name_any(), &pp, &kube::api::Patch::Apply(&patch)),
    )
    .await
    {
        Ok(result) => result.map(|_| ()).map_err(Error::from),
        Err(_) => Err(Error::StatusTimeout),
    }
}

/// The server-side apply body of [`write_create_marker`]: the status, conditional on the resourceVersion.
fn create_marker_patch(
    resource_version: Option<&str>,
    status: &ApiIntegrationStatus,
) -> serde_json::Value {
    use kube::Resource;
    serde_json::json!({
        "apiVersion": ApiIntegration::api_version(&()),
        "kind": ApiIntegration::kind(&()),
        "metadata": {"resourceVersion": resource_version},
        "status": status,
    })
}

/// What the create in flight sent, with the VPC link it was made with (None when its spec was not
/// recorded; the current spec stands in).
pub(super) fn sent_by_interrupted_create(in_flight: &CreateInFlight) -> Option<IntegrationFields> {
    let spec = in_flight.spec.as_ref()?;
    let mut sent = IntegrationFields::from_spec(spec);
    if spec.connection_ref.is_some() {
        sent.connection_id = in_flight.connection_id.clone();
    }
    Some(sent)
}

/// Rule 2: "a create may have happened, on this API, with this spec" is recorded before
/// CreateIntegration, the ID right after it. For a first create the marker is the annotation the caller
/// wrote with the finalizer; when a recorded integration is replaced (lost, or its API re-made), the
/// status says so before the create. The ID goes into `status` here and reaches the API server with the
/// report that follows (Ready, or the failure of a later step; a later AWS write first writes it), so a
/// create costs one status write, not two.
// Each argument is a different thing the create needs; bundling them would only name a bag.
#[allow(clippy::too_many_arguments)]
pub(super) async fn create(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    status: &mut ApiIntegrationStatus,
    desired: &IntegrationFields,
    recreated: Option<Recreation>,
    resource_version: Option<&str>,
) -> Result<ObservedIntegration, Error> {
    if status.integration_id.is_some() {
        // Replacing an integration the status records: the status must stop naming it first, so that a
        // crash before the new ID is recorded leads to a search, not to the lost one.
        status.start_recreate(&api.api_id, desired.connection_id.clone(), &obj.spec, now());
        let message = "Creating the integration in API Gateway.";
        set_condition(
            &mut status.conditions,
            READY,
            false,
            Reason::Creating,
            message,
            obj.metadata.generation,
            now(),
        );
        write_create_marker(obj, resource_version, ctx, status).await?;
    }

    let result = t.aws.create_integration(&api.api_id, desired).await;
    match &result {
        Ok(c) => t
            .scope
            .listings
            .after_write(api, &c.integration_id, Written::Now(c)),
        Err(_) => t.scope.listings.after_write(api, "", Written::Unknown),
    }
    let created = match result {
        Ok(c) => c,
        // The API went away since its protocol was cached.
        Err(AwsError::NotFound(_)) => {
            t.scope.forget_api(api);
            return Err(Error::ApiNotFound(api.api_id.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    ctx.settings
        .failpoints
        .after_create(&created.integration_id)
        .await;
    status.connection_id = desired.connection_id.clone();
    status.record_integration(&api.api_id, &created.integration_id);
    let (reason, note) = match recreated {
        Some(r) => (EventReason::Recreated, r.message(&created.integration_id)),
        None => {
            let note = format!("Created integration {}.", created.integration_id);
            (EventReason::Created, note)
        }
    };
    publish(ctx, obj, reason, note).await;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_marker_is_conditional_on_the_version_read() {
        let status = ApiIntegrationStatus {
            create_started_at: Some(now()),
            ..Default::default()
        };
        let patch = create_marker_patch(Some("42"), &status);
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert!(patch["status"]["createStartedAt"].is_string(), "{patch}");
        assert_eq!(patch["kind"], "ApiIntegration");
    }
}
