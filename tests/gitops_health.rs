//! The Argo CD health check that docs/install.md tells users to put in `argocd-cm`, run as Argo CD runs
//! it (Lua 5.1, `obj` set to the resource, the chunk returns `hs`) against ApiIntegrations as the real API
//! server returns them while the operator works on them. Needs `cargo xtask stack up` (or
//! `cargo xtask test`).

mod common;
mod e2e;

use common::{Manifest, eventually, kubectl_ok, repo_path};
use e2e::*;
use mlua::LuaSerdeExt;
use serde_json::Value;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const KEY: &str = "resource.customizations.health.apigw.dev_ApiIntegration: |";

/// The Lua block under the health-check key in docs/install.md, unindented.
fn health_check_from_docs() -> String {
    let doc = std::fs::read_to_string(repo_path("docs/install.md")).unwrap();
    let start = doc
        .find(KEY)
        .expect("docs/install.md has the Argo CD health check")
        + KEY.len();
    let block: Vec<&str> = doc[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(block.len() > 5, "health check block too short: {block:?}");
    block
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// (hs.status, hs.message) for `obj`.
fn health(script: &str, obj: &Value) -> (String, String) {
    let lua = mlua::Lua::new();
    // JSON null becomes nil, as in Argo CD.
    let options = mlua::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    lua.globals()
        .set("obj", lua.to_value_with(obj, options).unwrap())
        .unwrap();
    let hs: mlua::Table = lua
        .load(script)
        .eval()
        .unwrap_or_else(|e| panic!("the health check does not run: {e}\n{script}"));
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

fn health_of(script: &str, name: &str, ns: &str) -> (String, String) {
    health(script, &get_json(&format!("apiintegration/{name}"), ns))
}

/// Progressing with no status yet; Healthy once Ready for the current generation; Degraded when a person
/// must act (the API does not exist); Progressing again after a spec change the operator has not seen.
#[test]
fn argo_cd_health_follows_ready_and_the_observed_generation() {
    let script = health_check_from_docs();
    // The resource exists before the operator starts.
    let setup = Scenario::builder("gitops-health");
    let api = setup.moto.create_api("HTTP");
    Manifest::http_proxy("steady", &api).apply(&setup.ns.name);
    let (status, message) = health_of(&script, "steady", &setup.ns.name);
    assert_eq!(status, "Progressing", "no status yet: {message}");

    let mut s = setup.start();
    let (op, n) = (&mut s.op, &s.ns.name);
    wait_ready("apiintegration/steady", n, READY_TIMEOUT);
    let (status, message) = health_of(&script, "steady", n);
    assert_eq!(status, "Healthy", "{message}");
    assert!(message.starts_with("Synced: "), "{message}");

    Manifest::http_proxy("lost", "nosuchapi7").apply(n);
    eventually("lost to report ApiNotFound", READY_TIMEOUT, || {
        let (_, reason, _) = ready_of("lost", n)?;
        (reason == "ApiNotFound").then_some(())
    });
    let (status, message) = health_of(&script, "lost", n);
    assert_eq!(status, "Degraded", "{message}");
    assert!(message.starts_with("ApiNotFound: "), "{message}");

    // A spec change while the operator is down: Ready is still True, but for the previous generation.
    op.kill();
    kubectl_ok(&[
        "patch",
        "apiintegration/steady",
        "-n",
        n,
        "--type=merge",
        "-p",
        r#"{"spec":{"description":"changed while the operator was away"}}"#,
    ]);
    let (status, message) = health_of(&script, "steady", n);
    assert_eq!(
        status, "Progressing",
        "stale Ready must not count: {message}"
    );
    assert_eq!(ready_of("steady", n).unwrap().0, "True");

    op.restart();
    eventually("steady to be Healthy again", READY_TIMEOUT, || {
        (health_of(&script, "steady", n).0 == "Healthy").then_some(())
    });
}
