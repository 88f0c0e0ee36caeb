//! RBAC for tenancy (issue 12 item 6, design §7), against the real API server and kube-controller-manager's
//! clusterrole-aggregation-controller:
//! - the chart's ClusterRoles aggregated into Kubernetes' built-in `edit`/`admin`/`view` let the stack's
//!   unprivileged user (`tester`), given `edit` or `view` in one namespace by a RoleBinding, manage or read
//!   ApiIntegrations there, and nowhere else;
//! - none of them lets a tenant create, change or delete an ApiGatewayAccess or write its status;
//! - the operator's own ServiceAccount reads ApiGatewayAccess and Namespaces and writes only the status of
//!   ApiGatewayAccess, with and without watchNamespace.
//!
//! Every test installs its own release (random name, replicas=0: no operator runs, none is needed) and
//! uninstalls it; tests run in parallel with each other and with the other test files. Other releases'
//! aggregated roles carry the same rules, so they never make a check here pass or fail by accident.

mod common;
use common::*;
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

const CHART: &str = "charts/apigw-operator";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn helm(args: &[&str]) -> Output {
    cmd("helm").args(args).output().expect("helm runs")
}

/// A Helm release of the chart, uninstalled when dropped (its ClusterRoles and bindings are
/// cluster-scoped: deleting the namespace would leave them behind).
struct Release {
    name: String,
    namespace: String,
}

impl Release {
    fn install(prefix: &str, namespace: &str, sets: &[String]) -> Release {
        let name = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let chart = repo_path(CHART).display().to_string();
        let mut args = vec![
            "install",
            &name,
            &chart,
            "--namespace",
            namespace,
            "--set",
            "replicas=0",
        ];
        for s in sets {
            args.extend(["--set", s.as_str()]);
        }
        let out = helm(&args);
        if !out.status.success() {
            let _ = helm(&["uninstall", &name, "--namespace", namespace]);
            panic!("helm {args:?} failed: {}", text(&out));
        }
        Release {
            name,
            namespace: namespace.to_string(),
        }
    }

    fn fullname(&self) -> String {
        format!("{}-apigw-operator", self.name)
    }

    fn service_account(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace,
            self.fullname()
        )
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", &self.name, "--namespace", &self.namespace]);
    }
}

/// kubectl as the stack's unprivileged user `tester` (its own kubeconfig, its own token).
fn tester(args: &[&str]) -> Output {
    let kc = stack_env()["APIGW_TESTER_KUBECONFIG"].clone();
    let mut full = vec!["--kubeconfig", kc.as_str()];
    full.extend(args);
    kubectl(&full)
}

fn tester_stdin(args: &[&str], yaml: &str) -> Output {
    let kc = stack_env()["APIGW_TESTER_KUBECONFIG"].clone();
    let mut full = vec!["--kubeconfig", kc.as_str()];
    full.extend(args);
    kubectl_stdin(&full, yaml)
}

/// The answer of `kubectl auth can-i`, run by `run` (as the tester itself, or as the admin with --as).
fn answer(out: Output, args: &[&str]) -> bool {
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (out.status.success(), said.as_str()) {
        (true, "yes") => true,
        (false, "no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: unexpected answer {}",
            text(&out)
        ),
    }
}

/// What the tester may do, asked by the tester itself (a SelfSubjectAccessReview with its own token).
fn tester_can(args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend(args);
    answer(tester(&full), args)
}

/// What `user` may do, asked by the admin (a SubjectAccessReview).
fn can_i(user: &str, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i", "--as", user];
    full.extend(args);
    answer(kubectl(&full), args)
}

/// A refusal by RBAC of the tester, not any other error.
fn assert_forbidden(out: &Output, what: &str) {
    let all = text(out);
    assert!(!out.status.success(), "the tester could {what}: {all}");
    assert!(
        all.contains("forbidden") && all.contains("User \"tester\""),
        "{what}: expected an RBAC refusal of the tester, got: {all}"
    );
}

/// The rules of a ClusterRole.
fn rules_of(clusterrole: &str) -> Vec<Value> {
    let role: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "clusterrole",
        clusterrole,
        "-o",
        "json",
    ]))
    .unwrap();
    role["rules"].as_array().cloned().unwrap_or_default()
}

fn has(list: &Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(item)))
}

