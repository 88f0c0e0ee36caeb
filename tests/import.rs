//! `apigw-operator import` against the real API server and moto (issue 22): integrations made directly in
//! moto through the SDK, as another tool would make them, are imported, applied and observed, and the
//! operator finds every one InSync with an empty status.drift and makes no AWS write; switched to
//! Manage, it still writes nothing. The import itself makes list calls only, the only one per integration
//! being GetIntegrationResponses, once for each AWS, HTTP or MOCK integration of a WebSocket API (issue 23):
//! a two-way MOCK integration's responses, made in moto, come into its spec and are then left exactly as
//! they are (no integration response is created, updated or deleted). Needs `cargo xtask stack up`.
//!
//! - The round trip runs over the specs the fuzzer's generator makes (tests/specgen, seeded;
//!   `PROPTEST_CASES`, default 40, sets how many) and over every manifest in examples/, through a proxy
//!   that cuts every listing into pages.
//! - The large import: `APIGW_IMPORT_COUNT` integrations (default 1000, the issue's figure) on 4 APIs,
//!   written with --out-dir and applied with `kubectl apply -k`. One run took 105 s on the 2-core build
//!   machine, 26 s of it the import itself: 259 AWS calls, one after another, 250 of them
//!   GetIntegrationResponses for the WebSocket API's MOCK integrations. A smaller count makes a quicker
//!   run.
//! - Under API Gateway's quota (the proxy's, 5 calls/s, burst 5) and with every fourth call failed with a
//!   5xx, the import retries each failed page with its own token and writes byte for byte what an
//!   undisturbed import writes; a failure that lasts ends it after 8 attempts (about 20 to 35 s), and
//!   access denied or an API deleted meanwhile ends it at once, each naming the call.

mod common;
mod e2e;
mod specgen;

use apigw_operator::api::{
    ADOPT_ANNOTATION, ApiIntegration, ApiIntegrationSpec, IntegrationMethod,
    IntegrationResponseSpec, IntegrationType,
};
use apigw_operator::aws::create_input;
use apigw_operator::plan::{Field, IntegrationFields};
use common::{kubectl_ok, kubectl_stdin, repo_path, stack_env};
use e2e::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::Value;
use specgen::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use testkit::quota::Quota;

const WRITES: [&str; 6] = [
    "CreateIntegration",
    "UpdateIntegration",
    "DeleteIntegration",
    "CreateIntegrationResponse",
    "UpdateIntegrationResponse",
    "DeleteIntegrationResponse",
];
/// The calls an import may make (GetIntegrationResponses only for integrations that can have
/// responses, see [`has_responses`]).
const LISTINGS: [&str; 5] = [
    "GetApis",
    "GetIntegrations",
    "GetRoutes",
    "GetVpcLinks",
    "GetIntegrationResponses",
];
const SEED: u64 = 0x00f0_2222_0003;

fn writes(op: &Operator) -> usize {
    WRITES.iter().map(|w| op.count(w)).sum()
}

/// Can this integration have integration responses (a WebSocket API's AWS, HTTP or MOCK integration),
/// so that the import reads them?
fn has_responses(proto: Proto, fields: &IntegrationFields) -> bool {
    proto == Proto::Ws
        && matches!(
            fields.integration_type,
            Some(IntegrationType::Aws | IntegrationType::Http | IntegrationType::Mock)
        )
}

