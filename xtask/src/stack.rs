//! The local stack: etcd, kube-apiserver (RBAC, token users, service-account keys), kube-controller-manager
//! and moto's server, each on a free loopback port. State (pids, endpoints) lives in target/stack/state.json
//! ([`StackState`], shared with the tests that restart stack processes) so that `down` stops exactly what
//! `up` started.

use crate::paths::{repo_root, stack_dir};
use crate::proc::{free_port, http_get_status, output, run, spawn_detached, stop_pid, wait_ready};
use crate::tools::{self, Tools};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::stack::{StackState, read_env_file};

/// The region the stack's env file names; moto accepts any.
pub const REGION: &str = "us-east-1";

/// What a running stack offers to the demo and the tests.
pub struct Stack {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub aws_endpoint: String,
    pub env: Vec<(String, String)>,
    pub started_here: bool,
}

impl Stack {
    /// A command with the stack's environment (KUBECONFIG, AWS_*, PATH with the stack's kubectl and helm).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }
    pub fn kubectl(&self) -> Command {
        self.command("kubectl")
    }
}

fn state_path() -> PathBuf {
    StackState::path()
}

/// The recorded state, if any. A file that cannot be read or parsed is an error naming it: guessing
/// would either stop nothing or start a second stack beside processes nobody records any more.
fn read_state() -> Result<Option<StackState>> {
    StackState::load().with_context(|| {
        format!(
            "cannot read {}; stop the processes it names by hand, then remove it",
            state_path().display()
        )
    })
}

fn write_state(state: &StackState) -> Result<()> {
    state
        .save()
        .with_context(|| format!("writing {}", state_path().display()))
}

/// The stack as recorded, if every core process of it still runs.
fn running() -> Option<Stack> {
    let state = read_state().ok()??;
    let core = ["etcd", "kube-apiserver", "kube-controller-manager", "moto"];
    let all_up = core
        .iter()
        .all(|name| state.processes.iter().any(|p| p.name == *name && p.runs()));
    if !all_up {
        return None;
    }
    let env = read_env_file(&stack_dir().join("env")).ok()?;
    Some(Stack {
        dir: stack_dir(),
        kubeconfig: stack_dir().join("kubeconfig"),
        aws_endpoint: state.aws_endpoint?,
        env,
        started_here: false,
    })
}

/// Which tools `up` makes sure of: the stack's own, or also those only the tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSet {
    /// etcd, kube-apiserver, kube-controller-manager, kubectl and moto: what the demo needs.
    Stack,
    /// Those and helm, promtool and the monitoring CRDs: what `stack up` and the tests need.
    WithTestTools,
}

impl ToolSet {
    fn ensure(self) -> Result<Tools> {
        match self {
            ToolSet::Stack => tools::ensure_stack(),
            ToolSet::WithTestTools => tools::ensure_all(),
        }
    }
}

/// `cargo xtask stack up`: the stack with every tool the tests use on its PATH.
pub fn up() -> Result<Stack> {
    up_with(ToolSet::WithTestTools)
}

/// `stack up --node`: the stack (with the test tools), and the node, added to a stack already running
/// without one.
pub fn up_with_node() -> Result<Stack> {
    let stack = up_with(ToolSet::WithTestTools)?;
    crate::image::ensure_debian_packages(&crate::node::DEBIAN_PACKAGES)?;
    let node_tools = tools::ensure_node()?;
    node_tools.print_versions();
    let pki = stack.dir.join("pki");
    crate::node::up(&node_tools, &stack.kubeconfig, &pki.join("ca.crt"))?;
    Ok(stack)
}

