//! Garbage from AWS (issue 14, item 2): answers cut short, a proxy's HTML error page, a success without
//! the integration's ID, a value the SDK does not know, and answers of several megabytes. Each must give
//! a clear non-Ready reason and a Warning Event, never a panic, and never a second integration, even when
//! the call whose answer was garbage had been applied in AWS. Needs `cargo xtask stack up`.

mod common;
mod e2e;

use common::{Manifest, eventually, kubectl_ok};
use e2e::*;
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

/// (type, reason, message) of every Event about `name`.
fn events(name: &str, ns: &str) -> Vec<(String, String, String)> {
    let list: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}

/// Waits for a Warning Event about `name` with `reason` whose message contains `says`; returns the message.
fn wait_warning(name: &str, ns: &str, reason: &str, says: &str) -> String {
    eventually(
        &format!("a Warning Event {reason} about {name} saying {says:?}"),
        TIMEOUT,
        || {
            events(name, ns)
                .into_iter()
                .find(|(t, r, m)| t == "Warning" && r == reason && m.contains(says))
                .map(|(_, _, m)| m)
        },
    )
}

/// Waits until `name` is Ready False with `reason` and a message containing `says`; returns the message.
fn wait_not_ready(name: &str, ns: &str, reason: &str, says: &str) -> String {
    eventually(
        &format!("{name}: Ready False, {reason}, saying {says:?}"),
        TIMEOUT,
        || {
            let (s, r, m) = ready_of(name, ns)?;
            (s == "False" && r == reason && m.contains(says)).then_some(m)
        },
    )
}

