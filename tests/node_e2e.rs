//! Pods on the stack's real node (`cargo xtask stack up --node`, started here when it is not up).
//!
//! The two tests take turns on the node (a lock): the first takes the node down at its end to check
//! that nothing is left, and the test executables of `cargo xtask test` run side by side.
//!
//! 1. A restricted Pod: containerd, a kubelet and kube-scheduler on the running control plane; the Pod
//!    (non-root, read-only root, no capabilities) runs the stand-in busybox image, reaches the API server
//!    through the in-cluster `kubernetes` Service with its service-account token, reaches the host's
//!    loopback services through the bridge's address and nothing outside the machine; `stack down
//!    --node` then leaves nothing behind.
//!
//! 2. The chart as users run it: the image built from the Dockerfile, installed with `helm install`
//!    onto the node, against moto through a counting proxy that the Pods reach at the node's gateway
//!    address. Both replicas become Running and Ready through the kubelet's probes and one leads;
//!    ApiIntegrations become Ready through the in-cluster service account; the container runs as 65532
//!    with a read-only root and no capabilities (read from its process on the host); its log (from the
//!    kubelet) names the objects and has no warning at a clean start; /metrics answers at the Pod's
//!    address. Deleting the leading Pod hands the Lease over within the lease and a change made
//!    meanwhile lands once; a rolling `helm upgrade` to a second image tag with 200 resources present
//!    duplicates nothing, loses no update and makes a bounded number of AWS calls; `helm uninstall`
//!    leaves the integrations and the CRD.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use testkit::moto::Moto;
use testkit::node::{
    container_pid, ensure_node, machine_traces, node_down, operator_image_on_node,
};
use testkit::paths::stack_dir;
use testkit::proxy::{FaultProxy, ProxyCall};
use testkit::stack::StackState;

/// The release's name: the chart then names its Deployment and Lease the same.
const RELEASE: &str = "apigw-operator";
const LEASE_SECONDS: u64 = 15;
const RESOURCES: usize = 200;

fn helm_ok(args: &[&str]) -> String {
    let out = cmd("helm").args(args).output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&kubectl_ok(args)).unwrap()
}

/// The release's Pods that are not being deleted: name -> Pod.
fn pods(ns: &str) -> BTreeMap<String, Value> {
    let list = json(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "json",
    ]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p.clone(),
            )
        })
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn lease_holder(ns: &str) -> Option<String> {
    let lease = json(&["get", "lease", RELEASE, "-n", ns, "-o", "json"]);
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

/// A plain HTTP GET from this host to a Pod's address.
fn http_get(ip: &str, port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().unwrap(),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("connecting to {ip}:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Names of the resources in `ns` whose Ready condition is True.
fn ready_resources(ns: &str) -> usize {
    let list = json(&["get", "apiintegrations", "-n", ns, "-o", "json"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count()
}

fn apply_list(ns: &str, manifests: &[Manifest]) {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": manifests.iter().map(|m| m.json()).collect::<Vec<_>>(),
    });
    let out = kubectl_stdin(&["apply", "-n", ns, "-f", "-"], &list.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ops(calls: &[ProxyCall]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts.entry(c.op.clone()).or_default() += 1;
    }
    counts
}

/// What the container's process is, read on the host: (uid line, CapEff, root mounted read-only).
fn process_facts(node: &testkit::stack::StackNode, pod: &Value) -> (String, String, bool) {
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .expect("a started container");
    let pid = container_pid(node, id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root_ro = mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/") && f.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro"))
    });
    (field("Uid:"), field("CapEff:"), root_ro)
}

/// Takes the finalizer off every ApiIntegration in `ns` (one write of the whole list): with the operator
/// gone nothing else would, and the namespace could never be deleted.
fn drop_finalizers(ns: &str) {
    let Ok(out) = cmd("kubectl")
        .args(["get", "apiintegrations", "-n", ns, "-o", "json"])
        .output()
    else {
        return;
    };
    let Ok(mut list) = serde_json::from_slice::<Value>(&out.stdout) else {
        return;
    };
    let Some(items) = list["items"].as_array_mut() else {
        return;
    };
    if items.is_empty() {
        return;
    }
    for item in items.iter_mut() {
        item["metadata"]["finalizers"] = Value::Array(Vec::new());
    }
    let _ = kubectl_stdin(&["replace", "-f", "-"], &list.to_string());
}

/// When the test ends, however it ends: the release uninstalled (its ClusterRoles would outlive the
/// namespace) and the resources' finalizers taken off, before the namespaces are deleted.
struct Cleanup {
    release_ns: String,
    resources_ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = cmd("helm")
            .args([
                "uninstall",
                RELEASE,
                "-n",
                &self.release_ns,
                "--ignore-not-found",
            ])
            .output();
        drop_finalizers(&self.resources_ns);
    }
}

