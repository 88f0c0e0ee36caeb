//! The CRD's validation, checked by the real API server (server-side dry run): every rule has at least
//! one accepted and one refused case, and every refusal's message is checked for the field it names and
//! what it says is allowed.

mod common;
use common::*;
use serde_json::{Value, json};

/// What the API server must answer.
enum Expect {
    Accepted,
    /// Refused, with every one of these substrings in the error (field path first, then the rule's words).
    Refused(&'static [&'static str]),
}
use Expect::*;

fn lambda() -> Value {
    json!({"apiId": "a1b2c3d4e5", "integrationType": "AWS_PROXY",
           "integrationUri": "arn:aws:lambda:us-east-1:123456789012:function:f"})
}
fn http_proxy() -> Value {
    json!({"apiId": "a1b2c3d4e5", "integrationType": "HTTP_PROXY", "integrationUri": "https://example.com"})
}
fn mock() -> Value {
    json!({"apiId": "w1x2y3z4v5", "integrationType": "MOCK"})
}
fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}
fn subtype(name: &str, params: &[&str]) -> Value {
    let params: serde_json::Map<String, Value> =
        params.iter().map(|k| (k.to_string(), json!("v"))).collect();
    json!({"apiId": "a1b2c3d4e5", "integrationType": "AWS_PROXY", "integrationSubtype": name,
           "credentialsArn": "arn:aws:iam::123456789012:role/r", "requestParameters": params})
}

/// Applies `spec` with a server-side dry run and checks the answer; returns a failure description.
fn check(ns: &str, case: &str, spec: &Value, expect: &Expect) -> Option<String> {
    dry_run(
        case,
        &Manifest::new("case", spec.clone()).namespace(ns).yaml(),
        expect,
    )
}

/// Applies the manifest `doc` with a server-side dry run and checks the answer.
fn dry_run(case: &str, doc: &str, expect: &Expect) -> Option<String> {
    let out = kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], doc);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    match (expect, out.status.success()) {
        (Accepted, true) => None,
        (Accepted, false) => Some(format!("{case}: expected accepted, got: {err}")),
        (Refused(_), true) => Some(format!("{case}: expected refused, was accepted")),
        (Refused(needles), false) => {
            let missing: Vec<_> = needles.iter().filter(|n| !err.contains(*n)).collect();
            (!missing.is_empty()).then(|| format!("{case}: error lacks {missing:?}: {err}"))
        }
    }
}

