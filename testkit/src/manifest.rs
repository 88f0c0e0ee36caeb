//! The ApiIntegration manifests the tests apply with kubectl.

use crate::kubectl::kubectl_stdin;

/// An ApiIntegration manifest for kubectl:
/// `Manifest::http_proxy("orders", &api).uri("https://orders.example.com/").spec_field("description", "x").yaml()`.
#[derive(Clone, Debug)]
pub struct Manifest {
    metadata: serde_json::Map<String, serde_json::Value>,
    spec: serde_json::Map<String, serde_json::Value>,
}

impl Manifest {
    /// An ApiIntegration named `name` with exactly `spec` (a JSON object).
    pub fn new(name: &str, spec: serde_json::Value) -> Manifest {
        let serde_json::Value::Object(spec) = spec else {
            panic!("a spec is a JSON object, not {spec}");
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), name.into());
        Manifest { metadata, spec }
    }

    /// An HTTP_PROXY integration on `api`: GET https://example.com/<name>, payload format 1.0.
    pub fn http_proxy(name: &str, api: &str) -> Manifest {
        Manifest::new(
            name,
            serde_json::json!({"apiId": api, "integrationType": "HTTP_PROXY", "integrationMethod": "GET",
                               "integrationUri": format!("https://example.com/{name}"),
                               "payloadFormatVersion": "1.0"}),
        )
    }

    /// spec.integrationUri.
    pub fn uri(self, uri: &str) -> Manifest {
        self.spec_field("integrationUri", uri)
    }

    /// Sets spec.`key`; JSON null removes it.
    pub fn spec_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Manifest {
        match value.into() {
            serde_json::Value::Null => self.spec.remove(key),
            value => self.spec.insert(key.to_string(), value),
        };
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Manifest {
        self.metadata
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .unwrap()
            .insert(key.to_string(), value.into());
        self
    }

    /// metadata.namespace (for `kubectl apply` without `-n`).
    pub fn namespace(mut self, ns: &str) -> Manifest {
        self.metadata.insert("namespace".into(), ns.into());
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "apigw.dev/v1alpha1",
            "kind": "ApiIntegration",
            "metadata": self.metadata,
            "spec": self.spec,
        })
    }

    /// The manifest as kubectl reads it: written as JSON, which is YAML that every parser reads alike.
    /// (A YAML writer may leave a string such as `y` or `on` unquoted, and kubectl's YAML 1.1 parser reads that
    /// as a boolean.)
    pub fn yaml(&self) -> String {
        self.json().to_string()
    }

    /// `kubectl apply --server-side` into namespace `ns`.
    pub fn apply(&self, ns: &str) {
        let out = kubectl_stdin(
            &["apply", "--server-side", "-n", ns, "-f", "-"],
            &self.yaml(),
        );
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.yaml()
        );
    }
}
