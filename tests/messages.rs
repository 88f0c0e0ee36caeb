//! What a user reads when something is wrong outside the spec: one or two plain sentences in the Ready
//! condition and the Event (the whole error chain goes to the operator's log), and missing credentials
//! as a reason of its own. Against the real stack and moto; needs `cargo xtask stack up`.

mod common;
mod e2e;

use common::Manifest;
use e2e::*;

/// A message a person can read: one line, short, no Rust Debug output.
fn assert_readable(message: &str) {
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(message.chars().count() <= 400, "short: {message}");
    for debug in [
        "DispatchFailure(",
        "ConnectorError",
        "{ source:",
        "Some(",
        "Status {",
    ] {
        assert!(
            !message.contains(debug),
            "no Debug output ({debug}): {message}"
        );
    }
}

#[test]
fn missing_credentials_are_their_own_reason_with_a_pointer_to_the_docs() {
    // No keys, no IRSA, no Pod Identity, no instance metadata: nothing to sign with.
    let s = Scenario::builder("msg-creds")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .without_env("AWS_ACCESS_KEY_ID")
        .without_env("AWS_SECRET_ACCESS_KEY")
        .start();
    let (n, moto, op) = (&s.ns.name, &s.moto, &s.op);
    let api = moto.create_api("HTTP");
    Manifest::http_proxy("keyless", &api).apply(n);
    let message = wait_not_ready("keyless", n, "CredentialsMissing");
    assert_readable(&message);
    assert!(message.contains("docs/install.md"), "{message}");
    assert!(
        message.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "names where it looked: {message}"
    );
    assert!(
        event_reasons("keyless", n).contains(&"CredentialsMissing".to_string()),
        "a Warning Event says it too"
    );
    // The calls it tried are counted as such, and nothing reached moto.
    let calls = op.calls();
    assert!(
        !calls.is_empty() && calls.iter().all(|c| c.outcome == "credentials_missing"),
        "{calls:?}"
    );
    assert!(moto.integrations(&api).is_empty());
}

#[test]
fn an_unreachable_endpoint_is_one_plain_sentence_and_the_chain_is_logged() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let s = Scenario::builder("msg-down")
        .env("AWS_ENDPOINT_URL", &closed)
        .start();
    let (n, op) = (&s.ns.name, &s.op);
    let api = s.moto.create_api("HTTP");
    Manifest::http_proxy("unreachable", &api).apply(n);
    let message = wait_not_ready("unreachable", n, "AwsError");
    assert_readable(&message);
    assert!(message.contains("could not connect"), "{message}");
    // The log line names the object the reconcile was for (the reconcile span).
    let log = op.log_text();
    let failed = log
        .lines()
        .find(|l| l.contains("reconcile failed"))
        .unwrap_or_else(|| panic!("no failure logged:\n{log}"));
    assert!(
        failed.contains("unreachable") && failed.contains(n.as_str()),
        "{failed}"
    );
}
