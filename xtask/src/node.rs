//! A real node for the local stack (`cargo xtask stack up --node`): containerd with runc, a kubelet and
//! kube-scheduler, so that the chart's Pods actually run. Only the tests that need Pods start it.
//!
//! Networking stays on this machine. The Pods sit on a bridge of the node's own with no masquerading,
//! and an nftables table of its own drops anything the host would forward to or from it. The same table
//! sends the in-cluster `kubernetes` Service address to the API server on the host's loopback (there is no
//! kube-proxy), and any other connection to the bridge's address to the same port on the loopback, so
//! that Pods reach moto, or a test's counting proxy, at `http://<gateway>:<port>`.
//!
//! Everything the node makes (the bridge, the nftables table, the kubelet's cgroups, directories outside
//! target/stack) is recorded in the stack's state before it is made; every mount and network namespace
//! lives below the node's directory. `stack down` removes exactly those.

use crate::paths::{cache_dir, stack_dir};
use crate::proc::{free_port, output, run, spawn_detached, stop_pid, wait_ready};
use crate::tools::{self, KUBERNETES, NodeTools};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::stack::{StackNode, StackState};

/// The Node object's name.
pub const NODE_NAME: &str = "apigw-node";
/// The bridge the Pods are attached to (at most 15 characters, a Linux interface name).
const BRIDGE: &str = "apigwnode0";
const GATEWAY: &str = "10.244.0.1";
const POD_SUBNET: &str = "10.244.0.0/24";
const NFT_TABLE: &str = "apigw_node";
/// The cgroup the kubelet makes in each hierarchy for the Pods (its default name, with cgroupsPerQOS).
const CGROUP_ROOT: &str = "kubepods";
/// The in-cluster `kubernetes` Service: the first address of the API server's service range, port 443.
pub const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";
/// The sandbox image, as Kubernetes 1.36 names it; built here from Kubernetes' own pause.c.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// A small image for test Pods: Debian's static busybox and node-probe (xtask/src/node_probe.go) on an
/// empty root.
pub const BUSYBOX_IMAGE: &str = "localhost/apigw-node-busybox:latest";
/// Debian packages the node needs: the OCI runtime, the CNI plugins (bridge, host-local, loopback),
/// nftables for the node's rules, busybox for the test image, and a C compiler with a static libc for
/// the pause image. Installed by `stack up --node`.
pub const DEBIAN_PACKAGES: [&str; 6] = [
    "runc",
    "containernetworking-plugins",
    "nftables",
    "busybox-static",
    "gcc",
    "libc6-dev",
];
/// Names of the node's processes in the stack state.
const KUBELET: &str = "kubelet";
const CONTAINERD: &str = "containerd";
const SCHEDULER: &str = "kube-scheduler";
/// A second kube-controller-manager with the controllers only a node needs: the one that publishes the
/// cluster's CA (`kube-root-ca.crt`) into every namespace, which every Pod's service-account volume
/// mounts, and the node lifecycle controller, which lifts the not-ready taint the kubelet registers its
/// Node with. The stack's own controller manager is left as it was.
const NODE_CONTROLLERS: &str = "kube-controller-manager-node";
const NODE_PROCESSES: [&str; 4] = [KUBELET, SCHEDULER, NODE_CONTROLLERS, CONTAINERD];

/// Directories outside the node's directory that containerd, runc or the CNI plugins make whatever they
/// are told; removed at `down` when the node made them and they are empty.
const SYSTEM_DIRS: [&str; 4] = [
    "/run/containerd",
    "/var/lib/cni",
    "/run/netns",
    "/var/run/netns",
];

fn node_dir() -> PathBuf {
    stack_dir().join("node")
}

