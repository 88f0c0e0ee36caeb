//! The tools the local stack runs, built from source with the machine's Go (no binary downloads) and
//! cached by version outside target/. Versions are pinned here and nowhere else.

use crate::paths::cache_dir;
use crate::proc::{output, run};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Kubernetes: kube-apiserver, kube-controller-manager and kubectl, one source tree.
pub const KUBERNETES: &str = "v1.36.3";
/// etcd server (3.6 line, the one Kubernetes 1.36 is tested with).
pub const ETCD: &str = "v3.6.16";
/// Helm 3.
pub const HELM: &str = "v3.22.0";
/// moto, the AWS emulator, with its standalone server.
pub const MOTO: &str = "5.2.5";
/// promtool, for `promtool check rules` and `promtool test rules` on deploy/prometheus/alerts.yaml. The Go
/// module github.com/prometheus/prometheus is tagged v0.3XX.Y for Prometheus v3.XX.Y: this is Prometheus 3.16.0.
pub const PROMETHEUS: &str = "v0.316.0";
/// The Prometheus operator's API types, from which its ServiceMonitor and PrometheusRule CRDs are generated
/// (the chart's optional ServiceMonitor and PrometheusRule are dry-run against them).
pub const PROMETHEUS_OPERATOR: &str = "v0.93.0";
/// controller-gen, the version the Prometheus operator generates its CRDs of that release with.
pub const CONTROLLER_TOOLS: &str = "v0.21.0";
/// ACK's API Gateway V2 controller, the peer `cargo xtask bench` measures against. Its Go module is not on
/// the Go proxy, so it is built from a source checkout (`--ack-src`); its dependencies come from the proxy.
/// Only the bench builds it: neither `stack up` nor `cargo xtask test` does.
pub const ACK_APIGATEWAYV2: &str = "v1.4.1";
/// containerd 2.x (containerd, containerd-shim-runc-v2, ctr), the node's container runtime; Kubernetes 1.35 was
/// the last release to support containerd 1.x. Only `stack up --node` builds it.
pub const CONTAINERD: &str = "v2.4.2";
/// cargo-deny, which `cargo xtask test` runs over the dependency graph (advisories, licenses, duplicate
/// versions, sources) with deny.toml. Built from the Rust crate registry with `cargo install --locked`;
/// only `cargo xtask test` builds it (neither `stack up` nor the demo does).
pub const CARGO_DENY: &str = "0.20.2";

/// The tools the stack runs (and the demo needs), plus the ones only the tests use when they were asked for.
pub struct Tools {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kubectl: PathBuf,
    pub moto_server: PathBuf,
    /// `None` when only the stack's tools were asked for ([`ensure_stack`]: the demo).
    pub test: Option<TestTools>,
}

/// Tools only the tests use: helm for the chart tests, promtool for the alert rules, and the Prometheus
/// operator's CRDs for the chart's optional ServiceMonitor and PrometheusRule. The demo builds none of them.
pub struct TestTools {
    pub helm: PathBuf,
    pub promtool: PathBuf,
    /// A directory holding the ServiceMonitor and PrometheusRule CRDs (and nothing else).
    pub monitoring_crds: PathBuf,
}

impl Tools {
    pub fn print_versions(&self) {
        println!("tools (cache: {}):", cache_dir().display());
        let mut rows = vec![
            ("etcd", ETCD, &self.etcd),
            ("kube-apiserver", KUBERNETES, &self.kube_apiserver),
            (
                "kube-controller-manager",
                KUBERNETES,
                &self.kube_controller_manager,
            ),
            ("kubectl", KUBERNETES, &self.kubectl),
            ("moto_server", MOTO, &self.moto_server),
        ];
        if let Some(test) = &self.test {
            rows.push(("helm", HELM, &test.helm));
            rows.push(("promtool", PROMETHEUS, &test.promtool));
            rows.push((
                "monitoring CRDs",
                PROMETHEUS_OPERATOR,
                &test.monitoring_crds,
            ));
        }
        for (name, version, path) in rows {
            println!("  {name:<24} {version:<10} {}", path.display());
        }
    }
}

/// Returns every tool, the tests' included, building whatever is missing from the cache.
pub fn ensure_all() -> Result<Tools> {
    let mut tools = ensure_stack()?;
    let bin = cache_dir().join("bin");
    tools.test = Some(TestTools {
        helm: ensure(&bin, "helm", HELM, build_helm)?,
        promtool: ensure(&bin, "promtool", PROMETHEUS, build_promtool)?,
        monitoring_crds: ensure_monitoring_crds(&bin)?,
    });
    Ok(tools)
}

