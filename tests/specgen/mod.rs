//! The manifest generator the stack's property tests share (tests/fuzz_manifests.rs, tests/import.rs):
//! valid ApiIntegration specs of every shape, with placeholders for what exists only at run time, the
//! hostile values the fuzzer mutates them with, and API Gateway's own rules for a CreateIntegration
//! body (what the operator must refuse, or moto must be told to refuse, since moto checks almost
//! nothing). Each test file uses part of it.
#![allow(dead_code)]

use apigw_operator::api::IntegrationSubtype;
use apigw_operator::plan::Field;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use testkit::moto::integration_fields_of_spec;
use testkit::stack::stack_env;

// ---------------------------------------------------------------------------------------------------
// API Gateway's own rules (design §3 and the field table of §1), applied to a CreateIntegration body.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Http,
    Ws,
}

pub const WS_ONLY: &[&str] = &[
    "requestTemplates",
    "templateSelectionExpression",
    "contentHandlingStrategy",
    "passthroughBehavior",
];
pub const HTTP_ONLY: &[&str] = &["responseParameters", "tlsConfig", "integrationSubtype"];

pub fn subtype_keys(subtype: &str) -> &'static [&'static str] {
    match subtype {
        "EventBridge-PutEvents" => &["Detail", "DetailType", "Source"],
        "SQS-SendMessage" => &["QueueUrl", "MessageBody"],
        "SQS-ReceiveMessage" | "SQS-PurgeQueue" => &["QueueUrl"],
        "SQS-DeleteMessage" => &["ReceiptHandle", "QueueUrl"],
        "AppConfig-GetConfiguration" => {
            &["Application", "Environment", "Configuration", "ClientId"]
        }
        "Kinesis-PutRecord" => &["StreamName", "Data", "PartitionKey"],
        "StepFunctions-StartExecution" | "StepFunctions-StartSyncExecution" => &["StateMachineArn"],
        "StepFunctions-StopExecution" => &["ExecutionArn"],
        _ => &[],
    }
}

/// Why API Gateway refuses to create an integration with these fields on an API of `proto` (None: it
/// takes it). `body` is CreateIntegration's JSON body (its names are the spec's).
pub fn aws_refusal(proto: Proto, body: &Value) -> Option<String> {
    let has = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let ty = s("integrationType");
    let subtype = has("integrationSubtype");
    let (max_timeout, name) = match proto {
        Proto::Http => (30000, "HTTP"),
        Proto::Ws => (29000, "WebSocket"),
    };
    if proto == Proto::Http && !matches!(ty, "AWS_PROXY" | "HTTP_PROXY") {
        return Some(format!(
            "HTTP APIs support only AWS_PROXY and HTTP_PROXY, not {ty}"
        ));
    }
    let foreign = match proto {
        Proto::Http => WS_ONLY,
        Proto::Ws => HTTP_ONLY,
    };
    if let Some(f) = foreign.iter().find(|f| has(f)) {
        return Some(format!("{f} is not supported for {name} APIs"));
    }
    if let Some(t) = body.get("timeoutInMillis").and_then(Value::as_i64)
        && !(50..=max_timeout).contains(&t)
    {
        return Some(format!(
            "timeoutInMillis must be between 50 and {max_timeout} for {name} APIs"
        ));
    }
    if s("payloadFormatVersion") == "2.0" && (proto == Proto::Ws || ty != "AWS_PROXY" || subtype) {
        return Some(
            "payloadFormatVersion 2.0 is supported only for Lambda proxy integrations of HTTP APIs"
                .into(),
        );
    }
    if subtype {
        if has("integrationUri") {
            return Some("integrationUri must not be set with integrationSubtype".into());
        }
        let params = body.get("requestParameters");
        if let Some(k) = subtype_keys(s("integrationSubtype"))
            .iter()
            .find(|k| params.and_then(|p| p.get(**k)).is_none())
        {
            return Some(format!(
                "requestParameters needs {k} for {}",
                s("integrationSubtype")
            ));
        }
        // Design §2 rule 4: a subtype's parameters never take "".
        if let Some((k, _)) = params
            .and_then(Value::as_object)
            .and_then(|p| p.iter().find(|(_, v)| v.as_str() == Some("")))
        {
            return Some(format!(
                "requestParameters {k} is empty, which a subtype rejects"
            ));
        }
    } else if ty != "MOCK" && !has("integrationUri") {
        return Some(format!("integrationUri is required for {ty} integrations"));
    }
    if s("connectionType") == "VPC_LINK" && !has("connectionId") {
        return Some("connectionId is required for VPC_LINK".into());
    }
    None
}

