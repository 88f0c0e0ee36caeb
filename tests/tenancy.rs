//! Tenancy end to end (design §7), with the operator in `--tenancy policy` mode against the stack and
//! moto: a namespace no policy selects, APIs outside the allowlist (by id, name glob, tags), a region
//! outside, a role in a second AWS account, grant and revoke while the operator runs, and deletion after
//! revocation. Policies are cluster-scoped, so each test selects only its own namespace by a label of
//! its own and removes its policies when done.

mod common;
mod e2e;

use aws_sdk_apigatewayv2 as apigw;
use common::{Manifest, eventually, kubectl, kubectl_ok, kubectl_stdin, stack_env};
use e2e::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const TEAM_ACCOUNT: &str = "222233334444";

/// Policies made by a test, deleted when it ends (pass or fail).
struct Policies(Vec<String>);

impl Policies {
    fn apply(&mut self, name: &str, spec: Value) {
        let doc = json!({"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess",
                         "metadata": {"name": name}, "spec": spec});
        let out = kubectl_stdin(&["apply", "--server-side", "-f", "-"], &doc.to_string());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !self.0.iter().any(|n| n == name) {
            self.0.push(name.to_string());
        }
    }

    /// Lets the operator delete what is left in the tenant's namespace when the test ends: a policy that
    /// allows everything with the operator's own identity, first by name.
    fn release(&mut self, tenant: &str) {
        self.apply(
            &format!("aaa-release-{tenant}"),
            json!({"namespaceSelector": selects(tenant)}),
        );
    }

    fn delete(&mut self, name: &str) {
        kubectl_ok(&["delete", "apigatewayaccess", name, "--wait=true"]);
        self.0.retain(|n| n != name);
    }
}