/// One test on the node at a time (see the file's comment).
static NODE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn node_to_myself() -> std::sync::MutexGuard<'static, ()> {
    NODE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn the_chart_runs_on_the_node_end_to_end() {
    let _node = node_to_myself();
    let started = Instant::now();
    let node = ensure_node();
    // The same image under two tags: the upgrade changes the Pod template, which is what rolls.
    let repository = "localhost/apigw-operator";
    let (tag_a, tag_b) = ("node-a", "node-b");
    let image_a = format!("{repository}:{tag_a}");
    let image_b = format!("{repository}:{tag_b}");
    operator_image_on_node(&[&image_a, &image_b]);
    eprintln!("node and images ready after {:.0?}", started.elapsed());

    let proxy = FaultProxy::start();
    let proxy_port = proxy.endpoint.rsplit(':').next().unwrap();
    let aws_url = format!("http://{}:{proxy_port}", node.gateway);
    let rel = TempNamespace::new("apigw-node");
    let res = TempNamespace::new("node-chart");
    let env = stack_env();
    kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "aws",
        "-n",
        &rel.name,
        &format!(
            "--from-literal=AWS_ACCESS_KEY_ID={}",
            env["AWS_ACCESS_KEY_ID"]
        ),
        &format!(
            "--from-literal=AWS_SECRET_ACCESS_KEY={}",
            env["AWS_SECRET_ACCESS_KEY"]
        ),
    ]);
    let chart = repo_path("charts/apigw-operator").display().to_string();
    let sets = [
        format!("image.repository={repository}"),
        format!("image.tag={tag_a}"),
        "image.pullPolicy=Never".to_string(),
        format!("aws.endpointUrl={aws_url}"),
        "aws.credentialsSecret.name=aws".to_string(),
        format!("region={}", env["AWS_REGION"]),
        format!("leaderElection.leaseDurationSeconds={LEASE_SECONDS}"),
        // Only this test's resources: other test executables run their own operators beside this one.
        format!("watchNamespace={}", res.name),
    ];
    let mut install = vec!["install", RELEASE, chart.as_str(), "-n", rel.name.as_str()];
    for s in &sets {
        install.extend(["--set", s.as_str()]);
    }
    let t = Instant::now();
    helm_ok(&install);
    let _cleanup = Cleanup {
        release_ns: rel.name.clone(),
        resources_ns: res.name.clone(),
    };

    // Both replicas Running and Ready: the kubelet's readiness probes on /readyz answered.
    let pods_a = eventually("both replicas Ready", Duration::from_secs(180), || {
        let p = pods(&rel.name);
        (p.len() == 2 && p.values().all(ready)).then_some(p)
    });
    eprintln!("both replicas Ready {:.1?} after helm install", t.elapsed());
    for pod in pods_a.values() {
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["spec"]["containers"][0]["image"], image_a.as_str());
        assert!(
            pod["spec"]["hostNetwork"].is_null(),
            "Pods have their own network"
        );
        assert!(
            pod["spec"]["containers"][0]["readinessProbe"]["httpGet"].is_object(),
            "Ready comes from an HTTP probe"
        );
        let (uid, cap_eff, root_ro) = process_facts(&node, pod);
        assert_eq!(uid, "65532 65532 65532 65532", "the operator's uids");
        assert_eq!(cap_eff, "0000000000000000", "no effective capability");
        assert!(root_ro, "the root filesystem is mounted read-only");
    }
    let leader = eventually("a leader", Duration::from_secs(LEASE_SECONDS * 2), || {
        lease_holder(&rel.name).filter(|h| pods_a.contains_key(h))
    });
    let standby = pods_a.keys().find(|p| **p != leader).unwrap().clone();

    // An ApiIntegration becomes Ready: the operator reaches the API server through the in-cluster
    // `kubernetes` Service with the service account's token, and moto through the node's gateway.
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let orders = Manifest::http_proxy("orders", &api);
    orders.apply(&res.name);
    eventually("orders Ready", Duration::from_secs(60), || {
        (ready_resources(&res.name) == 1).then_some(())
    });
    assert_eq!(moto.integrations(&api).len(), 1);

    // Checked at the end, so that a warning does not hide how the rest went.
    let mut start_warnings: Vec<String> = Vec::new();
    for pod in pods_a.keys() {
        let log = kubectl_ok(&["logs", "-n", &rel.name, pod]);
        start_warnings.extend(
            log.lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .map(|l| format!("{pod}: {l}")),
        );
    }
    // A resource that cannot succeed (its API does not exist): the leader's log line about it, read
    // from the kubelet, names it.
    Manifest::http_proxy("missing-api", "nosuchapi").apply(&res.name);
    let line = eventually(
        "a log line about missing-api",
        Duration::from_secs(60),
        || {
            let log = kubectl_ok(&["logs", "-n", &rel.name, &leader]);
            log.lines()
                .find(|l| l.contains("name=missing-api"))
                .map(str::to_string)
        },
    );
    assert!(
        line.contains(&format!("namespace={}", res.name)),
        "the line names the object's namespace too: {line}"
    );
    kubectl_ok(&["delete", "apiintegration", "missing-api", "-n", &res.name]);

    // /metrics at each Pod's address: the leader says it leads, the stand-by that it does not.
    for (name, pod) in &pods_a {
        let ip = pod["status"]["podIP"].as_str().unwrap();
        let (status, body) = http_get(ip, 8080, "/metrics");
        assert_eq!(status, 200, "/metrics of {name} at {ip}");
        let leads = metric(&body, "apigw_operator_leader");
        assert_eq!(
            leads,
            Some(if *name == leader { 1.0 } else { 0.0 }),
            "apigw_operator_leader of {name}"
        );
        if *name == leader {
            assert!(
                body.contains("apigw_operator_reconciles_total"),
                "the leader counts its reconciles"
            );
        }
    }

    // The leading Pod goes away; a change made meanwhile lands exactly once.
    let integration_id = json(&[
        "get",
        "apiintegration",
        "orders",
        "-n",
        &res.name,
        "-o",
        "json",
    ])["status"]["integrationId"]
        .as_str()
        .expect("orders has an integration ID")
        .to_string();
    let mark = proxy.answered();
    let deleted = Instant::now();
    kubectl_ok(&["delete", "pod", &leader, "-n", &rel.name, "--wait=false"]);
    orders
        .clone()
        .uri("https://example.com/orders-v2")
        .apply(&res.name);
    let new_leader = eventually(
        "another leader",
        Duration::from_secs(LEASE_SECONDS * 3),
        || lease_holder(&rel.name).filter(|h| *h != leader),
    );
    let handover = deleted.elapsed();
    eprintln!("{new_leader} leads {handover:.1?} after {leader} was deleted");
    assert!(
        handover <= Duration::from_secs(LEASE_SECONDS + 5),
        "the hand-over took {handover:?}, more than the lease ({LEASE_SECONDS} s) and 5 s"
    );
    // The stand-by, or the Pod that replaces the deleted one when it starts first: the Lease was
    // released on the way out, so whoever asks first takes it.
    assert!(
        pods(&rel.name).contains_key(&new_leader),
        "{new_leader} is one of the release's Pods (the stand-by was {standby})"
    );
    eventually("the change in AWS", Duration::from_secs(60), || {
        moto.integration(&api, &integration_id)
            .filter(|i| i["integrationUri"] == "https://example.com/orders-v2")
    });
    std::thread::sleep(Duration::from_secs(3));
    let updates = proxy
        .calls_since(mark, None)
        .iter()
        .filter(|c| {
            c.op == "UpdateIntegration" && c.integration.as_deref() == Some(&*integration_id)
        })
        .count();
    assert_eq!(
        updates, 1,
        "the change made during the hand-over is written once"
    );
    assert_eq!(moto.integrations(&api).len(), 1, "no duplicate");

    // 200 resources, then a rolling upgrade to the second tag with changes made during the roll.
    let many: Vec<Manifest> = (0..RESOURCES)
        .map(|i| Manifest::http_proxy(&format!("r{i:03}"), &api))
        .collect();
    apply_list(&res.name, &many);
    let t = Instant::now();
    eventually("every resource Ready", Duration::from_secs(600), || {
        (ready_resources(&res.name) == RESOURCES + 1).then_some(())
    });
    eprintln!("{RESOURCES} resources Ready after {:.1?}", t.elapsed());
    let mark = proxy.answered();
    let t = Instant::now();
    let mut upgrade = vec![
        "upgrade",
        RELEASE,
        chart.as_str(),
        "-n",
        rel.name.as_str(),
        "--reuse-values",
    ];
    let tag_set = format!("image.tag={tag_b}");
    upgrade.extend(["--set", tag_set.as_str()]);
    helm_ok(&upgrade);
    let changed: Vec<Manifest> = many
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, m)| m.clone().uri(&format!("https://example.com/rolled-{i}")))
        .collect();
    apply_list(&res.name, &changed);
    kubectl_ok(&[
        "rollout",
        "status",
        "deployment",
        RELEASE,
        "-n",
        &rel.name,
        "--timeout=300s",
    ]);
    let pods_b = eventually(
        "two replicas of the new tag Ready",
        Duration::from_secs(120),
        || {
            let p = pods(&rel.name);
            (p.len() == 2
                && p.values()
                    .all(|p| ready(p) && p["spec"]["containers"][0]["image"] == image_b.as_str()))
            .then_some(p)
        },
    );
    eventually(
        "every change of the roll in AWS",
        Duration::from_secs(120),
        || {
            let items = moto.integrations(&api);
            let landed = (0..20)
                .filter(|i| {
                    items
                        .iter()
                        .any(|it| it["integrationUri"] == format!("https://example.com/rolled-{i}"))
                })
                .count();
            (landed == 20).then_some(())
        },
    );
    eventually(
        "every resource Ready after the roll",
        Duration::from_secs(120),
        || (ready_resources(&res.name) == RESOURCES + 1).then_some(()),
    );
    let calls = proxy.calls_since(mark, None);
    let counts = ops(&calls);
    eprintln!(
        "rolling upgrade: {:.1?} to the end of the roll; AWS calls meanwhile: {} {counts:?}; new Pods {:?}",
        t.elapsed(),
        calls.len(),
        pods_b.keys().collect::<Vec<_>>()
    );
    assert_eq!(moto.integrations(&api).len(), RESOURCES + 1, "no duplicate");
    assert_eq!(
        counts.get("CreateIntegration"),
        None,
        "nothing is created again"
    );
    assert_eq!(counts.get("DeleteIntegration"), None, "nothing is deleted");
    assert_eq!(
        counts.get("UpdateIntegration").copied().unwrap_or(0),
        20,
        "each change of the roll is written once"
    );
    // The changes (one write each), each new Pod asking STS who it is, and each leader of the roll (at
    // most three: the one before and each new Pod) reading the API and listing its integrations, in
    // pages of 100 as API Gateway serves them. Nothing per resource: a take-over reads no integration
    // one by one.
    let leaders = 3;
    let pages = (RESOURCES + 1).div_ceil(100);
    let bound = 20 + 2 + leaders * (1 + pages);
    assert!(
        calls.len() <= bound,
        "{} AWS calls during the roll, more than {bound}: {counts:?}",
        calls.len()
    );

    // helm uninstall leaves the integrations, their resources and the CRD (docs/install.md, section 7).
    helm_ok(&["uninstall", RELEASE, "-n", &rel.name, "--wait"]);
    eventually("the operator's Pods gone", Duration::from_secs(120), || {
        pods(&rel.name).is_empty().then_some(())
    });
    kubectl_ok(&["get", "crd", "apiintegrations.apigw.dev"]);
    let left = json(&["get", "apiintegrations", "-n", &res.name, "-o", "json"]);
    assert_eq!(left["items"].as_array().unwrap().len(), RESOURCES + 1);
    assert_eq!(
        moto.integrations(&api).len(),
        RESOURCES + 1,
        "AWS keeps them"
    );
    kubectl_ok(&["get", "lease", RELEASE, "-n", &rel.name]);
    // The resources keep their finalizer (nothing removes it now): taken off so the namespace can go.
    drop_finalizers(&res.name);
    eprintln!("the chart's run on the node took {:.0?}", started.elapsed());
    assert!(
        start_warnings.is_empty(),
        "the operator warned at a clean start: {start_warnings:#?}"
    );
}

