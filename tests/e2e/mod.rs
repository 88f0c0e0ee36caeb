//! End-to-end harness: the operator binary as a child process against the real local stack, moto
//! inspected through the AWS SDK (the same client the operator uses, pointed at moto), and a
//! fault-injecting HTTP proxy that sits between the operator and moto when a test needs AWS errors.
#![allow(dead_code)]

use crate::common::{TempNamespace, kubectl, kubectl_ok, kubectl_stdin, stack_env};
use aws_sdk_apigatewayv2 as apigw;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(f)
}

/// One AWS call as the operator logged it (`--aws-call-log`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Call {
    pub ms: u64,
    pub op: String,
    pub outcome: String,
    pub region: String,
    /// The AWS account the call acted in ("self": the operator's own identity).
    pub account: String,
}

/// The operator binary, running in the background against the stack, watching one namespace.
pub struct Operator {
    child: Option<Child>,
    pub call_log: PathBuf,
    pub log: PathBuf,
    namespace: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Stack variables the operator must not see (e.g. static keys, to test another credential source).
    unset: Vec<String>,
}

impl Operator {
    /// Starts the operator for `namespace` with fast timings (resync 5 s, slow retries 2 s) unless
    /// `extra` overrides them (clap takes the last occurrence).
    pub fn start(namespace: &str, extra: &[&str], envs: &[(&str, &str)]) -> Operator {
        Operator::start_without(namespace, extra, envs, &[])
    }