/// The CreateIntegration body the operator makes of a spec: its integration fields, with a VPC link
/// reference standing for the ID it resolves to.
pub fn create_body(spec: &Value) -> Value {
    let mut body = integration_fields_of_spec(spec);
    body.remove("apiRef");
    if body.remove("connectionRef").is_some() {
        body.insert("connectionId".into(), "resolved".into());
    }
    Value::Object(body)
}

/// The protocols a spec can be meant for: apiRef.protocolType pins one, otherwise either.
pub fn possible_protocols(spec: &Value) -> Vec<Proto> {
    match spec.pointer("/apiRef/protocolType").and_then(Value::as_str) {
        Some("HTTP") => vec![Proto::Http],
        Some("WEBSOCKET") => vec![Proto::Ws],
        _ => vec![Proto::Http, Proto::Ws],
    }
}

/// Why API Gateway refuses this spec whatever API it is sent to: then the CRD should have refused it.
pub fn refused_on_every_api(spec: &Value) -> Option<String> {
    let body = create_body(spec);
    let why: Vec<String> = possible_protocols(spec)
        .into_iter()
        .map(|p| aws_refusal(p, &body).map(|w| format!("{p:?}: {w}")))
        .collect::<Option<_>>()?;
    Some(why.join("; "))
}

// ---------------------------------------------------------------------------------------------------
// Generation. Placeholders (`@...`) stand for what exists only at run time (API IDs and names, the VPC
// link), so that the strategies, and the seeds kept for regressions, do not depend on a run.

pub const HTTP_ID: &str = "@http-id";
pub const WS_ID: &str = "@ws-id";
pub const HTTP_NAME: &str = "@http-name";
pub const WS_NAME: &str = "@ws-name";
pub const RUN_TAG: &str = "@run";
pub const LINK_ID: &str = "@link-id";
pub const LINK_NAME: &str = "@link-name";

/// Every spec field, in the spec's order: the operator's own (where the integration lives, what deleting
/// it does, the references) around the integration fields of the operator's field table.
pub fn spec_fields() -> Vec<&'static str> {
    let mut all = vec!["apiId", "apiRef"];
    for &f in Field::ALL {
        all.push(f.name());
        if f == Field::ConnectionId {
            all.push("connectionRef");
        }
    }
    // managementPolicy is mutated with wrong values only (none of ENUMISH is Manage or Observe): an Observe
    // resource makes no integration, which this test's accounting of moto does not expect.
    all.extend(["region", "deletionPolicy", "managementPolicy"]);
    all
}

/// Enum values, right and wrong: every field's own, other fields' values, case and spacing slips.
pub const ENUMISH: &[&str] = &[
    "AWS",
    "AWS_PROXY",
    "HTTP",
    "HTTP_PROXY",
    "MOCK",
    "aws_proxy",
    "LAMBDA",
    "HTTP_PROXY ",
    "ANY",
    "GET",
    "get",
    "FETCH",
    "INTERNET",
    "VPC_LINK",
    "vpc_link",
    "1.0",
    "2.0",
    "3.0",
    "1",
    "CONVERT_TO_TEXT",
    "GZIP",
    "WHEN_NO_MATCH",
    "NEVER",
    "ALWAYS",
    "Delete",
    "Retain",
    "Orphan",
    "HTTP",
    "WEBSOCKET",
    "REST",
    "SQS-SendMessage",
    "SNS-Publish",
    "eu-west-1",
    "EU-WEST-1",
];

