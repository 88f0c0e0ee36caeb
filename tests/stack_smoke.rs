//! Proves the local stack is a real control plane: RBAC refuses what it does not grant, the controller
//! manager really deletes namespaces and garbage-collects dependents, and CRDs become Established.

mod common;
use common::*;
use std::time::Duration;

fn tester(args: &[&str]) -> std::process::Output {
    let kc = &stack_env()["APIGW_TESTER_KUBECONFIG"];
    cmd("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn unprivileged_user_is_refused_what_rbac_does_not_grant() {
    let ns = TempNamespace::new("smoke-rbac");
    // The admin can list secrets there, so the refusal below is RBAC, not a broken namespace.
    kubectl_ok(&["get", "secrets", "-n", &ns.name]);
    let out = tester(&["get", "secrets", "-n", &ns.name]);
    assert!(!out.status.success(), "the tester user listed secrets");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "unexpected error: {err}"
    );
    assert!(
        err.contains("User \"tester\""),
        "refusal does not name the tester user: {err}"
    );

    // Grant exactly one verb on one resource, and see RBAC let that (and only that) through.
    kubectl_ok(&[
        "create",
        "role",
        "cm-reader",
        "--verb=list",
        "--resource=configmaps",
        "-n",
        &ns.name,
    ]);
    kubectl_ok(&[
        "create",
        "rolebinding",
        "cm-reader",
        "--role=cm-reader",
        "--user=tester",
        "-n",
        &ns.name,
    ]);
    eventually(
        "the tester to be allowed to list configmaps",
        Duration::from_secs(20),
        || {
            tester(&["get", "configmaps", "-n", &ns.name])
                .status
                .success()
                .then_some(())
        },
    );
    assert!(!tester(&["get", "secrets", "-n", &ns.name]).status.success());
    assert!(
        !tester(&["create", "configmap", "x", "-n", &ns.name])
            .status
            .success()
    );
}

#[test]
fn namespace_with_an_object_inside_is_really_deleted() {
    let name = format!("smoke-nsdel-{:08x}", rand::random::<u32>());
    kubectl_ok(&["create", "namespace", &name]);
    kubectl_ok(&[
        "create",
        "configmap",
        "inside",
        "-n",
        &name,
        "--from-literal=k=v",
    ]);
    kubectl_ok(&["delete", "namespace", &name, "--wait=false"]);
    eventually(
        "the namespace to disappear",
        Duration::from_secs(90),
        || {
            let out = kubectl(&["get", "namespace", &name]);
            (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"))
                .then_some(())
        },
    );
}

#[test]
fn garbage_collector_removes_dependents() {
    let ns = TempNamespace::new("smoke-gc");
    kubectl_ok(&["create", "configmap", "owner", "-n", &ns.name]);
    let uid = kubectl_ok(&[
        "get",
        "configmap",
        "owner",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let dependent = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  namespace: {}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {uid}\n",
        ns.name
    );
    let out = kubectl_stdin(&["apply", "-f", "-"], &dependent);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl_ok(&["delete", "configmap", "owner", "-n", &ns.name]);
    eventually(
        "the dependent to be garbage-collected",
        Duration::from_secs(60),
        || {
            (!kubectl(&["get", "configmap", "dependent", "-n", &ns.name])
                .status
                .success())
            .then_some(())
        },
    );
}

#[test]
fn applied_crd_becomes_established() {
    let group = format!("smoke{:08x}.apigw.dev", rand::random::<u32>());
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object, properties: {{spec: {{type: object, properties: {{size: {{type: integer}}}}}}}}}}\n"
    );
    let out = kubectl_stdin(&["apply", "-f", "-"], &crd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = format!("crd/widgets.{group}");
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        &name,
    ]);
    let status = kubectl_ok(&[
        "get",
        &name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(status, "True");
    kubectl_ok(&["delete", &name]);
}