/// Returns the tools the stack itself runs, building whatever is missing from the cache; none of the
/// tools only the tests use (a first `cargo xtask demo` does not wait for them).
pub fn ensure_stack() -> Result<Tools> {
    let bin = cache_dir().join("bin");
    std::fs::create_dir_all(&bin)?;
    Ok(Tools {
        etcd: ensure(&bin, "etcd", ETCD, build_etcd)?,
        kube_apiserver: ensure(&bin, "kube-apiserver", KUBERNETES, |o| {
            build_kubernetes("kube-apiserver", o)
        })?,
        kube_controller_manager: ensure(&bin, "kube-controller-manager", KUBERNETES, |o| {
            build_kubernetes("kube-controller-manager", o)
        })?,
        kubectl: ensure(&bin, "kubectl", KUBERNETES, |o| {
            build_kubernetes("kubectl", o)
        })?,
        moto_server: ensure_moto()?,
        test: None,
    })
}

/// What a node of the stack runs besides the control plane: kubelet and kube-scheduler from the same
/// Kubernetes module as the API server, and containerd. Built only by `stack up --node`.
pub struct NodeTools {
    pub kubelet: PathBuf,
    pub kube_scheduler: PathBuf,
    /// A directory holding containerd, containerd-shim-runc-v2 and ctr.
    pub containerd: PathBuf,
}

impl NodeTools {
    pub fn ctr(&self) -> PathBuf {
        self.containerd.join("ctr")
    }
    pub fn print_versions(&self) {
        println!(
            "  kubelet                  {KUBERNETES:<10} {}",
            self.kubelet.display()
        );
        println!(
            "  kube-scheduler           {KUBERNETES:<10} {}",
            self.kube_scheduler.display()
        );
        println!(
            "  containerd               {CONTAINERD:<10} {}",
            self.containerd.display()
        );
    }
}

/// The node's tools, building whatever is missing from the cache.
pub fn ensure_node() -> Result<NodeTools> {
    let bin = cache_dir().join("bin");
    std::fs::create_dir_all(&bin)?;
    Ok(NodeTools {
        kubelet: ensure(&bin, "kubelet", KUBERNETES, |o| {
            build_kubernetes_node("kubelet", o)
        })?,
        kube_scheduler: ensure(&bin, "kube-scheduler", KUBERNETES, |o| {
            build_kubernetes_node("kube-scheduler", o)
        })?,
        containerd: ensure(&bin, "containerd", CONTAINERD, build_containerd)?,
    })
}

/// The linker flags that stamp Kubernetes' version into a binary, as its release build does (without them
/// a kubelet reports itself as v0.0.0-master).
fn kubernetes_version_ldflags() -> String {
    let (major, minor) = {
        let mut parts = KUBERNETES.trim_start_matches('v').split('.');
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    };
    let pkg = "k8s.io/component-base/version";
    format!(
        "-X {pkg}.gitVersion={KUBERNETES} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
    )
}

/// kubelet or kube-scheduler, from the module directory the API server is built in (its staging replaces
/// are already there); `go get` adds what these commands need beyond the control plane's.
fn build_kubernetes_node(command: &str, out: &Path) -> Result<()> {
    let dir = cache_dir()
        .join("src")
        .join(format!("kubernetes-{KUBERNETES}"));
    if !dir.join("go.sum").is_file() {
        // Lays out the module directory (and builds kubectl, which the stack needs anyway).
        ensure(&cache_dir().join("bin"), "kubectl", KUBERNETES, |o| {
            build_kubernetes("kubectl", o)
        })?;
    }
    run(go()
        .current_dir(&dir)
        .arg("get")
        .arg(format!("k8s.io/kubernetes/cmd/{command}@{KUBERNETES}")))?;
    run(go()
        .current_dir(&dir)
        .env("CGO_ENABLED", "1")
        .args([
            "build",
            "-trimpath",
            "-ldflags",
            &kubernetes_version_ldflags(),
            "-o",
        ])
        .arg(out)
        .arg(format!("k8s.io/kubernetes/cmd/{command}")))
}

/// containerd's three commands from its Go module into the directory `out` (btrfs support left out: it
/// needs C headers this machine may lack, and the node uses overlayfs).
fn build_containerd(out: &Path) -> Result<()> {
    let dir = scratch_module(&format!("containerd-{CONTAINERD}"))?;
    let module = "github.com/containerd/containerd/v2";
    run(go()
        .current_dir(&dir)
        .args(["get", &format!("{module}@{CONTAINERD}")]))?;
    if out.exists() {
        std::fs::remove_dir_all(out)?;
    }
    std::fs::create_dir_all(out)?;
    let ldflags = format!("-X {module}/version.Version={CONTAINERD}");
    let mut dest = out.as_os_str().to_owned();
    dest.push("/");
    run(go()
        .current_dir(&dir)
        .env("CGO_ENABLED", "1")
        .args([
            "build",
            "-trimpath",
            "-tags",
            "no_btrfs",
            "-ldflags",
            &ldflags,
            "-o",
        ])
        .arg(dest)
        .args(
            ["containerd", "containerd-shim-runc-v2", "ctr"].map(|c| format!("{module}/cmd/{c}")),
        ))
}

