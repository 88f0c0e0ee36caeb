//! Events, written straight to the API server (events.k8s.io/v1). Not kube-runtime's `Recorder`: that
//! keeps every Event it publishes for six minutes (to count repeats as a series) and scans them all on
//! each publish; after a burst of creates at thousands of resources that cache was the largest thing in
//! the operator's memory. The operator publishes an Event only when something happened or a failure is
//! news, so repeats are rare and a series buys little.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

/// Field manager of the operator's status writes and the Events' reporting controller.
pub const MANAGER: &str = "apigw-operator";

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Who publishes: the controller's name and this replica's.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
}

impl Publisher {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Publisher {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
        }
    }

    /// The Event as it is sent (pure, for the tests).
    pub fn event(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: String,
        now: Timestamp,
    ) -> Event {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                // Unique per object and instant, like kubectl's and kube-runtime's own names.
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                match severity {
                    Severity::Normal => "Normal",
                    Severity::Warning => "Warning",
                }
                .to_string(),
            ),
            ..Default::default()
        }
    }

    /// Creates the Event in the regarded object's namespace.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let event = self.event(regarding, severity, reason, action, note, Timestamp::now());
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        api.create(&PostParams::default(), &event).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_names_its_object_reporter_and_kind() {
        // A client that is never used: building an Event makes no request.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let publisher = Publisher::new(client, "apigw-operator", Some("pod-1".into()));
        let regarding = ObjectReference {
            name: Some("orders".into()),
            namespace: Some("team-a".into()),
            ..Default::default()
        };
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let e = publisher.event(
            &regarding,
            Severity::Warning,
            "Recreating",
            "Create",
            "gone".into(),
            now,
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("team-a"));
        assert!(e.metadata.name.unwrap().starts_with("orders."));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("Recreating"));
        assert_eq!(e.action.as_deref(), Some("Create"));
        assert_eq!(e.reporting_controller.as_deref(), Some("apigw-operator"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(e.regarding, Some(regarding));
        assert_eq!(e.event_time, Some(MicroTime(now)));
    }
}