/// The stack, building only the tools of `set` that are not cached (a stack already up is reused as it
/// is, with whatever test tools it was given before, plus those of `set`).
pub fn up_with(set: ToolSet) -> Result<Stack> {
    let started = Instant::now();
    if let Some(mut stack) = running() {
        println!(
            "stack: already up ({}); `cargo xtask stack status` for details",
            stack.dir.display()
        );
        // A stack started by an older xtask may lack tools added since: build (or find) them and
        // offer them the same way as a fresh stack does.
        let tools = set.ensure()?;
        offer_test_tools(&stack.dir, &tools)?;
        stack.env = read_env_file(&stack.dir.join("env"))?;
        ensure_crds(&stack)?;
        return Ok(stack);
    }
    if read_state()?.is_some() {
        eprintln!(
            "xtask: a previous stack is only partly running; stopping what is left of it first"
        );
        down()?;
    }
    let tools = set.ensure()?;
    tools.print_versions();
    let tools_ready = started.elapsed();
    let stack = start(&tools)?;
    ensure_crds(&stack)?;
    println!(
        "stack: up in {:.1?} (tools ready after {:.1?}). Use it from a shell with:  source {}",
        started.elapsed(),
        tools_ready,
        stack.dir.join("env").display()
    );
    println!("stack: stop it with:  cargo xtask stack down");
    Ok(stack)
}