/// ACK's controller binary and the directory of its CRDs (its helm/crds, copied), both cached by version.
pub struct Ack {
    pub bin: PathBuf,
    pub crds: PathBuf,
}

const ACK_NAME: &str = "ack-apigatewayv2-controller";

/// ACK's controller if it is cached already; never builds (the small bench run inside `cargo xtask test`
/// uses it only when an earlier `cargo xtask bench` built it).
pub fn cached_ack() -> Option<Ack> {
    let ack = Ack {
        bin: cache_dir()
            .join("bin")
            .join(format!("{ACK_NAME}-{ACK_APIGATEWAYV2}")),
        crds: ack_crds_dir(),
    };
    (ack.bin.is_file() && ack.crds.join(ACK_INTEGRATION_CRD).is_file()).then_some(ack)
}

/// The CRD file of ACK's Integration kind, in its helm/crds.
pub const ACK_INTEGRATION_CRD: &str = "apigatewayv2.services.k8s.aws_integrations.yaml";

fn ack_crds_dir() -> PathBuf {
    cache_dir()
        .join("crds")
        .join(format!("{ACK_NAME}-{ACK_APIGATEWAYV2}"))
}

/// ACK's controller, built from the checkout in `src` when it is not cached. `Ok(None)` when neither the
/// cache nor `src` has it: the bench then reports ACK as not run.
pub fn ensure_ack(src: &Path) -> Result<Option<Ack>> {
    if let Some(ack) = cached_ack() {
        return Ok(Some(ack));
    }
    if !src.join("go.mod").is_file() || !src.join("cmd/controller").is_dir() {
        eprintln!(
            "xtask: no ACK source checkout at {} (and no cached build): ACK is not run",
            src.display()
        );
        return Ok(None);
    }
    let gomod = std::fs::read_to_string(src.join("go.mod"))?;
    if !gomod.contains("module github.com/aws-controllers-k8s/apigatewayv2-controller") {
        bail!(
            "{} is not a checkout of ACK's apigatewayv2-controller",
            src.display()
        );
    }
    // The CRDs first: they are plain files, and the bench needs them with the binary.
    let crds = ack_crds_dir();
    let tmp = crds.with_extension("partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    for entry in std::fs::read_dir(src.join("helm/crds"))
        .with_context(|| format!("{} has no helm/crds", src.display()))?
    {
        let entry = entry?;
        std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
    }
    if !tmp.join(ACK_INTEGRATION_CRD).is_file() {
        bail!("{} has no helm/crds/{ACK_INTEGRATION_CRD}", src.display());
    }
    if crds.exists() {
        std::fs::remove_dir_all(&crds)?;
    }
    std::fs::rename(&tmp, &crds)?;
    let bin = cache_dir().join("bin");
    std::fs::create_dir_all(&bin)?;
    let path = ensure(&bin, ACK_NAME, ACK_APIGATEWAYV2, |out| build_ack(src, out))?;
    Ok(Some(Ack { bin: path, crds }))
}

/// Builds from a writable copy of the checkout (with `-mod=mod` Go may add to go.sum, and the checkout
/// may be read-only), stamping the version into the binary the way ACK's release build does.
fn build_ack(src: &Path, out: &Path) -> Result<()> {
    let dir = cache_dir()
        .join("src")
        .join(format!("{ACK_NAME}-{ACK_APIGATEWAYV2}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.parent().unwrap())?;
    run(Command::new("cp").arg("-r").arg(src).arg(&dir))?;
    run(Command::new("chmod").args(["-R", "u+w"]).arg(&dir))?;
    let ldflags = format!(
        "-X github.com/aws-controllers-k8s/apigatewayv2-controller/pkg/version.GitVersion={ACK_APIGATEWAYV2}"
    );
    run(go()
        .current_dir(&dir)
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(out)
        .arg("./cmd/controller"))
}

/// `bin/<name>-<version>` if cached, else built to a temporary name and renamed (an interrupted
/// build never leaves a half-written binary behind under the final name).
fn ensure(
    bin: &Path,
    name: &str,
    version: &str,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let path = bin.join(format!("{name}-{version}"));
    if path.exists() {
        return Ok(path);
    }
    eprintln!(
        "xtask: building {name} {version} from source (cached afterwards in {})",
        bin.display()
    );
    let started = Instant::now();
    let tmp = bin.join(format!("{name}-{version}.partial"));
    build(&tmp).with_context(|| format!("building {name} {version}"))?;
    std::fs::rename(&tmp, &path)?;
    eprintln!("xtask: built {name} {version} in {:.0?}", started.elapsed());
    Ok(path)
}

/// cargo-deny from the cache, else built with `cargo install --locked` at CARGO_DENY into a scratch root
/// in the cache (several minutes on two cores) and kept as `bin/cargo-deny-<version>`.
pub fn ensure_cargo_deny() -> Result<PathBuf> {
    let bin = cache_dir().join("bin");
    std::fs::create_dir_all(&bin)?;
    ensure(&bin, "cargo-deny", CARGO_DENY, |out| {
        let root = cache_dir()
            .join("src")
            .join(format!("cargo-deny-{CARGO_DENY}"));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            // Its own temporary target directory, not this repository's.
            .env_remove("CARGO_TARGET_DIR")
            .args(["install", "--locked", "--root"])
            .arg(&root)
            .args(["--version", CARGO_DENY, "cargo-deny"]))?;
        std::fs::rename(root.join("bin").join("cargo-deny"), out)?;
        std::fs::remove_dir_all(&root)?;
        Ok(())
    })
}

fn go() -> Command {
    let mut cmd = Command::new("go");
    // Use exactly the machine's Go; never download a toolchain.
    cmd.env("GOTOOLCHAIN", "local").env("GOFLAGS", "-mod=mod");
    cmd
}

/// A fresh scratch module directory `src/<name>` in the cache.
fn scratch_module(name: &str) -> Result<PathBuf> {
    let dir = cache_dir().join("src").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    run(go()
        .current_dir(&dir)
        .args(["mod", "init", &format!("apigw-stack/{name}")]))?;
    Ok(dir)
}

fn build_etcd(out: &Path) -> Result<()> {
    let dir = scratch_module(&format!("etcd-{ETCD}"))?;
    run(go()
        .current_dir(&dir)
        .args(["get", &format!("go.etcd.io/etcd/server/v3@{ETCD}")]))?;
    run(go()
        .current_dir(&dir)
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg("go.etcd.io/etcd/server/v3"))
}

/// k8s.io/kubernetes requires its staging modules at v0.0.0 (they live in its own tree); outside that
/// tree each must be replaced by its published v0.Y.Z tag. The list comes from that version's go.mod.
fn build_kubernetes(command: &str, out: &Path) -> Result<()> {
    let dir = cache_dir()
        .join("src")
        .join(format!("kubernetes-{KUBERNETES}"));
    if !dir.join("go.sum").is_file() {
        let dir = scratch_module(&format!("kubernetes-{KUBERNETES}"))?;
        let info = output(go().current_dir(&dir).args([
            "mod",
            "download",
            "-json",
            &format!("k8s.io/kubernetes@{KUBERNETES}"),
        ]))?;
        let info: serde_json::Value = serde_json::from_str(&info)?;
        let gomod = info["GoMod"]
            .as_str()
            .context("go mod download -json gave no GoMod")?;
        let staging = staging_modules(&std::fs::read_to_string(gomod)?);
        if staging.is_empty() {
            bail!("no k8s.io staging modules found in {gomod}");
        }
        let tag = format!("v0.{}", KUBERNETES.trim_start_matches("v1."));
        let mut gomod_text = std::fs::read_to_string(dir.join("go.mod"))?;
        for module in &staging {
            gomod_text.push_str(&format!("replace {module} => {module} {tag}\n"));
        }
        std::fs::write(dir.join("go.mod"), gomod_text)?;
        let pkgs = ["kube-apiserver", "kube-controller-manager", "kubectl"]
            .map(|c| format!("k8s.io/kubernetes/cmd/{c}@{KUBERNETES}"));
        run(go().current_dir(&dir).arg("get").args(pkgs))?;
    }
    run(go()
        .current_dir(&dir)
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg(format!("k8s.io/kubernetes/cmd/{command}")))
}

/// The `k8s.io/<module> v0.0.0` lines of Kubernetes' go.mod.
fn staging_modules(gomod: &str) -> Vec<String> {
    gomod
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(m), Some("v0.0.0"), None) if m.starts_with("k8s.io/") => Some(m.to_string()),
                (Some("require"), Some(m), Some("v0.0.0")) if m.starts_with("k8s.io/") => {
                    Some(m.to_string())
                }
                _ => None,
            }
        })
        .collect()
}

