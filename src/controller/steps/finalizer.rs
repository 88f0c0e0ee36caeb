//! The finalizer, and the first-create marker that travels with it. kube-runtime's `finalizer()` helper
//! adds the finalizer in a write of its own before anything else happens; here it is added only when the
//! resource is about to own something in AWS, and for a first create in the same request as the marker
//! ([`CREATE_STARTED_ANNOTATION`]), so that a create costs two Kubernetes writes (this one and the status
//! that records the ID) instead of four. Removal mirrors the helper: a JSON patch that tests the
//! finalizer is still where it was seen.

use crate::api::{ApiIntegration, ApiIntegrationSpec, CREATE_STARTED_ANNOTATION, CreateStarted};
use crate::controller::error::Error;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

/// Finalizer that keeps a resource until its integration is removed from AWS (or retained).
pub const FINALIZER: &str = "apigw.dev/integration";

pub fn has_finalizer(meta: &ObjectMeta) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// The largest marker that carries the spec. Annotations share 256 KiB per object with kubectl's
/// last-applied copy of the manifest; a spec that would make the marker larger (huge mapping templates) is
/// left out of it, and an interrupted create of that resource is then looked for by the current spec.
pub const MARKER_WITH_SPEC_MAX_BYTES: usize = 32 * 1024;

/// The first-create marker for a create on `api_id` (with `connection_id`) sent with `spec`.
pub fn create_marker(
    api_id: &str,
    connection_id: Option<String>,
    spec: &ApiIntegrationSpec,
    at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> CreateStarted {
    let mut marker = CreateStarted {
        api_id: api_id.to_string(),
        connection_id,
        spec: Some(spec.clone()),
        at,
    };
    let size = serde_json::to_string(&marker).map_or(usize::MAX, |s| s.len());
    if size > MARKER_WITH_SPEC_MAX_BYTES {
        marker.spec = None;
    }
    marker
}

/// The JSON patch that adds our finalizer (if missing) and sets the first-create marker to `marker`
/// (if given and not already what the annotation says); None when the object already has both.
pub fn ownership_patch(meta: &ObjectMeta, marker: Option<&CreateStarted>) -> Option<Value> {
    let mut ops = Vec::new();
    if !has_finalizer(meta) {
        match meta.finalizers.as_deref() {
            // Adding to a list that is not there fails, so the list is added whole, on condition that
            // nobody added one meanwhile.
            None | Some([]) => {
                ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": null}));
                ops.push(
                    json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}),
                );
            }
            // The API server does not deduplicate finalizers: append only to the list as it was seen.
            Some(current) => {
                ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": current}));
                ops.push(
                    json!({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}),
                );
            }
        }
    }
    if let Some(marker) = marker {
        let annotations = meta.annotations.as_ref();
        let current = annotations
            .and_then(|a| a.get(CREATE_STARTED_ANNOTATION))
            .and_then(|v| serde_json::from_str::<CreateStarted>(v).ok());
        let same_create = current.is_some_and(|c| {
            c.api_id == marker.api_id
                && c.connection_id == marker.connection_id
                && c.spec == marker.spec
        });
        if !same_create {
            // Only if the object is still the version the decision to create was made on: a stale
            // cached copy may lack the marker, or the ID, an earlier attempt wrote (the patch fails, and
            // the retry reads a fresher copy).
            if let Some(rv) = &meta.resource_version {
                ops.insert(
                    0,
                    json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                );
            }
            let value = serde_json::to_string(marker).expect("a marker serialises");
            if annotations.is_none() {
                ops.push(json!({"op": "add", "path": "/metadata/annotations",
                                "value": {CREATE_STARTED_ANNOTATION: value}}));
            } else {
                // "/" in a key is written "~1" in a JSON pointer.
                let path = format!(
                    "/metadata/annotations/{}",
                    CREATE_STARTED_ANNOTATION
                        .replace('~', "~0")
                        .replace('/', "~1")
                );
                ops.push(json!({"op": "add", "path": path, "value": value}));
            }
        }
    }
    (!ops.is_empty()).then_some(Value::Array(ops))
}

/// The JSON patch that removes our finalizer, on condition it is still at the index it was seen at;
/// None when it is not there.
pub fn removal_patch(meta: &ObjectMeta) -> Option<Value> {
    let index = meta
        .finalizers
        .as_ref()?
        .iter()
        .position(|f| f == FINALIZER)?;
    let path = format!("/metadata/finalizers/{index}");
    Some(json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]))
}

async fn patch(
    obj: &ApiIntegration,
    client: &kube::Client,
    ops: Value,
) -> Result<ApiIntegration, Error> {
    let api: Api<ApiIntegration> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let ops: json_patch::Patch = serde_json::from_value(ops).expect("a well-formed JSON patch");
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(ops),
    )
    .await
    .map_err(Error::from)
}