/// The responses moto holds for integration `id`, as GetIntegrationResponses answers (ID and fields,
/// sorted by key).
fn responses_in_moto(moto: &Moto, api: &str, id: &str) -> Vec<(String, IntegrationResponseSpec)> {
    let out = block_on(
        moto.client
            .get_integration_responses()
            .api_id(api)
            .integration_id(id)
            .send(),
    )
    .expect("moto lists integration responses");
    let map = |m: Option<&std::collections::HashMap<String, String>>| {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    let mut held: Vec<_> = out
        .items()
        .iter()
        .map(|r| {
            (
                r.integration_response_id().unwrap().to_string(),
                IntegrationResponseSpec {
                    integration_response_key: r.integration_response_key().unwrap().to_string(),
                    response_templates: map(r.response_templates()),
                    response_parameters: map(r.response_parameters()),
                    template_selection_expression: r
                        .template_selection_expression()
                        .map(String::from),
                    content_handling_strategy: None,
                },
            )
        })
        .collect();
    held.sort_by(|a, b| {
        a.1.integration_response_key
            .cmp(&b.1.integration_response_key)
    });
    held
}

/// Makes a two-way MOCK integration on WebSocket API `api` directly in moto, with two responses: `$default`
/// answering with a template, and `/2\d\d/`. Returns its ID and fields, and the responses' spec.
fn create_two_way_mock(
    moto: &Moto,
    api: &str,
) -> (String, IntegrationFields, Vec<IntegrationResponseSpec>) {
    let fields = IntegrationFields {
        integration_type: Some(IntegrationType::Mock),
        template_selection_expression: Some("\\$default".into()),
        request_templates: Some(BTreeMap::from([(
            "$default".into(),
            r#"{"statusCode": 200}"#.into(),
        )])),
        ..Default::default()
    };
    let id = create_in_moto(moto, api, &fields);
    let responses = vec![
        IntegrationResponseSpec {
            integration_response_key: "$default".into(),
            response_templates: Some(BTreeMap::from([(
                "$default".into(),
                r#"{"type": "echo", "connection": "$context.connectionId"}"#.into(),
            )])),
            template_selection_expression: Some("\\$default".into()),
            ..Default::default()
        },
        IntegrationResponseSpec {
            integration_response_key: "/2\\d\\d/".into(),
            ..Default::default()
        },
    ];
    for r in &responses {
        let req = moto
            .client
            .create_integration_response()
            .api_id(api)
            .integration_id(&id)
            .integration_response_key(&r.integration_response_key)
            .set_response_templates(
                r.response_templates
                    .as_ref()
                    .map(|t| t.clone().into_iter().collect()),
            )
            .set_template_selection_expression(r.template_selection_expression.clone());
        block_on(req.send()).expect("moto creates the integration response");
    }
    (id, fields, responses)
}

/// What the import printed and wrote.
struct ImportRun {
    stdout: String,
    stderr: String,
}

impl ImportRun {
    /// The call count the import printed last: (total, per operation).
    fn printed_calls(&self) -> (usize, BTreeMap<String, usize>) {
        let line = self
            .stderr
            .lines()
            .rfind(|l| l.contains(" AWS calls ("))
            .unwrap_or_else(|| panic!("no call count printed:\n{}", self.stderr));
        let (head, ops) = line.split_once(" AWS calls (").unwrap();
        let total = head.rsplit(' ').next().unwrap().parse().unwrap();
        let per_op = ops
            .trim_end_matches(')')
            .split(", ")
            .map(|p| {
                let (op, n) = p.rsplit_once(' ').unwrap();
                (op.to_string(), n.parse().unwrap())
            })
            .collect();
        (total, per_op)
    }

    fn written(&self) -> usize {
        let line = self
            .stderr
            .lines()
            .rfind(|l| l.contains("ApiIntegrations written"))
            .unwrap();
        line.trim_start_matches("import: ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Runs `apigw-operator import` with the stack's AWS settings (through `endpoint` when given).
fn import(args: &[&str], endpoint: Option<&str>) -> ImportRun {
    import_within(Duration::from_secs(600), args, endpoint)
}

/// As [`import`], killed (and failed) if it runs longer than `limit`: an import that retries for ever
/// must fail the test, not hang it.
fn import_within(limit: Duration, args: &[&str], endpoint: Option<&str>) -> ImportRun {
    let mut cmd = std::process::Command::new("timeout");
    cmd.arg(format!("{}s", limit.as_secs()))
        .arg(command().get_program())
        .arg("import")
        .args(args)
        .envs(stack_env());
    if let Some(e) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", e);
    }
    let out = cmd.output().expect("the import runs");
    let run = ImportRun {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        out.status.success(),
        "import failed ({}):\n{}",
        out.status,
        run.stderr
    );
    run
}

/// The objects of a YAML stream the import wrote.
fn objects(yaml: &str) -> Vec<ApiIntegration> {
    yaml.split("\n---\n")
        .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
        .map(|doc| serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{e}:\n{doc}")))
        .collect()
}

/// (name, Ready reason, status.drift) of every ApiIntegration in `ns`.
fn states(ns: &str) -> Vec<(String, String, Value)> {
    let list: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "apiintegrations",
        "-n",
        ns,
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let reason = o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .map(|c| {
                    format!(
                        "{}/{}",
                        c["status"].as_str().unwrap(),
                        c["reason"].as_str().unwrap()
                    )
                })
                .unwrap_or_default();
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                reason,
                o["status"]["drift"].clone(),
            )
        })
        .collect()
}

/// Waits until all `count` objects of `ns` are Ready with `reason`; fails naming those that are not.
fn wait_all(ns: &str, count: usize, reason: &str, timeout: Duration) {
    let want = format!("True/{reason}");
    let start = Instant::now();
    loop {
        let s = states(ns);
        let off: Vec<_> = s.iter().filter(|(_, r, _)| *r != want).collect();
        if s.len() == count && off.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "after {timeout:?}, {} of {count} are not {want}: {:?}",
            off.len() + count.saturating_sub(s.len()),
            off.iter().take(10).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Creates the integration `spec` asks for directly in moto, as another tool would.
fn create_in_moto(moto: &Moto, api: &str, fields: &IntegrationFields) -> String {
    block_on(create_input(api, fields).send_with(&moto.client))
        .expect("moto creates the integration")
        .integration_id
        .unwrap()
}

fn create_vpc_link(moto: &Moto, name: &str) -> String {
    let req = moto
        .client
        .create_vpc_link()
        .name(name)
        .subnet_ids("subnet-0a1b2c3d");
    block_on(req.send()).unwrap().vpc_link_id.unwrap()
}

/// This test's APIs and VPC link, to fill the generator's placeholders with.
struct Place {
    http: (String, String),
    ws: (String, String),
    tag: String,
    link: (String, String),
}

impl Place {
    fn fill(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let real = match s.as_str() {
                    HTTP_ID => &self.http.0,
                    WS_ID => &self.ws.0,
                    HTTP_NAME => &self.http.1,
                    WS_NAME => &self.ws.1,
                    RUN_TAG => &self.tag,
                    LINK_ID => &self.link.0,
                    LINK_NAME => &self.link.1,
                    _ => return,
                };
                *s = real.clone();
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.fill(v)),
            Value::Object(o) => o.values_mut().for_each(|v| self.fill(v)),
            _ => {}
        }
    }

    /// The API (ID, protocol) a filled spec names, if it is one of this test's.
    fn api_of(&self, spec: &Value) -> Option<(String, Proto)> {
        let by_id = |id: &str| {
            if id == self.http.0 {
                Some((id.to_string(), Proto::Http))
            } else if id == self.ws.0 {
                Some((id.to_string(), Proto::Ws))
            } else {
                None
            }
        };
        if let Some(id) = spec["apiId"].as_str() {
            return by_id(id);
        }
        let r = &spec["apiRef"];
        let (id, proto, name) = match r["name"].as_str() {
            Some(n) if n == self.http.1 => (&self.http.0, Proto::Http, "HTTP"),
            Some(n) if n == self.ws.1 => (&self.ws.0, Proto::Ws, "WEBSOCKET"),
            Some(_) => return None,
            // By tags: only the HTTP API carries the run's tags.
            None => (&self.http.0, Proto::Http, "HTTP"),
        };
        r["protocolType"]
            .as_str()
            .is_none_or(|p| p == name)
            .then(|| (id.clone(), proto))
    }
}

/// The integrations to make: the examples, then `cases` generated specs that API Gateway would take on
/// the API they name (a spec aimed at a missing API or VPC link, or one API Gateway refuses, is no
/// integration another tool could have made).
fn specs_to_make(place: &Place, cases: u32) -> Vec<(String, Proto, IntegrationFields)> {
    let mut made = Vec::new();
    let dir = repo_path("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let o: ApiIntegration = serde_saphyr::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let ws = f.file_name().unwrap().to_string_lossy().starts_with("ws-");
        let (api, proto) = if ws {
            (place.ws.0.clone(), Proto::Ws)
        } else {
            (place.http.0.clone(), Proto::Http)
        };
        let mut fields = IntegrationFields::from_spec(&o.spec);
        if fields.connection_id.is_some() || o.spec.connection_ref.is_some() {
            fields.connection_id = Some(place.link.0.clone());
        }
        made.push((api, proto, fields));
    }
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(SEED),
        ..Config::default()
    });
    let strategy = valid_spec();
    while made.len() < cases as usize + 8 {
        let mut spec = strategy.new_tree(&mut runner).unwrap().current();
        place.fill(&mut spec);
        let Some((api, proto)) = place.api_of(&spec) else {
            continue;
        };
        if spec["connectionRef"]["name"]
            .as_str()
            .is_some_and(|n| n != place.link.1)
            || aws_refusal(proto, &create_body(&spec)).is_some()
        {
            continue;
        }
        let parsed: ApiIntegrationSpec = serde_json::from_value(spec.clone()).unwrap();
        let mut fields = IntegrationFields::from_spec(&parsed);
        if parsed.connection_ref.is_some() {
            fields.connection_id = Some(place.link.0.clone());
        }
        made.push((api, proto, fields));
    }
    made
}

