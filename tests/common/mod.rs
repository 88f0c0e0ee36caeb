//! Shared helpers for the tests that run against the real local stack (`cargo xtask stack up`).
//! A test that needs the stack and cannot find it fails, naming the command to run; it never skips.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment of the running stack: from the process environment when `cargo xtask test` set it,
/// otherwise from target/stack/env (so a plain `cargo test` works after `cargo xtask stack up`).
pub fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stack/env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "this test needs the local stack, and {} does not exist: run `cargo xtask stack up` \
                 (or the whole suite with `cargo xtask test`)",
                file.display()
            )
        });
        let path = std::env::var("PATH").unwrap_or_default();
        let env: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("$PATH", &path)))
            .collect();
        let kc = env.get("KUBECONFIG").expect("KUBECONFIG in stack env");
        let probe = Command::new("kubectl")
            .env("PATH", &env["PATH"])
            .env("KUBECONFIG", kc)
            .args(["get", "--raw=/readyz", "--request-timeout=5s"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "the local stack described by {} is not answering: run `cargo xtask stack up`",
                file.display()
            ),
        }
        env
    })
}

/// A command with the stack's environment (KUBECONFIG, AWS_*, PATH with the stack's kubectl and helm).
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.envs(stack_env());
    c
}

pub fn kubectl(args: &[&str]) -> Output {
    cmd("kubectl").args(args).output().expect("kubectl runs")
}

/// kubectl that must succeed; returns stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kubectl applying `yaml` from stdin with extra args.
pub fn kubectl_stdin(args: &[&str], yaml: &str) -> Output {
    use std::io::Write;
    let mut child = cmd("kubectl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A namespace of its own for one test, deleted (without waiting) when dropped.
pub struct TempNamespace {
    pub name: String,
}

impl TempNamespace {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        kubectl_ok(&["create", "namespace", &name]);
        TempNamespace { name }
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Polls `f` every 200 ms until it returns Some, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

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
    /// (serde_yaml writes a string such as `y` or `on` unquoted, and kubectl's YAML 1.1 parser reads that
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
