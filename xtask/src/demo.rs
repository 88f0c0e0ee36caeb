//! `cargo xtask demo`: the main job, end to end on the local stack. Starts the stack, builds and starts
//! the operator, creates an HTTP API and a WebSocket API in moto, applies every manifest in examples/
//! (with those API IDs) and examples/references/ (which names an API "orders" and a VPC link the demo makes
//! too), waits until all are Ready and shows both sides: the resources and what moto holds. Then the
//! import (issue 22): an API whose integrations were made directly in moto, as another tool would, is
//! imported with `apigw-operator import`, applied in Observe, shows one field someone changed in AWS as
//! drift, and is switched to Manage, which repairs it with one UpdateIntegration.

use crate::paths::{repo_root, stack_dir};
use crate::proc::{self, output, pid_runs, spawn_detached};
use crate::stack::{self, Stack};
use crate::tools;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
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
elif sys.argv[1] == "legacy":
    # Another tool's API, with three integrations and two routes made afresh on each run. The API itself
    # is kept from a previous run (a new one under the same name would get a new ID, which the operator
    # learns only at its next listing of the region's APIs).
    found = [a["ApiId"] for a in c.get_apis()["Items"] if a.get("Name") == "legacy-shop"]
    api = found[0] if found else c.create_api(Name="legacy-shop", ProtocolType="HTTP")["ApiId"]
    for r in c.get_routes(ApiId=api)["Items"]:
        c.delete_route(ApiId=api, RouteId=r["RouteId"])
    for i in c.get_integrations(ApiId=api)["Items"]:
        c.delete_integration(ApiId=api, IntegrationId=i["IntegrationId"])
    products = c.create_integration(ApiId=api, IntegrationType="HTTP_PROXY", IntegrationMethod="GET",
        IntegrationUri="https://shop.example.com/products/{id}", PayloadFormatVersion="1.0",
        TimeoutInMillis=8000)["IntegrationId"]
    checkout = c.create_integration(ApiId=api, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
        IntegrationUri="arn:aws:lambda:us-east-1:123456789012:function:checkout")["IntegrationId"]
    c.create_integration(ApiId=api, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
        IntegrationUri="https://legacy.example.com/{proxy}", PayloadFormatVersion="1.0")
    c.create_route(ApiId=api, RouteKey="GET /products/{id}", Target="integrations/" + products)
    c.create_route(ApiId=api, RouteKey="POST /checkout", Target="integrations/" + checkout)
    print(api, products)
elif sys.argv[1] == "set-timeout":
    c.update_integration(ApiId=sys.argv[3], IntegrationId=sys.argv[4], TimeoutInMillis=int(sys.argv[5]))
elif sys.argv[1] == "timeout":
    print(c.get_integration(ApiId=sys.argv[3], IntegrationId=sys.argv[4])["TimeoutInMillis"])
else:
    # What moto holds for the demo's APIs, as JSON; the xtask formats the table (moto_table).
    known = json.load(open(state_path))
    apis = {a["ApiId"]: a for a in c.get_apis()["Items"]}
    shown = []
    for key in ("HTTP", "WEBSOCKET", "ORDERS"):
        api = apis.get(known.get(key))
        if api is None:
            continue
        integrations = c.get_integrations(ApiId=api["ApiId"])["Items"]
        if api["ProtocolType"] == "WEBSOCKET":
            for i in integrations:
                got = c.get_integration_responses(ApiId=api["ApiId"], IntegrationId=i["IntegrationId"])
                i["Responses"] = sorted(r["IntegrationResponseKey"] for r in got["Items"])
        shown.append({"id": api["ApiId"], "name": api["Name"], "protocol": api["ProtocolType"], "integrations": integrations})
    print(json.dumps(shown))
"#;