/// Whether `rules` grant `verb` on `resource` in apigw.dev (literally or by a wildcard).
fn grants(rules: &[Value], verb: &str, resource: &str) -> bool {
    rules.iter().any(|r| {
        (has(&r["apiGroups"], "apigw.dev") || has(&r["apiGroups"], "*"))
            && (has(&r["resources"], resource) || has(&r["resources"], "*"))
            && (has(&r["verbs"], verb) || has(&r["verbs"], "*"))
            && r["resourceNames"].is_null()
    })
}

/// Waits until kube-controller-manager has aggregated the chart's rules into the built-in role.
fn wait_aggregated(builtin: &str, verb: &str) {
    eventually(
        &format!(
            "the clusterrole-aggregation-controller to put `{verb} apiintegrations` into `{builtin}`"
        ),
        Duration::from_secs(60),
        || grants(&rules_of(builtin), verb, "apiintegrations").then_some(()),
    );
}

/// Nothing of the built-in roles reaches ApiGatewayAccess (none of their rules names it or a wildcard).
fn assert_builtin_roles_leave_apigatewayaccess_alone() {
    for builtin in ["view", "edit", "admin"] {
        let rules = rules_of(builtin);
        for res in ["apigatewayaccesses", "apigatewayaccesses/status"] {
            for verb in [
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection",
            ] {
                assert!(
                    !grants(&rules, verb, res),
                    "the built-in `{builtin}` role grants {verb} on {res}: {rules:#?}"
                );
            }
        }
    }
}

/// An ApiGatewayAccess that would let `namespace` use every API with the operator's identity: what a tenant
/// who could write policies would create. The admin's server-side dry run proves it valid, so a refusal of
/// the tester is RBAC, not validation.
fn policy_for(name: &str, namespace: &str) -> String {
    let policy = json!({
        "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess",
        "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
    })
    .to_string();
    let out = kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &policy);
    assert!(
        out.status.success(),
        "the admin's dry run refused the policy: {}",
        text(&out)
    );
    policy
}

/// A real ApiGatewayAccess made by the admin (selecting no namespace of anyone's), deleted when dropped.
struct AdminPolicy(String);

impl AdminPolicy {
    fn new() -> AdminPolicy {
        let name = format!("rbac-admin-{:08x}", rand::random::<u32>());
        let policy = json!({
            "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess",
            "metadata": {"name": name},
            "spec": {"namespaceSelector": {"matchLabels": {"apigw.dev/rbac-test": name}}},
        });
        let out = kubectl_stdin(&["create", "-f", "-"], &policy.to_string());
        assert!(out.status.success(), "{}", text(&out));
        AdminPolicy(name)
    }
}

impl Drop for AdminPolicy {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "apigatewayaccess", &self.0, "--wait=false"]);
    }
}