fn integration_id(name: &str, ns: &str) -> String {
    get_json(&format!("apiintegration/{name}"), ns)["status"]["integrationId"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no status.integrationId"))
        .to_string()
}

/// A condition message is one short line.
fn assert_short(message: &str) {
    assert!(
        !message.contains('\n') && message.chars().count() <= 400,
        "not one short line ({} chars): {message:.500}",
        message.chars().count()
    );
}

/// The operator is still running and never panicked (not even a caught panic).
fn assert_alive_without_panic(op: &mut Operator) {
    assert!(op.is_running(), "the operator exited");
    let log = op.log_text();
    assert!(
        !log.contains("panicked"),
        "a panic in the log:\n{}",
        log.lines()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest < 16 * 1024,
        "a log line of {longest} bytes: a huge answer went to the log whole"
    );
}

/// moto's answer cut in half.
fn truncated(body: &[u8]) -> Vec<u8> {
    body[..body.len() / 2].to_vec()
}

/// moto's answer as JSON, changed by `edit` (left as it is when it is not JSON).
fn edited(body: &[u8], edit: impl Fn(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Some(o) = v.as_object_mut() {
        edit(o);
        // A listing: each item too.
        if let Some(items) = o.get_mut("items").and_then(Value::as_array_mut) {
            items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(&edit);
        }
    }
    v.to_string().into_bytes()
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                        <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                        </body>\r\n</html>\r\n";

/// CreateIntegration is applied in moto, but its answer is garbage: cut short, an HTML 502 page, or a
/// valid 201 without IntegrationId. Each resource says so (AwsError, a Warning Event), then the
/// interrupted-create recovery finds the integration that create made: one integration each, one
/// CreateIntegration each, never an empty ID in status.
#[test]
fn garbled_create_answers_end_with_the_one_integration_they_made() {
    let s = Scenario::builder("e2e-garbage-create").with_proxy().start();
    let (moto, proxy, n) = (&s.moto, s.proxy(), &s.ns.name);
    let api = moto.create_api("HTTP");
    // (resource, its description (the rule's marker), the reply, what the condition says)
    let cases: [(&str, &str, Reply, &str); 3] = [
        (
            "cut-short",
            "garbage-truncated-create",
            Reply::spoiled("garbage-truncated-create", truncated),
            // (moto labels its JSON text/html)
            "unusable answer from API Gateway: HTTP 200 answer (text/html) that could not be read: Error at offset",
        ),
        (
            "html-page",
            "garbage-html-502",
            Reply::raw("garbage-html-502", 502, "text/html", HTML_502).after_moto(),
            "API Gateway unavailable: HTTP 502 answer (text/html) that is not an API Gateway error",
        ),
        (
            "no-id",
            "garbage-no-id",
            Reply::spoiled("garbage-no-id", |b| {
                edited(b, |o| {
                    o.remove("integrationId");
                })
            }),
            "unusable answer from API Gateway: the CreateIntegration answer has no IntegrationId",
        ),
    ];
    for (name, marker, reply, _) in &cases {
        proxy.reply(reply.clone());
        Manifest::http_proxy(name, &api)
            .spec_field("description", *marker)
            .apply(n);
    }
    for (name, _, _, says) in &cases {
        // The failure is short-lived (the retry recovers at once), so the Event, which carries the
        // condition's reason and message, is where it is read.
        let message = wait_warning(name, n, "AwsError", says);
        assert_short(&message);
        eprintln!("{name}: AwsError: {message}");
    }
    for (name, ..) in &cases {
        wait_ready(&format!("apiintegration/{name}"), n, TIMEOUT);
    }
    let mut s = s;
    let (moto, n) = (&s.moto, &s.ns.name);
    let held = moto.integrations(&api);
    assert_eq!(held.len(), cases.len(), "one integration each: {held:#?}");
    for (name, ..) in &cases {
        let id = integration_id(name, n);
        assert!(!id.is_empty());
        assert_eq!(
            held.iter().filter(|i| i["integrationId"] == id).count(),
            1,
            "{name}'s {id} is in moto once"
        );
        let reasons: Vec<String> = events(name, n).into_iter().map(|e| e.1).collect();
        assert!(
            reasons.contains(&"Recovered".to_string()),
            "{name}: {reasons:?}"
        );
    }
    let creates: Vec<String> =
        s.op.calls()
            .into_iter()
            .filter(|c| c.op == "CreateIntegration")
            .map(|c| c.outcome)
            .collect();
    assert_eq!(creates.len(), cases.len(), "one create each: {creates:?}");
    assert_alive_without_panic(&mut s.op);
}

/// Drift checks meet garbage: a GetIntegration(s) answer cut short, an integrationType the SDK does not
/// know, a 500 whose message is 6 MB, a 200 of 6 MB cut short. Each resource goes non-Ready saying why
/// (one short line) with a Warning Event; nothing is updated or created meanwhile (an unknown value is
/// never "corrected"); once the answers are sound again each is Ready with its one integration.
#[test]
fn garbled_reads_leave_the_integration_alone_and_say_why() {
    let s = Scenario::builder("e2e-garbage-read").with_proxy().start();
    let (moto, proxy, n) = (&s.moto, s.proxy(), &s.ns.name);
    let names = [
        "read-cut-short",
        "unknown-enum",
        "huge-error",
        "huge-cut-short",
    ];
    let apis: Vec<String> = names.iter().map(|_| moto.create_api("HTTP")).collect();
    for (name, api) in names.iter().zip(&apis) {
        Manifest::http_proxy(name, api).apply(n);
    }
    for name in names {
        wait_ready(&format!("apiintegration/{name}"), n, TIMEOUT);
    }
    let ids: Vec<String> = names.iter().map(|name| integration_id(name, n)).collect();
    let reads = |api: &str| format!("GET /v2/apis/{api}/integrations");
    let huge_message = format!(
        "{{\"message\": \"{}\"}}",
        "Internal failure. ".repeat(350_000)
    );
    let huge_cut = format!(
        "{{\"integrationId\": \"{}\", \"description\": \"{}",
        ids[3],
        "x".repeat(6 << 20)
    );
    let cases: [(Reply, &str, &str); 4] = [
        (
            Reply::spoiled(reads(&apis[0]), truncated),
            "AwsError",
            "unusable answer from API Gateway: HTTP 200 answer (text/html) that could not be read: Error at offset",
        ),
        (
            Reply::spoiled(reads(&apis[1]), |b| {
                edited(b, |o| {
                    o.insert("integrationType".into(), "SOMETHING_NEW".into());
                })
            }),
            "AwsError",
            "integrationType \"SOMETHING_NEW\", which this operator does not know; it is left unchanged",
        ),
        (
            Reply::raw(reads(&apis[2]), 500, "application/json", huge_message),
            "AwsError",
            "API Gateway unavailable: HTTP 500 answer (application/json) that is not an API Gateway error",
        ),
        (
            Reply::raw(reads(&apis[3]), 200, "application/json", huge_cut),
            "AwsError",
            "unusable answer from API Gateway: HTTP 200 answer (application/json) that could not be read: Error at offset 6291",
        ),
    ];
    let calls_before = s.op.calls().len();
    for (reply, ..) in &cases {
        proxy.reply(reply.clone());
    }
    for (name, (_, reason, says)) in names.iter().zip(&cases) {
        let message = wait_not_ready(name, n, reason, says);
        assert_short(&message);
        wait_warning(name, n, reason, says);
        eprintln!("{name}: {reason}: {message}");
    }
    let writes: Vec<_> = s.op.calls()[calls_before..]
        .iter()
        .filter(|c| c.op != "GetIntegration" && c.op != "GetIntegrations" && c.op != "GetApi")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "no write on garbage: {writes:?}");

    proxy.clear();
    for name in names {
        wait_ready(&format!("apiintegration/{name}"), n, TIMEOUT);
    }
    let mut s = s;
    for ((name, api), id) in names.iter().zip(&apis).zip(&ids) {
        let held = s.moto.integrations(api);
        assert_eq!(held.len(), 1, "{name}: {held:#?}");
        assert_eq!(held[0]["integrationId"], id.as_str(), "{name}");
        assert_eq!(held[0]["integrationType"], "HTTP_PROXY", "{name}");
        assert_eq!(&integration_id(name, &s.ns.name), id, "{name}");
    }
    assert_eq!(s.op.count("CreateIntegration"), names.len());
    assert_eq!(s.op.count("UpdateIntegration"), 0);
    assert_alive_without_panic(&mut s.op);
}
