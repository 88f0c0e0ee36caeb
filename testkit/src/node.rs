//! The stack's node for the tests that need Pods to run: started on demand with `cargo xtask stack up
//! --node` (added to the running stack; nothing when it runs already), and what it made on the machine,
//! for the test that checks `stack down --node` leaves nothing behind.

use crate::paths::repo_root;
use crate::stack::{StackNode, StackState};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn xtask(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .arg("xtask")
        .args(args)
        .status()
        .expect("cargo xtask runs");
    assert!(
        status.success(),
        "cargo xtask {} failed: {status}",
        args.join(" ")
    );
}

/// The node, started if it is not up (this test needs it: it never skips).
pub fn ensure_node() -> StackNode {
    xtask(&["stack", "up", "--node"]);
    StackState::expect_running()
        .node
        .expect("`stack up --node` recorded a node")
}

/// Stops the node and removes what it made; the control plane keeps running.
pub fn node_down() {
    xtask(&["stack", "down", "--node"]);
}

/// What a node can leave on this machine, as one set of lines to compare before and after: network
/// interfaces, nftables tables, network namespaces, cgroups named kubepods, mounts and processes that
/// name `dir`, and the directories containerd and the CNI plugins make by default.
pub fn machine_traces(dir: &Path) -> BTreeSet<String> {
    let mut traces = BTreeSet::new();
    let dir_text = dir.display().to_string();
    if let Ok(links) = std::fs::read_dir("/sys/class/net") {
        for l in links.flatten() {
            traces.insert(format!("interface {}", l.file_name().to_string_lossy()));
        }
    }
    let nft = Command::new("nft").args(["list", "tables"]).output();
    if let Ok(out) = nft {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            traces.insert(format!("nft {l}"));
        }
    }
    for family in ["iptables-save", "ip6tables-save"] {
        if let Ok(out) = Command::new(family).output() {
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                if l.starts_with(':') || l.starts_with('*') {
                    traces.insert(format!(
                        "{family} {}",
                        l.split_whitespace().next().unwrap_or("")
                    ));
                }
            }
        }
    }
    // containerd names the Pods' network namespaces cni-<uuid> (the node keeps them below its own
    // directory; these would be strays). Other tools' (podman's) are not the node's business.
    for netns in ["/run/netns", "/var/run/netns"] {
        if let Ok(entries) = std::fs::read_dir(netns) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("cni-") {
                    traces.insert(format!("netns {}", e.path().display()));
                }
            }
        }
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let kubepods = h.path().join("kubepods");
            if kubepods.exists() {
                traces.insert(format!("cgroup {}", kubepods.display()));
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
    {
        if m.starts_with(&dir_text) || m.contains("containerd") || m.contains("kubelet") {
            traces.insert(format!("mount {m}"));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(argv) = crate::process::argv_of(pid)
                && argv.iter().any(|a| a.contains(&dir_text))
            {
                traces.insert(format!("process {pid} {}", argv.join(" ")));
            }
        }
    }
    for d in [
        "/run/containerd",
        "/var/lib/cni",
        "/var/lib/kubelet",
        "/var/log/pods",
        "/etc/cni",
        "/opt/cni",
    ] {
        if Path::new(d).exists() {
            traces.insert(format!("directory {d}"));
        }
    }
    traces
}

/// The operator's image from the Dockerfile on the node under each of `names`: the image `cargo xtask
/// test` built for the tests (`$APIGW_IMAGE`), else one `cargo xtask image` builds now; loaded with
/// `cargo xtask stack load-image`.
pub fn operator_image_on_node(names: &[&str]) {
    let source = match std::env::var("APIGW_IMAGE") {
        Ok(image) if !image.is_empty() => image,
        _ => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .current_dir(repo_root())
                .args(["xtask", "image"])
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("cargo xtask image runs");
            assert!(out.status.success(), "cargo xtask image failed");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .expect("cargo xtask image prints the image")
                .trim()
                .to_string()
        }
    };
    let mut args = vec!["stack", "load-image", source.as_str()];
    args.extend(names);
    xtask(&args);
}

/// Imports an OCI archive into the node's containerd (the namespace the kubelet uses).
pub fn import_image(node: &StackNode, archive: &Path) {
    let out = Command::new(&node.ctr)
        .arg("--address")
        .arg(&node.containerd_socket)
        .args(["-n", "k8s.io", "images", "import"])
        .arg(archive)
        .output()
        .expect("ctr runs");
    assert!(
        out.status.success(),
        "ctr images import {} failed: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host pid of a running container (the `containerd://ID` of a Pod's container status).
pub fn container_pid(node: &StackNode, container_id: &str) -> u32 {
    let id = container_id.trim_start_matches("containerd://");
    let out = Command::new(&node.ctr)
        .arg("--address")
        .arg(&node.containerd_socket)
        .args(["-n", "k8s.io", "tasks", "ls"])
        .output()
        .expect("ctr runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(id)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no running task {id} in the node's containerd"))
}