#[test]
fn create_time_rules_accept_and_refuse_with_field_named() {
    let ns = TempNamespace::new("crd-rules");
    let long = "x".repeat(1025);
    let cases: Vec<(&str, Value, Expect)> = vec![
        // required fields and enums (OpenAPI schema)
        ("minimal lambda", lambda(), Accepted),
        (
            "no apiId",
            with(lambda(), json!({"apiId": null})),
            Refused(&["spec.apiId", "Required value"]),
        ),
        (
            "no integrationType",
            with(lambda(), json!({"integrationType": null})),
            Refused(&["spec.integrationType", "Required value"]),
        ),
        (
            "apiId with dash",
            with(lambda(), json!({"apiId": "a1-b2"})),
            Refused(&["spec.apiId", "should match"]),
        ),
        (
            "unknown integrationType",
            with(lambda(), json!({"integrationType": "LAMBDA"})),
            Refused(&[
                "spec.integrationType",
                "Unsupported value: \"LAMBDA\"",
                "\"AWS_PROXY\"",
            ]),
        ),
        (
            "unknown integrationMethod",
            with(http_proxy(), json!({"integrationMethod": "FETCH"})),
            Refused(&["spec.integrationMethod", "Unsupported value"]),
        ),
        (
            "integrationMethod ANY",
            with(http_proxy(), json!({"integrationMethod": "ANY"})),
            Accepted,
        ),
        (
            "unknown connectionType",
            with(http_proxy(), json!({"connectionType": "DIRECT"})),
            Refused(&["spec.connectionType", "Unsupported value", "\"VPC_LINK\""]),
        ),
        (
            "payloadFormatVersion 3.0",
            with(lambda(), json!({"payloadFormatVersion": "3.0"})),
            Refused(&["spec.payloadFormatVersion", "Unsupported value"]),
        ),
        (
            "unknown passthroughBehavior",
            with(mock(), json!({"passthroughBehavior": "ALWAYS"})),
            Refused(&["spec.passthroughBehavior", "Unsupported value"]),
        ),
        (
            "unknown contentHandlingStrategy",
            with(mock(), json!({"contentHandlingStrategy": "GZIP"})),
            Refused(&["spec.contentHandlingStrategy", "Unsupported value"]),
        ),
        (
            "unknown subtype",
            subtype("SNS-Publish", &["TopicArn"]),
            Refused(&["spec.integrationSubtype", "Unsupported value"]),
        ),
        (
            "unknown deletionPolicy",
            with(lambda(), json!({"deletionPolicy": "Orphan"})),
            Refused(&["spec.deletionPolicy", "Unsupported value", "\"Retain\""]),
        ),
        (
            "deletionPolicy Retain",
            with(lambda(), json!({"deletionPolicy": "Retain"})),
            Accepted,
        ),
        (
            "description too long",
            with(lambda(), json!({"description": long})),
            Refused(&["spec.description", "Too long"]),
        ),
        (
            "region upper case",
            with(lambda(), json!({"region": "EU-WEST-1"})),
            Refused(&["spec.region", "should match"]),
        ),
        (
            "region eu-west-1",
            with(lambda(), json!({"region": "eu-west-1"})),
            Accepted,
        ),
        // timeout range, and the WebSocket ceiling
        (
            "timeout 49",
            with(lambda(), json!({"timeoutInMillis": 49})),
            Refused(&["spec.timeoutInMillis", "greater than or equal to 50"]),
        ),
        (
            "timeout 50",
            with(lambda(), json!({"timeoutInMillis": 50})),
            Accepted,
        ),
        (
            "timeout 30000 on HTTP API",
            with(lambda(), json!({"timeoutInMillis": 30000})),
            Accepted,
        ),
        (
            "timeout 30001",
            with(lambda(), json!({"timeoutInMillis": 30001})),
            Refused(&["spec.timeoutInMillis", "less than or equal to 30000"]),
        ),
        (
            "timeout 29001 on MOCK",
            with(mock(), json!({"timeoutInMillis": 29001})),
            Refused(&["spec.timeoutInMillis", "between 50 and 29000 for WebSocket"]),
        ),
        (
            "timeout 29001 with requestTemplates",
            with(
                lambda(),
                json!({"timeoutInMillis": 29001, "requestTemplates": {"a": "b"}}),
            ),
            Refused(&["spec.timeoutInMillis", "between 50 and 29000 for WebSocket"]),
        ),
        (
            "timeout 29000 on MOCK",
            with(mock(), json!({"timeoutInMillis": 29000})),
            Accepted,
        ),
        // integrationUri
        (
            "HTTP_PROXY without uri",
            with(http_proxy(), json!({"integrationUri": null})),
            Refused(&[
                "spec.integrationUri",
                "Required value",
                "required for integrationType AWS, HTTP, HTTP_PROXY",
            ]),
        ),
        (
            "AWS_PROXY without uri or subtype",
            with(lambda(), json!({"integrationUri": null})),
            Refused(&[
                "spec.integrationUri",
                "AWS_PROXY without integrationSubtype",
            ]),
        ),
        (
            "AWS without uri",
            with(mock(), json!({"integrationType": "AWS"})),
            Refused(&["spec.integrationUri", "Required value"]),
        ),
        ("MOCK without uri", mock(), Accepted),
        (
            "subtype with uri",
            with(
                subtype("SQS-PurgeQueue", &["QueueUrl"]),
                json!({"integrationUri": "arn:aws:sqs:x"}),
            ),
            Refused(&[
                "spec.integrationUri",
                "Forbidden",
                "must not be set together with integrationSubtype",
            ]),
        ),
        // subtype needs AWS_PROXY
        (
            "subtype on HTTP_PROXY",
            with(
                subtype("SQS-PurgeQueue", &["QueueUrl"]),
                json!({"integrationType": "HTTP_PROXY", "integrationUri": "https://x"}),
            ),
            Refused(&[
                "spec.integrationSubtype",
                "only with integrationType AWS_PROXY",
            ]),
        ),
        // VPC link
        (
            "VPC_LINK without connectionId",
            with(http_proxy(), json!({"connectionType": "VPC_LINK"})),
            Refused(&[
                "spec.connectionId",
                "Required value",
                "required when connectionType is VPC_LINK",
            ]),
        ),
        (
            "VPC_LINK with connectionId",
            with(
                http_proxy(),
                json!({"connectionType": "VPC_LINK", "connectionId": "abc123"}),
            ),
            Accepted,
        ),
        (
            "connectionId without VPC_LINK",
            with(http_proxy(), json!({"connectionId": "abc123"})),
            Refused(&["spec.connectionId", "only with connectionType VPC_LINK"]),
        ),
        (
            "tlsConfig without VPC_LINK",
            with(
                http_proxy(),
                json!({"tlsConfig": {"serverNameToVerify": "a.example.com"}}),
            ),
            Refused(&["spec.tlsConfig", "only for private integrations"]),
        ),
        (
            "tlsConfig with VPC_LINK",
            with(
                http_proxy(),
                json!({"connectionType": "VPC_LINK", "connectionId": "abc123", "tlsConfig": {"serverNameToVerify": "a.example.com"}}),
            ),
            Accepted,
        ),
        // payload format 2.0
        (
            "2.0 on Lambda proxy",
            with(lambda(), json!({"payloadFormatVersion": "2.0"})),
            Accepted,
        ),
        (
            "2.0 on HTTP_PROXY",
            with(http_proxy(), json!({"payloadFormatVersion": "2.0"})),
            Refused(&[
                "spec.payloadFormatVersion",
                "only for Lambda proxy integrations",
            ]),
        ),
        (
            "2.0 with subtype",
            with(
                subtype("SQS-PurgeQueue", &["QueueUrl"]),
                json!({"payloadFormatVersion": "2.0"}),
            ),
            Refused(&[
                "spec.payloadFormatVersion",
                "only for Lambda proxy integrations",
            ]),
        ),
        (
            "1.0 on HTTP_PROXY",
            with(http_proxy(), json!({"payloadFormatVersion": "1.0"})),
            Accepted,
        ),
        // WebSocket-only vs HTTP-only
        (
            "requestTemplates with responseParameters",
            with(
                lambda(),
                json!({"requestTemplates": {"$default": "{}"}, "responseParameters": {"200": {"overwrite:statuscode": "201"}}}),
            ),
            Refused(&[
                "WebSocket-only fields",
                "HTTP-API-only fields",
                "responseParameters",
                "requestTemplates",
            ]),
        ),
        (
            "passthroughBehavior with tlsConfig",
            with(
                http_proxy(),
                json!({"passthroughBehavior": "NEVER", "connectionType": "VPC_LINK", "connectionId": "abc123", "tlsConfig": {}}),
            ),
            Refused(&["WebSocket-only fields"]),
        ),
        (
            "2.0 on Lambda with templateSelectionExpression (WebSocket)",
            with(
                lambda(),
                json!({"payloadFormatVersion": "2.0", "templateSelectionExpression": "$request.body.action"}),
            ),
            Refused(&[
                "spec.payloadFormatVersion",
                "not allowed for WebSocket APIs",
                "take \"1.0\" only",
            ]),
        ),
        (
            "requestTemplates on Lambda (WebSocket)",
            with(
                lambda(),
                json!({"requestTemplates": {"$default": "{}"}, "templateSelectionExpression": "$request.body.action"}),
            ),
            Accepted,
        ),
        // AWS / HTTP / MOCK exclude HTTP-only fields
        (
            "MOCK with responseParameters",
            with(
                mock(),
                json!({"responseParameters": {"200": {"overwrite:statuscode": "201"}}}),
            ),
            Refused(&["spec.integrationType", "exist only on WebSocket APIs"]),
        ),
        (
            "HTTP with tlsConfig",
            with(
                http_proxy(),
                json!({"integrationType": "HTTP", "connectionType": "VPC_LINK", "connectionId": "abc123", "tlsConfig": {}}),
            ),
            Refused(&["spec.integrationType", "exist only on WebSocket APIs"]),
        ),
        // responseParameters
        (
            "responseParameters 199",
            with(
                http_proxy(),
                json!({"responseParameters": {"199": {"overwrite:statuscode": "200"}}}),
            ),
            Refused(&["spec.responseParameters", "status codes from 200 to 599"]),
        ),
        (
            "responseParameters 600",
            with(
                http_proxy(),
                json!({"responseParameters": {"600": {"overwrite:statuscode": "200"}}}),
            ),
            Refused(&["spec.responseParameters", "status codes from 200 to 599"]),
        ),
        (
            "responseParameters 2xx",
            with(
                http_proxy(),
                json!({"responseParameters": {"2xx": {"overwrite:statuscode": "200"}}}),
            ),
            Refused(&["spec.responseParameters", "status codes from 200 to 599"]),
        ),
        (
            "responseParameters 200 and 599",
            with(
                http_proxy(),
                json!({"responseParameters": {"200": {"append:header.x": "y"}, "599": {"overwrite:statuscode": "503"}}}),
            ),
            Accepted,
        ),
        (
            "responseParameters bad mapping key",
            with(
                http_proxy(),
                json!({"responseParameters": {"200": {"set:header.x": "y"}}}),
            ),
            Refused(&["spec.responseParameters[200]", "append:header.<name>"]),
        ),
        // a subtype's parameters cannot be "" (design §2 rule 4: API Gateway rejects it there)
        (
            "subtype with an empty QueueUrl",
            with(
                subtype("SQS-PurgeQueue", &["QueueUrl"]),
                json!({"requestParameters": {"QueueUrl": ""}}),
            ),
            Refused(&[
                "spec.requestParameters",
                "must not be empty with integrationSubtype",
            ]),
        ),
        (
            "empty request parameter value without a subtype",
            with(
                http_proxy(),
                json!({"requestParameters": {"append:header.x": ""}}),
            ),
            Accepted,
        ),
        // credentialsArn
        (
            "credentialsArn not an ARN",
            with(lambda(), json!({"credentialsArn": "role/apigw"})),
            Refused(&["spec.credentialsArn", "must be an ARN"]),
        ),
        (
            "credentialsArn role",
            with(
                lambda(),
                json!({"credentialsArn": "arn:aws:iam::123456789012:role/apigw"}),
            ),
            Accepted,
        ),
        (
            "credentialsArn caller identity",
            with(lambda(), json!({"credentialsArn": "arn:aws:iam::*:user/*"})),
            Accepted,
        ),
    ];
    let mut failures: Vec<String> = cases
        .iter()
        .filter_map(|(case, spec, expect)| check(&ns.name, case, spec, expect))
        .collect();

    // Every subtype: all required keys accepted; each key missing refused with the subtype's message.
    let subtypes: &[(&str, &[&str])] = &[
        ("EventBridge-PutEvents", &["Detail", "DetailType", "Source"]),
        ("SQS-SendMessage", &["QueueUrl", "MessageBody"]),
        ("SQS-ReceiveMessage", &["QueueUrl"]),
        ("SQS-DeleteMessage", &["ReceiptHandle", "QueueUrl"]),
        ("SQS-PurgeQueue", &["QueueUrl"]),
        (
            "AppConfig-GetConfiguration",
            &["Application", "Environment", "Configuration", "ClientId"],
        ),
        ("Kinesis-PutRecord", &["StreamName", "Data", "PartitionKey"]),
        ("StepFunctions-StartExecution", &["StateMachineArn"]),
        ("StepFunctions-StartSyncExecution", &["StateMachineArn"]),
        ("StepFunctions-StopExecution", &["ExecutionArn"]),
    ];
    let mut refused_cases = cases.iter().filter(|c| matches!(c.2, Refused(_))).count();
    for (name, keys) in subtypes {
        if let Some(f) = check(&ns.name, name, &subtype(name, keys), &Accepted) {
            failures.push(f);
        }
        let missing_one = subtype(name, &keys[1..]);
        let message = format!("for integrationSubtype {name}");
        let out = kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &Manifest::new("case", missing_one.clone())
                .namespace(&ns.name)
                .yaml(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        refused_cases += 1;
        if out.status.success()
            || !err.contains("spec.requestParameters")
            || !err.contains(&message)
            || !err.contains(keys[0])
        {
            failures.push(format!(
                "{name} without {}: expected refusal naming spec.requestParameters, got: {err}",
                keys[0]
            ));
        }
    }
    assert!(refused_cases >= 30, "only {refused_cases} refused cases");
    assert!(
        failures.is_empty(),
        "{} of the cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn immutable_fields_refuse_changes_on_update() {
    let ns = TempNamespace::new("crd-immutable");
    let base = with(lambda(), json!({"region": "us-east-1"}));
    let out = kubectl_stdin(
        &["apply", "-f", "-"],
        &Manifest::new("imm", base.clone())
            .namespace(&ns.name)
            .yaml(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let update = |spec: &Value| {
        kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &Manifest::new("imm", spec.clone())
                .namespace(&ns.name)
                .yaml(),
        )
    };
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "change description",
            with(base.clone(), json!({"description": "new"})),
            Accepted,
        ),
        (
            "change apiId",
            with(base.clone(), json!({"apiId": "zzzzzzzzzz"})),
            Refused(&["spec.apiId", "immutable"]),
        ),
        (
            "change region",
            with(base.clone(), json!({"region": "eu-west-1"})),
            Refused(&["spec.region", "immutable"]),
        ),
        (
            "remove region",
            with(base.clone(), json!({"region": null})),
            Refused(&["spec.region", "immutable"]),
        ),
    ];
    let mut failures = vec![];
    for (case, spec, expect) in &cases {
        let out = update(spec);
        let err = String::from_utf8_lossy(&out.stderr);
        match (expect, out.status.success()) {
            (Accepted, true) => {}
            (Refused(needles), false) if needles.iter().all(|n| err.contains(n)) => {}
            _ => failures.push(format!("{case}: {err}")),
        }
    }
    // Adding a region to an object created without one is refused too.
    let out = kubectl_stdin(
        &["apply", "-f", "-"],
        &Manifest::new("noregion", lambda())
            .namespace(&ns.name)
            .yaml(),
    );
    assert!(out.status.success());
    let out = kubectl_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &Manifest::new("noregion", with(lambda(), json!({"region": "us-east-1"})))
            .namespace(&ns.name)
            .yaml(),
    );
    if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("spec.region") {
        failures.push(format!(
            "add region: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_is_accepted() {
    let ns = TempNamespace::new("crd-examples");
    let dir = repo_path("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected at least 8 examples, found {}",
        files.len()
    );
    for f in files {
        let out = kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            &ns.name,
            "-f",
            f.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{} refused: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("created (server dry run)"));
    }
}

fn by_ref() -> Value {
    json!({"apiRef": {"name": "orders", "tags": {"env": "prod"}, "protocolType": "HTTP"},
           "integrationType": "HTTP_PROXY", "integrationUri": "https://example.com"})
}

/// References (design §6): exactly one of apiId and apiRef; with VPC_LINK exactly one of connectionId and
/// connectionRef; connectionRef only with VPC_LINK; a reference needs a name or tags; apiRef is immutable
/// and a resource cannot switch between apiId and apiRef.
#[test]
fn reference_rules_accept_and_refuse_with_field_named() {
    let ns = TempNamespace::new("crd-refs");
    let link_ref = json!({"name": "orders-link", "tags": {"env": "prod"}});
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("apiRef by name, tags and protocol", by_ref(), Accepted),
        (
            "apiRef by tags only",
            with(by_ref(), json!({"apiRef": {"tags": {"env": "prod"}}})),
            Accepted,
        ),
        (
            "apiRef empty",
            with(by_ref(), json!({"apiRef": {}})),
            Refused(&["spec.apiRef", "needs name or tags"]),
        ),
        (
            "apiRef unknown protocol",
            with(
                by_ref(),
                json!({"apiRef": {"name": "orders", "protocolType": "REST"}}),
            ),
            Refused(&["spec.apiRef.protocolType", "Unsupported value"]),
        ),
        (
            "apiId and apiRef",
            with(by_ref(), json!({"apiId": "a1b2c3d4e5"})),
            Refused(&["spec.apiId or spec.apiRef", "exactly one"]),
        ),
        (
            "neither apiId nor apiRef",
            with(by_ref(), json!({"apiRef": null})),
            Refused(&["spec.apiId or spec.apiRef", "Required value"]),
        ),
        (
            "VPC_LINK with connectionRef",
            with(
                by_ref(),
                json!({"connectionType": "VPC_LINK", "connectionRef": link_ref}),
            ),
            Accepted,
        ),
        (
            "VPC_LINK with connectionId and connectionRef",
            with(
                by_ref(),
                json!({"connectionType": "VPC_LINK", "connectionId": "abc123", "connectionRef": link_ref}),
            ),
            Refused(&[
                "spec.connectionRef",
                "cannot be set together with connectionId",
            ]),
        ),
        (
            "connectionRef without VPC_LINK",
            with(by_ref(), json!({"connectionRef": link_ref})),
            Refused(&["spec.connectionRef", "only with connectionType VPC_LINK"]),
        ),
        // apiRef.protocolType fixes the kind of API before AWS is asked (design §3: HTTP APIs take only
        // AWS_PROXY and HTTP_PROXY; WebSocket APIs take none of the HTTP-only fields, timeouts up to
        // 29000 and payload format "1.0" only).
        (
            "apiRef HTTP with MOCK",
            with(
                by_ref(),
                json!({"integrationType": "MOCK", "integrationUri": null}),
            ),
            Refused(&[
                "spec.apiRef.protocolType",
                "takes only integrationType AWS_PROXY or HTTP_PROXY",
            ]),
        ),
        (
            "apiRef HTTP with passthroughBehavior",
            with(by_ref(), json!({"passthroughBehavior": "NEVER"})),
            Refused(&["spec.apiRef.protocolType", "WebSocket-only fields"]),
        ),
        (
            "apiRef WEBSOCKET with MOCK and templates",
            with(
                by_ref(),
                json!({"apiRef": {"name": "chat", "protocolType": "WEBSOCKET"}, "integrationType": "MOCK",
                       "integrationUri": null, "requestTemplates": {"$default": "{}"}}),
            ),
            Accepted,
        ),
        (
            "apiRef WEBSOCKET with responseParameters",
            with(
                by_ref(),
                json!({"apiRef": {"name": "chat", "protocolType": "WEBSOCKET"},
                       "responseParameters": {"200": {"overwrite:statuscode": "204"}}}),
            ),
            Refused(&["spec.apiRef.protocolType", "HTTP-API-only fields"]),
        ),
        (
            "apiRef WEBSOCKET with timeout 29500",
            with(
                by_ref(),
                json!({"apiRef": {"name": "chat", "protocolType": "WEBSOCKET"}, "timeoutInMillis": 29500}),
            ),
            Refused(&["spec.timeoutInMillis", "between 50 and 29000 for WebSocket"]),
        ),
        (
            "apiRef without protocolType, timeout 29500",
            with(
                by_ref(),
                json!({"apiRef": {"name": "orders"}, "timeoutInMillis": 29500}),
            ),
            Accepted,
        ),
        (
            "apiRef WEBSOCKET with payload format 2.0",
            with(
                by_ref(),
                json!({"apiRef": {"name": "chat", "protocolType": "WEBSOCKET"}, "integrationType": "AWS_PROXY",
                       "integrationUri": "arn:aws:lambda:us-east-1:123456789012:function:f",
                       "payloadFormatVersion": "2.0"}),
            ),
            Refused(&[
                "spec.payloadFormatVersion",
                "not allowed for WebSocket APIs",
            ]),
        ),
        (
            "connectionRef empty",
            with(
                by_ref(),
                json!({"connectionType": "VPC_LINK", "connectionRef": {}}),
            ),
            Refused(&["spec.connectionRef", "needs name or tags"]),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(case, spec, expect)| check(&ns.name, case, spec, expect))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // On update: apiRef is immutable, and neither style can be swapped for the other.
    for (name, base) in [("by-ref", by_ref()), ("by-id", http_proxy())] {
        let out = Manifest::new(name, base).namespace(&ns.name).yaml();
        let out = kubectl_stdin(&["apply", "-f", "-"], &out);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let updates: Vec<(&str, &str, Value, Expect)> = vec![
        (
            "by-ref",
            "change apiRef name",
            with(by_ref(), json!({"apiRef": {"name": "payments"}})),
            Refused(&["spec.apiRef", "immutable"]),
        ),
        (
            "by-ref",
            "switch from apiRef to apiId",
            with(by_ref(), json!({"apiRef": null, "apiId": "a1b2c3d4e5"})),
            Refused(&["cannot switch between apiId and apiRef"]),
        ),
        (
            "by-id",
            "switch from apiId to apiRef",
            with(
                http_proxy(),
                json!({"apiId": null, "apiRef": {"name": "orders"}}),
            ),
            Refused(&["cannot switch between apiId and apiRef"]),
        ),
        (
            "by-ref",
            "change description",
            with(by_ref(), json!({"description": "new"})),
            Accepted,
        ),
    ];
    let mut failures = vec![];
    for (name, case, spec, expect) in &updates {
        let out = kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &Manifest::new(name, spec.clone()).namespace(&ns.name).yaml(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        match (expect, out.status.success()) {
            (Accepted, true) => {}
            (Refused(needles), false) if needles.iter().all(|n| err.contains(n)) => {}
            _ => failures.push(format!("{case}: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The example that uses both references is accepted.
    for entry in std::fs::read_dir(repo_path("examples/references")).unwrap() {
        let path = entry.unwrap().path();
        let out = kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            &ns.name,
            "-f",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// spec.integrationResponses (design rule 12): a list-map keyed by integrationResponseKey, each key
/// `$default` or `/…/`, at most 32, WebSocket non-proxy integrations only.
#[test]
fn integration_response_rules_accept_and_refuse_with_field_named() {
    let ns = TempNamespace::new("crd-responses");
    let response = |key: &str| json!({"integrationResponseKey": key});
    let two = json!([
        {"integrationResponseKey": "$default", "responseTemplates": {"$default": "{\"ok\":true}"},
         "templateSelectionExpression": "\\$default", "contentHandlingStrategy": "CONVERT_TO_TEXT",
         "responseParameters": {"method.response.header.x-id": "integration.response.header.x-id"}},
        {"integrationResponseKey": "/4\\d\\d/"}
    ]);
    let many: Vec<Value> = (0..33).map(|i| response(&format!("/{i}/"))).collect();
    let ws_ref = json!({"name": "chat", "protocolType": "WEBSOCKET"});
    let http_ref = json!({"name": "orders", "protocolType": "HTTP"});
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "MOCK with two responses",
            with(mock(), json!({"integrationResponses": two})),
            Accepted,
        ),
        (
            "empty list",
            with(mock(), json!({"integrationResponses": []})),
            Accepted,
        ),
        (
            "WebSocket apiRef",
            with(
                mock(),
                json!({"apiId": null, "apiRef": ws_ref, "integrationResponses": [response("$default")]}),
            ),
            Accepted,
        ),
        (
            "HTTP integration with a response",
            with(
                mock(),
                json!({"integrationType": "HTTP", "integrationUri": "https://example.com",
                                "integrationResponses": [response("/2\\d\\d/")]}),
            ),
            Accepted,
        ),
        (
            "duplicate key",
            with(
                mock(),
                json!({"integrationResponses": [response("$default"), response("$default")]}),
            ),
            Refused(&["spec.integrationResponses[1]", "Duplicate value"]),
        ),
        (
            "key neither $default nor /pattern/",
            with(mock(), json!({"integrationResponses": [response("200")]})),
            Refused(&[
                "spec.integrationResponses[0].integrationResponseKey",
                "$default or a regular expression between slashes",
            ]),
        ),
        (
            "empty key",
            with(mock(), json!({"integrationResponses": [response("")]})),
            Refused(&["spec.integrationResponses[0].integrationResponseKey"]),
        ),
        (
            "33 responses",
            with(mock(), json!({"integrationResponses": many})),
            Refused(&["spec.integrationResponses", "must have at most 32 items"]),
        ),
        (
            "with AWS_PROXY",
            with(
                lambda(),
                json!({"integrationResponses": [response("$default")]}),
            ),
            Refused(&[
                "spec.integrationResponses",
                "not allowed with integrationType AWS_PROXY or HTTP_PROXY",
            ]),
        ),
        (
            "with HTTP_PROXY",
            with(
                http_proxy(),
                json!({"integrationResponses": [response("$default")]}),
            ),
            Refused(&[
                "spec.integrationResponses",
                "not allowed with integrationType AWS_PROXY or HTTP_PROXY",
            ]),
        ),
        (
            "HTTP apiRef",
            with(
                mock(),
                json!({"apiId": null, "apiRef": http_ref, "integrationType": "MOCK",
                                "integrationResponses": [response("$default")]}),
            ),
            Refused(&[
                "spec.integrationResponses",
                "for WebSocket APIs only, and apiRef.protocolType HTTP",
            ]),
        ),
        (
            "unknown contentHandlingStrategy",
            with(
                mock(),
                json!({"integrationResponses": [{"integrationResponseKey": "$default", "contentHandlingStrategy": "GZIP"}]}),
            ),
            Refused(&[
                "spec.integrationResponses[0].contentHandlingStrategy",
                "Unsupported value",
            ]),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(case, spec, expect)| check(&ns.name, case, spec, expect))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of the cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// ApiGatewayAccess (design §7): roleArn must be an IAM role ARN, externalId needs a roleArn, each apis
/// entry sets exactly one of id, name and tags, regions look like regions. Cluster-scoped.
#[test]
fn api_gateway_access_rules_accept_and_refuse_with_field_named() {
    let check_access = |case: &str, spec: Value, expect: &Expect| -> Option<String> {
        let doc = json!({"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess",
                         "metadata": {"name": "case"}, "spec": spec});
        dry_run(case, &doc.to_string(), expect)
    };
    let sel = json!({"matchLabels": {"team": "payments"}});
    let role = "arn:aws:iam::222233334444:role/apigw-payments";
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "every namespace",
            json!({"namespaceSelector": {}}),
            Accepted,
        ),
        (
            "full policy",
            json!({"namespaceSelector": sel, "roleArn": role, "externalId": "payments-7f3a",
                   "regions": ["eu-west-1"],
                   "apis": [{"id": "a1b2c3d4e5"}, {"name": "payments-*"}, {"tags": {"team": "payments"}}]}),
            Accepted,
        ),
        (
            "no namespaceSelector",
            json!({"roleArn": role}),
            Refused(&["spec.namespaceSelector", "Required value"]),
        ),
        (
            "roleArn of a user",
            json!({"namespaceSelector": sel, "roleArn": "arn:aws:iam::222233334444:user/bob"}),
            Refused(&["spec.roleArn", "should match"]),
        ),
        (
            "externalId without roleArn",
            json!({"namespaceSelector": sel, "externalId": "x-1"}),
            Refused(&["spec.externalId", "needs spec.roleArn"]),
        ),
        (
            "apis entry with two keys",
            json!({"namespaceSelector": sel, "apis": [{"id": "a1b2c3d4e5", "name": "x*"}]}),
            Refused(&["spec.apis[0]", "exactly one of id, name and tags"]),
        ),
        (
            "apis entry with none",
            json!({"namespaceSelector": sel, "apis": [{}]}),
            Refused(&["spec.apis[0]", "exactly one of id, name and tags"]),
        ),
        (
            "bad region",
            json!({"namespaceSelector": sel, "regions": ["Europe"]}),
            Refused(&["spec.regions[0]", "should match"]),
        ),
    ];
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(case, spec, expect)| check_access(case, spec, &expect))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Cluster-scoped: no namespace in its API path.
    let resources = kubectl_ok(&[
        "api-resources",
        "--api-group=apigw.dev",
        "--namespaced=false",
        "-o",
        "name",
    ]);
    assert!(resources.contains("apigatewayaccesses"), "{resources}");
}