const BUSYBOX_IMAGE: &str = "localhost/apigw-node-busybox:latest";

/// The Pod's script: one `key=value` line per check, read back from its log.
const SCRIPT: &str = r#"
echo "id=$(id -u):$(id -g)"
if touch /probe 2>/dev/null; then echo "root_writable=yes"; else echo "root_writable=no"; fi
echo "capeff=$(grep CapEff /proc/self/status | tr -d '\t' | cut -d: -f2)"
echo "service=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
node-probe incluster
node-probe http moto http://$MOTO/moto-api/
node-probe http outside http://$OUTSIDE/
echo done=1
"#;

fn value<'a>(log: &'a str, key: &str) -> &'a str {
    log.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the Pod's log has no {key}=: {log}"))
}

/// An address outside this machine: the default gateway's.
fn outside_address() -> String {
    let routes = std::process::Command::new("ip")
        .args(["route", "show", "default"])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&routes.stdout).into_owned();
    let via = text.split_whitespace().skip_while(|w| *w != "via").nth(1);
    via.unwrap_or("192.0.2.1").to_string()
}

#[test]
fn a_restricted_pod_runs_on_the_node_and_node_down_leaves_nothing_behind() {
    let _node = node_to_myself();
    let node_dir = stack_dir().join("node");
    // A node left up by an earlier test is taken down first, so that the traces compared below are the
    // machine's own.
    node_down();
    let before = machine_traces(&node_dir);

    let started = std::time::Instant::now();
    let node = ensure_node();
    eprintln!("node up in {:.1?}", started.elapsed());
    let info = kubectl_ok(&[
        "get",
        "node",
        &node.name,
        "-o",
        "jsonpath={.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion}",
    ]);
    assert_eq!(
        info, "v1.36.3 containerd://2.4.2",
        "versions the node reports"
    );

    let state = StackState::expect_running();
    let moto_port = state
        .aws_endpoint
        .as_deref()
        .and_then(|e| e.rsplit(':').next())
        .expect("moto's endpoint");
    let ns = TempNamespace::new("node-pod");
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: restricted, namespace: {ns}}}
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: check
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", {script}]
    env:
    - {{name: MOTO, value: "{gw}:{moto_port}"}}
    - {{name: OUTSIDE, value: "{outside}"}}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: ["ALL"]}}
    resources:
      limits: {{memory: 64Mi, cpu: 200m}}
