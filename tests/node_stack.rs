//! The stack's node runs Pods for real: `cargo xtask stack up --node` brings up containerd, a kubelet and
//! kube-scheduler on the running control plane; a restricted Pod (non-root, read-only root, no
//! capabilities) runs the stand-in busybox image, reaches the API server through the in-cluster
//! `kubernetes` Service with its service-account token, reaches the host's loopback services through the
//! bridge's address and nothing outside the machine; `stack down --node` then leaves nothing behind.
//!
//! One test: it takes the node down at its end, so nothing else may use the node meanwhile.

mod common;
use common::*;
use std::time::Duration;
use testkit::node::{ensure_node, machine_traces, node_down};
use testkit::paths::stack_dir;
use testkit::stack::StackState;

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