fn start(tools: &Tools) -> Result<Stack> {
    let dir = stack_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut state = StackState::for_this_checkout();
    write_state(&state)?;
    // Every process is recorded the moment it starts, so a failure half-way leaves nothing unstoppable.
    let record = |state: &mut StackState, name: &str, pid: u32, bin: &Path| -> Result<()> {
        state.record(name, pid, bin);
        write_state(state)
    };

    // Binaries the user and the tests call by name.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(&tools.kubectl, bin.join("kubectl"))?;

    // Secrets of this stack only: service-account signing key and bearer tokens.
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;
    let sa_key = pki.join("sa.key");
    let sa_pub = pki.join("sa.pub");
    output(
        Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&sa_key)
            .arg("2048"),
    )?;
    output(
        Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&sa_key)
            .arg("-out")
            .arg(&sa_pub),
    )?;
    // A CA of this stack only, and serving certificates it signs for 127.0.0.1, so every client
    // (kubectl, helm, the operator, the tests) verifies the servers as on a real cluster.
    let ca = Ca::new(&pki)?;
    // The API server's certificate also names the in-cluster `kubernetes` Service, which the node's Pods
    // connect to.
    let (api_cert, api_key) = ca.serving_cert(
        &pki,
        "kube-apiserver",
        &format!(
            "IP:{},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
            crate::node::KUBERNETES_SERVICE_IP
        ),
    )?;
    let (kcm_cert, kcm_key) = ca.serving_cert(&pki, "kube-controller-manager", "")?;
    let admin_token = random_hex(24)?;
    let tester_token = random_hex(24)?;
    let tokens = pki.join("tokens.csv");
    std::fs::write(
        &tokens,
        format!(
            "{admin_token},admin,uid-admin,\"system:masters\"\n{tester_token},tester,uid-tester,\"apigw:testers\"\n"
        ),
    )?;

    // etcd
    let etcd_port = free_port()?;
    let etcd_peer = free_port()?;
    let etcd_log = logs.join("etcd.log");
    let child = spawn_detached(
        Command::new(&tools.etcd)
            .arg(format!("--data-dir={}", dir.join("etcd-data").display()))
            .arg("--name=apigw-stack")
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
            ))
            .arg(format!(
                "--initial-cluster=apigw-stack=http://127.0.0.1:{etcd_peer}"
            ))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn"),
        &etcd_log,
    )?;
    record(&mut state, "etcd", child.id(), &tools.etcd)?;
    let mut etcd_child = child;
    let t = wait_ready(
        "etcd",
        &mut etcd_child,
        &etcd_log,
        Duration::from_secs(30),
        || http_get_status(etcd_port, "/health") == Some(200),
    )?;
    println!("stack: etcd ready on 127.0.0.1:{etcd_port} after {t:.1?}");

    // kube-apiserver, flags as controller-runtime's envtest uses them, plus token users and RBAC.
    let api_port = free_port()?;
    let api_log = logs.join("kube-apiserver.log");
    let child = spawn_detached(
        Command::new(&tools.kube_apiserver)
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .arg(format!("--tls-cert-file={}", api_cert.display()))
            .arg(format!("--tls-private-key-file={}", api_key.display()))
            .arg(format!("--secure-port={api_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--authorization-mode=RBAC")
            .arg(format!("--token-auth-file={}", tokens.display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", sa_pub.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                sa_key.display()
            ))
            .arg("--allow-privileged=true")
            // The node's name resolves nowhere: reach its kubelet (logs, exec) at its address.
            .arg("--kubelet-preferred-address-types=InternalIP")
            .arg("--v=1"),
        &api_log,
    )?;
    record(
        &mut state,
        "kube-apiserver",
        child.id(),
        &tools.kube_apiserver,
    )?;
    let mut api_child = child;
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("kubeconfig");
    let ca_data = ca.base64()?;
    write_kubeconfig(&kubeconfig, &server, &ca_data, "admin", &admin_token)?;
    write_kubeconfig(
        &dir.join("kubeconfig-tester"),
        &server,
        &ca_data,
        "tester",
        &tester_token,
    )?;
    let t = wait_ready(
        "kube-apiserver",
        &mut api_child,
        &api_log,
        Duration::from_secs(120),
        || {
            Command::new(&tools.kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["get", "--raw=/readyz", "--request-timeout=5s"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        },
    )?;
    println!("stack: kube-apiserver ready on {server} after {t:.1?}");

    // kube-controller-manager: namespace deletion, garbage collection, service accounts, the
    // Deployment -> ReplicaSet -> Pod chain (so Pod Security admission is exercised for real), and
    // ClusterRole aggregation (the chart's roles aggregated into the built-in edit, admin and view).
    let kcm_port = free_port()?;
    let kcm_log = logs.join("kube-controller-manager.log");
    let child = spawn_detached(
        Command::new(&tools.kube_controller_manager)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--secure-port={kcm_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--tls-cert-file={}", kcm_cert.display()))
            .arg(format!("--tls-private-key-file={}", kcm_key.display()))
            .arg("--leader-elect=false")
            .arg("--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,deployment-controller,replicaset-controller,clusterrole-aggregation-controller")
            .arg(format!("--service-account-private-key-file={}", sa_key.display()))
            .arg("--v=1"),
        &kcm_log,
    )?;
    record(
        &mut state,
        "kube-controller-manager",
        child.id(),
        &tools.kube_controller_manager,
    )?;
    let mut kcm_child = child;
    let t = wait_ready(
        "kube-controller-manager",
        &mut kcm_child,
        &kcm_log,
        Duration::from_secs(60),
        || {
            Command::new("curl")
                .args(["-sf", "--max-time", "3", "--cacert"])
                .arg(&ca.cert)
                .arg(format!("https://127.0.0.1:{kcm_port}/healthz"))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        },
    )?;
    println!("stack: kube-controller-manager ready on 127.0.0.1:{kcm_port} after {t:.1?}");

    // moto
    let moto_port = free_port()?;
    let moto_log = logs.join("moto.log");
    let child = spawn_detached(
        Command::new(&tools.moto_server).args(["-H", "127.0.0.1", "-p", &moto_port.to_string()]),
        &moto_log,
    )?;
    record(&mut state, "moto", child.id(), &tools.moto_server)?;
    let mut moto_child = child;
    let t = wait_ready(
        "moto",
        &mut moto_child,
        &moto_log,
        Duration::from_secs(60),
        || http_get_status(moto_port, "/moto-api/").is_some(),
    )?;
    let aws_endpoint = format!("http://127.0.0.1:{moto_port}");
    println!("stack: moto ready on {aws_endpoint} after {t:.1?}");

    state.aws_endpoint = Some(aws_endpoint.clone());
    state.api_server = Some(server);
    write_state(&state)?;

    let secret = format!("stack-secret-{}", random_hex(8)?);
    let env_text = format!(
        "export KUBECONFIG={kc}\nexport APIGW_TESTER_KUBECONFIG={tkc}\nexport AWS_ENDPOINT_URL={aws_endpoint}\n\
         export AWS_REGION={REGION}\nexport AWS_DEFAULT_REGION={REGION}\nexport AWS_ACCESS_KEY_ID=stackaccesskey\nexport AWS_SECRET_ACCESS_KEY={secret}\n\
         export PATH={bin}:$PATH\n",
        kc = kubeconfig.display(),
        tkc = dir.join("kubeconfig-tester").display(),
        bin = bin.display(),
    );
    std::fs::write(dir.join("env"), env_text)?;
    offer_test_tools(&dir, tools)?;
    let env = read_env_file(&dir.join("env"))?;
    Ok(Stack {
        dir,
        kubeconfig,
        aws_endpoint,
        env,
        started_here: true,
    })
}

/// Tools only the tests use, not the stack itself, when they were built: helm and promtool on the stack's
/// PATH, and the directory of the Prometheus operator's CRDs as `APIGW_MONITORING_CRDS` in the env file
/// (the tests that need them apply them; the stack does not, so every other test sees a cluster without
/// them). Idempotent; without test tools (the demo's stack) it changes nothing.
fn offer_test_tools(dir: &Path, tools: &Tools) -> Result<()> {
    let Some(test) = &tools.test else {
        return Ok(());
    };
    for (name, target) in [("helm", &test.helm), ("promtool", &test.promtool)] {
        let link = dir.join("bin").join(name);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link)?;
        }
    }
    let env_file = dir.join("env");
    let text = std::fs::read_to_string(&env_file)?;
    let line = format!(
        "export APIGW_MONITORING_CRDS={}",
        test.monitoring_crds.display()
    );
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("export APIGW_MONITORING_CRDS="))
        .collect();
    kept.push(&line);
    std::fs::write(&env_file, kept.join("\n") + "\n")?;
    Ok(())
}