/// The tester is refused everything on ApiGatewayAccess, asked and tried for real.
fn assert_tester_cannot_touch_apigatewayaccess(tenant: &str) {
    let admin = AdminPolicy::new();
    let named = format!("apigatewayaccesses.apigw.dev/{}", admin.0);
    let mut wrong = Vec::new();
    for args in [
        vec!["create", "apigatewayaccesses.apigw.dev"],
        vec!["update", &named],
        vec!["patch", &named],
        vec!["delete", &named],
        vec!["deletecollection", "apigatewayaccesses.apigw.dev"],
        vec!["patch", &named, "--subresource=status"],
        vec!["update", &named, "--subresource=status"],
        // A RoleBinding grants nothing on cluster-scoped kinds, not even in the tenant's own namespace.
        vec!["create", "apigatewayaccesses.apigw.dev", "-n", tenant],
        vec!["patch", "apigatewayaccesses.apigw.dev", "-n", tenant],
    ] {
        if tester_can(&args) {
            wrong.push(format!("tester may {args:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let policy = policy_for(
        &format!("rbac-tenant-{:08x}", rand::random::<u32>()),
        tenant,
    );
    assert_forbidden(
        &tester_stdin(&["create", "-f", "-"], &policy),
        "create an ApiGatewayAccess",
    );
    assert_forbidden(
        &tester_stdin(&["apply", "--server-side", "-f", "-"], &policy),
        "server-side apply an ApiGatewayAccess",
    );
    assert_forbidden(
        &tester(&[
            "patch",
            "apigatewayaccess",
            &admin.0,
            "--type=merge",
            "-p",
            r#"{"spec":{"namespaceSelector":{}}}"#,
        ]),
        "widen an ApiGatewayAccess to every namespace",
    );
    assert_forbidden(
        &tester(&[
            "patch",
            "apigatewayaccess",
            &admin.0,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"matchedNamespaces":0}}"#,
        ]),
        "patch the status of an ApiGatewayAccess",
    );
    assert_forbidden(
        &tester(&["delete", "apigatewayaccess", &admin.0]),
        "delete an ApiGatewayAccess",
    );
    // And the policy is untouched.
    let spec = kubectl_ok(&[
        "get",
        "apigatewayaccess",
        &admin.0,
        "-o",
        "jsonpath={.spec.namespaceSelector.matchLabels}",
    ]);
    assert!(spec.contains(&admin.0), "the policy changed: {spec}");
}

fn integration(name: &str, namespace: &str) -> String {
    Manifest::http_proxy(name, "a1b2c3d4e5")
        .uri("https://example.com/orders")
        .namespace(namespace)
        .yaml()
}

#[test]
fn edit_manages_apiintegrations_in_its_namespace_and_nothing_on_apigatewayaccess() {
    let ops = TempNamespace::new("rbac-edit-ops");
    let tenant = TempNamespace::new("rbac-edit-t");
    let elsewhere = TempNamespace::new("rbac-edit-x");
    let (t, x) = (tenant.name.as_str(), elsewhere.name.as_str());

    // Negative control: before any binding, the tester may not create ApiIntegrations in the tenant's
    // namespace, so what `edit` lets through below is `edit`'s doing.
    assert_forbidden(
        &tester_stdin(&["create", "-f", "-"], &integration("before", t)),
        "create an ApiIntegration without a binding",
    );

    let _rel = Release::install("rbac-edit", &ops.name, &[]);
    wait_aggregated("edit", "create");
    wait_aggregated("admin", "create");
    assert_builtin_roles_leave_apigatewayaccess_alone();

    kubectl_ok(&[
        "create",
        "rolebinding",
        "tester-edit",
        "--clusterrole=edit",
        "--user=tester",
        "-n",
        t,
    ]);
    eventually(
        "the tester's RoleBinding to edit to take effect",
        Duration::from_secs(30),
        || tester_can(&["create", "apiintegrations.apigw.dev", "-n", t]).then_some(()),
    );

    let mut wrong = Vec::new();
    for verb in [
        "create",
        "get",
        "list",
        "watch",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        if !tester_can(&[verb, "apiintegrations.apigw.dev", "-n", t]) {
            wrong.push(format!(
                "edit may not {verb} apiintegrations in its namespace"
            ));
        }
        if tester_can(&[verb, "apiintegrations.apigw.dev", "-n", x]) {
            wrong.push(format!("edit in {t} may {verb} apiintegrations in {x}"));
        }
    }
    if !tester_can(&[
        "get",
        "apiintegrations.apigw.dev",
        "--subresource=status",
        "-n",
        t,
    ]) {
        wrong.push("edit may not read apiintegrations/status".into());
    }
    // The status is the operator's: a tenant cannot fake Ready.
    for verb in ["update", "patch"] {
        if tester_can(&[
            verb,
            "apiintegrations.apigw.dev",
            "--subresource=status",
            "-n",
            t,
        ]) {
            wrong.push(format!("edit may {verb} apiintegrations/status"));
        }
    }
    if tester_can(&["list", "apiintegrations.apigw.dev", "-A"]) {
        wrong.push("edit in one namespace may list apiintegrations everywhere".into());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // For real, as the tester: create, read, change and delete one in its namespace (no operator runs,
    // so nothing puts a finalizer on it).
    let name = "tenant-made";
    let out = tester_stdin(&["create", "-f", "-"], &integration(name, t));
    assert!(
        out.status.success(),
        "the tester could not create: {}",
        text(&out)
    );
    let got = tester(&[
        "get",
        "apiintegration",
        name,
        "-n",
        t,
        "-o",
        "jsonpath={.spec.apiId}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "a1b2c3d4e5",
        "{}",
        text(&got)
    );
    let out = tester(&[
        "patch",
        "apiintegration",
        name,
        "-n",
        t,
        "--type=merge",
        "-p",
        r#"{"spec":{"description":"changed by the tenant"}}"#,
    ]);
    assert!(
        out.status.success(),
        "the tester could not patch: {}",
        text(&out)
    );
    assert_forbidden(
        &tester(&[
            "patch",
            "apiintegration",
            name,
            "-n",
            t,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"integrationId":"fake"}}"#,
        ]),
        "patch the status of an ApiIntegration",
    );
    let out = tester(&["delete", "apiintegration", name, "-n", t, "--timeout=30s"]);
    assert!(
        out.status.success(),
        "the tester could not delete: {}",
        text(&out)
    );
    assert!(
        !kubectl(&["get", "apiintegration", name, "-n", t])
            .status
            .success(),
        "the ApiIntegration is still there"
    );

    // Not in a namespace it was given nothing in.
    assert_forbidden(
        &tester_stdin(&["create", "-f", "-"], &integration(name, x)),
        "create an ApiIntegration in another namespace",
    );
    assert_forbidden(
        &tester(&["get", "apiintegrations", "-n", x]),
        "list ApiIntegrations in another namespace",
    );

    assert_tester_cannot_touch_apigatewayaccess(t);
}

#[test]
fn view_reads_apiintegrations_and_changes_nothing() {
    let ops = TempNamespace::new("rbac-view-ops");
    let tenant = TempNamespace::new("rbac-view-t");
    let t = tenant.name.as_str();
    let _rel = Release::install("rbac-view", &ops.name, &[]);
    wait_aggregated("view", "list");
    assert_builtin_roles_leave_apigatewayaccess_alone();

    // One made by the admin, for the tester to read.
    let name = "admin-made";
    let out = kubectl_stdin(&["create", "-f", "-"], &integration(name, t));
    assert!(out.status.success(), "{}", text(&out));

    kubectl_ok(&[
        "create",
        "rolebinding",
        "tester-view",
        "--clusterrole=view",
        "--user=tester",
        "-n",
        t,
    ]);
    eventually(
        "the tester's RoleBinding to view to take effect",
        Duration::from_secs(30),
        || tester_can(&["list", "apiintegrations.apigw.dev", "-n", t]).then_some(()),
    );

    let mut wrong = Vec::new();
    for verb in ["get", "list", "watch"] {
        if !tester_can(&[verb, "apiintegrations.apigw.dev", "-n", t]) {
            wrong.push(format!("view may not {verb} apiintegrations"));
        }
    }
    if !tester_can(&[
        "get",
        "apiintegrations.apigw.dev",
        "--subresource=status",
        "-n",
        t,
    ]) {
        wrong.push("view may not read apiintegrations/status".into());
    }
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        if tester_can(&[verb, "apiintegrations.apigw.dev", "-n", t]) {
            wrong.push(format!("view may {verb} apiintegrations"));
        }
    }
    for verb in ["update", "patch"] {
        if tester_can(&[
            verb,
            "apiintegrations.apigw.dev",
            "--subresource=status",
            "-n",
            t,
        ]) {
            wrong.push(format!("view may {verb} apiintegrations/status"));
        }
    }
    for verb in ["get", "list", "watch"] {
        if tester_can(&[verb, "apigatewayaccesses.apigw.dev"]) {
            wrong.push(format!("view in a namespace may {verb} apigatewayaccesses"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // For real: it reads the admin's ApiIntegration (and its status) and cannot create or delete one.
    let listed = tester(&["get", "apiintegrations", "-n", t, "-o", "name"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        format!("apiintegration.apigw.dev/{name}")
    );
    let status = tester(&[
        "get",
        "apiintegration",
        name,
        "-n",
        t,
        "--subresource=status",
        "-o",
        "name",
    ]);
    assert!(status.status.success(), "{}", text(&status));
    assert_forbidden(
        &tester_stdin(&["create", "-f", "-"], &integration("viewer-made", t)),
        "create an ApiIntegration with view",
    );
    assert_forbidden(
        &tester(&["delete", "apiintegration", name, "-n", t]),
        "delete an ApiIntegration with view",
    );
    assert_forbidden(
        &tester(&["get", "apigatewayaccesses"]),
        "list ApiGatewayAccess with view",
    );

    assert_tester_cannot_touch_apigatewayaccess(t);
}

/// The operator's ServiceAccount reads ApiGatewayAccess and Namespaces and writes only the policies'
/// status, cluster-wide, whether or not watchNamespace narrows its rights on ApiIntegrations.
#[test]
fn operator_reads_policies_and_namespaces_and_writes_only_policy_status() {
    let ops = TempNamespace::new("rbac-op");
    let watched = TempNamespace::new("rbac-op-w");
    for sets in [vec![], vec![format!("watchNamespace={}", watched.name)]] {
        let rel = Release::install("rbac-op", &ops.name, &sets);
        let sa = rel.service_account();
        eventually(
            "the operator to be allowed to list ApiGatewayAccess (ClusterRoleBinding <name>-tenancy)",
            Duration::from_secs(30),
            || can_i(&sa, &["list", "apigatewayaccesses.apigw.dev"]).then_some(()),
        );
        let policy = "apigatewayaccesses.apigw.dev/some-policy";
        let allowed: &[&[&str]] = &[
            &["get", policy],
            &["list", "apigatewayaccesses.apigw.dev"],
            &["watch", "apigatewayaccesses.apigw.dev"],
            &["get", policy, "--subresource=status"],
            &["patch", policy, "--subresource=status"],
            &["update", policy, "--subresource=status"],
            &["get", "namespaces/some-namespace"],
            &["list", "namespaces"],
            &["watch", "namespaces"],
            &[
                "get",
                "customresourcedefinitions.apiextensions.k8s.io/apigatewayaccesses.apigw.dev",
            ],
        ];
        let refused: &[&[&str]] = &[
            &["create", "apigatewayaccesses.apigw.dev"],
            &["update", policy],
            &["patch", policy],
            &["delete", policy],
            &["deletecollection", "apigatewayaccesses.apigw.dev"],
            &["update", policy, "--subresource=finalizers"],
            &["create", "namespaces"],
            &["update", "namespaces/some-namespace"],
            &["patch", "namespaces/some-namespace"],
            &["delete", "namespaces/some-namespace"],
            &["get", "secrets", "-n", &watched.name],
            &["list", "secrets", "-A"],
            &["get", "secrets", "-n", &ops.name],
            &["list", "configmaps", "-A"],
            &[
                "update",
                "customresourcedefinitions.apiextensions.k8s.io/apigatewayaccesses.apigw.dev",
            ],
            &["list", "customresourcedefinitions.apiextensions.k8s.io"],
            &["*", "*"],
        ];
        let mut wrong = Vec::new();
        for args in allowed {
            if !can_i(&sa, args) {
                wrong.push(format!("refused but needed: {args:?}"));
            }
        }
        for args in refused {
            if can_i(&sa, args) {
                wrong.push(format!("allowed but not needed: {args:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "RBAC of {sa} with {sets:?}:\n{}",
            wrong.join("\n")
        );
    }
}

/// `--tenancy` reaches the operator only when it is not the default (so the chart runs binaries that
/// predate the flag), the schema refuses other modes, and the aggregated roles can be left out.
#[test]
fn tenancy_mode_and_aggregated_roles_render_as_configured() {
    let chart = repo_path(CHART).display().to_string();
    let render = |sets: &[&str]| -> Vec<Value> {
        let mut args = vec!["template", "r", chart.as_str()];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = helm(&args);
        assert!(out.status.success(), "helm {args:?}: {}", text(&out));
        serde_saphyr::from_slice_multiple::<Value>(&out.stdout)
            .expect("helm renders YAML")
            .into_iter()
            .filter(|v| !v.is_null())
            .collect()
    };
    let args_of = |docs: &[Value]| -> Vec<String> {
        let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let aggregated = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .filter(|d| d["kind"] == "ClusterRole")
            .filter(|d| {
                d["metadata"]["labels"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
            })
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };

    let default = render(&[]);
    assert!(
        !args_of(&default).iter().any(|a| a.starts_with("--tenancy")),
        "{:?}",
        args_of(&default)
    );
    assert_eq!(
        aggregated(&default),
        vec!["r-apigw-operator-view", "r-apigw-operator-edit"]
    );
    let policy = render(&["tenancy.mode=policy"]);
    assert!(args_of(&policy).contains(&"--tenancy=policy".to_string()));
    assert!(aggregated(&render(&["rbac.aggregateToDefaultRoles=false"])).is_empty());

    let out = helm(&["template", "r", &chart, "--set", "tenancy.mode=closed"]);
    assert!(!out.status.success(), "tenancy.mode=closed was accepted");
    assert!(text(&out).contains("/tenancy/mode"), "{}", text(&out));
}