fn build_helm(out: &Path) -> Result<()> {
    go_install("helm.sh/helm/v3/cmd/helm", HELM, "helm", out)
}

/// `go install` of one command of a module at a version, into `out`: the module's own go.mod decides every
/// dependency (`go install pkg@version` refuses modules with replace directives; these have none).
fn go_install(package: &str, version: &str, name: &str, out: &Path) -> Result<()> {
    let gobin = cache_dir().join("src").join(format!("{name}-{version}"));
    std::fs::create_dir_all(&gobin)?;
    run(go()
        .env("GOBIN", &gobin)
        .env_remove("GOFLAGS")
        .args(["install", &format!("{package}@{version}")]))?;
    std::fs::rename(gobin.join(name), out)?;
    Ok(())
}

fn build_promtool(out: &Path) -> Result<()> {
    go_install(
        "github.com/prometheus/prometheus/cmd/promtool",
        PROMETHEUS,
        "promtool",
        out,
    )
}

/// The ServiceMonitor and PrometheusRule CRDs, generated by controller-gen from the Prometheus operator's
/// Go types (module github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring) and cached by
/// both versions in `crds/`. Upstream also stamps an `operator.prometheus.io/version` annotation on its
/// released copies; the schemas are what matters to the API server, and those are controller-gen's.
fn ensure_monitoring_crds(bin: &Path) -> Result<PathBuf> {
    const KINDS: [&str; 2] = ["servicemonitors", "prometheusrules"];
    let dir = cache_dir().join("crds").join(format!(
        "prometheus-operator-{PROMETHEUS_OPERATOR}-controller-gen-{CONTROLLER_TOOLS}"
    ));
    let file = |kind: &str| format!("monitoring.coreos.com_{kind}.yaml");
    if KINDS.iter().all(|k| dir.join(file(k)).is_file()) {
        return Ok(dir);
    }
    let controller_gen = ensure(bin, "controller-gen", CONTROLLER_TOOLS, |out| {
        go_install(
            "sigs.k8s.io/controller-tools/cmd/controller-gen",
            CONTROLLER_TOOLS,
            "controller-gen",
            out,
        )
    })?;
    eprintln!(
        "xtask: generating the Prometheus operator's CRDs {PROMETHEUS_OPERATOR} with controller-gen {CONTROLLER_TOOLS}"
    );
    let started = Instant::now();
    // controller-gen loads the types with go/packages, so the module must be a dependency of a module.
    let module = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring";
    let src = scratch_module(&format!("monitoring-crds-{PROMETHEUS_OPERATOR}"))?;
    run(go()
        .current_dir(&src)
        .args(["get", &format!("{module}@{PROMETHEUS_OPERATOR}")]))?;
    let generated = src.join("out");
    run(Command::new(&controller_gen)
        .current_dir(&src)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .arg("crd:crdVersions=v1")
        .arg(format!("paths={module}/v1"))
        .arg(format!("output:crd:dir={}", generated.display())))?;
    let tmp = dir.with_extension("partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    for kind in KINDS {
        std::fs::copy(generated.join(file(kind)), tmp.join(file(kind)))
            .with_context(|| format!("controller-gen made no {}", file(kind)))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)?;
    eprintln!(
        "xtask: generated the monitoring CRDs in {:.0?}",
        started.elapsed()
    );
    Ok(dir)
}

/// moto's server in its own virtualenv in the cache, installed from PyPI when missing. A stamp file
/// written after pip succeeds marks a complete install; anything else is wiped and redone.
fn ensure_moto() -> Result<PathBuf> {
    let venv = cache_dir().join(format!("venv-moto-{MOTO}"));
    let server = venv.join("bin").join("moto_server");
    let stamp = venv.join(".installed");
    if stamp.is_file() && server.is_file() {
        return Ok(server);
    }
    eprintln!(
        "xtask: installing moto[server]=={MOTO} into {}",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)?;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("moto[server]=={MOTO}"),
    ]))?;
    std::fs::write(&stamp, MOTO)?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    #[test]
    fn staging_modules_reads_both_require_forms() {
        let gomod = "module k8s.io/kubernetes\nrequire k8s.io/api v0.0.0\nrequire (\n\tk8s.io/client-go v0.0.0\n\tgithub.com/x/y v1.2.3\n\tk8s.io/utils v0.0.0-2024\n)\nreplace k8s.io/api => ./staging/src/k8s.io/api\n";
        assert_eq!(
            super::staging_modules(gomod),
            vec!["k8s.io/api", "k8s.io/client-go"]
        );
    }
}
