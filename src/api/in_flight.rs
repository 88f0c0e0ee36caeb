//! The record of a create in flight (design §2 rule 2): "a CreateIntegration may have happened, on this
//! API, with this spec, and its ID is not recorded yet". Written before the create, cleared when the ID
//! is recorded; while it stands, the next reconcile (or the deletion) looks for what that create made
//! instead of making another or leaking it.
//!
//! The object carries it in one of two places, and [`ApiIntegration::create_in_flight`] is the one way
//! to read it:
//! - a first create: the [`CREATE_STARTED_ANNOTATION`] annotation, written with the finalizer in one
//!   request (a create then costs two Kubernetes writes instead of four);
//! - the re-create of an integration the status records (deleted outside the operator, or its API
//!   re-made): `status.createStartedAt` and `status.createSpec`, with `status.apiId` and
//!   `status.connectionId`, written in the same status write that stops naming the old integration.
//!
//! Both formats are the ones earlier versions wrote, so objects they left behind are read the same way.

use super::v1alpha1::{
    ApiIntegration, ApiIntegrationSpec, ApiIntegrationStatus, CREATE_STARTED_ANNOTATION,
    CreateStarted,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Where the record is kept on the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// The first-create annotation.
    Annotation,
    /// The status fields of a re-create.
    Status,
}

/// A create that may have happened without its ID being recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateInFlight {
    pub carrier: Carrier,
    /// The API the create was made on (None: the record does not say; an annotation that does not
    /// parse still means a create may have happened).
    pub api_id: Option<String>,
    /// The VPC link it was made with, when connectionRef resolved one.
    pub connection_id: Option<String>,
    /// The spec it was sent with (None: not recorded, e.g. too large for the annotation; the current
    /// spec stands in).
    pub spec: Option<ApiIntegrationSpec>,
    /// When it was started, if known.
    pub started_at: Option<Time>,
}

impl ApiIntegration {
    /// The create in flight, if the object records one. An integration ID in the status means the
    /// create finished: a first-create annotation left beside it is history and is ignored. A re-create's
    /// status marker wins over the annotation (it is the newer of the two).
    pub fn create_in_flight(&self) -> Option<CreateInFlight> {
        let status = self.status.as_ref();
        if status.is_some_and(|s| s.integration_id.is_some()) {
            return None;
        }
        if let Some(s) = status.filter(|s| s.create_started_at.is_some()) {
            return Some(CreateInFlight {
                carrier: Carrier::Status,
                api_id: s.api_id.clone(),
                connection_id: s.connection_id.clone(),
                spec: s
                    .create_spec
                    .as_deref()
                    .and_then(|json| serde_json::from_str(json).ok()),
                started_at: s.create_started_at.clone(),
            });
        }
        let value = self
            .metadata
            .annotations
            .as_ref()?
            .get(CREATE_STARTED_ANNOTATION)?;
        let marker: Option<CreateStarted> = serde_json::from_str(value).ok();
        Some(match marker {
            Some(m) => CreateInFlight {
                carrier: Carrier::Annotation,
                api_id: Some(m.api_id),
                connection_id: m.connection_id,
                spec: m.spec,
                started_at: Some(m.at),
            },
            None => CreateInFlight {
                carrier: Carrier::Annotation,
                api_id: None,
                connection_id: None,
                spec: None,
                started_at: None,
            },
        })
    }
}

impl ApiIntegrationStatus {
    /// Records, in the status, the re-create about to be made on `api_id` with `spec`: the status stops
    /// naming the integration it replaces, so that a crash before the new ID is recorded leads to a
    /// search, not back to the lost one.
    pub fn start_recreate(
        &mut self,
        api_id: &str,
        connection_id: Option<String>,
        spec: &ApiIntegrationSpec,
        at: Time,
    ) {
        self.api_id = Some(api_id.to_string());
        self.connection_id = connection_id;
        self.integration_id = None;
        self.create_started_at = Some(at);
        self.create_spec = serde_json::to_string(spec).ok();
    }