/// Makes sure `meta` (kept up to date by the caller's copy) has the finalizer and, if given, the
/// first-create marker; one request when something is missing, none otherwise.
pub async fn ensure(
    obj: &ApiIntegration,
    meta: &mut ObjectMeta,
    client: &kube::Client,
    marker: Option<&CreateStarted>,
) -> Result<(), Error> {
    let Some(ops) = ownership_patch(meta, marker) else {
        return Ok(());
    };
    let patched = patch(obj, client, ops).await?;
    meta.resource_version = patched.metadata.resource_version;
    if !has_finalizer(meta) {
        meta.finalizers
            .get_or_insert_default()
            .push(FINALIZER.into());
    }
    if let Some(marker) = marker {
        meta.annotations.get_or_insert_default().insert(
            CREATE_STARTED_ANNOTATION.into(),
            serde_json::to_string(marker).expect("a marker serialises"),
        );
    }
    Ok(())
}

/// Removes the finalizer (the resource then goes away). A resource already gone is fine.
pub async fn remove(obj: &ApiIntegration, client: &kube::Client) -> Result<(), Error> {
    let Some(ops) = removal_patch(&obj.metadata) else {
        return Ok(());
    };
    match patch(obj, client, ops).await {
        Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use std::collections::BTreeMap;

    fn marker(api: &str) -> CreateStarted {
        CreateStarted {
            api_id: api.into(),
            connection_id: None,
            spec: None,
            at: Time(Timestamp::UNIX_EPOCH),
        }
    }

    fn meta(finalizers: Option<Vec<&str>>, annotations: &[(&str, String)]) -> ObjectMeta {
        ObjectMeta {
            finalizers: finalizers.map(|f| f.into_iter().map(String::from).collect()),
            annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_first_create_adds_finalizer_and_marker_in_one_patch() {
        let patch = ownership_patch(&meta(None, &[]), Some(&marker("a1"))).unwrap();
        let ops = patch.as_array().unwrap();
        assert_eq!(ops.len(), 3, "{patch}");
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[1]["value"], json!([FINALIZER]));
        assert_eq!(ops[2]["path"], "/metadata/annotations");
        let value = ops[2]["value"][CREATE_STARTED_ANNOTATION].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<CreateStarted>(value).unwrap(),
            marker("a1")
        );
    }

    #[test]
    fn others_finalizers_and_annotations_are_kept() {
        let m = meta(Some(vec!["other/one"]), &[("team", "x".into())]);
        let patch = ownership_patch(&m, Some(&marker("a1"))).unwrap();
        let ops = patch.as_array().unwrap();
        assert_eq!(ops[0]["value"], json!(["other/one"]), "tests the list seen");
        assert_eq!(ops[1]["path"], "/metadata/finalizers/-");
        assert_eq!(
            ops[2]["path"],
            "/metadata/annotations/apigw.dev~1create-started"
        );
    }

    #[test]
    fn nothing_is_written_when_both_are_there() {
        let value = serde_json::to_string(&marker("a1")).unwrap();
        let m = meta(
            Some(vec![FINALIZER]),
            &[(CREATE_STARTED_ANNOTATION, value.clone())],
        );
        assert_eq!(ownership_patch(&m, Some(&marker("a1"))), None);
        assert_eq!(ownership_patch(&m, None), None);
        // Another API: the marker must say where this create happens.
        let patch = ownership_patch(&m, Some(&marker("b2"))).unwrap();
        assert_eq!(patch.as_array().unwrap().len(), 1, "{patch}");
    }

    #[test]
    fn only_the_finalizer_when_no_create_is_coming() {
        let patch = ownership_patch(&meta(None, &[]), None).unwrap();
        assert_eq!(patch.as_array().unwrap().len(), 2, "{patch}");
    }

    #[test]
    fn removal_tests_the_index_it_removes() {
        let m = meta(Some(vec!["other/one", FINALIZER]), &[]);
        let patch = removal_patch(&m).unwrap();
        assert_eq!(patch[0]["path"], "/metadata/finalizers/1");
        assert_eq!(patch[0]["value"], FINALIZER);
        assert_eq!(patch[1]["op"], "remove");
        assert_eq!(removal_patch(&meta(Some(vec!["other/one"]), &[])), None);
        assert_eq!(removal_patch(&meta(None, &[])), None);
    }

    #[test]
    fn the_marker_carries_the_spec_unless_it_is_huge() {
        let spec: ApiIntegrationSpec = serde_json::from_value(json!({
            "apiId": "a1", "integrationType": "HTTP_PROXY", "integrationUri": "https://x"
        }))
        .unwrap();
        let small = create_marker("a1", None, &spec, Time(Timestamp::UNIX_EPOCH));
        assert_eq!(small.spec.as_ref(), Some(&spec));
        let mut huge = spec.clone();
        huge.request_templates = Some(
            (0..8)
                .map(|i| (format!("t{i}"), "x".repeat(8 * 1024)))
                .collect(),
        );
        let marker = create_marker("a1", None, &huge, Time(Timestamp::UNIX_EPOCH));
        assert_eq!(marker.spec, None, "a 64 KiB spec stays out of the marker");
        assert_eq!(marker.api_id, "a1");
    }
}