pub fn pick(values: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
    proptest::sample::select(values).prop_map(Value::from)
}

pub fn maybe(s: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(0.4, s)
}

/// Strings a hostile manifest carries: empty, blanks, unicode of every plane, control characters,
/// injection attempts, and long ones around the CRD's limits and far beyond.
pub fn hostile_string() -> impl Strategy<Value = String> {
    let lengths = proptest::sample::select(vec![
        63usize, 64, 65, 128, 129, 253, 254, 1024, 1025, 2048, 2049, 5000, 70_000,
    ]);
    prop_oneof![
        Just(String::new()),
        Just(" ".to_string()),
        "[a-zA-Z0-9]{1,12}",
        "\\PC{1,24}",
        Just("\u{0}\u{7}\t\r\n".to_string()),
        Just("ünïcødé ☃ 𝄞 \u{202e}txet\u{200b}".to_string()),
        Just("${jndi:ldap://x}'; DROP TABLE x;--".to_string()),
        Just("true".to_string()),
        (lengths.clone(), "[a-z]").prop_map(|(n, c)| c.repeat(n)),
        (lengths, Just("é")).prop_map(|(n, c)| c.repeat(n)),
    ]
}

/// A map of `n` entries with short or hostile keys and values.
pub fn big_map() -> impl Strategy<Value = Value> {
    let sizes = proptest::sample::select(vec![16usize, 17, 32, 33, 64, 65, 200, 2000]);
    (sizes, any::<bool>()).prop_map(|(n, unicode)| {
        let m: Map<String, Value> = (0..n)
            .map(|i| {
                let k = if unicode {
                    format!("clé-{i}-☃")
                } else {
                    format!("append:header.k{i}")
                };
                (k, Value::from(format!("'v{i}'")))
            })
            .collect();
        Value::Object(m)
    })
}