"#,
        ns = ns.name,
        script = serde_json::to_string(SCRIPT).unwrap(),
        gw = node.gateway,
        outside = outside_address(),
    );
    let out = kubectl_stdin(&["apply", "-f", "-"], &pod);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phase = eventually("the Pod to finish", Duration::from_secs(120), || {
        let phase = kubectl_ok(&[
            "get",
            "pod",
            "restricted",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.status.phase}",
        ]);
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
    });
    let log = kubectl_ok(&["logs", "restricted", "-n", &ns.name]);
    eprintln!("Pod {phase} after {:.1?}; log:\n{log}", started.elapsed());
    assert_eq!(phase, "Succeeded");
    assert_eq!(value(&log, "id"), "65532:65532");
    assert_eq!(value(&log, "root_writable"), "no");
    assert_eq!(value(&log, "capeff"), "0000000000000000");
    assert_eq!(value(&log, "service"), "10.0.0.1:443");
    let host_view: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&["get", "--raw", "/version"])).unwrap();
    assert_eq!(
        value(&log, "version"),
        host_view["gitVersion"].as_str().unwrap(),
        "the Pod reads the API server's /version through the Service address"
    );
    assert_eq!(value(&log, "namespace"), ns.name);
    assert_eq!(value(&log, "secrets_status"), "403");
    assert!(
        value(&log, "secrets_message").contains(&format!(
            "User \"system:serviceaccount:{}:default\"",
            ns.name
        )),
        "the API server knows the Pod by its service account's token"
    );
    assert_eq!(value(&log, "moto"), "reached");
    assert_eq!(value(&log, "outside"), "unreached");

    // The comparison below sees what a node makes: its bridge, its table, its mounts.
    let during = machine_traces(&node_dir);
    for trace in [
        format!("interface {}", node.bridge),
        format!("nft table ip {}", node.nft_table),
    ] {
        assert!(during.contains(&trace), "no {trace:?} while the node runs");
    }
    let mounts_below_node = during
        .iter()
        .filter(|t| t.starts_with(&format!("mount {}", node_dir.display())))
        .count();
    assert!(
        mounts_below_node > 0,
        "no mount below the node's directory while a Pod ran"
    );
    eprintln!(
        "while up: {} traces more than before, {mounts_below_node} mounts below the node",
        during.difference(&before).count()
    );

    node_down();
    let after = machine_traces(&node_dir);
    let left: Vec<_> = after.difference(&before).collect();
    let gone: Vec<_> = before.difference(&after).collect();
    assert!(left.is_empty(), "left behind by the node: {left:#?}");
    assert!(
        gone.is_empty(),
        "removed by the node though it was there before: {gone:#?}"
    );
    assert!(
        StackState::expect_running().node.is_none(),
        "the state still records a node"
    );
    let nodes = kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.trim(), "", "the Node object is removed");
    assert!(!node_dir.exists());
}