#[test]
fn imported_specs_are_applied_and_observed_in_sync_with_no_aws_write() {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
    let s = Scenario::builder("e2e-import").args(&["--aws-rate", "100", "--aws-burst", "100"]);
    let ns = s.ns.name.clone();
    let moto = &Moto::new();
    let run = format!("imp{:08x}", rand::random::<u32>());
    let tags = [("fuzz-run", run.as_str()), ("proto", "http")];
    let place = Place {
        http: (
            moto.create_named_api(&format!("{run}-http"), "HTTP", &tags),
            format!("{run}-http"),
        ),
        ws: (
            moto.create_named_api(&format!("{run}-ws"), "WEBSOCKET", &[]),
            format!("{run}-ws"),
        ),
        tag: run.clone(),
        link: (
            create_vpc_link(moto, &format!("{run}-link")),
            format!("{run}-link"),
        ),
    };
    let mut made: BTreeMap<String, (Proto, IntegrationFields)> = specs_to_make(&place, cases)
        .into_iter()
        .map(|(api, proto, fields)| (create_in_moto(moto, &api, &fields), (proto, fields)))
        .collect();
    // A two-way MOCK integration whose responses another tool made: the import brings them along.
    let (two_way, two_way_fields, two_way_responses) = create_two_way_mock(moto, &place.ws.0);
    let held_responses = responses_in_moto(moto, &place.ws.0, &two_way);
    assert_eq!(held_responses.len(), 2, "{held_responses:?}");
    made.insert(two_way.clone(), (Proto::Ws, two_way_fields));
    // Routes name some of them; the rest are named after their targets.
    for (i, id) in made.keys().enumerate().filter(|(i, _)| i % 3 == 0) {
        let (api, key) = match made[id].0 {
            Proto::Http => (&place.http.0, format!("GET /items/{i}/{{id}}")),
            Proto::Ws => (&place.ws.0, format!("action{i}")),
        };
        let req = moto
            .client
            .create_route()
            .api_id(api)
            .route_key(key)
            .target(format!("integrations/{id}"));
        block_on(req.send()).expect("moto creates the route");
    }

    // A second API under the WebSocket API's name: its integrations must be imported by apiId, with a
    // comment saying why (apiRef by that name would be ambiguous).
    let decoy = moto.create_named_api(&place.ws.1, "HTTP", &[]);

    // The import, through a proxy that pages every listing (5 items a page) and counts every call.
    let proxy = FaultProxy::start();
    proxy.paginate("GET /v2/apis", 5);
    let args = [
        "--api-id",
        place.http.0.as_str(),
        "--api-id",
        place.ws.0.as_str(),
        "-n",
        ns.as_str(),
    ];
    let out = import(&args, Some(&proxy.endpoint));
    let calls = proxy.calls_since(0, None);
    let ops: BTreeSet<&str> = calls.iter().map(|c| c.op.as_str()).collect();
    assert!(ops.iter().all(|op| LISTINGS.contains(op)), "{ops:?}");
    let (printed, per_op) = out.printed_calls();
    assert_eq!(printed, calls.len(), "{}", out.stderr);
    assert_eq!(
        per_op["GetApis"],
        calls.iter().filter(|c| c.op == "GetApis").count()
    );
    // One GetIntegrationResponses per integration that can have responses, none for the others.
    let mut responses_read: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.op == "GetIntegrationResponses") {
        let id = c
            .integration
            .clone()
            .expect("the call names its integration");
        *responses_read.entry(id).or_default() += 1;
    }
    let can_have: BTreeMap<String, usize> = made
        .iter()
        .filter(|(_, (proto, f))| has_responses(*proto, f))
        .map(|(id, _)| (id.clone(), 1))
        .collect();
    assert!(can_have.len() > 1, "{can_have:?}");
    assert_eq!(responses_read, can_have);
    assert_eq!(
        per_op["GetIntegrationResponses"],
        can_have.len(),
        "{}",
        out.stderr
    );
    let (_, follow_ups) = proxy.pages();
    assert!(follow_ups > 0, "no listing was paged: {:?}", proxy.pages());
    assert!(
        out.stderr.contains("import: API 2/2 "),
        "no progress line:\n{}",
        out.stderr
    );

    let ws_by_id = format!("apiId: {}  # by ID: 2 APIs in ", place.ws.0);
    assert!(out.stdout.contains(&ws_by_id), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("name: {}\n", place.http.1)));
    // The same account imports the same way every time.
    assert_eq!(import(&args, None).stdout, out.stdout);

    // moto gives a WebSocket integration without a timeout HTTP's 30000, which no WebSocket spec may
    // hold: the import leaves it out and says so (never silently).
    for line in out.stderr.lines().filter(|l| l.contains("left out")) {
        assert!(line.contains("timeoutInMillis 30000 is above"), "{line}");
    }

    // Every integration once, under its own ID, with nothing the original did not ask for.
    let imported = objects(&out.stdout);
    assert_eq!(imported.len(), made.len(), "{}", out.stderr);
    assert_eq!(out.written(), made.len());
    let names: BTreeSet<_> = imported.iter().map(|o| o.metadata.name.clone()).collect();
    assert_eq!(names.len(), imported.len());
    for o in &imported {
        let id = &o.metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION];
        let (proto, original) = &made[id];
        let mut fields = IntegrationFields::from_spec(&o.spec);
        if o.spec.connection_ref.is_some() {
            fields.connection_id = Some(place.link.0.clone());
        }
        // Responses: the two-way integration's as moto holds them, by key; no field for the others.
        if *id == two_way {
            assert_eq!(
                o.spec.integration_responses.as_ref(),
                Some(&two_way_responses)
            );
        } else {
            assert_eq!(o.spec.integration_responses, None, "{id}");
        }
        for f in fields.set_fields() {
            // moto gives an integration with a URI but no method POST (API Gateway requires the
            // method there, so only moto holds such an integration).
            let motos_method = f == Field::IntegrationMethod
                && original.integration_method.is_none()
                && original.integration_uri.is_some()
                && fields.integration_method == Some(IntegrationMethod::Post);
            assert!(
                motos_method || original.get(f) == fields.get(f),
                "{id}: {f} is {:?} in the import but {:?} in the original {original:?} ({proto:?})",
                fields.get(f),
                original.get(f)
            );
        }
    }

    // Applied: all observed in sync, no drift, no write; then Manage: still no write.
    let applied = kubectl_stdin(&["apply", "-n", &ns, "-f", "-"], &out.stdout);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let s = s.start();
    let timeout = Duration::from_secs(60 + made.len() as u64 / 5);
    wait_all(&ns, made.len(), "InSync", timeout);
    for (name, _, drift) in states(&ns) {
        assert!(drift.is_null(), "{name}: {drift}");
    }
    assert_eq!(writes(&s.op), 0, "{:?}", s.op.calls());
    let manage = import(&[&args[..], &["--manage"]].concat(), None);
    let applied = kubectl_stdin(&["apply", "-n", &ns, "-f", "-"], &manage.stdout);
    assert!(applied.status.success());
    wait_all(&ns, made.len(), "Synced", timeout);
    assert_eq!(writes(&s.op), 0, "{:?}", s.op.calls());
    // Managed, the operator compared the two-way integration's responses (it read them) and left them
    // as they were, IDs included; its status records them.
    assert!(
        s.op.count("GetIntegrationResponses") >= 1,
        "{:?}",
        s.op.calls()
    );
    assert_eq!(
        responses_in_moto(moto, &place.ws.0, &two_way),
        held_responses
    );
    let two_way_name = imported
        .iter()
        .find(|o| o.metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION] == two_way)
        .and_then(|o| o.metadata.name.clone())
        .unwrap();
    let status: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "apiintegration",
        "-n",
        &ns,
        &two_way_name,
        "-o",
        "jsonpath={.status.integrationResponses}",
    ]))
    .unwrap();
    let recorded: BTreeMap<String, String> = serde_json::from_value(status).unwrap();
    let held_ids: BTreeMap<String, String> = held_responses
        .iter()
        .map(|(id, r)| (r.integration_response_key.clone(), id.clone()))
        .collect();
    assert_eq!(recorded, held_ids);
    println!(
        "import round trip: {} integrations (the examples, generated specs and a two-way MOCK), {} \
         import calls ({} GetIntegrationResponses); 0 writes",
        made.len(),
        calls.len(),
        per_op["GetIntegrationResponses"]
    );
    drop(s);
    moto.delete_api(&place.http.0);
    moto.delete_api(&place.ws.0);
    moto.delete_api(&decoy);
}