/// Applies crds/ (when there is anything in it) and waits until every CRD is Established.
fn ensure_crds(stack: &Stack) -> Result<()> {
    let crds = repo_root().join("crds");
    let has_yaml = std::fs::read_dir(&crds)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .unwrap_or(false);
    if !has_yaml {
        return Ok(());
    }
    run(stack
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(&crds))?;
    run(stack
        .kubectl()
        .args(["wait", "--for=condition=Established", "--timeout=60s", "-f"])
        .arg(&crds))?;
    Ok(())
}

/// The stack's certificate authority: made afresh by every `up`, trusted only through the stack's
/// kubeconfigs (and curl's --cacert), its key never leaving target/stack/pki.
struct Ca {
    cert: PathBuf,
    key: PathBuf,
}

/// EC P-256: as good as RSA here and generated in milliseconds.
const EC_KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl Ca {
    fn new(pki: &Path) -> Result<Ca> {
        let ca = Ca {
            cert: pki.join("ca.crt"),
            key: pki.join("ca.key"),
        };
        output(
            Command::new("openssl")
                .args(["req", "-x509", "-nodes", "-days", "30"])
                .args(EC_KEY)
                .arg("-keyout")
                .arg(&ca.key)
                .arg("-out")
                .arg(&ca.cert)
                .args([
                    "-subj",
                    "/CN=apigw-stack-ca",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]),
        )?;
        Ok(ca)
    }

    /// A certificate for a server on 127.0.0.1 (and localhost, and the `extra_sans` when not empty),
    /// signed by this CA: (cert, key) paths.
    fn serving_cert(&self, pki: &Path, name: &str, extra_sans: &str) -> Result<(PathBuf, PathBuf)> {
        let mut sans = String::from("subjectAltName=IP:127.0.0.1,DNS:localhost");
        if !extra_sans.is_empty() {
            sans.push(',');
            sans.push_str(extra_sans);
        }
        let cert = pki.join(format!("{name}.crt"));
        let key = pki.join(format!("{name}.key"));
        output(
            Command::new("openssl")
                .args(["req", "-x509", "-nodes", "-days", "30"])
                .args(EC_KEY)
                .arg("-CA")
                .arg(&self.cert)
                .arg("-CAkey")
                .arg(&self.key)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .args([
                    "-subj",
                    &format!("/CN={name}"),
                    "-addext",
                    "basicConstraints=critical,CA:FALSE",
                    "-addext",
                    "keyUsage=critical,digitalSignature",
                    "-addext",
                    "extendedKeyUsage=serverAuth",
                    "-addext",
                    &sans,
                ]),
        )?;
        Ok((cert, key))
    }

    /// The CA certificate as a kubeconfig's certificate-authority-data wants it.
    fn base64(&self) -> Result<String> {
        Ok(output(
            Command::new("openssl")
                .args(["base64", "-A", "-in"])
                .arg(&self.cert),
        )?
        .trim()
        .to_string())
    }
}

fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_data: &str,
    user: &str,
    token: &str,
) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: apigw-stack\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\n\
         users:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {user}@apigw-stack\n  context:\n    cluster: apigw-stack\n    user: {user}\n    namespace: default\n\
         current-context: {user}@apigw-stack\n"
    );
    std::fs::write(path, text)?;
    Ok(())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Records a process started on top of the stack (the demo's operator) so `down` stops it too.
pub fn register(name: &str, pid: u32, needle: &Path) -> Result<()> {
    let mut state = read_state()?.unwrap_or_default();
    state.record(name, pid, needle);
    write_state(&state)
}

/// Stops and forgets every recorded process called `name`; says whether one was running.
pub fn stop_named(name: &str) -> Result<bool> {
    let Some(mut state) = read_state()? else {
        return Ok(false);
    };
    let mut was_running = false;
    for p in state.processes.iter().filter(|p| p.name == name) {
        was_running |= p.runs();
        stop_pid(p.pid, &p.needle, Duration::from_secs(10));
        if p.runs() {
            bail!("{} (pid {}) is still running", p.name, p.pid);
        }
    }
    state.processes.retain(|p| p.name != name);
    write_state(&state)?;
    Ok(was_running)
}

pub fn down() -> Result<()> {
    // The node first, while the API server can still tell its kubelet to take the Pods down.
    crate::node::down()?;
    let Some(state) = read_state()? else {
        println!(
            "stack: nothing recorded in {}; nothing to stop",
            state_path().display()
        );
        return Ok(());
    };
    // Stop in reverse start order: the operator and moto first, etcd last.
    for p in state.processes.iter().rev() {
        let was = p.runs();
        stop_pid(p.pid, &p.needle, Duration::from_secs(10));
        if was {
            println!("stack: stopped {} (pid {})", p.name, p.pid);
        }
        if p.runs() {
            bail!("{} (pid {}) is still running", p.name, p.pid);
        }
    }
    let dir = stack_dir();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "logs") {
            continue; // kept for a post-mortem; the next `up` starts them afresh
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    println!(
        "stack: down; data removed (logs kept in {})",
        dir.join("logs").display()
    );
    Ok(())
}

pub fn status() -> Result<()> {
    let Some(state) = read_state()? else {
        println!("stack: not up (no {})", state_path().display());
        return Ok(());
    };
    println!("stack: {}", stack_dir().display());
    for p in &state.processes {
        let what = if p.runs() { "running" } else { "NOT running" };
        println!("  {:<24} pid {:<8} {what}", p.name, p.pid);
    }
    if let Some(s) = &state.api_server {
        println!("  kube-apiserver           {s}");
    }
    if let Some(s) = &state.aws_endpoint {
        println!("  AWS endpoint (moto)      {s}");
    }
    if let Some(node) = &state.node {
        println!(
            "  node                     {} (bridge {} at {}, Pods in {}; {})",
            node.name,
            node.bridge,
            node.gateway,
            node.pod_subnet,
            node.dir.display()
        );
    }
    println!(
        "  env file                 {}",
        stack_dir().join("env").display()
    );
    Ok(())
}