pub fn run() -> Result<()> {
    let started = Instant::now();
    // Only the tools the stack runs: helm, promtool and the monitoring CRDs are for the tests.
    let stack = stack::up_with(stack::ToolSet::Stack)?;
    println!(
        "demo: Kubernetes API via {}, API Gateway (moto) at {}",
        stack.kubeconfig.display(),
        stack.aws_endpoint
    );
    let tools = tools::ensure_stack()?;
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
    // Its own port for /metrics and the probes: 8080, the default, may be taken on a shared machine.
    let http_addr = format!("127.0.0.1:{}", proc::free_port()?);
    let child = spawn_detached(
        stack
            .command(&binary)
            .args([
                "run",
                "--watch-namespace",
                NAMESPACE,
                "--resync-seconds",
                "60",
                "--http-addr",
                &http_addr,
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
        "demo: operator running (pid {}), log {}, metrics http://{http_addr}/metrics",
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
    let held = output(
        stack
            .command(&python)
            .args(["-c", MOTO_SCRIPT, "show"])
            .arg(&demo_state),
    )?;
    let apis: Vec<MotoApi> =
        serde_json::from_str(&held).context("the moto script prints its APIs as JSON")?;
    print!("{}", moto_table(&apis));

    import_demo(&stack, &binary, &python, &demo_state, &calls)?;

    println!(
        "\ndemo: done in {:.1?}. The stack and the operator keep running. Try:\n  \
         source {env}\n  \
         kubectl -n {NAMESPACE} describe apiint catalog-http\n  \
         kubectl -n {NAMESPACE} get apiint echo-two-way -o jsonpath='{{.status.integrationResponses}}'\n  \
         kubectl -n {NAMESPACE} delete apiint ping-mock     # and watch it leave moto\n  \
         kubectl -n {NAMESPACE} describe apiint get-products-id   # the imported one\n\
         Stop everything (operator included) with:  cargo xtask stack down",
        started.elapsed(),
        env = stack_dir().join("env").display()
    );
    Ok(())
}

/// The import, end to end: another tool's integrations in moto, `apigw-operator import`, Observe with one
/// drifted field, then Manage, which repairs it.
fn import_demo(
    stack: &Stack,
    binary: &Path,
    python: &Path,
    demo_state: &Path,
    calls: &Path,
) -> Result<()> {
    let moto = |args: &[&str]| {
        output(
            stack
                .command(python)
                .args(["-c", MOTO_SCRIPT, args[0]])
                .arg(demo_state)
                .args(&args[1..]),
        )
    };
    println!("\n== Import: integrations another tool made ==");
    let dir = stack_dir().join("demo-import");
    let file = dir.join("legacy-shop.yaml");
    // A previous demo run's objects adopted legacy-shop's integrations of then: they go first (Retain:
    // deleting them leaves AWS alone), before those integrations are replaced.
    if let Ok(previous) = std::fs::read_to_string(&file) {
        let mut delete = stack.kubectl();
        delete.args([
            "delete",
            "apiint",
            "-n",
            NAMESPACE,
            "--ignore-not-found",
            "--timeout=60s",
        ]);
        proc::run(delete.args(object_names(&previous)))?;
    }
    let made = moto(&["legacy"])?;
    let (api, products) = made
        .split_once(' ')
        .map(|(a, p)| (a.trim().to_string(), p.trim().to_string()))
        .context("the moto script prints the API and an integration ID")?;
    println!(
        "demo: made API legacy-shop ({api}) directly in moto: 3 integrations, 2 routes, no ApiIntegration"
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    println!(
        "\n$ apigw-operator import --api-name legacy-shop -n {NAMESPACE} --out-dir {}",
        dir.display()
    );
    proc::run(
        stack
            .command(binary)
            .args([
                "import",
                "--api-name",
                "legacy-shop",
                "-n",
                NAMESPACE,
                "--out-dir",
            ])
            .arg(&dir),
    )?;
    let yaml = std::fs::read_to_string(&file)?;
    println!("\n$ cat {}\n{yaml}", file.display());
    let names = object_names(&yaml);

    println!(
        "demo: meanwhile someone sets get-products-id's timeout to 3000 ms in the console (the import said 8000)"
    );
    moto(&["set-timeout", &api, &products, "3000"])?;
    let writes_before = aws_writes(calls);
    println!("\n$ kubectl apply -k {}", dir.display());
    proc::run(stack.kubectl().args(["apply", "-k"]).arg(&dir))?;
    wait_reasons(stack, &names, |name| {
        if name == "get-products-id" {
            "Drifted"
        } else {
            "InSync"
        }
    })?;
    println!("\n$ kubectl get apiint -n {NAMESPACE} {}", names.join(" "));
    proc::run(
        stack
            .kubectl()
            .args(["get", "apiint", "-n", NAMESPACE])
            .args(&names),
    )?;
    println!("\n$ kubectl describe apiint get-products-id -n {NAMESPACE}");
    proc::run(
        stack
            .kubectl()
            .args(["describe", "apiint", "get-products-id", "-n", NAMESPACE]),
    )?;
    let observe_writes = aws_writes(calls).saturating_sub(writes_before);
    println!(
        "demo: Observe made {observe_writes} AWS writes; moto still holds timeout {} ms",
        moto(&["timeout", &api, &products])?.trim()
    );

    println!(
        "\n$ kubectl patch apiint get-products-id -n {NAMESPACE} --type merge -p '{{\"spec\":{{\"managementPolicy\":\"Manage\"}}}}'"
    );
    proc::run(stack.kubectl().args([
        "patch",
        "apiint",
        "get-products-id",
        "-n",
        NAMESPACE,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"managementPolicy":"Manage"}}"#,
    ]))?;
    wait_reasons(stack, &["get-products-id".to_string()], |_| "Synced")?;
    proc::run(
        stack
            .kubectl()
            .args(["get", "apiint", "-n", NAMESPACE])
            .args(&names),
    )?;
    println!(
        "demo: Manage repaired it with {} AWS write(s); moto holds timeout {} ms again",
        aws_writes(calls).saturating_sub(writes_before + observe_writes),
        moto(&["timeout", &api, &products])?.trim()
    );
    Ok(())
}

/// metadata.name of each object in a file `import` wrote (the only two-space-indented `name:`).
fn object_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("  name: "))
        .map(|n| n.trim().to_string())
        .collect()
}