#[test]
fn many_integrations_on_four_apis_import_in_one_run_and_apply_unchanged() {
    let count: usize = std::env::var("APIGW_IMPORT_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    let s = Scenario::builder("e2e-import-many").args(&["--aws-rate", "200", "--aws-burst", "200"]);
    let ns = s.ns.name.clone();
    let moto = &Moto::new();
    let run = format!("many{:08x}", rand::random::<u32>());
    let apis: Vec<String> = (0..4)
        .map(|i| {
            let proto = if i == 3 { "WEBSOCKET" } else { "HTTP" };
            moto.create_named_api(&format!("{run}-{i}"), proto, &[("import-run", &run)])
        })
        .collect();
    let started = Instant::now();
    for n in 0..count {
        let (api, ws) = (&apis[n % 4], n % 4 == 3);
        let mut fields = IntegrationFields::default();
        if ws {
            fields.integration_type = Some(apigw_operator::api::IntegrationType::Mock);
            fields.request_templates =
                Some(BTreeMap::from([("application/json".into(), "{}".into())]));
        } else if n % 2 == 0 {
            fields.integration_type = Some(apigw_operator::api::IntegrationType::HttpProxy);
            fields.integration_method = Some(apigw_operator::api::IntegrationMethod::Get);
            fields.integration_uri = Some(format!("https://svc{n}.example.com/{{proxy}}"));
            fields.payload_format_version = Some(apigw_operator::api::PayloadFormatVersion::V1);
        } else {
            fields.integration_type = Some(apigw_operator::api::IntegrationType::AwsProxy);
            fields.integration_uri = Some(format!(
                "arn:aws:lambda:us-east-1:123456789012:function:fn{n}"
            ));
            fields.payload_format_version = Some(apigw_operator::api::PayloadFormatVersion::V2);
            fields.timeout_in_millis = Some(5000 + n as i32);
        }
        let id = create_in_moto(moto, api, &fields);
        if n % 4 == 0 {
            let req = moto
                .client
                .create_route()
                .api_id(api)
                .route_key(format!("GET /items{n}/{{id}}"))
                .target(format!("integrations/{id}"));
            block_on(req.send()).unwrap();
        }
    }
    let made_in = started.elapsed();

    // Through API Gateway's quota (10/s, burst 40), as a real account answers: the import's own budget
    // (10/s, its bucket empty at start) keeps under it, so no call is refused and the quota, not the
    // emulator, sets the pace.
    let proxy = FaultProxy::start();
    proxy.keep_quota(Quota::API_GATEWAY);
    let dir = std::env::temp_dir().join(format!("apigw-{run}"));
    let started = Instant::now();
    let tag = format!("import-run={run}");
    let out = import(
        &[
            "--api-tag",
            &tag,
            "-n",
            &ns,
            "--out-dir",
            dir.to_str().unwrap(),
        ],
        Some(&proxy.endpoint),
    );
    let imported_in = started.elapsed();
    assert_eq!(out.written(), count, "{}", out.stderr);
    let (calls, per_op) = out.printed_calls();
    assert_eq!(calls, proxy.calls_since(0, None).len(), "{}", out.stderr);
    let throttled: usize = proxy.quota_counts().values().map(|c| c.throttled).sum();
    assert_eq!(throttled, 0, "calls refused by the quota: {}", out.stderr);
    let bound =
        (calls as f64 - f64::from(Quota::API_GATEWAY.burst)).max(0.0) / Quota::API_GATEWAY.rate;
    assert!(
        imported_in.as_secs_f64() >= bound,
        "{imported_in:?} for {calls} calls: faster than the quota allows"
    );
    assert!(
        per_op.keys().all(|op| LISTINGS.contains(&op.as_str())),
        "{per_op:?}"
    );
    // Each MOCK integration of the WebSocket API (every fourth) costs one GetIntegrationResponses.
    assert_eq!(
        per_op.get("GetIntegrationResponses").copied().unwrap_or(0),
        (0..count).filter(|n| n % 4 == 3).count(),
        "{per_op:?}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = (0..4).map(|i| format!("{run}-{i}.yaml")).collect();
    want.insert(0, "kustomization.yaml".into());
    assert_eq!(files, want);

    let started = Instant::now();
    kubectl_ok(&["apply", "-k", dir.to_str().unwrap()]);
    let s = s.start();
    wait_all(
        &ns,
        count,
        "InSync",
        Duration::from_secs(120 + count as u64 / 5),
    );
    let observed_in = started.elapsed();
    assert_eq!(writes(&s.op), 0, "{:?}", s.op.calls());
    for (name, _, drift) in states(&ns) {
        assert!(drift.is_null(), "{name}: {drift}");
    }
    println!(
        "import of {count} integrations on 4 APIs: made in moto in {made_in:.1?}, imported through \
         API Gateway's quota in {imported_in:.1?} with {calls} AWS calls {per_op:?} (none refused), \
         applied and all InSync in \
         {observed_in:.1?}, 0 writes"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    for api in &apis {
        moto.delete_api(api);
    }
}

/// Runs `apigw-operator import` through `endpoint`, expecting it to fail; returns its stderr.
fn import_fails(args: &[&str], endpoint: &str) -> String {
    let out = command()
        .arg("import")
        .args(args)
        .envs(stack_env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("the import runs");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "the import succeeded:\n{stderr}");
    stderr
}

/// Makes `http` integrations on a new HTTP API and `ws` two-way MOCK integrations (each read with
/// GetIntegrationResponses) on a new WebSocket API, both tagged `import-run=<run>`, with a route for
/// every third; returns the APIs and the integration IDs.
fn estate(moto: &Moto, run: &str, http: usize, ws: usize) -> (Vec<String>, BTreeSet<String>) {
    let tags = [("import-run", run)];
    let apis = vec![
        moto.create_named_api(&format!("{run}-http"), "HTTP", &tags),
        moto.create_named_api(&format!("{run}-ws"), "WEBSOCKET", &tags),
    ];
    let mut made = BTreeSet::new();
    for n in 0..http + ws {
        let fields = if n < http {
            IntegrationFields {
                integration_type: Some(IntegrationType::HttpProxy),
                integration_method: Some(IntegrationMethod::Get),
                integration_uri: Some(format!("https://svc{n}.example.com/{{proxy}}")),
                payload_format_version: Some(apigw_operator::api::PayloadFormatVersion::V1),
                ..Default::default()
            }
        } else {
            IntegrationFields {
                integration_type: Some(IntegrationType::Mock),
                request_templates: Some(BTreeMap::from([("$default".into(), "{}".into())])),
                ..Default::default()
            }
        };
        let api = &apis[usize::from(n >= http)];
        let id = create_in_moto(moto, api, &fields);
        if n % 3 == 0 {
            let key = if n < http {
                format!("GET /things{n}/{{id}}")
            } else {
                format!("action{n}")
            };
            let req = moto
                .client
                .create_route()
                .api_id(api)
                .route_key(key)
                .target(format!("integrations/{id}"));
            block_on(req.send()).expect("moto creates the route");
        }
        made.insert(id);
    }
    (apis, made)
}

/// API Gateway's quota, well below what the import asks for (5 calls/s, burst 5, against its 10/s,
/// burst 40), and a 500 or 503 on every fourth call that gets past the quota: the import retries each
/// failed page with its own token and writes exactly what an import without any of this writes, each
/// integration once.
#[test]
fn under_a_small_quota_and_failing_calls_the_import_retries_each_page_and_writes_the_same() {
    let moto = &Moto::new();
    let run = format!("retry{:08x}", rand::random::<u32>());
    let (http, ws) = (40, 12);
    let (apis, made) = estate(moto, &run, http, ws);
    let tag = format!("import-run={run}");
    let args = ["--api-tag", tag.as_str(), "-n", "imported"];
    // GetIntegrations in pages of 5, so that a failed call can fall after the first page.
    let page = 5;
    let paged = "/integrations\n";

    // The reference: the same pages, no quota, no fault.
    let clean = FaultProxy::start();
    clean.paginate(paged, page);
    let want = import(&args, Some(&clean.endpoint));
    let want_ids: Vec<String> = objects(&want.stdout)
        .iter()
        .map(|o| o.metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION].clone())
        .collect();
    assert_eq!(want_ids.len(), made.len(), "{}", want.stderr);

    let proxy = FaultProxy::start();
    proxy.paginate(paged, page);
    proxy.keep_quota(Quota {
        rate: 5.0,
        burst: 5,
    });
    let admitted = std::sync::atomic::AtomicUsize::new(0);
    proxy.judge(move |head, _| {
        let n = admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        (head.starts_with("GET /v2/apis") && n.is_multiple_of(4)).then(|| {
            if n.is_multiple_of(8) {
                Fault::new(
                    "",
                    503,
                    "ServiceUnavailableException",
                    "Service Unavailable",
                )
            } else {
                Fault::new(
                    "",
                    500,
                    "InternalServerErrorException",
                    "Internal Server Error",
                )
            }
        })
    });
    let started = Instant::now();
    let got = import_within(Duration::from_secs(180), &args, Some(&proxy.endpoint));
    let took = started.elapsed();

    // The same output, byte for byte: every integration once, none missing.
    assert_eq!(got.stdout, want.stdout, "{}", got.stderr);
    let ids: Vec<String> = objects(&got.stdout)
        .iter()
        .map(|o| o.metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION].clone())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "an integration imported twice");
    assert_eq!(unique, made);
    assert_eq!(got.written(), made.len());

    // The quota really refused calls, and the faults really failed some.
    let counts = proxy.quota_counts();
    let throttled: usize = counts.values().map(|c| c.throttled).sum();
    let calls = proxy.calls_since(0, None);
    assert_eq!(
        throttled,
        calls
            .iter()
            .filter(|c| c.over_quota && c.status == 429)
            .count()
    );
    assert!(throttled > 0, "no call was answered 429: {counts:?}");
    let failed_5xx = calls.iter().filter(|c| c.status >= 500).count();
    assert_eq!(failed_5xx, proxy.injected());
    assert!(failed_5xx > 0, "no call was failed");
    // The import counted every call it made, refused ones included, and said why it retried.
    assert_eq!(got.printed_calls().0, calls.len(), "{}", got.stderr);
    let retries = got
        .stderr
        .lines()
        .filter(|l| l.contains(" failed (") && l.contains("; attempt "))
        .count();
    assert_eq!(retries, throttled + failed_5xx, "{}", got.stderr);
    assert!(
        got.stderr.contains("failed (throttled by API Gateway"),
        "{}",
        got.stderr
    );

    // Each page was served once, as in the clean run: a failed page was asked for again with its
    // token, the listing never started over.
    let pages = |n: usize| n.div_ceil(page);
    let want_pages = (pages(http) + pages(ws), pages(http) - 1 + pages(ws) - 1);
    assert_eq!(clean.pages(), want_pages);
    assert_eq!(proxy.pages(), want_pages);
    let ok_pages = calls
        .iter()
        .filter(|c| c.op == "GetIntegrations" && c.ok())
        .count();
    assert_eq!(ok_pages, want_pages.0);
    println!(
        "import under quota 5/s burst 5 with every 4th call failed: {} integrations, {} calls ({} \
         answered 429, {} answered 5xx) in {took:.1?}; the clean import made {} calls",
        made.len(),
        calls.len(),
        throttled,
        failed_5xx,
        clean.calls_since(0, None).len()
    );
    for api in &apis {
        moto.delete_api(api);
    }
}