/// Any JSON value a field might wrongly get.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(49),
            Just(50),
            Just(29000),
            Just(29001),
            Just(30000),
            Just(30001),
            Just(i32::MAX as i64 + 1),
            Just(i64::MIN),
            any::<i64>(),
        ]
        .prop_map(Value::from),
        prop_oneof![Just(100.5f64), Just(1e300), Just(-0.0)].prop_map(Value::from),
        hostile_string().prop_map(Value::from),
        pick(ENUMISH),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z0-9:._-]{1,12}|\\PC{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What the API is named by: one of the run's APIs (by ID, by name, by tags), or one that does not exist.
pub fn target(proto: Option<Proto>) -> BoxedStrategy<Value> {
    let http = prop_oneof![
        4 => Just(json!({"apiId": HTTP_ID})),
        1 => Just(json!({"apiRef": {"name": HTTP_NAME}})),
        1 => Just(json!({"apiRef": {"name": HTTP_NAME, "protocolType": "HTTP"}})),
        1 => Just(json!({"apiRef": {"tags": {"fuzz-run": RUN_TAG, "proto": "http"}}})),
    ];
    let ws = prop_oneof![
        4 => Just(json!({"apiId": WS_ID})),
        1 => Just(json!({"apiRef": {"name": WS_NAME}})),
        1 => Just(json!({"apiRef": {"name": WS_NAME, "protocolType": "WEBSOCKET"}})),
    ];
    let missing = prop_oneof![
        Just(json!({"apiId": "nosuchapi0"})),
        Just(json!({"apiRef": {"name": "fuzz-no-such-api"}})),
        Just(json!({"apiRef": {"name": HTTP_NAME, "protocolType": "WEBSOCKET"}})),
    ];
    match proto {
        Some(Proto::Http) => prop_oneof![10 => http, 1 => ws, 1 => missing].boxed(),
        Some(Proto::Ws) => prop_oneof![10 => ws, 1 => http, 1 => missing].boxed(),
        None => prop_oneof![http, ws, missing].boxed(),
    }
}

/// Puts the `Some` fields into `spec`.
pub fn with(mut spec: Value, fields: Vec<(&str, Option<Value>)>) -> Value {
    for (k, v) in fields {
        if let Some(v) = v {
            spec[k] = v;
        }
    }
    spec
}

pub fn merge(a: Value, b: Value) -> Value {
    let mut a = a;
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

pub fn description() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zA-Z0-9 .,-]{0,40}".prop_map(Value::from),
        Just(json!("fuzz ☃ ünïcødé"))
    ]
}
pub fn credentials() -> impl Strategy<Value = Value> {
    pick(&[
        "arn:aws:iam::123456789012:role/apigw-invoke",
        "arn:aws:iam::*:user/*",
    ])
}
pub fn http_request_parameters() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(
        "(append|overwrite|remove):header\\.x-[a-z]{1,8}",
        "'[a-z]{1,8}'|\\$request\\.header\\.[a-z]{1,8}",
        1..4,
    )
    .prop_map(|m| json!(m))
}
pub fn ws_request_parameters() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(
        "integration\\.request\\.header\\.x-[a-z]{1,8}",
        "route\\.request\\.header\\.x-[a-z]{1,8}",
        1..4,
    )
    .prop_map(|m| json!(m))
}
pub fn response_parameters() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(
        "[2-5][0-9][0-9]",
        proptest::collection::btree_map(
            "overwrite:statuscode|append:header\\.x-[a-z]{1,6}|remove:header\\.server",
            "[a-z0-9]{1,8}",
            1..3,
        ),
        1..3,
    )
    .prop_map(|m| json!(m))
}