/// An OCI image layout archive of one image with one layer (the directory `rootfs`), named `name` for
/// `ctr images import`. Deterministic: the same files give the same digests.
pub fn write_oci_archive(
    rootfs: &Path,
    name: &str,
    user: &str,
    entrypoint: &[&str],
    out: &Path,
) -> Result<()> {
    let work = out.with_extension("layout");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let blobs = work.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    let layer = work.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."))?;
    let layer_digest = sha256_file(&layer)?;
    let layer_size = std::fs::metadata(&layer)?.len();
    std::fs::rename(&layer, blobs.join(&layer_digest))?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": user, "Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    });
    let (config_digest, config_size) = write_blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_digest}"), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{layer_digest}"), "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = write_blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": format!("sha256:{manifest_digest}"), "size": manifest_size,
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name}}],
    });
    std::fs::write(work.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        work.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let tmp = out.with_extension("partial");
    run(Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C"])
        .arg(&work)
        .arg("-cf")
        .arg(&tmp)
        .args(["oci-layout", "index.json", "blobs"]))?;
    std::fs::rename(&tmp, out)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    let out = output(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .context("sha256sum printed nothing")
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<(String, usize)> {
    let tmp = blobs.join("incoming");
    std::fs::write(&tmp, bytes)?;
    let digest = sha256_file(&tmp)?;
    std::fs::rename(&tmp, blobs.join(&digest))?;
    Ok((digest, bytes.len()))
}

/// The pause image's archive, cached by Kubernetes version: pause.c from the k8s.io/kubernetes module the
/// node's kubelet comes from, linked statically, on an empty root, running as 65535 as upstream's does.
fn ensure_pause_image() -> Result<PathBuf> {
    let images = cache_dir().join("images");
    std::fs::create_dir_all(&images)?;
    let archive = images.join(format!("pause-3.10-kubernetes-{KUBERNETES}.oci.tar"));
    if archive.is_file() {
        return Ok(archive);
    }
    let gomodcache = output(Command::new("go").args(["env", "GOMODCACHE"]))?;
    let source = PathBuf::from(gomodcache.trim())
        .join(format!("k8s.io/kubernetes@{KUBERNETES}"))
        .join("build/pause/linux/pause.c");
    if !source.is_file() {
        run(Command::new("go")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .current_dir(
                cache_dir()
                    .join("src")
                    .join(format!("kubernetes-{KUBERNETES}")),
            )
            .args([
                "mod",
                "download",
                &format!("k8s.io/kubernetes@{KUBERNETES}"),
            ]))?;
    }
    let rootfs = images.join("pause-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    std::fs::create_dir_all(&rootfs)?;
    run(Command::new("gcc")
        .args([
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            "-DVERSION=v3.10-apigw",
            "-o",
        ])
        .arg(rootfs.join("pause"))
        .arg(&source))?;
    write_oci_archive(&rootfs, PAUSE_IMAGE, "65535:65535", &["/pause"], &archive)?;
    std::fs::remove_dir_all(&rootfs)?;
    Ok(archive)
}

/// The source of node-probe, a static program in the test image that checks what a Pod reaches.
const NODE_PROBE_SOURCE: &str = include_str!("node_probe.go");

/// A digest of the probe's source, so that a changed probe makes a new image.
fn probe_digest() -> Result<String> {
    let dir = cache_dir().join("src").join("node-probe");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("main.go"), NODE_PROBE_SOURCE)?;
    Ok(sha256_file(&dir.join("main.go"))?[..12].to_string())
}

/// Builds node-probe (standard library only, no cgo: a static binary) into `out`.
fn build_node_probe(out: &Path) -> Result<()> {
    let dir = cache_dir().join("src").join("node-probe");
    std::fs::write(
        dir.join("go.mod"),
        "module apigw-stack/node-probe\n\ngo 1.22\n",
    )?;
    run(Command::new("go")
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg("."))
}

/// Debian's static busybox and node-probe on an empty root (with /tmp), as a small image for test Pods.
fn ensure_busybox_image() -> Result<PathBuf> {
    let images = cache_dir().join("images");
    std::fs::create_dir_all(&images)?;
    let version =
        output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "busybox-static"]))?;
    let archive = images.join(format!(
        "busybox-static-{}-probe-{}.oci.tar",
        version.trim(),
        probe_digest()?
    ));
    if archive.is_file() {
        return Ok(archive);
    }
    let rootfs = images.join("busybox-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    for d in ["bin", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    build_node_probe(&rootfs.join("bin/node-probe"))?;
    for applet in [
        "sh", "id", "cat", "sleep", "touch", "ls", "grep", "tr", "cut", "head",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    run(Command::new("chmod").arg("1777").arg(rootfs.join("tmp")))?;
    write_oci_archive(
        &rootfs,
        BUSYBOX_IMAGE,
        "65532:65532",
        &["/bin/sh"],
        &archive,
    )?;
    std::fs::remove_dir_all(&rootfs)?;
    Ok(archive)
}

/// The CNI configuration: a bridge of the node's own, host-local addresses kept below the node's
/// directory, no masquerading (nothing the Pods send is rewritten to leave the machine).
fn cni_config(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "apigw-node",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": ipam_dir,
                "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }, {"type": "loopback"}],
    })
}