/// A call that keeps failing ends the import after a bounded number of attempts, naming the call; one
/// that cannot pass (access denied, an API deleted since it was listed) ends it at once.
#[test]
fn a_failure_that_lasts_ends_the_import_naming_the_call() {
    let moto = &Moto::new();
    let run = format!("giveup{:08x}", rand::random::<u32>());
    let (apis, _) = estate(moto, &run, 3, 0);
    let api = &apis[0];
    let args = ["--api-id", api.as_str()];
    let routes = format!("GET /v2/apis/{api}/routes");
    let count = |proxy: &FaultProxy, op: &str| {
        proxy
            .calls_since(0, None)
            .iter()
            .filter(|c| c.op == op)
            .count()
    };

    // API Gateway stays down for GetRoutes: 8 attempts, then the import stops.
    let down = FaultProxy::start();
    down.add(Fault::new(
        routes.clone(),
        503,
        "ServiceUnavailableException",
        "Service Unavailable",
    ));
    let started = Instant::now();
    let stderr = import_fails(&args, &down.endpoint);
    let took = started.elapsed();
    assert!(
        stderr.contains(&format!(
            "GetRoutes of API {api} (page 1) failed 8 times in a row, the last time: API Gateway \
             unavailable: ServiceUnavailableException: Service Unavailable; gave up"
        )),
        "{stderr}"
    );
    assert_eq!(count(&down, "GetRoutes"), 8);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with(&format!("import: GetRoutes of API {api} (page 1) failed")))
            .count(),
        7,
        "{stderr}"
    );
    // The pauses: at least half of 0.5 + 1 + 2 + 4 + 8 + 10 + 10 s, at most all of it (and the calls).
    assert!(
        took >= Duration::from_secs_f64(35.5 / 2.0) && took < Duration::from_secs(35 + 30),
        "{took:?}"
    );
    assert!(!stderr.contains("ApiIntegrations written"), "{stderr}");

    // Access denied: no retry.
    let denied = FaultProxy::start();
    denied.add(Fault::new(
        routes.clone(),
        403,
        "AccessDeniedException",
        "User is not authorized to perform: apigateway:GET",
    ));
    let stderr = import_fails(&args, &denied.endpoint);
    assert!(
        stderr.contains(&format!(
            "GetRoutes of API {api} (page 1) failed: access denied: AccessDeniedException"
        )),
        "{stderr}"
    );
    assert_eq!(count(&denied, "GetRoutes"), 1);

    // The API is gone by the time its routes are listed (as AWS answers for a deleted API): no retry,
    // and the error says what happened.
    let gone = FaultProxy::start();
    gone.add(Fault::new(
        routes,
        404,
        "NotFoundException",
        "Invalid API identifier specified",
    ));
    let stderr = import_fails(&args, &gone.endpoint);
    assert!(
        stderr.contains(&format!(
            "GetRoutes of API {api} (page 1) failed: not found: NotFoundException: Invalid API \
             identifier specified. It was listed a moment before, so it was deleted while the import \
             ran; run the import again"
        )),
        "{stderr}"
    );
    assert_eq!(count(&gone, "GetRoutes"), 1);
    moto.delete_api(api);
    moto.delete_api(&apis[1]);
}

