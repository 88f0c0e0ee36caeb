//! `cargo xtask demo`: the main job, end to end on the local stack. Starts the stack, builds and starts
//! the operator, creates an HTTP API and a WebSocket API in moto, applies every manifest in examples/
//! (with those API IDs) and examples/references/ (which names an API "orders" and a VPC link the demo makes
//! too), waits until all are Ready and shows both sides: the resources and what moto holds.

use crate::paths::{repo_root, stack_dir};
use crate::proc::{self, output, pid_runs, spawn_detached};
use crate::stack::{self, Stack};
use crate::tools;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "apigw-demo";
/// The API ID placeholders used in examples/.
const HTTP_PLACEHOLDER: &str = "a1b2c3d4e5";
const WS_PLACEHOLDER: &str = "w1x2y3z4v5";

/// Finds or creates the demo's two APIs in moto (reusing them on a second run, because apiId is
/// immutable in an ApiIntegration) and prints the moto side of each integration. Uses boto3 from
/// moto's own virtualenv, so nothing more is installed.
const MOTO_SCRIPT: &str = r#"
import boto3, json, os, sys
c = boto3.client("apigatewayv2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
state_path = sys.argv[2]
if sys.argv[1] == "apis":
    known = json.load(open(state_path)) if os.path.exists(state_path) else {}
    existing = {a["ApiId"] for a in c.get_apis()["Items"]}
    for proto in ("HTTP", "WEBSOCKET"):
        if known.get(proto) not in existing:
            extra = {"RouteSelectionExpression": "$request.body.action"} if proto == "WEBSOCKET" else {}
            known[proto] = c.create_api(Name="apigw-demo-" + proto.lower(), ProtocolType=proto, **extra)["ApiId"]
    # examples/references/ names an API and a VPC link instead of IDs: make them, once.
    orders = [a["ApiId"] for a in c.get_apis()["Items"] if a.get("Name") == "orders"]
    known["ORDERS"] = orders[0] if orders else c.create_api(Name="orders", ProtocolType="HTTP", Tags={"env": "prod"})["ApiId"]
    if not any(l.get("Name") == "orders-vpclink" for l in c.get_vpc_links()["Items"]):
        c.create_vpc_link(Name="orders-vpclink", SubnetIds=["subnet-0a1b2c3d"], Tags={"env": "prod"})
    json.dump(known, open(state_path, "w"))
    print(known["HTTP"], known["WEBSOCKET"])
else:
    known = json.load(open(state_path))
    print("%-10s %-10s %-10s %-28s %s" % ("PROTOCOL", "API", "ID", "TYPE", "TARGET"))
    for proto in ("HTTP", "WEBSOCKET", "ORDERS"):
        for i in c.get_integrations(ApiId=known[proto])["Items"]:
            target = i.get("IntegrationSubtype") or i.get("IntegrationUri") or "-"
            kind = i["IntegrationType"] + (" " + i["IntegrationMethod"] if i.get("IntegrationMethod") else "")
            print("%-10s %-10s %-10s %-28s %s" % (proto, known[proto], i["IntegrationId"], kind, target))
"#;

pub fn run() -> Result<()> {
    let started = Instant::now();
    let stack = stack::up()?;
    println!(
        "demo: Kubernetes API via {}, API Gateway (moto) at {}",
        stack.kubeconfig.display(),
        stack.aws_endpoint
    );
    let tools = tools::ensure_all()?;
    let python = tools
        .moto_server
        .parent()
        .context("moto_server lives in a virtualenv's bin/")?
        .join("python");

    println!("demo: building the operator");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    proc::run(Command::new(&cargo).current_dir(repo_root()).args([
        "build",
        "--quiet",
        "--bin",
        "apigw-operator",
    ]))?;
    let binary = crate::paths::target_dir().join("debug/apigw-operator");

    // A second demo run replaces the operator of the first, so it runs the binary just built.
    if stack::stop_named("apigw-operator")? {
        println!("demo: stopped the operator of a previous demo run");
    }
    let log = stack_dir().join("logs/operator.log");
    let calls = stack_dir().join("operator-aws-calls.jsonl");
    let child = spawn_detached(
        stack
            .command(&binary)
            .args([
                "run",
                "--watch-namespace",
                NAMESPACE,
                "--resync-seconds",
                "60",
            ])
            .arg("--aws-call-log")
            .arg(&calls),
        &log,
    )?;
    stack::register("apigw-operator", child.id(), &binary)?;
    std::thread::sleep(Duration::from_millis(500));
    if !pid_runs(child.id(), &binary.display().to_string()) {
        bail!(
            "the operator exited at start; its log:\n{}",
            crate::proc::tail(&log, 30)
        );
    }
    println!(
        "demo: operator running (pid {}), log {}",
        child.id(),
        log.display()
    );

    let demo_state = stack_dir().join("demo-apis.json");
    let ids = output(
        stack
            .command(&python)
            .args(["-c", MOTO_SCRIPT, "apis"])
            .arg(&demo_state),
    )?;
    let (http, ws) = ids
        .split_once(' ')
        .map(|(h, w)| (h.trim().to_string(), w.trim().to_string()))
        .context("the moto script prints two API IDs")?;
    println!("demo: moto has HTTP API {http} and WebSocket API {ws}");

    let manifests = stack_dir().join("demo-manifests");
    write_manifests(&manifests, &http, &ws)?;
    let ns_yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n");
    apply_stdin(&stack, &ns_yaml)?;
    proc::run(
        stack
            .kubectl()
            .args(["apply", "--server-side", "-n", NAMESPACE, "-f"])
            .arg(&manifests),
    )?;
    proc::run(stack.kubectl().args([
        "wait",
        "--for=condition=Ready",
        "apiintegrations",
        "--all",
        "-n",
        NAMESPACE,
        "--timeout=120s",
    ]))?;

    println!("\n$ kubectl get apiint -A");
    proc::run(stack.kubectl().args(["get", "apiint", "-A"]))?;
    println!("\nWhat moto (API Gateway) holds:");
    proc::run(
        stack
            .command(&python)
            .args(["-c", MOTO_SCRIPT, "show"])
            .arg(&demo_state),
    )?;

    println!(
        "\ndemo: done in {:.1?}. The stack and the operator keep running. Try:\n  \
         source {env}\n  \
         kubectl -n {NAMESPACE} describe apiint catalog-http\n  \
         kubectl -n {NAMESPACE} delete apiint ping-mock     # and watch it leave moto\n\
         Stop everything (operator included) with:  cargo xtask stack down",
        started.elapsed(),
        env = stack_dir().join("env").display()
    );
    Ok(())
}

/// examples/*.yaml with the placeholder API IDs replaced by the demo's.
fn write_manifests(dir: &Path, http: &str, ws: &str) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    let by_id = std::fs::read_dir(repo_root().join("examples"))?;
    // examples/references/ needs no substitution: it names the API "orders" the demo made.
    let by_name = std::fs::read_dir(repo_root().join("examples/references"))?;
    for entry in by_id.chain(by_name) {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)?
                .replace(HTTP_PLACEHOLDER, http)
                .replace(WS_PLACEHOLDER, ws);
            std::fs::write(dir.join(path.file_name().unwrap()), text)?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no manifests in examples/");
    }
    println!("demo: applying {n} example manifests to namespace {NAMESPACE}");
    Ok(())
}

fn apply_stdin(stack: &Stack, yaml: &str) -> Result<()> {
    use std::io::Write;
    let mut child = stack
        .kubectl()
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(yaml.as_bytes())?;
    if !child.wait()?.success() {
        bail!("kubectl apply failed");
    }
    Ok(())
}