    /// Records integration `id` on `api_id`: the create in flight (if any) is over.
    pub fn record_integration(&mut self, api_id: &str, id: &str) {
        self.api_id = Some(api_id.to_string());
        self.integration_id = Some(id.to_string());
        self.clear_create_in_flight();
    }

    /// Clears the status's record of a create in flight.
    pub fn clear_create_in_flight(&mut self) {
        self.create_started_at = None;
        self.create_spec = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn spec(uri: &str) -> ApiIntegrationSpec {
        serde_json::from_value(serde_json::json!({
            "apiId": "a1", "integrationType": "HTTP_PROXY", "integrationUri": uri
        }))
        .unwrap()
    }

    fn object(annotation: Option<&str>, status: Option<ApiIntegrationStatus>) -> ApiIntegration {
        let mut obj = ApiIntegration::new("x", spec("https://now"));
        if let Some(value) = annotation {
            obj.metadata.annotations = Some(
                [(CREATE_STARTED_ANNOTATION.to_string(), value.to_string())]
                    .into_iter()
                    .collect(),
            );
        }
        obj.status = status;
        obj
    }

    fn at() -> Time {
        Time(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn nothing_recorded_means_no_create_in_flight() {
        assert_eq!(object(None, None).create_in_flight(), None);
        assert_eq!(
            object(None, Some(ApiIntegrationStatus::default())).create_in_flight(),
            None
        );
    }

    /// An annotation as the operator has written it since the first-create marker exists.
    #[test]
    fn a_first_create_is_read_from_the_annotation_in_its_written_format() {
        let value = r#"{"apiId":"a1","connectionId":"vl1","spec":{"apiId":"a1","integrationType":"HTTP_PROXY","integrationUri":"https://sent"},"at":"2026-01-02T03:04:05Z"}"#;
        let found = object(Some(value), None).create_in_flight().unwrap();
        assert_eq!(found.carrier, Carrier::Annotation);
        assert_eq!(found.api_id.as_deref(), Some("a1"));
        assert_eq!(found.connection_id.as_deref(), Some("vl1"));
        assert_eq!(found.spec, Some(spec("https://sent")));
        assert!(found.started_at.is_some());
    }

    #[test]
    fn an_unreadable_annotation_still_means_a_create_may_have_happened() {
        let found = object(Some("not json"), None).create_in_flight().unwrap();
        assert_eq!(found.api_id, None);
        assert_eq!(found.spec, None);
    }

    #[test]
    fn a_recorded_id_makes_the_annotation_history() {
        let value = serde_json::to_string(&CreateStarted {
            api_id: "a1".into(),
            connection_id: None,
            spec: None,
            at: at(),
        })
        .unwrap();
        let status = ApiIntegrationStatus {
            integration_id: Some("i1".into()),
            ..Default::default()
        };
        assert_eq!(object(Some(&value), Some(status)).create_in_flight(), None);
    }

    #[test]
    fn a_recreate_is_read_from_the_status_and_wins_over_the_annotation() {
        let mut status = ApiIntegrationStatus {
            integration_id: Some("lost".into()),
            ..Default::default()
        };
        status.start_recreate("a2", Some("vl2".into()), &spec("https://sent"), at());
        assert_eq!(status.integration_id, None);
        let old = r#"{"apiId":"a1","at":"2026-01-02T03:04:05Z"}"#;
        let found = object(Some(old), Some(status.clone()))
            .create_in_flight()
            .unwrap();
        assert_eq!(found.carrier, Carrier::Status);
        assert_eq!(found.api_id.as_deref(), Some("a2"));
        assert_eq!(found.connection_id.as_deref(), Some("vl2"));
        assert_eq!(found.spec, Some(spec("https://sent")));
        // The status format written by earlier versions: createSpec is the spec as JSON text.
        let json = serde_json::to_value(&status).unwrap();
        assert!(json["createSpec"].is_string(), "{json}");
        assert!(json["createStartedAt"].is_string(), "{json}");
        // Recording the new ID ends it.
        status.record_integration("a2", "i2");
        assert_eq!(object(Some(old), Some(status)).create_in_flight(), None);
    }
}