/// Credentials for `role` from moto's STS (moto then acts in the role's account).
fn assumed(role: &str) -> aws_sdk_sts::types::Credentials {
    let env = stack_env();
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(env["AWS_REGION"].clone()))
        .endpoint_url(moto_endpoint())
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            env["AWS_ACCESS_KEY_ID"].clone(),
            env["AWS_SECRET_ACCESS_KEY"].clone(),
            None,
            None,
            "test",
        ))
        .build();
    let sts = aws_sdk_sts::Client::from_conf(conf);
    let out = block_on(
        sts.assume_role()
            .role_arn(role)
            .role_session_name("test")
            .send(),
    )
    .unwrap();
    out.credentials.unwrap()
}

#[test]
fn with_role_arn_the_import_reads_the_team_account() {
    let env = stack_env();
    let role = format!(
        "arn:aws:iam::222233334444:role/apigw-import-{:08x}",
        rand::random::<u32>()
    );
    let creds = assumed(&role);
    let conf = aws_sdk_apigatewayv2::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_apigatewayv2::config::Region::new(
            env["AWS_REGION"].clone(),
        ))
        .endpoint_url(moto_endpoint())
        .credentials_provider(aws_sdk_apigatewayv2::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "test",
        ))
        .build();
    let team = Moto {
        client: aws_sdk_apigatewayv2::Client::from_conf(conf),
    };
    let name = format!("team-{:08x}", rand::random::<u32>());
    let api = team.create_named_api(&name, "HTTP", &[]);
    let id = team.create_integration_http_proxy(&api, "https://team.example.com/");

    // The operator's own account does not hold the API: a mistyped or foreign --api-id is an error.
    let mut own = command();
    own.args(["import", "--api-id", &api]).envs(stack_env());
    let out = own.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("has the ID {api}")), "{stderr}");

    let proxy = FaultProxy::start();
    let out = import(
        &[
            "--api-id",
            &api,
            "--role-arn",
            &role,
            "--external-id",
            "ext-9",
        ],
        Some(&proxy.endpoint),
    );
    let objects = objects(&out.stdout);
    assert_eq!(objects.len(), 1, "{}", out.stdout);
    assert_eq!(
        objects[0].metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION],
        id
    );
    assert_eq!(
        objects[0].metadata.name.as_deref(),
        Some("team-example-com")
    );
    let seen = proxy.seen();
    let assume: Vec<_> = seen
        .iter()
        .filter(|r| r.text.contains("Action=AssumeRole"))
        .collect();
    assert_eq!(assume.len(), 1, "one AssumeRole for the whole import");
    assert!(
        assume[0]
            .text
            .contains("RoleSessionName=apigw-operator-import")
    );
    assert!(assume[0].text.contains("ExternalId=ext-9"));
    team.delete_api(&api);
}