    /// As [`Operator::start`], with the stack's variables named in `unset` removed from its environment.
    pub fn start_without(
        namespace: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
        unset: &[&str],
    ) -> Operator {
        let dir = std::env::temp_dir().join("apigw-e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let tag = format!("{namespace}-{:08x}", rand::random::<u32>());
        let call_log = dir.join(format!("{tag}.calls.jsonl"));
        let mut args: Vec<String> = vec![
            "run".into(),
            "--watch-namespace".into(),
            namespace.into(),
            "--aws-call-log".into(),
            call_log.display().to_string(),
        ];
        for (flag, default) in [
            ("--resync-seconds", "5"),
            ("--slow-retry-seconds", "2"),
            // Tests run operators side by side: each serves metrics on a port of its own.
            ("--http-addr", "127.0.0.1:0"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut op = Operator {
            child: None,
            call_log,
            log: dir.join(format!("{tag}.log")),
            namespace: namespace.to_string(),
            args,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unset: unset.iter().map(|k| k.to_string()).collect(),
        };
        op.spawn();
        op
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_apigw-operator"));
        // `cargo xtask test` puts the stack's variables in this process's own environment too, which a
        // child inherits: remove the unset ones from both sources.
        for k in &self.unset {
            command.env_remove(k);
        }
        let child = command
            .args(&self.args)
            .envs(stack_env().iter().filter(|(k, _)| !self.unset.contains(k)))
            .env("APIGW_LOG", "info,apigw_operator=debug")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("operator starts");
        self.child = Some(child);
        // Fail here, with its output, if it refuses to start (bad flag, no CRD, no credentials).
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            self.child = None;
            panic!(
                "the operator exited at start ({status}):\n{}",
                self.log_text()
            );
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `grace` for the exit; returns the exit status (None if still running,
    /// in which case it is killed).
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process started last is still running (has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the operator and starts it again: same flags, environment, call log and log file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// As [`Operator::restart`], without the `APIGW_FAILPOINT` it was started with.
    pub fn restart_without_failpoint(&mut self) {
        self.envs.retain(|(k, _)| k != "APIGW_FAILPOINT");
        self.restart();
    }

    pub fn calls(&self) -> Vec<Call> {
        std::fs::read_to_string(&self.call_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("call log line is JSON"))
            .collect()
    }

    /// Calls of operation `op` (any outcome).
    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| c.op == op).count()
    }

    /// The operator's /metrics page (of its latest start).
    pub fn metrics_text(&self) -> String {
        let url = format!("http://{}/metrics", self.http_addr());
        crate::common::eventually(&format!("{url} to answer"), Duration::from_secs(10), || {
            http_get(&url).filter(|(status, _)| *status == 200)
        })
        .1
    }

    /// Reconciles finished since the latest start, whatever their result (`apigw_operator_reconciles_total`).
    pub fn reconciles(&self) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with("apigw_operator_reconciles_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Where /metrics is served: the `--http-addr` given, or for port 0 the address the latest start
    /// logged.
    fn http_addr(&self) -> String {
        let given = self
            .args
            .iter()
            .rposition(|a| a == "--http-addr")
            .map(|i| self.args[i + 1].clone())
            .expect("the operator is started with --http-addr");
        if !given.ends_with(":0") {
            return given;
        }
        crate::common::eventually(
            "the operator to log the address of /metrics",
            Duration::from_secs(10),
            || {
                let log = self.log_text();
                let line = log.lines().rev().find(|l| l.contains("/metrics"))?;
                let at = line.find("127.0.0.1:")?;
                let port: String = line[at + "127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
            },
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the `after-create` failpoint holds the operator between create and status write.
    pub fn wait_for_failpoint(&self, timeout: Duration) {
        crate::common::eventually("the failpoint to be reached", timeout, || {
            self.log_text()
                .contains("failpoint after-create reached")
                .then_some(())
        });
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // Let the operator release what it holds in this namespace, so the namespace can go away.
        if self.child.is_some() {
            let _ = kubectl(&[
                "delete",
                "apiintegrations",
                "--all",
                "-n",
                &self.namespace,
                "--timeout=30s",
            ]);
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- operator log ({}) ----\n{}",
                self.log.display(),
                tail(&self.log_text(), 60)
            );
        }
    }
}

/// The set-up most end-to-end tests start from: a namespace of their own, moto, optionally the fault proxy
/// in front of moto, and the operator watching that namespace (through the proxy when there is one).
///
/// `Scenario::new("e2e-x")` for the plain case; `Scenario::builder("e2e-x")` to choose the proxy, flags
/// and environment. The builder creates the namespace (and the proxy) at once, so a test can prepare moto
/// or apply resources before [`ScenarioBuilder::start`] starts the operator.
pub struct Scenario {
    // Fields drop in this order: the operator first (it deletes the namespace's ApiIntegrations, which
    // needs moto and the proxy), the namespace last.
    pub op: Operator,
    proxy: Option<FaultProxy>,
    pub moto: Moto,
    pub ns: TempNamespace,
}

impl Scenario {
    /// A namespace named after `prefix`, moto, and the operator with its test defaults.
    pub fn new(prefix: &str) -> Scenario {
        Scenario::builder(prefix).start()
    }

    pub fn builder(prefix: &str) -> ScenarioBuilder {
        ScenarioBuilder {
            proxy: None,
            moto: Moto::new(),
            ns: TempNamespace::new(prefix),
            args: Vec::new(),
            envs: Vec::new(),
            unset: Vec::new(),
        }
    }

    /// The fault proxy between the operator and moto.
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("this scenario has no fault proxy: build it with .with_proxy()")
    }
}

/// A [`Scenario`] whose operator has not started yet.
pub struct ScenarioBuilder {
    proxy: Option<FaultProxy>,
    pub moto: Moto,
    pub ns: TempNamespace,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    unset: Vec<String>,
}

impl ScenarioBuilder {
    /// Puts a [`FaultProxy`] between the operator and moto.
    pub fn with_proxy(mut self) -> ScenarioBuilder {
        self.proxy = Some(FaultProxy::start());
        self
    }

    /// Extra operator flags (see [`Operator::start`]).
    pub fn args(mut self, args: &[&str]) -> ScenarioBuilder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for the operator.
    pub fn env(mut self, key: &str, value: &str) -> ScenarioBuilder {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the operator with failpoint `name` (`APIGW_FAILPOINT`).
    pub fn failpoint(self, name: &str) -> ScenarioBuilder {
        self.env("APIGW_FAILPOINT", name)
    }

    /// Keeps the stack's variable `key` from the operator (see [`Operator::start_without`]).
    pub fn without_env(mut self, key: &str) -> ScenarioBuilder {
        self.unset.push(key.to_string());
        self
    }

    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("this scenario has no fault proxy: build it with .with_proxy()")
    }

    /// Starts the operator.
    pub fn start(self) -> Scenario {
        let mut envs: Vec<(&str, &str)> = Vec::new();
        if let Some(proxy) = &self.proxy {
            envs.push(("AWS_ENDPOINT_URL", proxy.endpoint.as_str()));
        }
        envs.extend(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let unset: Vec<&str> = self.unset.iter().map(String::as_str).collect();
        let op = Operator::start_without(&self.ns.name, &args, &envs, &unset);
        Scenario {
            op,
            proxy: self.proxy,
            moto: self.moto,
            ns: self.ns,
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A client for moto (or for the fault proxy in front of it), in the stack's region.
pub fn apigw_client(endpoint: &str) -> apigw::Client {
    apigw_client_in(endpoint, &stack_env()["AWS_REGION"])
}

/// A client for moto in `region` (moto keeps each region's APIs apart, as AWS does).
pub fn apigw_client_in(endpoint: &str, region: &str) -> apigw::Client {
    let env = stack_env();
    let config = apigw::Config::builder()
        .behavior_version_latest()
        .region(apigw::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(apigw::config::Credentials::new(
            env["AWS_ACCESS_KEY_ID"].clone(),
            env["AWS_SECRET_ACCESS_KEY"].clone(),
            None,
            None,
            "stack",
        ))
        .build();
    apigw::Client::from_conf(config)
}

pub fn moto_endpoint() -> String {
    stack_env()["AWS_ENDPOINT_URL"].clone()
}

/// What moto holds, read with the SDK.
pub struct Moto {
    pub client: apigw::Client,
}

impl Moto {
    pub fn new() -> Moto {
        Moto {
            client: apigw_client(&moto_endpoint()),
        }
    }

    /// moto as seen from another region.
    pub fn in_region(region: &str) -> Moto {
        Moto {
            client: apigw_client_in(&moto_endpoint(), region),
        }
    }

    pub fn create_api(&self, protocol: &str) -> String {
        self.create_named_api(&format!("e2e-{:08x}", rand::random::<u32>()), protocol, &[])
    }

    /// An API with this Name, protocol and tags (for references and tenancy allowlists).
    pub fn create_named_api(&self, name: &str, protocol: &str, tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut req = self
            .client
            .create_api()
            .name(name)
            .protocol_type(protocol.into())
            .set_tags(Some(tags));
        if protocol == "WEBSOCKET" {
            req = req.route_selection_expression("$request.body.action");
        }
        block_on(req.send())
            .expect("moto creates the API")
            .api_id
            .unwrap()
    }

    pub fn delete_api(&self, api_id: &str) {
        block_on(self.client.delete_api().api_id(api_id).send()).expect("moto deletes the API");
    }

    /// Integrations of an API as camelCase JSON, the way the spec spells them.
    pub fn integrations(&self, api_id: &str) -> Vec<serde_json::Value> {
        let out = block_on(self.client.get_integrations().api_id(api_id).send())
            .expect("moto lists integrations");
        out.items().iter().map(integration_json).collect()
    }

    /// One integration as camelCase JSON, or None when moto does not hold it.
    pub fn integration(&self, api_id: &str, id: &str) -> Option<serde_json::Value> {
        self.integrations(api_id)
            .into_iter()
            .find(|i| i["integrationId"] == id)
    }

    pub fn create_integration_http_proxy(&self, api_id: &str, uri: &str) -> String {
        block_on(
            self.client
                .create_integration()
                .api_id(api_id)
                .integration_type(apigw::types::IntegrationType::HttpProxy)
                .integration_method("GET")
                .integration_uri(uri)
                .payload_format_version("1.0")
                .send(),
        )
        .expect("moto creates the integration")
        .integration_id
        .unwrap()
    }

    pub fn delete_integration(&self, api_id: &str, id: &str) {
        block_on(
            self.client
                .delete_integration()
                .api_id(api_id)
                .integration_id(id)
                .send(),
        )
        .expect("moto deletes the integration");
    }

    /// Reseeds moto's random generator (moto's own `/moto-api/seed` endpoint): IDs made after it are
    /// predictable, which lets a test learn an API ID before that API exists.
    pub fn seed(&self, seed: u32) {
        let url = format!("{}/moto-api/seed?a={seed}", moto_endpoint());
        block_on(post_empty(&url)).expect("moto takes the seed");
    }
}

async fn post_empty(url: &str) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = hyper::Request::post(url)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", resp.status()))
    }
}

fn integration_json(i: &apigw::types::Integration) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    let s = |v: Option<&str>| v.map(|s| json!(s));
    put("integrationId", s(i.integration_id()));
    put("connectionId", s(i.connection_id()));
    put("connectionType", s(i.connection_type().map(|v| v.as_str())));
    put(
        "contentHandlingStrategy",
        s(i.content_handling_strategy().map(|v| v.as_str())),
    );
    put("credentialsArn", s(i.credentials_arn()));
    put("description", s(i.description()));
    put("integrationMethod", s(i.integration_method()));
    put("integrationSubtype", s(i.integration_subtype()));
    put(
        "integrationType",
        s(i.integration_type().map(|v| v.as_str())),
    );
    put("integrationUri", s(i.integration_uri()));
    put(
        "passthroughBehavior",
        s(i.passthrough_behavior().map(|v| v.as_str())),
    );
    put("payloadFormatVersion", s(i.payload_format_version()));
    put(
        "requestParameters",
        i.request_parameters().map(|m| json!(m)),
    );
    put("requestTemplates", i.request_templates().map(|m| json!(m)));
    put(
        "responseParameters",
        i.response_parameters().map(|m| json!(m)),
    );
    put(
        "templateSelectionExpression",
        s(i.template_selection_expression()),
    );
    put("timeoutInMillis", i.timeout_in_millis().map(|t| json!(t)));
    put(
        "tlsConfig",
        i.tls_config()
            .map(|t| json!({"serverNameToVerify": t.server_name_to_verify()})),
    );
    Value::Object(m)
}

/// The spec fields that are CreateIntegration inputs (not apiId, region or deletionPolicy).
pub fn integration_fields_of_spec(
    spec: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    spec.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "apiId" | "region" | "deletionPolicy"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Which spec fields moto holds differently (an empty list means every field matches).
/// moto keeps a removed responseParameters status code as an empty map (real API Gateway drops it; the
/// operator sends exactly that `{}` removal), so empty entries count as absent.
pub fn mismatches(spec: &serde_json::Value, held: &serde_json::Value) -> Vec<String> {
    let mut held = held.clone();
    if let Some(resp) = held
        .get_mut("responseParameters")
        .and_then(|m| m.as_object_mut())
    {
        resp.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
    }
    // Likewise a removed requestTemplates key stays in moto as "" (the removal the operator sends).
    if let Some(t) = held
        .get_mut("requestTemplates")
        .and_then(|m| m.as_object_mut())
    {
        t.retain(|_, v| v != "");
    }
    integration_fields_of_spec(spec)
        .into_iter()
        .filter(|(k, v)| held.get(k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: spec {v}, moto {}",
                held.get(&k).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect()
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
        let mut child = crate::common::cmd("kubectl")
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
    crate::common::eventually(
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

/// Rules for the fault proxy: requests whose "METHOD /path\nbody" contains `marker` get `status` with an AWS error
/// of type `error_type` instead of reaching moto.
#[derive(Clone)]
pub struct Fault {
    pub marker: String,
    pub status: u16,
    pub error_type: String,
    pub message: String,
}

/// A slow answer: a request whose "METHOD /path\nbody" contains `marker` reaches moto at once, and moto's
/// answer is held back for `by`.
#[derive(Clone)]
pub struct Delay {
    pub marker: String,
    pub by: Duration,
}

/// Garbage from AWS: a request whose "METHOD /path\nbody" contains `marker` gets an answer of the
/// proxy's making. With `forward` the request reaches moto first (its effect happens) and moto's answer
/// is spoiled on the way back; without, moto never sees it. `status` and `content_type` replace moto's
/// (None keeps them); `body` makes the new body from moto's (empty when not forwarded).
#[derive(Clone)]
pub struct Reply {
    pub marker: String,
    pub forward: bool,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Spoiler,
}

/// Makes a reply's body from moto's answer.
pub type Spoiler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

impl Reply {
    /// Answers matching requests with exactly `status`, `content_type` and `body`; moto never sees them.
    pub fn raw(
        marker: impl Into<String>,
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let body = body.into();
        Reply {
            marker: marker.into(),
            forward: false,
            status: Some(status),
            content_type: Some(content_type.into()),
            body: Arc::new(move |_| body.clone()),
        }
    }

    /// Lets matching requests reach moto, then hands back moto's status with the body `spoil` makes of
    /// moto's: AWS did the work, the answer is garbage.
    pub fn spoiled(
        marker: impl Into<String>,
        spoil: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> Reply {
        Reply {
            marker: marker.into(),
            forward: true,
            status: None,
            content_type: None,
            body: Arc::new(spoil),
        }
    }

    /// As [`Reply::raw`], but after the request reached moto.
    pub fn after_moto(mut self) -> Reply {
        self.forward = true;
        self
    }
}

/// Plays a rule of API Gateway's that moto does not enforce: given "METHOD /path" and the request body,
/// the error API Gateway would answer with (None: the request goes on to moto).
pub type Judge = Arc<dyn Fn(&str, &[u8]) -> Option<Fault> + Send + Sync>;

/// What the proxy does to matching requests, and how many it has held back or failed.
#[derive(Default)]
struct Rules {
    judges: Mutex<Vec<Judge>>,
    faults: Mutex<Vec<Fault>>,
    replies: Mutex<Vec<Reply>>,
    delays: Mutex<Vec<Delay>>,
    injected: AtomicUsize,
    delayed: AtomicUsize,
    seen: Mutex<Vec<SeenRequest>>,
    /// (marker, page size): moto's answers to matching GETs are cut into pages with a nextToken.
    paginate: Mutex<Option<(String, usize)>>,
    /// Pages served, and how many of those were asked for with a nextToken.
    pages: AtomicUsize,
    follow_ups: AtomicUsize,
    /// A seeded random storm over every request no rule above matched.
    storm: Mutex<Option<StormState>>,
    /// Requests of the storm, by what it did to them.
    storm_counts: Mutex<std::collections::BTreeMap<StormFault, usize>>,
    /// Requests between arrival and the end of their answer; and of those, writes (POST, PATCH, PUT, DELETE).
    in_flight: AtomicUsize,
    in_flight_writes: AtomicUsize,
}

/// What the storm does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StormFault {
    /// 429 TooManyRequestsException; moto never sees the request.
    Throttled,
    /// 500 InternalServerError; moto never sees the request.
    Internal,
    /// 503 ServiceUnavailable; moto never sees the request.
    Unavailable,
    /// The connection is closed without an answer; moto never sees the request.
    Reset,
    /// moto does the work and its answer is held back for the storm's `slow_by`.
    Slow,
    /// moto does the work and the connection is closed instead of answering: the result is lost.
    Lost,
    /// Passed through untouched (counted so the share of faults can be shown).
    None,
}

impl StormFault {
    /// The faults a storm picks from, each as likely as the others.
    pub const FAULTS: [StormFault; 6] = [
        StormFault::Throttled,
        StormFault::Internal,
        StormFault::Unavailable,
        StormFault::Reset,
        StormFault::Slow,
        StormFault::Lost,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StormFault::Throttled => "429 throttled",
            StormFault::Internal => "500 internal error",
            StormFault::Unavailable => "503 unavailable",
            StormFault::Reset => "connection reset (not applied)",
            StormFault::Slow => "slow answer past the timeout (applied)",
            StormFault::Lost => "answer lost (applied in moto)",
            StormFault::None => "passed through",
        }
    }
}

/// A storm: a `share` (0..=1) of requests get one of [`StormFault::FAULTS`], chosen by a random generator
/// seeded with `seed`; `slow_by` is how long a slow answer is held back.
#[derive(Clone, Debug)]
pub struct Storm {
    pub seed: u64,
    pub share: f64,
    pub slow_by: Duration,
}

struct StormState {
    rng: rand::rngs::StdRng,
    share: f64,
    slow_by: Duration,
}

impl StormState {
    fn pick(&mut self) -> StormFault {
        use rand::Rng;
        if self.rng.random_bool(self.share) {
            StormFault::FAULTS[self.rng.random_range(0..StormFault::FAULTS.len())]
        } else {
            StormFault::None
        }
    }
}

/// Lowers an in-flight counter when the request's future ends or is dropped (client gone).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request that reached the proxy: "METHOD /path\nbody", and the access key ID it was signed with.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub text: String,
    pub access_key: Option<String>,
}

impl Fault {
    /// Requests containing `marker` are answered with `status`, AWS error type `error_type` and `message`.
    pub fn new(marker: impl Into<String>, status: u16, error_type: &str, message: &str) -> Fault {
        Fault {
            marker: marker.into(),
            status,
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// An HTTP proxy in front of moto that injects AWS errors or delays, and counts them.
pub struct FaultProxy {
    pub endpoint: String,
    rules: Arc<Rules>,
}

impl FaultProxy {
    /// A proxy in front of the stack's moto.
    pub fn start() -> FaultProxy {
        FaultProxy::start_to(&moto_endpoint())
    }

    /// A proxy in front of the moto at `upstream` (e.g. a private one a test restarts).
    pub fn start_to(upstream: &str) -> FaultProxy {
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let rules: Arc<Rules> = Arc::default();
        let upstream = upstream.to_string();
        let shared = rules.clone();
        rt().spawn(async move {
            use hyper_util::rt::TokioIo;
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Full<bytes::Bytes>>();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, rules) = (client.clone(), upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        proxy_one(req, client.clone(), upstream.clone(), rules.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            rules,
        }
    }

    pub fn add(&self, fault: Fault) {
        self.rules.faults.lock().unwrap().push(fault);
    }

    /// Every request is shown to `judge` first; what it refuses gets its error (counted in
    /// [`FaultProxy::injected`]) and never reaches moto.
    pub fn judge(&self, judge: impl Fn(&str, &[u8]) -> Option<Fault> + Send + Sync + 'static) {
        self.rules.judges.lock().unwrap().push(Arc::new(judge));
    }

    pub fn delay(&self, delay: Delay) {
        self.rules.delays.lock().unwrap().push(delay);
    }

    /// Answers matching requests with garbage (see [`Reply`]); counted in [`FaultProxy::injected`].
    pub fn reply(&self, reply: Reply) {
        self.rules.replies.lock().unwrap().push(reply);
    }

    /// Drops the fault rules only (replies and delays stay).
    pub fn clear_faults(&self) {
        self.rules.faults.lock().unwrap().clear();
    }

    /// Drops every judge, fault, delay and reply rule.
    pub fn clear(&self) {
        self.rules.judges.lock().unwrap().clear();
        self.rules.faults.lock().unwrap().clear();
        self.rules.delays.lock().unwrap().clear();
        self.rules.replies.lock().unwrap().clear();
    }

    /// Requests answered with an injected error so far.
    pub fn injected(&self) -> usize {
        self.rules.injected.load(Ordering::SeqCst)
    }

    /// Cuts moto's answers to GET requests matching `marker` into pages of `page_size` items, linked by
    /// nextToken, as AWS does for long listings (moto returns everything at once).
    pub fn paginate(&self, marker: &str, page_size: usize) {
        *self.rules.paginate.lock().unwrap() = Some((marker.to_string(), page_size.max(1)));
    }

    /// (pages served, pages asked for with a nextToken).
    pub fn pages(&self) -> (usize, usize) {
        (
            self.rules.pages.load(Ordering::SeqCst),
            self.rules.follow_ups.load(Ordering::SeqCst),
        )
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.rules.seen.lock().unwrap().clone()
    }

    /// Answers moto has given that are being (or were) held back by a delay rule.
    pub fn delayed(&self) -> usize {
        self.rules.delayed.load(Ordering::SeqCst)
    }

    /// Starts (or reseeds) a random storm over every request that no fault, reply or delay rule matches.
    pub fn storm(&self, storm: Storm) {
        use rand::SeedableRng;
        *self.rules.storm.lock().unwrap() = Some(StormState {
            rng: rand::rngs::StdRng::seed_from_u64(storm.seed),
            share: storm.share.clamp(0.0, 1.0),
            slow_by: storm.slow_by,
        });
    }

    /// Ends the storm; requests pass untouched again (the counts are kept).
    pub fn calm(&self) {
        *self.rules.storm.lock().unwrap() = None;
    }

    /// What the storm did so far, per kind (passed-through requests under [`StormFault::None`]).
    pub fn storm_counts(&self) -> std::collections::BTreeMap<StormFault, usize> {
        self.rules.storm_counts.lock().unwrap().clone()
    }

    /// (requests in flight now, of which writes): a request is in flight from its arrival until its
    /// answer (or its dropped connection) is handed back.
    pub fn in_flight(&self) -> (usize, usize) {
        (
            self.rules.in_flight.load(Ordering::SeqCst),
            self.rules.in_flight_writes.load(Ordering::SeqCst),
        )
    }
}

/// What the proxy hands hyper: an answer, or an error that makes hyper close the connection unanswered.
type ProxyResult = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, ProxyError>;
type ProxyError = Box<dyn std::error::Error + Send + Sync>;

type ProxyClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

async fn proxy_one(
    req: hyper::Request<hyper::body::Incoming>,
    client: ProxyClient,
    upstream: String,
    rules: Arc<Rules>,
) -> ProxyResult {
    use http_body_util::{BodyExt, Full};
    let _in_flight = InFlight::enter(&rules.in_flight);
    let _write_in_flight =
        (req.method() != hyper::Method::GET).then(|| InFlight::enter(&rules.in_flight_writes));
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    // Faults match on "METHOD /path" followed by the body.
    let text = format!(
        "{} {}\n{}",
        parts.method,
        parts.uri.path(),
        String::from_utf8_lossy(&body)
    );
    // SigV4: "AWS4-HMAC-SHA256 Credential=<access key>/<date>/<region>/<service>/aws4_request, ..."
    let access_key = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
        .map(str::to_string);
    rules.seen.lock().unwrap().push(SeenRequest {
        text: text.clone(),
        access_key,
    });
    let head = format!("{} {}", parts.method, parts.uri.path());
    let judged = rules
        .judges
        .lock()
        .unwrap()
        .iter()
        .find_map(|judge| judge(&head, &body));
    let fault = judged.or_else(|| {
        rules
            .faults
            .lock()
            .unwrap()
            .iter()
            .find(|f| text.contains(&f.marker))
            .cloned()
    });
    if let Some(f) = fault {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        let payload = serde_json::json!({"message": f.message});
        return Ok(hyper::Response::builder()
            .status(f.status)
            .header("content-type", "application/json")
            .header("x-amzn-errortype", f.error_type.as_str())
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .unwrap());
    }
    let reply = rules
        .replies
        .lock()
        .unwrap()
        .iter()
        .find(|r| text.contains(&r.marker))
        .cloned();
    if let Some(r) = reply.as_ref().filter(|r| !r.forward) {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        return Ok(hyper::Response::builder()
            .status(r.status.unwrap_or(200))
            .header(
                "content-type",
                r.content_type.as_deref().unwrap_or("text/plain"),
            )
            .body(Full::new(bytes::Bytes::from((r.body)(&[]))))
            .unwrap());
    }
    let delay = rules
        .delays
        .lock()
        .unwrap()
        .iter()
        .find(|d| text.contains(&d.marker))
        .map(|d| d.by);
    // The storm only touches requests that no rule above claimed.
    let storm = if reply.is_none() && delay.is_none() {
        let picked = rules
            .storm
            .lock()
            .unwrap()
            .as_mut()
            .map(|s| (s.pick(), s.slow_by));
        if let Some((kind, _)) = picked {
            *rules.storm_counts.lock().unwrap().entry(kind).or_default() += 1;
        }
        picked
    } else {
        None
    };
    let delay = match storm {
        Some((StormFault::Slow, by)) => Some(by),
        _ => delay,
    };
    if let Some((kind, _)) = storm {
        let (status, error_type) = match kind {
            StormFault::Throttled => (429, "TooManyRequestsException"),
            StormFault::Internal => (500, "InternalServerError"),
            StormFault::Unavailable => (503, "ServiceUnavailableException"),
            StormFault::Reset => {
                return Err("storm: connection reset before the request reached moto".into());
            }
            _ => (0, ""),
        };
        if status != 0 {
            let payload = serde_json::json!({"message": format!("storm: {}", kind.label())});
            return Ok(hyper::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("x-amzn-errortype", error_type)
                .body(Full::new(bytes::Bytes::from(payload.to_string())))
                .unwrap());
        }
    }
    let page_size = rules
        .paginate
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(marker, _)| parts.method == hyper::Method::GET && text.contains(marker))
        .map(|(_, size)| *size);
    // Our page tokens are offsets into moto's full list.
    let page_offset: usize = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("nextToken="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let uri = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut fwd = hyper::Request::builder().method(parts.method).uri(uri);
    for (k, v) in parts.headers.iter() {
        if k != hyper::header::HOST {
            fwd = fwd.header(k, v);
        }
    }
    let resp = match client.request(fwd.body(Full::new(body)).unwrap()).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(hyper::Response::builder()
                .status(502)
                .body(Full::new(bytes::Bytes::from(e.to_string())))
                .unwrap());
        }
    };
    let (mut parts, body) = resp.into_parts();
    let mut body = body.collect().await?.to_bytes();
    if let Some(page_size) = page_size.filter(|_| parts.status == 200)
        && let Some(page) = one_page(&body, page_offset, page_size)
    {
        rules.pages.fetch_add(1, Ordering::SeqCst);
        if page_offset > 0 {
            rules.follow_ups.fetch_add(1, Ordering::SeqCst);
        }
        body = page;
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    if let Some(r) = reply {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        body = bytes::Bytes::from((r.body)(&body));
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
        if let Some(status) = r.status {
            parts.status = hyper::StatusCode::from_u16(status).unwrap();
        }
        if let Some(ct) = &r.content_type {
            parts
                .headers
                .insert(hyper::header::CONTENT_TYPE, ct.parse().unwrap());
        }
    }
    if let Some(by) = delay {
        // moto has done the work; only the answer is late, as when AWS acts but the reply is slow or lost.
        rules.delayed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(by).await;
    }
    if matches!(storm, Some((StormFault::Lost, _))) {
        return Err("storm: moto's answer lost on the way back".into());
    }
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}

/// A free loopback port (the kernel's choice; a small race until the operator binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `url`: (HTTP status, body), or None when nothing answers.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    block_on(async {
        use http_body_util::{BodyExt, Empty};
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<bytes::Bytes>>();
        let resp = client.get(url.parse().ok()?).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    })
}

/// The value of one sample in a Prometheus text exposition (`name{labels}` exactly as written).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One page of a listing answer `{"items": [...]}`: items[offset..offset+size], with a nextToken when more
/// follow. None when the body is not such a listing.
fn one_page(body: &[u8], offset: usize, size: usize) -> Option<bytes::Bytes> {
    let mut listing: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = listing.get("items")?.as_array()?.clone();
    let end = (offset + size).min(items.len());
    let page: Vec<serde_json::Value> = items.get(offset.min(end)..end)?.to_vec();
    listing["items"] = serde_json::Value::Array(page);
    match listing.as_object_mut() {
        Some(o) if end < items.len() => {
            o.insert("nextToken".into(), end.to_string().into());
        }
        Some(o) => {
            o.remove("nextToken");
        }
        None => return None,
    }
    Some(bytes::Bytes::from(listing.to_string()))
}