/// The node's nftables table: the `kubernetes` Service address to the API server, the bridge's address
/// to the host's loopback (same port), nothing forwarded to or from the bridge.
fn nft_rules(api_port: u16) -> String {
    format!(
        "table ip {NFT_TABLE} {{\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tiifname \"{BRIDGE}\" ip daddr {KUBERNETES_SERVICE_IP} tcp dport 443 dnat to 127.0.0.1:{api_port}\n\
         \t\tiifname \"{BRIDGE}\" ip daddr {GATEWAY} meta l4proto tcp dnat to 127.0.0.1\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{BRIDGE}\" drop\n\
         \t\toifname \"{BRIDGE}\" drop\n\
         \t}}\n\
         }}\n"
    )
}

fn containerd_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 3
root = "{d}/containerd/root"
state = "{d}/containerd/state"
temp = "{d}/containerd/tmp"
[grpc]
  address = "{d}/containerd/containerd.sock"
[ttrpc]
  address = "{d}/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{d}/cni/net.d"
"#
    )
}

struct KubeletPorts {
    port: u16,
    healthz: u16,
}

fn kubelet_config(dir: &Path, ports: &KubeletPorts) -> String {
    let d = dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid), which Kubernetes 1.36 refuses unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{d}/containerd/containerd.sock
address: {GATEWAY}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
authentication:
  anonymous: {{enabled: true}}
  webhook: {{enabled: false}}
authorization: {{mode: AlwaysAllow}}
failSwapOn: false
makeIPTablesUtilChains: false
podLogsDir: {d}/pod-logs
volumePluginDir: {d}/volume-plugins
clusterDNS: []
resolvConf: /etc/resolv.conf
evictionHard: {{"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
"#,
        port = ports.port,
        healthz = ports.healthz,
    )
}

fn read_state() -> Result<StackState> {
    StackState::load()?.context("the stack is not up: no state file")
}