/// How many UpdateIntegration, CreateIntegration and DeleteIntegration calls the operator's call log has.
fn aws_writes(calls: &Path) -> usize {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            [
                "\"UpdateIntegration\"",
                "\"CreateIntegration\"",
                "\"DeleteIntegration\"",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .count()
}

/// Waits (at most a minute) until each named object's Ready reason is the one `want` gives for it.
fn wait_reasons(
    stack: &Stack,
    names: &[String],
    want: impl Fn(&str) -> &'static str,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut off = Vec::new();
        for name in names {
            let reason = output(stack.kubectl().args([
                "get",
                "apiint",
                name,
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
            ]))?;
            if reason.trim() != want(name) {
                off.push(format!(
                    "{name}: {} (waiting for {})",
                    reason.trim(),
                    want(name)
                ));
            }
        }
        if off.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("after a minute: {}", off.join("; "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One API as moto holds it, with its integrations (what the moto script's `show` prints).
#[derive(Debug, Deserialize)]
struct MotoApi {
    id: String,
    name: String,
    /// `HTTP` or `WEBSOCKET`.
    protocol: String,
    integrations: Vec<MotoIntegration>,
}

/// The fields of one integration the table shows, named as API Gateway names them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MotoIntegration {
    integration_id: String,
    integration_type: String,
    integration_method: Option<String>,
    integration_subtype: Option<String>,
    integration_uri: Option<String>,
    /// The keys of its integration responses (WebSocket APIs).
    #[serde(default)]
    responses: Vec<String>,
}

/// The table of what moto holds: one row per integration, under its API's protocol, name and ID.
fn moto_table(apis: &[MotoApi]) -> String {
    let mut rows = vec![[
        "PROTOCOL".to_string(),
        "API".into(),
        "API ID".into(),
        "INTEGRATION".into(),
        "TYPE".into(),
        "TARGET".into(),
    ]];
    for api in apis {
        for i in &api.integrations {
            let kind = match &i.integration_method {
                Some(method) => format!("{} {method}", i.integration_type),
                None => i.integration_type.clone(),
            };
            let target = i
                .integration_subtype
                .as_ref()
                .or(i.integration_uri.as_ref())
                .map_or("-", String::as_str);
            let target = match i.responses.as_slice() {
                [] => target.to_string(),
                keys => format!("{target}  (responses: {})", keys.join(", ")),
            };
            rows.push([
                api.protocol.clone(),
                api.name.clone(),
                api.id.clone(),
                i.integration_id.clone(),
                kind,
                target,
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(&widths) {
            table.push_str(&format!("{cell:<width$}  "));
        }
        table.push_str(&row[5]);
        table.push('\n');
    }
    table
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

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(id: &str, kind: &str, method: Option<&str>, uri: &str) -> MotoIntegration {
        MotoIntegration {
            integration_id: id.into(),
            integration_type: kind.into(),
            integration_method: method.map(Into::into),
            integration_subtype: None,
            integration_uri: Some(uri.into()),
            responses: Vec::new(),
        }
    }

    fn api(id: &str, name: &str, protocol: &str, integrations: Vec<MotoIntegration>) -> MotoApi {
        MotoApi {
            id: id.into(),
            name: name.into(),
            protocol: protocol.into(),
            integrations,
        }
    }

    /// The words of each row after the header.
    fn rows(table: &str) -> Vec<Vec<&str>> {
        table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect()
    }

    #[test]
    fn each_row_shows_its_apis_protocol_name_and_id() {
        let apis = [
            api(
                "h1",
                "apigw-demo-http",
                "HTTP",
                vec![integration(
                    "i1",
                    "HTTP_PROXY",
                    Some("GET"),
                    "https://a.example",
                )],
            ),
            api(
                "w1",
                "apigw-demo-websocket",
                "WEBSOCKET",
                vec![integration("i2", "MOCK", None, "-")],
            ),
            // The API examples/references/ names: an HTTP API called "orders".
            api(
                "o1",
                "orders",
                "HTTP",
                vec![integration(
                    "i3",
                    "HTTP_PROXY",
                    Some("ANY"),
                    "http://nlb.internal",
                )],
            ),
        ];
        let table = moto_table(&apis);
        assert_eq!(
            table
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [
                "PROTOCOL",
                "API",
                "API",
                "ID",
                "INTEGRATION",
                "TYPE",
                "TARGET"
            ]
        );
        assert_eq!(
            rows(&table),
            [
                vec![
                    "HTTP",
                    "apigw-demo-http",
                    "h1",
                    "i1",
                    "HTTP_PROXY",
                    "GET",
                    "https://a.example"
                ],
                vec!["WEBSOCKET", "apigw-demo-websocket", "w1", "i2", "MOCK", "-"],
                vec![
                    "HTTP",
                    "orders",
                    "o1",
                    "i3",
                    "HTTP_PROXY",
                    "ANY",
                    "http://nlb.internal"
                ],
            ],
            "{table}"
        );
    }

    #[test]
    fn columns_line_up_and_the_subtype_is_the_target_when_there_is_one() {
        let mut step = integration("i9", "AWS_PROXY", None, "-");
        step.integration_subtype = Some("StepFunctions-StartExecution".into());
        step.integration_uri = None;
        let apis = [api("abc", "a-much-longer-api-name", "HTTP", vec![step])];
        let table = moto_table(&apis);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0].find("API ID"), lines[1].find("abc"), "{table}");
        assert_eq!(
            lines[0].find("TARGET"),
            lines[1].find("StepFunctions"),
            "{table}"
        );
        assert!(
            lines[1].ends_with("StepFunctions-StartExecution"),
            "{table}"
        );
    }

    #[test]
    fn a_websocket_integrations_responses_follow_its_target() {
        let mut two_way = integration("i4", "MOCK", None, "-");
        two_way.integration_uri = None;
        two_way.responses = vec!["$default".into(), "/4\\d\\d/".into()];
        let table = moto_table(&[api("w1", "ws", "WEBSOCKET", vec![two_way])]);
        let last = table.lines().nth(1).unwrap();
        assert!(
            last.ends_with("-  (responses: $default, /4\\d\\d/)"),
            "{table}"
        );
        let json = r#"[{"id": "w1", "name": "ws", "protocol": "WEBSOCKET", "integrations": [
            {"IntegrationId": "i4", "IntegrationType": "MOCK", "Responses": ["$default"]}]}]"#;
        let apis: Vec<MotoApi> = serde_json::from_str(json).unwrap();
        assert_eq!(apis[0].integrations[0].responses, ["$default"]);
    }

    #[test]
    fn object_names_are_the_metadata_names_not_the_api_ref() {
        let yaml = "metadata:\n  annotations:\n    apigw.dev/adopt-integration-id: i1\n  name: get-a\n  namespace: n\nspec:\n  apiRef:\n    name: shop\n---\nmetadata:\n  name: post-b\n";
        assert_eq!(object_names(yaml), ["get-a", "post-b"]);
    }

    #[test]
    fn the_moto_script_output_parses() {
        let json = r#"[{"id": "o1", "name": "orders", "protocol": "HTTP", "integrations": [
            {"IntegrationId": "i3", "IntegrationType": "HTTP_PROXY", "IntegrationMethod": "ANY",
             "ConnectionType": "VPC_LINK", "IntegrationUri": "http://nlb.internal"}]}]"#;
        let apis: Vec<MotoApi> = serde_json::from_str(json).unwrap();
        assert_eq!(apis[0].protocol, "HTTP");
        assert_eq!(
            apis[0].integrations[0].integration_method.as_deref(),
            Some("ANY")
        );
    }
}