// Declared before the scenario in each test, so that it is dropped after the operator has deleted the
// namespace's resources (which needs permission).
impl Drop for Policies {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = kubectl(&["delete", "apigatewayaccess", name, "--ignore-not-found"]);
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A scenario in policy mode whose namespace carries `tenant=<unique>`; returns it and that value.
fn policy_scenario(prefix: &str, proxy: bool) -> (Scenario, String) {
    let mut b = Scenario::builder(prefix).args(&["--tenancy", "policy"]);
    if proxy {
        b = b.with_proxy();
    }
    let tenant = unique("tenant");
    kubectl_ok(&[
        "label",
        "namespace",
        &b.ns.name,
        &format!("tenant={tenant}"),
    ]);
    (b.start(), tenant)
}

fn selects(tenant: &str) -> Value {
    json!({"matchLabels": {"tenant": tenant}})
}

fn create_named_api(client: &apigw::Client, name: &str, tags: &[(&str, &str)]) -> String {
    let moto = Moto {
        client: client.clone(),
    };
    moto.create_named_api(name, "HTTP", tags)
}

fn writes(op: &Operator) -> usize {
    [
        "CreateIntegration",
        "UpdateIntegration",
        "DeleteIntegration",
    ]
    .iter()
    .map(|o| op.count(o))
    .sum()
}

#[test]
fn grant_and_revoke_while_the_operator_runs() {
    let mut policies = Policies(vec![]);
    let (s, tenant) = policy_scenario("ten-grant", false);
    let (n, moto, op) = (&s.ns.name, &s.moto, &s.op);
    let api = moto.create_api("HTTP");
    Manifest::http_proxy("guarded", &api).apply(n);

    // No policy selects the namespace: NotPermitted, an Event, and no AWS call at all.
    let message = wait_not_ready("guarded", n, "NotPermitted");
    assert!(message.contains(n.as_str()), "{message}");
    assert!(event_reasons("guarded", n).contains(&"NotPermitted".to_string()));
    assert!(op.calls().is_empty(), "{:?}", op.calls());

    // Granting heals it without a restart or a spec change.
    let policy = unique("grant");
    policies.apply(&policy, json!({"namespaceSelector": selects(&tenant)}));
    wait_ready("apiintegration/guarded", n, WAIT);
    let id = get_json("apiintegration/guarded", n)["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_string();
    // The policy's status counts the namespace it selects.
    eventually("the policy's status", WAIT, || {
        let st = get_json(&format!("apigatewayaccess/{policy}"), "default")["status"].clone();
        (st["matchedNamespaces"] == 1).then_some(())
    });

    // Revoking (the namespace loses its label) is seen at once, and a spec change then writes nothing.
    kubectl_ok(&["label", "namespace", n, "tenant-"]);
    wait_not_ready("guarded", n, "NotPermitted");
    let before = writes(op);
    Manifest::http_proxy("guarded", &api)
        .spec_field("description", "changed while revoked")
        .apply(n);
    wait_not_ready("guarded", n, "NotPermitted");
    eventually("the operator to look at the new generation", WAIT, || {
        let o = get_json("apiintegration/guarded", n);
        (o["status"]["observedGeneration"] == o["metadata"]["generation"]).then_some(())
    });
    assert_eq!(writes(op), before, "no AWS write without permission");
    assert!(
        moto.integration(&api, &id)
            .unwrap()
            .get("Description")
            .is_none()
    );

    // Deleting without permission keeps the finalizer and the integration.
    kubectl_ok(&["delete", "apiintegration/guarded", "-n", n, "--wait=false"]);
    wait_not_ready("guarded", n, "NotPermitted");
    assert!(moto.integration(&api, &id).is_some());
    assert_eq!(writes(op), before);

    // Permission back (label restored): the deletion completes and the integration goes.
    kubectl_ok(&["label", "namespace", n, &format!("tenant={tenant}")]);
    kubectl_ok(&[
        "wait",
        "--for=delete",
        "apiintegration/guarded",
        "-n",
        n,
        "--timeout=60s",
    ]);
    assert!(moto.integration(&api, &id).is_none());
    policies.delete(&policy);
}

#[test]
fn allowlists_by_id_name_glob_tags_and_region() {
    let mut policies = Policies(vec![]);
    let (s, tenant) = policy_scenario("ten-allow", false);
    let (n, moto, op) = (&s.ns.name, &s.moto, &s.op);
    let prefix = unique("team");
    let by_name = create_named_api(&moto.client, &format!("{prefix}-orders"), &[]);
    let by_tag = create_named_api(&moto.client, &unique("other"), &[("team", &prefix)]);
    let by_id = create_named_api(&moto.client, &unique("other"), &[]);
    let outside = create_named_api(
        &moto.client,
        &unique("foreign"),
        &[("team", "someone-else")],
    );
    let eu = Moto::in_region("eu-west-1");
    let eu_api = create_named_api(&eu.client, &format!("{prefix}-eu"), &[]);
    policies.apply(
        &unique("allow"),
        json!({"namespaceSelector": selects(&tenant), "regions": ["us-east-1"],
               "apis": [{"name": format!("{prefix}-*")}, {"tags": {"team": prefix}}, {"id": by_id}]}),
    );
    for (name, api) in [
        ("by-name", &by_name),
        ("by-tag", &by_tag),
        ("by-id", &by_id),
        ("outside", &outside),
    ] {
        Manifest::http_proxy(name, api).apply(n);
    }
    Manifest::http_proxy("in-eu", &eu_api)
        .spec_field("region", "eu-west-1")
        .apply(n);
    for name in ["by-name", "by-tag", "by-id"] {
        wait_ready(&format!("apiintegration/{name}"), n, WAIT);
    }
    let message = wait_not_ready("outside", n, "NotPermitted");
    assert!(message.contains(&outside), "names the API: {message}");
    let message = wait_not_ready("in-eu", n, "NotPermitted");
    assert!(message.contains("eu-west-1"), "names the region: {message}");
    assert!(moto.integrations(&outside).is_empty() && eu.integrations(&eu_api).is_empty());
    assert_eq!(op.count("CreateIntegration"), 3);
    // Reading the outside API's name and tags was the only call made for it.
    assert!(
        op.calls().iter().all(|c| c.region == "us-east-1"),
        "nothing in eu-west-1"
    );
}

/// An API Gateway client acting in `role`'s account (moto keeps accounts apart).
fn client_in_account_of(role: &str) -> apigw::Client {
    let creds = assume(role);
    let conf = apigw::Config::builder()
        .behavior_version(apigw::config::BehaviorVersion::latest())
        .region(apigw::config::Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(apigw::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "test",
        ))
        .build();
    apigw::Client::from_conf(conf)
}

/// Credentials for `role` in moto (which acts in the role's account for them).
fn assume(role: &str) -> aws_sdk_sts::types::Credentials {
    let env = stack_env();
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
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
fn a_role_in_a_second_account_signs_every_call_for_its_tenant() {
    let mut policies = Policies(vec![]);
    let (s, tenant) = policy_scenario("ten-account", true);
    let (n, op) = (&s.ns.name, &s.op);
    let role = format!("arn:aws:iam::{TEAM_ACCOUNT}:role/{}", unique("apigw-team"));
    // The team's API lives in the team's account.
    let team = client_in_account_of(&role);
    let api = create_named_api(&team, &unique("team-api"), &[]);
    // The default account does not see it.
    assert!(block_on(s.moto.client.get_api().api_id(&api).send()).is_err());
    policies.apply(
        &unique("team"),
        json!({"namespaceSelector": selects(&tenant), "roleArn": role, "externalId": "ext-7f3a"}),
    );
    Manifest::http_proxy("team-int", &api).apply(n);
    Manifest::http_proxy("team-int-2", &api).apply(n);
    wait_ready("apiintegration/team-int", n, WAIT);
    wait_ready("apiintegration/team-int-2", n, WAIT);
    let held = block_on(team.get_integrations().api_id(&api).send()).unwrap();
    assert_eq!(
        held.items().len(),
        2,
        "both integrations are in the team's account"
    );

    let seen = s.proxy().seen();
    let assume_calls: Vec<_> = seen
        .iter()
        .filter(|r| {
            r.text.contains("Action=AssumeRole")
                && r.text
                    .contains(&format!("RoleSessionName=apigw-operator-{n}"))
        })
        .collect();
    println!("AssumeRole calls for {role}: {}", assume_calls.len());
    assert_eq!(
        assume_calls.len(),
        1,
        "one AssumeRole per role and session, then cached"
    );
    assert!(assume_calls[0].text.contains("ExternalId=ext-7f3a"));
    let default_key = stack_env()["AWS_ACCESS_KEY_ID"].clone();
    let api_keys: std::collections::BTreeSet<Option<String>> = seen
        .iter()
        .filter(|r| r.text.contains(" /v2/apis"))
        .map(|r| r.access_key.clone())
        .collect();
    assert_eq!(api_keys.len(), 1, "{api_keys:?}");
    assert_ne!(
        api_keys.iter().next().unwrap().as_deref(),
        Some(default_key.as_str())
    );
    assert!(op.count("CreateIntegration") == 2);
}

/// API Gateway's quota is per account and region: two accounts each get their own token bucket, so
/// their creates proceed side by side, each within the configured rate.
#[test]
fn two_accounts_each_get_their_own_quota() {
    const RATE: u64 = 2;
    const BURST: u64 = 1;
    const EACH: usize = 6;
    let mut policies = Policies(vec![]);
    let tenant = unique("tenant");
    let b = Scenario::builder("ten-quota").args(&[
        "--tenancy",
        "policy",
        "--aws-rate",
        "2",
        "--aws-burst",
        "1",
    ]);
    kubectl_ok(&[
        "label",
        "namespace",
        &b.ns.name,
        &format!("tenant={tenant}"),
    ]);
    let s = b.start();
    let (n, op) = (&s.ns.name, &s.op);
    let accounts = ["222233334444", "333344445555"];
    let mut apis = vec![];
    for account in accounts {
        let role = format!("arn:aws:iam::{account}:role/{}", unique("apigw"));
        let api = create_named_api(&client_in_account_of(&role), &unique("quota"), &[]);
        // One policy per account, each allowing only its own API (by ID).
        policies.apply(
            &unique(&format!("quota-{account}")),
            json!({"namespaceSelector": selects(&tenant), "roleArn": role, "apis": [{"id": api}]}),
        );
        apis.push(api);
    }
    for (a, api) in apis.iter().enumerate() {
        for i in 0..EACH {
            Manifest::http_proxy(&format!("q{a}-{i}"), api).apply(n);
        }
    }
    wait_ready("apiintegrations", n, Duration::from_secs(120));
    let calls = op.calls();
    let window = |account: Option<&str>| -> u64 {
        let ms: Vec<u64> = calls
            .iter()
            .filter(|c| account.is_none_or(|a| c.account == a))
            .map(|c| c.ms)
            .collect();
        // The most calls in any one-second window.
        ms.iter()
            .map(|start| {
                ms.iter()
                    .filter(|t| **t >= *start && **t < start + 1000)
                    .count() as u64
            })
            .max()
            .unwrap_or(0)
    };
    for account in accounts {
        let mine = calls.iter().filter(|c| c.account == account).count();
        assert!(mine >= EACH, "{account} made {mine} calls");
        let peak = window(Some(account));
        println!("account {account}: {mine} calls, at most {peak} in one second");
        assert!(
            peak <= RATE + BURST,
            "{account}: {peak} calls in one second"
        );
    }
    let both = window(None);
    println!("both accounts: at most {both} calls in one second");
    assert!(
        both > RATE + BURST,
        "the accounts never progressed side by side ({both} calls at most in a second)"
    );
    assert!(
        calls.iter().all(|c| c.account != "self"),
        "every call went with a policy's role"
    );
}

/// A role the operator may not assume: AccessDenied naming the role, nothing created.
#[test]
fn a_refused_assume_role_is_access_denied_naming_the_role() {
    let mut policies = Policies(vec![]);
    let (s, tenant) = policy_scenario("ten-denied", true);
    let (n, moto, op) = (&s.ns.name, &s.moto, &s.op);
    let role = format!("arn:aws:iam::{TEAM_ACCOUNT}:role/{}", unique("untrusting"));
    s.proxy().add(Fault::new(
        "Action=AssumeRole",
        403,
        "AccessDenied",
        "User is not authorized to perform: sts:AssumeRole",
    ));
    policies.apply(
        &unique("denied"),
        json!({"namespaceSelector": selects(&tenant), "roleArn": role}),
    );
    let api = moto.create_api("HTTP");
    Manifest::http_proxy("refused", &api).apply(n);
    let message = wait_not_ready("refused", n, "AccessDenied");
    assert!(message.contains(&role), "{message}");
    assert_eq!(op.count("CreateIntegration"), 0);
    assert!(s.proxy().injected() >= 1);
    policies.release(&tenant);
}