/// Starts the node on the running stack (whose state is `state`); nothing when it runs already.
pub fn up(tools: &NodeTools, kubeconfig: &Path, ca_cert: &Path) -> Result<()> {
    let started = Instant::now();
    let mut state = read_state()?;
    if state.node.is_some() {
        let all_up = NODE_PROCESSES
            .iter()
            .all(|n| state.process(n).is_some_and(|p| p.runs()));
        if all_up {
            println!("stack: the node {NODE_NAME} is already up");
            return Ok(());
        }
        eprintln!("xtask: the node is only partly running; removing what is left of it first");
        down()?;
        state = read_state()?;
    }
    let api_server = state.api_server.clone().context("no API server recorded")?;
    let api_port: u16 = api_server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the API server's URL has no port")?;
    check_apiserver_serves_service_address(&stack_dir().join("pki/kube-apiserver.crt"))?;
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        bail!(
            "a network interface {BRIDGE} exists already (another checkout's node?): stop that node first \
             (`cargo xtask stack down --node` in its checkout)"
        );
    }
    let pause = ensure_pause_image()?;
    let busybox = ensure_busybox_image()?;

    let dir = node_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let logs = stack_dir().join("logs");
    std::fs::create_dir_all(&logs)?;
    for d in [
        "containerd",
        "cni/net.d",
        "cni/ipam",
        "kubelet",
        "pod-logs",
        "volume-plugins",
        "runc",
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let socket = dir.join("containerd/containerd.sock");
    state.node = Some(StackNode {
        name: NODE_NAME.into(),
        dir: dir.clone(),
        containerd_socket: socket.clone(),
        ctr: tools.ctr(),
        bridge: BRIDGE.into(),
        gateway: GATEWAY.into(),
        pod_subnet: POD_SUBNET.into(),
        nft_table: NFT_TABLE.into(),
        cgroup_root: CGROUP_ROOT.into(),
        made_dirs: SYSTEM_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect(),
    });
    state.save()?;
    let record = |state: &mut StackState, name: &str, pid: u32, bin: &Path| -> Result<()> {
        state.record(name, pid, bin);
        Ok(state.save()?)
    };

    // The bridge, before anything uses it: the kubelet listens on its address, and the Pods' traffic to
    // the host's loopback needs route_localnet on it.
    run(Command::new("ip").args(["link", "add", "name", BRIDGE, "type", "bridge"]))?;
    run(Command::new("ip").args(["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE]))?;
    run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))?;
    std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"),
        "1",
    )?;
    let rules = dir.join("nftables.conf");
    std::fs::write(&rules, nft_rules(api_port))?;
    run(Command::new("nft").arg("-f").arg(&rules))?;
    std::fs::write(
        dir.join("cni/net.d/10-apigw-node.conflist"),
        serde_json::to_string_pretty(&cni_config(&dir.join("cni/ipam")))?,
    )?;

    // containerd, and the images the node never pulls.
    let config = dir.join("containerd/config.toml");
    std::fs::write(&config, containerd_config(&dir))?;
    let containerd_bin = tools.containerd.join("containerd");
    let log = logs.join("containerd.log");
    let mut child = spawn_detached(
        Command::new(&containerd_bin)
            .arg("--config")
            .arg(&config)
            // The shims find runc on PATH as well as through BinaryName.
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    tools.containerd.display()
                ),
            ),
        &log,
    )?;
    record(&mut state, CONTAINERD, child.id(), &containerd_bin)?;
    let ctr = |args: &[&str]| {
        let mut cmd = Command::new(tools.ctr());
        cmd.arg("--address").arg(&socket).args(args);
        cmd
    };
    let t = wait_ready(
        "containerd",
        &mut child,
        &log,
        Duration::from_secs(60),
        || ctr(&["version"]).output().is_ok_and(|o| o.status.success()),
    )?;
    println!(
        "stack: containerd {} ready after {t:.1?}",
        tools::CONTAINERD
    );
    for archive in [&pause, &busybox] {
        output(ctr(&["-n", "k8s.io", "images", "import", "--local"]).arg(archive))
            .or_else(|_| output(ctr(&["-n", "k8s.io", "images", "import"]).arg(archive)))?;
    }

    // kube-scheduler, and the CA publisher.
    let port = free_port()?;
    let log = logs.join("kube-scheduler.log");
    let mut child = spawn_detached(
        Command::new(&tools.kube_scheduler)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--authentication-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg(format!(
                "--authorization-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg("--v=1"),
        &log,
    )?;
    record(&mut state, SCHEDULER, child.id(), &tools.kube_scheduler)?;
    let t = wait_ready(
        "kube-scheduler",
        &mut child,
        &log,
        Duration::from_secs(60),
        || https_ok(port, "/healthz"),
    )?;
    println!("stack: kube-scheduler ready on 127.0.0.1:{port} after {t:.1?}");

    let kcm = cache_dir()
        .join("bin")
        .join(format!("kube-controller-manager-{KUBERNETES}"));
    let port = free_port()?;
    let log = logs.join("kube-controller-manager-node.log");
    let mut child = spawn_detached(
        Command::new(&kcm)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--authentication-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg(format!(
                "--authorization-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg("--leader-elect=false")
            .arg("--controllers=root-ca-certificate-publisher-controller,node-lifecycle-controller")
            .arg(format!("--root-ca-file={}", ca_cert.display()))
            .arg("--v=1"),
        &log,
    )?;
    record(&mut state, NODE_CONTROLLERS, child.id(), &kcm)?;
    wait_ready(
        "the CA publisher",
        &mut child,
        &log,
        Duration::from_secs(60),
        || https_ok(port, "/healthz"),
    )?;

    // The kubelet.
    let ports = KubeletPorts {
        port: free_port()?,
        healthz: free_port()?,
    };
    let config = dir.join("kubelet-config.yaml");
    std::fs::write(&config, kubelet_config(&dir, &ports))?;
    let log = logs.join("kubelet.log");
    let mut child = spawn_detached(
        Command::new(&tools.kubelet)
            .arg(format!("--config={}", config.display()))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--root-dir={}", dir.join("kubelet").display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg(format!("--node-ip={GATEWAY}"))
            .arg("--v=1")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        &log,
    )?;
    record(&mut state, KUBELET, child.id(), &tools.kubelet)?;
    let kubectl = cache_dir()
        .join("bin")
        .join(format!("kubectl-{KUBERNETES}"));
    let t = wait_ready(
        "kubelet",
        &mut child,
        &log,
        Duration::from_secs(120),
        || {
            Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args([
                    "get",
                    "node",
                    NODE_NAME,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}|{.spec.taints[*].key}"#,
                ])
                .output()
                // Ready, and the not-ready taint it registered with lifted: Pods can be scheduled.
                .is_ok_and(|o| o.stdout == b"True|")
        },
    )?;
    println!(
        "stack: node {NODE_NAME} Ready (and untainted) after {t:.1?} (node up in {:.1?}); Pods reach the host's loopback at {GATEWAY}",
        started.elapsed()
    );
    Ok(())
}

fn https_ok(port: u16, path: &str) -> bool {
    Command::new("curl")
        .args(["-skf", "--max-time", "3"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pods reach the API server at the `kubernetes` Service's address: its certificate must name it. Stacks
/// started before the node existed have a certificate for 127.0.0.1 only.
fn check_apiserver_serves_service_address(cert: &Path) -> Result<()> {
    let text = output(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(cert),
    )?;
    if !text.contains(&format!("IP Address:{KUBERNETES_SERVICE_IP}")) {
        bail!(
            "the running stack's API server certificate does not name {KUBERNETES_SERVICE_IP} (the \
             `kubernetes` Service): restart the stack (`cargo xtask stack down`, then `stack up --node`)"
        );
    }
    Ok(())
}

/// Puts the image `source` (in podman's local storage, e.g. one `cargo xtask image` built) on the running
/// node under each of `names` (the source's own name when `names` is empty): tagged in podman, saved as an
/// OCI archive, imported into the node's containerd (where Pods with `imagePullPolicy: Never` find it),
/// and untagged again.
pub fn load_image(source: &str, names: &[&str]) -> Result<()> {
    let state = read_state()?;
    let node = state
        .node
        .context("the stack has no node: `cargo xtask stack up --node` first")?;
    let engine = crate::image::engine()?;
    if !engine.has_image(source) {
        bail!("podman's local storage has no image {source} (build it with `cargo xtask image`)");
    }
    let names: Vec<&str> = if names.is_empty() {
        vec![source]
    } else {
        names.to_vec()
    };
    for name in names {
        if name != source {
            run(engine.podman().args(["tag", source, name]))?;
        }
        let archive = node.dir.join("image-import.oci.tar");
        run(engine
            .podman()
            .args(["save", "--quiet", "--format", "oci-archive", "--output"])
            .arg(&archive)
            .arg(name))?;
        output(ctr_command(&node).args(["images", "import"]).arg(&archive))?;
        std::fs::remove_file(&archive)?;
        if name != source {
            // The name was only needed for the archive: podman's storage is left as it was.
            run(engine.podman().args(["untag", source, name]))?;
        }
        println!("stack: {name} is on the node {}", node.name);
    }
    Ok(())
}

/// Stops the node and removes everything it made; the control plane keeps running. Nothing when the
/// stack has no node.
pub fn down() -> Result<()> {
    let Some(mut state) = StackState::load()? else {
        return Ok(());
    };
    let Some(node) = state.node.clone() else {
        return Ok(());
    };
    let kubeconfig = stack_dir().join("kubeconfig");
    let kubectl = cache_dir()
        .join("bin")
        .join(format!("kubectl-{KUBERNETES}"));
    let kubelet_runs = state.process(KUBELET).is_some_and(|p| p.runs());
    let api_answers = state.process("kube-apiserver").is_some_and(|p| p.runs());
    // With the kubelet and the API server up, let the kubelet take its Pods down as it would on a drain:
    // that runs the CNI's teardown and unmounts their volumes.
    if kubelet_runs && api_answers {
        let k = |args: &[&str]| {
            let mut cmd = Command::new(&kubectl);
            cmd.arg("--kubeconfig").arg(&kubeconfig).args(args);
            cmd
        };
        let _ = k(&["cordon", &node.name]).output();
        let _ = k(&[
            "delete",
            "pods",
            "--all-namespaces",
            "--field-selector",
            &format!("spec.nodeName={}", node.name),
            "--grace-period=1",
            "--wait=false",
        ])
        .output();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let left = k(&[
                "get",
                "pods",
                "--all-namespaces",
                "--field-selector",
                &format!("spec.nodeName={}", node.name),
                "-o",
                "name",
            ])
            .output()
            .map(|o| o.stdout.is_empty())
            .unwrap_or(true);
            if left && no_pod_sandbox_runs(&node) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    for name in [KUBELET, SCHEDULER, NODE_CONTROLLERS] {
        stop_recorded(&state, name)?;
    }
    // What the kubelet could not take down: kill every task and remove it while containerd still runs.
    if state.process(CONTAINERD).is_some_and(|p| p.runs()) {
        kill_tasks(&node);
    }
    stop_recorded(&state, CONTAINERD)?;
    // The shims outlive containerd by design; they are this node's when they name its socket.
    kill_processes_naming(&node.dir);
    kill_cgroup_processes(&node.cgroup_root);
    unmount_below(&node.dir)?;
    if Path::new("/sys/class/net").join(&node.bridge).exists() {
        run(Command::new("ip").args(["link", "delete", &node.bridge]))?;
    }
    let tables = output(Command::new("nft").args(["list", "tables", "ip"])).unwrap_or_default();
    if tables
        .lines()
        .any(|l| l.trim() == format!("table ip {}", node.nft_table))
    {
        run(Command::new("nft").args(["delete", "table", "ip", &node.nft_table]))?;
    }
    remove_cgroups(&node.cgroup_root)?;
    if api_answers {
        let _ = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "delete",
                "node",
                &node.name,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
    }
    if node.dir.exists() {
        std::fs::remove_dir_all(&node.dir)
            .with_context(|| format!("removing {}", node.dir.display()))?;
    }
    for made in node.made_dirs.iter().rev() {
        remove_empty_tree(made);
    }
    state
        .processes
        .retain(|p| !NODE_PROCESSES.contains(&p.name.as_str()));
    state.node = None;
    state.save()?;
    println!("stack: node {} down; everything it made removed", node.name);
    Ok(())
}

fn stop_recorded(state: &StackState, name: &str) -> Result<()> {
    for p in state.processes.iter().filter(|p| p.name == name) {
        let was = p.runs();
        stop_pid(p.pid, &p.needle, Duration::from_secs(15));
        if p.runs() {
            bail!("{} (pid {}) is still running", p.name, p.pid);
        }
        if was {
            println!("stack: stopped {} (pid {})", p.name, p.pid);
        }
    }
    Ok(())
}

fn ctr_command(node: &StackNode) -> Command {
    let mut cmd = Command::new(
        cache_dir()
            .join("bin")
            .join(format!("containerd-{}", tools::CONTAINERD))
            .join("ctr"),
    );
    cmd.arg("--address")
        .arg(&node.containerd_socket)
        .args(["-n", "k8s.io"]);
    cmd
}

fn running_tasks(node: &StackNode) -> Vec<String> {
    ctr_command(node)
        .args(["tasks", "ls", "-q"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn no_pod_sandbox_runs(node: &StackNode) -> bool {
    running_tasks(node).is_empty()
}

fn kill_tasks(node: &StackNode) {
    let tasks = running_tasks(node);
    for id in &tasks {
        let _ = ctr_command(node)
            .args(["tasks", "kill", "-a", "-s", "SIGKILL", id])
            .output();
    }
    for id in &tasks {
        for _ in 0..20 {
            let out = ctr_command(node).args(["tasks", "delete", id]).output();
            if out.is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// SIGKILL to every process whose command line names `dir` (containerd's shims carry its socket path).
fn kill_processes_naming(dir: &Path) {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if testkit::process::argv_of(pid).is_ok_and(|argv| argv.iter().any(|a| a.contains(&needle)))
        {
            testkit::process::signal(pid, testkit::process::Signal::Kill);
        }
    }
}

/// Every cgroup directory named `root` below a hierarchy of /sys/fs/cgroup (and its children), deepest
/// first.
fn cgroup_dirs(root: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in hierarchies.flatten() {
        let top = h.path().join(root);
        if top.is_dir() {
            collect_dirs(&top, &mut found);
        }
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

fn collect_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    found.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), found);
            }
        }
    }
}

fn kill_cgroup_processes(root: &str) {
    for dir in cgroup_dirs(root) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in text.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                testkit::process::signal(pid, testkit::process::Signal::Kill);
            }
        }
    }
}

fn remove_cgroups(root: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = cgroup_dirs(root);
        if dirs.is_empty() {
            return Ok(());
        }
        let mut failed = None;
        for dir in dirs {
            if let Err(e) = std::fs::remove_dir(&dir) {
                failed = Some((dir, e));
            }
        }
        match failed {
            Some((dir, e)) if Instant::now() > deadline => {
                bail!("cannot remove the cgroup {}: {e}", dir.display())
            }
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
            None => return Ok(()),
        }
    }
}

/// Mount points at or below `dir`, from /proc/self/mountinfo, deepest (and latest) first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts_below_in(&text, dir)
}

fn mounts_below_in(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.reverse();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

fn unmount_below(dir: &Path) -> Result<()> {
    for _ in 0..5 {
        let mounts = mounts_below(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).output();
        }
    }
    let left = mounts_below(dir);
    if !left.is_empty() {
        bail!("mounts left below {}: {left:?}", dir.display());
    }
    Ok(())
}

/// Removes `dir` if it and every directory below it hold no files.
fn remove_empty_tree(dir: &Path) {
    let mut dirs = Vec::new();
    if dir.is_dir() {
        collect_dirs(dir, &mut dirs);
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(&d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this machine's kind needed (cgroup v1, a root that may not lower oom_score_adj, Pods'
    /// network namespaces below the node), and nothing of the node outside its directory.
    #[test]
    fn the_runtime_and_the_kubelet_are_configured_for_this_machine_and_stay_in_the_node() {
        let dir = Path::new("/s/node");
        let containerd = containerd_config(dir);
        for line in [
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            "SystemdCgroup = false",
            &format!("sandbox = \"{PAUSE_IMAGE}\""),
            "address = \"/s/node/containerd/containerd.sock\"",
            "address = \"/s/node/containerd/containerd.sock.ttrpc\"",
            "Root = \"/s/node/runc\"",
        ] {
            assert!(
                containerd.contains(line),
                "containerd's config lacks {line}"
            );
        }
        let kubelet = kubelet_config(
            dir,
            &KubeletPorts {
                port: 1,
                healthz: 2,
            },
        );
        for line in [
            "failCgroupV1: false",
            "cgroupDriver: cgroupfs",
            "makeIPTablesUtilChains: false",
            &format!("address: {GATEWAY}"),
            "podLogsDir: /s/node/pod-logs",
            "volumePluginDir: /s/node/volume-plugins",
        ] {
            assert!(kubelet.contains(line), "the kubelet's config lacks {line}");
        }
    }

    #[test]
    fn an_image_archive_is_the_same_for_the_same_files() {
        let dir = std::env::temp_dir().join(format!("xtask-oci-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::write(rootfs.join("bin/hello"), "hello").unwrap();
        let (a, b) = (dir.join("a.tar"), dir.join("b.tar"));
        write_oci_archive(&rootfs, "localhost/t:1", "65532:65532", &["/bin/hello"], &a).unwrap();
        write_oci_archive(&rootfs, "localhost/t:1", "65532:65532", &["/bin/hello"], &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let listing = output(Command::new("tar").arg("-tf").arg(&a)).unwrap();
        assert!(listing.contains("index.json") && listing.contains("oci-layout"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mounts_below_the_node_come_deepest_first_and_others_are_left_out() {
        let info = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    30 22 0:50 / /s/node/kubelet rw - ext4 /dev/vda rw\n\
                    31 30 0:51 / /s/node/kubelet/pods/u/volumes/token rw - tmpfs tmpfs rw\n\
                    32 22 0:52 / /s/nodes-other rw - tmpfs tmpfs rw\n\
                    33 22 0:53 / /s/node/containerd/state/netns/cni-1 rw - nsfs nsfs rw\n";
        assert_eq!(
            mounts_below_in(info, Path::new("/s/node")),
            [
                "/s/node/kubelet/pods/u/volumes/token",
                "/s/node/containerd/state/netns/cni-1",
                "/s/node/kubelet",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn the_pods_reach_the_api_server_and_the_loopback_and_nothing_is_forwarded() {
        let rules = nft_rules(6443);
        assert!(rules.contains(&format!(
            "iifname \"{BRIDGE}\" ip daddr {KUBERNETES_SERVICE_IP} tcp dport 443 dnat to 127.0.0.1:6443"
        )));
        assert!(rules.contains(&format!(
            "ip daddr {GATEWAY} meta l4proto tcp dnat to 127.0.0.1\n"
        )));
        assert!(rules.contains(&format!("iifname \"{BRIDGE}\" drop")));
        assert!(rules.contains(&format!("oifname \"{BRIDGE}\" drop")));
    }

    #[test]
    fn the_cni_network_never_masquerades_and_keeps_its_addresses_below_the_node() {
        let conf = cni_config(Path::new("/s/node/cni/ipam"));
        let bridge = &conf["plugins"][0];
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["bridge"], BRIDGE);
        assert_eq!(bridge["ipam"]["dataDir"], "/s/node/cni/ipam");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], GATEWAY);
    }
}