/// Valid manifests of every shape, mostly aimed at an API of the protocol they are written for.
pub fn valid_spec() -> BoxedStrategy<Value> {
    let lambda = (
        target(Some(Proto::Http)),
        maybe(pick(&["1.0", "2.0"])),
        maybe((50..=30000i64).prop_map(Value::from)),
        maybe(pick(&["POST", "ANY"])),
        maybe(description()),
        maybe(credentials()),
        maybe(http_request_parameters()),
        maybe(response_parameters()),
    )
        .prop_map(|(t, pfv, timeout, method, d, c, rp, resp)| {
            let spec = json!({"integrationType": "AWS_PROXY",
                              "integrationUri": "arn:aws:lambda:us-east-1:123456789012:function:fuzz"});
            let fields = vec![
                ("payloadFormatVersion", pfv),
                ("timeoutInMillis", timeout),
                ("integrationMethod", method),
                ("description", d),
                ("credentialsArn", c),
                ("requestParameters", rp),
                ("responseParameters", resp),
            ];
            merge(with(spec, fields), t)
        });
    let vpc = prop_oneof![
        Just(json!({"connectionType": "VPC_LINK", "connectionId": LINK_ID})),
        Just(json!({"connectionType": "VPC_LINK", "connectionRef": {"name": LINK_NAME}})),
        Just(json!({"connectionType": "VPC_LINK", "connectionRef": {"name": "fuzz-no-such-link"}})),
        Just(
            json!({"connectionType": "VPC_LINK", "connectionId": LINK_ID,
                    "tlsConfig": {"serverNameToVerify": "backend.example.com"}})
        ),
        Just(json!({"connectionType": "INTERNET"})),
    ];
    let http_proxy = (
        target(Some(Proto::Http)),
        pick(&["GET", "POST", "ANY", "PUT", "DELETE"]),
        maybe(Just(json!("1.0"))),
        maybe((50..=30000i64).prop_map(Value::from)),
        maybe(vpc),
        maybe(description()),
        maybe(http_request_parameters()),
        maybe(response_parameters()),
    )
        .prop_map(|(t, method, pfv, timeout, vpc, d, rp, resp)| {
            let spec = json!({"integrationType": "HTTP_PROXY", "integrationMethod": method,
                              "integrationUri": "https://backend.example.com/{proxy}"});
            let fields = vec![
                ("payloadFormatVersion", pfv),
                ("timeoutInMillis", timeout),
                ("description", d),
                ("requestParameters", rp),
                ("responseParameters", resp),
            ];
            let spec = merge(with(spec, fields), t);
            match vpc {
                Some(v) => merge(spec, v),
                None => spec,
            }
        });
    let subtype = (
        target(Some(Proto::Http)),
        proptest::sample::select(IntegrationSubtype::ALL).prop_map(IntegrationSubtype::as_str),
        maybe(credentials()),
        maybe(Just(json!("1.0"))),
        maybe((50..=30000i64).prop_map(Value::from)),
        maybe(description()),
    )
        .prop_map(|(t, subtype, c, pfv, timeout, d)| {
            let params: Map<String, Value> = subtype_keys(subtype)
                .iter()
                .map(|k| (k.to_string(), json!("$request.body.value")))
                .collect();
            let spec = json!({"integrationType": "AWS_PROXY", "integrationSubtype": subtype,
                              "requestParameters": params});
            let fields = vec![
                ("credentialsArn", c),
                ("payloadFormatVersion", pfv),
                ("timeoutInMillis", timeout),
                ("description", d),
            ];
            merge(with(spec, fields), t)
        });
    let websocket = (
        target(Some(Proto::Ws)),
        pick(&["AWS", "AWS_PROXY", "HTTP", "HTTP_PROXY", "MOCK"]),
        maybe(Just(
            json!({"application/json": "{\"action\": \"$input.body\"}"}),
        )),
        maybe(pick(&[
            "$request.body.action",
            "${request.header.Content-Type}",
        ])),
        maybe(pick(&["CONVERT_TO_TEXT", "CONVERT_TO_BINARY"])),
        maybe(pick(&["WHEN_NO_MATCH", "NEVER", "WHEN_NO_TEMPLATES"])),
        maybe((50..=29000i64).prop_map(Value::from)),
        (
            maybe(ws_request_parameters()),
            maybe(description()),
            maybe(Just(json!("1.0"))),
        ),
    )
        .prop_map(|(t, ty, rt, tse, chs, pb, timeout, (rp, d, pfv))| {
            let mut spec = json!({"integrationType": ty});
            if ty != "MOCK" {
                spec["integrationUri"] = match ty.as_str().unwrap() {
                    "HTTP" | "HTTP_PROXY" => json!("https://backend.example.com/ws"),
                    _ => json!("arn:aws:lambda:us-east-1:123456789012:function:fuzz-ws"),
                };
                spec["integrationMethod"] = json!("POST");
            }
            let fields = vec![
                ("requestTemplates", rt),
                ("templateSelectionExpression", tse),
                ("contentHandlingStrategy", chs),
                ("passthroughBehavior", pb),
                ("timeoutInMillis", timeout),
                ("requestParameters", rp),
                ("description", d),
                ("payloadFormatVersion", pfv),
            ];
            merge(with(spec, fields), t)
        });
    let extras = (
        maybe(pick(&["Delete", "Retain"])),
        maybe(Just(json!(stack_region()))),
    );
    (
        prop_oneof![3 => lambda, 3 => http_proxy, 2 => subtype, 3 => websocket],
        extras,
    )
        .prop_map(|(spec, (dp, region))| {
            with(spec, vec![("deletionPolicy", dp), ("region", region)])
        })
        .boxed()
}

pub fn stack_region() -> String {
    stack_env()["AWS_REGION"].clone()
}
