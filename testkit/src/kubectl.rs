//! kubectl against the running stack, a namespace per test, and what the API server holds and reports.

use crate::stack::stack_env;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// One change to an ApiIntegration as a watch saw it.
#[derive(Clone, Debug)]
pub struct SeenWrite {
    /// ADDED, MODIFIED or DELETED.
    pub kind: String,
    pub name: String,
    pub resource_version: String,
}

/// Every write to the ApiIntegrations of a namespace, as `kubectl get --watch` reports them: each ADDED,
/// MODIFIED or DELETED event is one write to the API server (Events are other objects and not counted).
pub struct WriteWatch {
    child: Child,
    seen: Arc<Mutex<Vec<SeenWrite>>>,
}

impl WriteWatch {
    /// Starts watching; returns once the watch has sent its first event (or after a short grace period
    /// when the namespace is still empty).
    pub fn start(ns: &str) -> WriteWatch {
        let mut child = cmd("kubectl")
            .args([
                "get",
                "apiintegrations",
                "-n",
                ns,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl get --watch");
        let stdout = child.stdout.take().unwrap();
        let seen: Arc<Mutex<Vec<SeenWrite>>> = Arc::default();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let events = serde_json::Deserializer::from_reader(std::io::BufReader::new(stdout))
                .into_iter::<serde_json::Value>();
            for event in events.map_while(Result::ok) {
                let object = &event["object"];
                sink.lock().unwrap().push(SeenWrite {
                    kind: event["type"].as_str().unwrap_or_default().to_string(),
                    name: object["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    resource_version: object["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        });
        // The watch starts with what exists; give it a moment to be established.
        std::thread::sleep(Duration::from_millis(1500));
        WriteWatch { child, seen }
    }

    /// What was seen so far for `name`, in order.
    pub fn of(&self, name: &str) -> Vec<SeenWrite> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.name == name)
            .cloned()
            .collect()
    }

    /// The kinds of the events seen for `name` (e.g. ["ADDED", "MODIFIED", "MODIFIED"]).
    pub fn kinds(&self, name: &str) -> Vec<String> {
        self.of(name).into_iter().map(|w| w.kind).collect()
    }
}

impl Drop for WriteWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn get_json(kind_name: &str, ns: &str) -> serde_json::Value {
    serde_json::from_str(&kubectl_ok(&["get", kind_name, "-n", ns, "-o", "json"])).unwrap()
}

pub fn apply_yaml(ns: &str, yaml: &str) {
    let out = kubectl_stdin(&["apply", "--server-side", "-n", ns, "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl wait --for=condition=Ready`, the way a user (or a GitOps tool) waits.
/// `target` is `kind/name`, or a kind alone for all of that kind in the namespace.
pub fn wait_ready(target: &str, ns: &str, timeout: Duration) {
    let timeout_arg = format!("--timeout={}s", timeout.as_secs());
    let mut args = vec![
        "wait",
        "--for=condition=Ready",
        target,
        "-n",
        ns,
        &timeout_arg,
    ];
    if !target.contains('/') {
        args.push("--all");
    }
    let out = kubectl(&args);
    assert!(
        out.status.success(),
        "{target} did not become Ready: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        kubectl(&["get", "apiint", "-n", ns, "-o", "yaml"])
            .stdout
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
    );
}

/// Waits (up to a minute) until `name` is Ready False with `reason`; returns the condition's message.
pub fn wait_not_ready(name: &str, ns: &str, reason: &str) -> String {
    crate::eventually(
        &format!("{name}: Ready False with reason {reason}"),
        Duration::from_secs(60),
        || match ready_of(name, ns) {
            Some((s, r, m)) if s == "False" && r == reason => Some(m),
            _ => None,
        },
    )
}

/// The Ready condition of an ApiIntegration: (status, reason, message).
pub fn ready_of(name: &str, ns: &str) -> Option<(String, String, String)> {
    let obj = get_json(&format!("apiintegration/{name}"), ns);
    let conds = obj["status"]["conditions"].as_array()?;
    let c = conds.iter().find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Event reasons recorded for an object.
pub fn event_reasons(name: &str, ns: &str) -> Vec<String> {
    let out = kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
    ]);
    out.lines().map(str::to_string).collect()
}
