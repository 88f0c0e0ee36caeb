//! Which watch events start a reconcile. kube-runtime's Controller reconciles an object on every change
//! the watch reports, and most changes to an ApiIntegration are the operator's own status writes. A
//! status write records an outcome the reconcile that wrote it already acted on, and that reconcile has
//! scheduled the next look itself (the drift check, or the retry of a failure); reconciling again on it
//! only repeats the work. For a failure that meant repeating its AWS calls at once (nothing is
//! remembered after a failure, so the repeat was "due now"): each failure cost two or three reconciles.
//!
//! So the watch passes on only the changes a reconcile reads: the spec (through `generation`), the
//! annotations (the adoption annotation, the create marker; any annotation, so that touching one is a
//! way to make the operator look), the finalizers, and the deletion mark. A change of status, labels,
//! `resourceVersion` or `managedFields` alone starts nothing; requeues (drift checks, retries) and
//! `--tenancy policy` changes are not watch events and are not filtered.

use crate::api::ApiIntegration;
use std::hash::{Hash, Hasher};

/// A hash of what a reconcile reads from `obj` apart from its status: two versions of an object with
/// the same hash differ at most in what needs no reconcile (see the module). For kube-runtime's
/// `predicate_filter`, which passes an object on when its hash changed (or it is new to the filter).
pub fn reconcile_inputs(obj: &ApiIntegration) -> Option<u64> {
    let meta = &obj.metadata;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiIntegrationSpec, ApiIntegrationStatus};
    use crate::conditions::{READY, Reason, set_condition};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn object() -> ApiIntegration {
        let spec: ApiIntegrationSpec = serde_json::from_value(serde_json::json!({
            "apiId": "a1b2c3",
            "integrationType": "HTTP_PROXY",
            "integrationUri": "https://example.com/",
        }))
        .unwrap();
        let mut obj = ApiIntegration::new("orders", spec);
        obj.metadata.namespace = Some("team".into());
        obj.metadata.generation = Some(1);
        obj.metadata.resource_version = Some("100".into());
        obj.metadata.finalizers = Some(vec!["apigw.dev/integration".into()]);
        obj
    }

    /// What a failure's status write changes: the status, and with it resourceVersion.
    fn after_a_status_write(mut obj: ApiIntegration) -> ApiIntegration {
        let mut status = ApiIntegrationStatus {
            observed_generation: Some(1),
            ..Default::default()
        };
        set_condition(
            &mut status.conditions,
            READY,
            false,
            Reason::ApiNotFound,
            "API a1b2c3 does not exist in API Gateway",
            Some(1),
            Time(Timestamp::now()),
        );
        obj.status = Some(status);
        obj.metadata.resource_version = Some("101".into());
        obj
    }

    #[test]
    fn our_own_status_write_starts_no_reconcile() {
        let before = object();
        let after = after_a_status_write(before.clone());
        assert_eq!(reconcile_inputs(&before), reconcile_inputs(&after));
        // Nor does a label, which no reconcile reads.
        let mut labelled = after.clone();
        labelled.metadata.labels = Some([("team".to_string(), "x".to_string())].into());
        assert_eq!(reconcile_inputs(&after), reconcile_inputs(&labelled));
    }

    #[test]
    fn spec_annotation_finalizer_and_deletion_changes_each_start_one() {
        let base = after_a_status_write(object());
        let hash = reconcile_inputs(&base);
        let mut spec_changed = base.clone();
        spec_changed.metadata.generation = Some(2);
        let mut adopting = base.clone();
        adopting.metadata.annotations = Some(
            [(
                crate::api::ADOPT_ANNOTATION.to_string(),
                "int123".to_string(),
            )]
            .into(),
        );
        let mut finalizer_gone = base.clone();
        finalizer_gone.metadata.finalizers = None;
        let mut deleting = base.clone();
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        for (what, changed) in [
            ("spec", spec_changed),
            ("adoption annotation", adopting),
            ("finalizers", finalizer_gone),
            ("deletion", deleting),
        ] {
            assert_ne!(reconcile_inputs(&changed), hash, "{what}");
        }
    }
}
