//! The Helm chart (charts/apigw-operator), installed for real: it lints clean, its manifests pass the API
//! server's dry run, a Pod-Security-"restricted" namespace admits its pods, its RBAC refuses what the operator
//! does not need, and the operator binary, holding nothing but a token of the chart's ServiceAccount, takes an
//! ApiIntegration through create, update and delete against moto.
//!
//! Every test installs its own release (random name) into namespaces of its own and uninstalls it, so the
//! tests run in parallel with each other and with the other test files against the same stack.

mod common;
mod e2e;
use common::*;
use e2e::Scenario;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const CHART: &str = "charts/apigw-operator";

fn chart() -> String {
    repo_path(CHART).display().to_string()
}

fn helm(args: &[&str]) -> Output {
    cmd("helm").args(args).output().expect("helm runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// helm that must succeed; returns stdout.
fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    assert!(out.status.success(), "helm {args:?} failed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A Helm release of the chart, uninstalled when dropped (ClusterRoles and bindings would outlive the
/// namespace otherwise).
struct Release {
    name: String,
    namespace: String,
    /// What `helm install` printed (stdout and stderr, where the API server's warnings go).
    output: String,
}

impl Release {
    fn install(prefix: &str, namespace: &str, sets: &[String]) -> Release {
        let name = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let chart = chart();
        let mut args = vec!["install", &name, &chart, "--namespace", namespace];
        for s in sets {
            args.extend(["--set", s.as_str()]);
        }
        let out = helm(&args);
        let output = text(&out);
        if !out.status.success() {
            // A failed install can still have created cluster-scoped objects.
            let _ = helm(&["uninstall", &name, "--namespace", namespace]);
            panic!("helm {args:?} failed: {output}");
        }
        Release {
            name,
            namespace: namespace.to_string(),
            output,
        }
    }

    /// The chart's full name for this release (the ServiceAccount, Deployment and Lease are named so).
    fn fullname(&self) -> String {
        if self.name.contains("apigw-operator") {
            self.name.clone()
        } else {
            format!("{}-apigw-operator", self.name)
        }
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

#[test]
fn chart_lints_clean_and_its_schema_refuses_bad_values() {
    for sets in [
        vec![],
        vec![
            "watchNamespace=team-a",
            "region=eu-west-1",
            "aws.credentialsSecret.name=aws-keys",
            "aws.endpointUrl=https://apigateway.eu-west-1.amazonaws.com",
            "aws.rateLimit=2.5",
            "aws.minRate=1.25",
            "leaderElection.enabled=false",
            "metrics.service.enabled=false",
            "logFormat=json",
        ],
    ] {
        let chart = chart();
        let mut args = vec!["lint", "--strict", chart.as_str()];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let out = helm(&args);
        let all = text(&out);
        assert!(
            out.status.success(),
            "helm lint --strict {sets:?} failed:\n{all}"
        );
        for bad in ["[WARNING]", "[ERROR]"] {
            assert!(
                !all.contains(bad),
                "helm lint --strict {sets:?} is not clean:\n{all}"
            );
        }
    }

    // values.schema.json refuses what the operator would refuse (or misread) at start-up.
    for (set, why) in [
        ("logFormat=xml", "/logFormat"),
        ("replicas=-1", "/replicas"),
        ("region=Europe", "/region"),
        ("aws.rateLimit=0", "/aws/rateLimit"),
        ("aws.minRate=0", "/aws/minRate"),
        ("resyncSeconds=0", "/resyncSeconds"),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        (
            "aws.credentialsSecret.secretAccessKey=inline",
            "/aws/credentialsSecret",
        ),
        ("imagePullPolicy=Always", "imagePullPolicy"),
    ] {
        let out = helm(&["template", "r", &chart(), "--set", set]);
        let all = text(&out);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            all.contains("values don't meet the specifications of the schema") && all.contains(why),
            "--set {set}: expected a schema error naming {why}, got:\n{all}"
        );
    }
}

#[test]
fn chart_ships_the_crd_from_crds_without_a_copy() {
    let link = repo_path(&format!("{CHART}/crds"));
    let meta = std::fs::symlink_metadata(&link).expect("charts/apigw-operator/crds exists");
    assert!(
        meta.file_type().is_symlink(),
        "{} must be a symlink to ../../crds, not a copy",
        link.display()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("../../crds"));

    let crd = std::fs::read_to_string(repo_path("crds/apiintegrations.apigw.dev.yaml")).unwrap();
    let rendered = helm_ok(&["template", "r", &chart(), "--include-crds"]);
    assert!(
        rendered.contains(crd.trim_end()),
        "helm template --include-crds does not contain crds/apiintegrations.apigw.dev.yaml verbatim"
    );

    // The packaged chart (what a chart repository or OCI registry serves) carries the file itself.
    let dir = TempDir::new("apigw-helm-package");
    helm_ok(&["package", &chart(), "--destination", &dir.path_str()]);
    let tgz = dir.path().join("apigw-operator-0.1.0.tgz");
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(&tgz)
        .arg("apigw-operator/crds/apiintegrations.apigw.dev.yaml")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", text(&out));
    assert!(
        out.stdout == crd.as_bytes(),
        "the packaged chart's CRD differs from crds/"
    );
}

#[test]
fn iam_policy_variants_agree() {
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(repo_path(p)).unwrap())
            .unwrap_or_else(|e| panic!("{p} is not JSON: {e}"))
    };
    let base = read("deploy/iam-policy.json");
    let pass = read("deploy/iam-policy-passrole.json");
    assert_eq!(base["Version"], "2012-10-17");
    assert_eq!(pass["Version"], "2012-10-17");
    let base_st = base["Statement"].as_array().unwrap();
    let pass_st = pass["Statement"].as_array().unwrap();
    // The PassRole variant is the base policy plus exactly one statement.
    assert_eq!(&pass_st[..base_st.len()], &base_st[..]);
    assert_eq!(pass_st.len(), base_st.len() + 1);
    let extra = &pass_st[base_st.len()];
    assert_eq!(extra["Action"], "iam:PassRole");
    assert_eq!(
        extra["Condition"]["StringEquals"]["iam:PassedToService"],
        "apigateway.amazonaws.com"
    );
    // Only API Gateway's four verbs, only under /apis (and reading the API and VPC link lists).
    for st in base_st {
        assert_eq!(st["Effect"], "Allow");
        let actions: Vec<&str> = match &st["Action"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
            other => panic!("unexpected Action {other}"),
        };
        for a in actions {
            assert!(
                [
                    "apigateway:GET",
                    "apigateway:POST",
                    "apigateway:PATCH",
                    "apigateway:DELETE"
                ]
                .contains(&a),
                "unexpected action {a}"
            );
        }
        let resources: Vec<&str> = match &st["Resource"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
            other => panic!("unexpected Resource {other}"),
        };
        for resource in resources {
            // Under /apis/, or (read only, for apiRef and connectionRef) the lists of APIs and VPC links.
            let listing = [
                "arn:aws:apigateway:*::/apis",
                "arn:aws:apigateway:*::/vpclinks",
            ]
            .contains(&resource);
            assert!(
                resource.starts_with("arn:aws:apigateway:*::/apis/")
                    || (listing && st["Action"] == "apigateway:GET"),
                "{resource}"
            );
        }
    }
}

/// The Deployment's arguments are flags the operator binary knows (the chart and the CLI are one contract).
#[test]
fn deployment_args_are_flags_the_operator_accepts() {
    let rendered = helm_ok(&[
        "template",
        "r",
        &chart(),
        "--set",
        "region=eu-west-1",
        "--set",
        "watchNamespace=team-a",
        "--set",
        "tenancy.mode=policy",
    ]);
    let deployment = serde_saphyr::from_multiple::<Value>(&rendered)
        .expect("helm renders YAML")
        .into_iter()
        .find(|v| v["kind"] == "Deployment")
        .expect("a Deployment is rendered");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "run");
    let help = Command::new(env!("CARGO_BIN_EXE_apigw-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let unknown: Vec<&str> = args[1..]
        .iter()
        .map(|a| a.split('=').next().unwrap())
        .filter(|flag| !help.contains(&format!("{flag} ")) && !help.contains(&format!("{flag}\n")))
        .collect();
    assert!(
        unknown.is_empty(),
        "the chart passes flags `apigw-operator run` does not know: {unknown:?}\n{help}"
    );
}

#[test]
fn rendered_manifests_pass_server_side_dry_run() {
    let ns = TempNamespace::new("helm-dry");
    let watched = TempNamespace::new("helm-dry-w");
    let release = format!("dry-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let variants: [Vec<String>; 2] = [
        vec![],
        vec![
            format!("watchNamespace={}", watched.name),
            "region=eu-west-1".into(),
            "aws.credentialsSecret.name=aws-keys".into(),
            "aws.endpointUrl=http://127.0.0.1:4566".into(),
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/apigw".into(),
            "priorityClassName=system-cluster-critical".into(),
            "logFormat=json".into(),
        ],
    ];
    for sets in &variants {
        let chart = chart();
        let mut args = vec![
            "template",
            release.as_str(),
            chart.as_str(),
            "--namespace",
            ns.name.as_str(),
            "--include-crds",
        ];
        for s in sets {
            args.extend(["--set", s.as_str()]);
        }
        let manifests = helm_ok(&args);
        for kind in [
            "kind: CustomResourceDefinition",
            "kind: ServiceAccount",
            "kind: ClusterRole\n",
            "kind: Role\n",
            "kind: RoleBinding",
            "kind: Service\n",
            "kind: Deployment",
        ] {
            assert!(manifests.contains(kind), "{sets:?}: no {kind:?} rendered");
        }
        let out = kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifests);
        assert!(
            out.status.success(),
            "{sets:?}: server-side dry run refused the chart:\n{}",
            text(&out)
        );
        let applied = String::from_utf8_lossy(&out.stdout);
        assert!(
            applied.contains(&format!("deployment.apps/{release}-apigw-operator"))
                && applied.contains("(server dry run)"),
            "{sets:?}: unexpected dry-run answer:\n{applied}"
        );
    }
    // A dry run leaves nothing behind.
    let out = kubectl(&[
        "get",
        "clusterrole",
        &format!("{release}-apigw-operator-manager"),
    ]);
    assert!(!out.status.success(), "the dry run created a ClusterRole");
}

fn restricted_namespace(prefix: &str) -> TempNamespace {
    let ns = TempNamespace::new(prefix);
    kubectl_ok(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    ]);
    ns
}

#[test]
fn install_is_admitted_by_pod_security_restricted() {
    let ns = restricted_namespace("helm-psa");

    // Negative control first: this namespace really enforces "restricted" (a pod that may run as root is
    // refused), so the admission of the chart's pods below means something.
    let rooty = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "may-run-as-root", "namespace": ns.name},
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/x:1",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}}}]}});
    let out = kubectl_stdin(&["create", "-f", "-"], &rooty.to_string());
    let err = text(&out);
    assert!(
        !out.status.success()
            && err.contains("violates PodSecurity")
            && err.contains("runAsNonRoot"),
        "a pod without runAsNonRoot was not refused by Pod Security admission: {err}"
    );

    let rel = Release::install("psa", &ns.name, &[]);
    assert!(
        !rel.output.contains("PodSecurity"),
        "the API server warned about Pod Security on install:\n{}",
        rel.output
    );
    let selector = format!("app.kubernetes.io/instance={}", rel.name);
    let replicas: usize = 2; // the chart's default

    // No scheduler and no kubelet run here: the pods stay Pending, but each exists only if admission let it in.
    let pods = eventually(
        "the ReplicaSet to create the operator's pods",
        Duration::from_secs(60),
        || {
            let names = kubectl_ok(&["get", "pods", "-n", &ns.name, "-l", &selector, "-o", "name"]);
            let names: Vec<String> = names.lines().map(String::from).collect();
            (names.len() == replicas).then_some(names)
        },
    );

    let rs = kubectl_ok(&[
        "get",
        "replicasets",
        "-n",
        &ns.name,
        "-l",
        &selector,
        "-o",
        "json",
    ]);
    let rs: Value = serde_json::from_str(&rs).unwrap();
    let items = rs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "expected one ReplicaSet: {rs}");
    let rs_name = items[0]["metadata"]["name"].as_str().unwrap();
    let failed = kubectl_ok(&[
        "get",
        "events",
        "-n",
        &ns.name,
        "--field-selector",
        &format!(
            "reason=FailedCreate,involvedObject.kind=ReplicaSet,involvedObject.name={rs_name}"
        ),
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    assert!(
        failed.trim().is_empty(),
        "the ReplicaSet failed to create pods: {failed}"
    );

    // And the admitted pods are the hardened ones, not something a mutating webhook made of them.
    let pod: Value = serde_json::from_str(&kubectl_ok(&[
        "get", &pods[0], "-n", &ns.name, "-o", "json",
    ]))
    .unwrap();
    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["args"][0], "run");
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"POD_NAME") && env.contains(&"POD_NAMESPACE"),
        "{env:?}"
    );
    assert_eq!(spec["serviceAccountName"], rel.fullname());
}

/// `kubectl auth can-i` as `user`; true for "yes".
fn can_i(user: &str, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i", "--as", user];
    full.extend(args);
    let out = kubectl(&full);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (out.status.success(), answer.as_str()) {
        (true, "yes") => true,
        (false, "no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: unexpected answer {}",
            text(&out)
        ),
    }
}

#[test]
fn rbac_grants_only_what_the_operator_needs() {
    let ns = TempNamespace::new("helm-rbac");
    let other = TempNamespace::new("helm-rbac-o");
    let rel = Release::install("rbac", &ns.name, &["replicas=0".to_string()]);
    let sa = rel.service_account();
    let lease = rel.fullname();
    let lease_res = format!("leases.coordination.k8s.io/{lease}");

    // RBAC takes effect when the authorizer's cache has seen the bindings.
    eventually(
        "the chart's RoleBindings to take effect",
        Duration::from_secs(20),
        || {
            (can_i(&sa, &["list", "apiintegrations.apigw.dev", "-A"])
                && can_i(&sa, &["get", &lease_res, "-n", &ns.name]))
            .then_some(())
        },
    );

    let o = other.name.as_str();
    let n = ns.name.as_str();
    let allowed: &[&[&str]] = &[
        &["get", "apiintegrations.apigw.dev", "-n", o],
        &["list", "apiintegrations.apigw.dev", "-n", o],
        &["watch", "apiintegrations.apigw.dev", "-A"],
        &["patch", "apiintegrations.apigw.dev", "-n", o],
        &["update", "apiintegrations.apigw.dev", "-n", o],
        &[
            "patch",
            "apiintegrations.apigw.dev",
            "--subresource=status",
            "-n",
            o,
        ],
        &[
            "update",
            "apiintegrations.apigw.dev",
            "--subresource=finalizers",
            "-n",
            o,
        ],
        &["create", "events.events.k8s.io", "-n", o],
        &["create", "leases.coordination.k8s.io", "-n", n],
        &["get", &lease_res, "-n", n],
        &["update", &lease_res, "-n", n],
        &["patch", &lease_res, "-n", n],
        &[
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/apiintegrations.apigw.dev",
        ],
        &["list", "namespaces"],
    ];
    let refused: &[&[&str]] = &[
        &["get", "secrets", "-n", n],
        &["list", "secrets", "-n", o],
        &["list", "secrets", "-A"],
        &["list", "pods", "-n", n],
        &["get", "pods", "-n", o],
        &["create", "configmaps", "-n", n],
        &["get", "configmaps", "-n", n],
        // Namespaces are read (their labels select ApiGatewayAccess policies), never written.
        &["delete", "namespaces"],
        &["patch", "namespaces"],
        &["delete", "apiintegrations.apigw.dev", "-n", o],
        &["create", "apiintegrations.apigw.dev", "-n", o],
        &["deletecollection", "apiintegrations.apigw.dev", "-n", o],
        &["get", "events", "-n", o],
        &["delete", "events", "-n", o],
        // Events are created through events.k8s.io only, and never changed afterwards.
        &["create", "events", "-n", o],
        &["patch", "events.events.k8s.io", "-n", o],
        &["create", "leases.coordination.k8s.io", "-n", o],
        &["update", &lease_res, "-n", o],
        &["get", &lease_res, "-n", o],
        &[
            "update",
            "leases.coordination.k8s.io/kube-controller-manager",
            "-n",
            "kube-system",
        ],
        &[
            "get",
            "leases.coordination.k8s.io/someone-elses-lease",
            "-n",
            n,
        ],
        &["list", "leases.coordination.k8s.io", "-n", n],
        &["delete", &lease_res, "-n", n],
        &["list", "customresourcedefinitions.apiextensions.k8s.io"],
        &[
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/leases.coordination.k8s.io",
        ],
        &[
            "update",
            "customresourcedefinitions.apiextensions.k8s.io/apiintegrations.apigw.dev",
        ],
        &["create", "serviceaccounts", "--subresource=token", "-n", n],
        &["get", "deployments.apps", "-n", n],
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
    assert!(wrong.is_empty(), "RBAC of {sa}:\n{}", wrong.join("\n"));
}

/// A directory of its own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{prefix}-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn path_str(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A kubeconfig for the stack's API server (server and CA or TLS settings taken from the stack's
/// kubeconfig) that authenticates with `token` and nothing else.
fn token_kubeconfig(token: &str, namespace: &str) -> String {
    let cfg: Value = serde_json::from_str(&kubectl_ok(&[
        "config", "view", "--raw", "--minify", "-o", "json",
    ]))
    .unwrap();
    let cluster = cfg["clusters"][0]["cluster"].clone();
    assert!(
        cluster["server"].is_string(),
        "no server in the stack's kubeconfig: {cfg}"
    );
    json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "stack", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa@stack", "context": {"cluster": "stack", "user": "sa", "namespace": namespace}}],
        "current-context": "sa@stack",
    })
    .to_string()
}

#[test]
fn operator_with_only_the_chart_service_account_token_creates_updates_and_deletes() {
    let ns = TempNamespace::new("helm-op");
    // The operator's namespace, made now: the release must know it before the operator starts.
    let setup = Scenario::builder("helm-op-w");
    let work = setup.ns.name.clone();
    // watchNamespace narrows the rights on ApiIntegrations and Events to that namespace (a RoleBinding),
    // the strictest RBAC the chart renders; the operator is run with the matching --watch-namespace.
    let rel = Release::install(
        "op",
        &ns.name,
        &["replicas=0".to_string(), format!("watchNamespace={work}")],
    );
    let sa = rel.fullname();
    let token = kubectl_ok(&["create", "token", &sa, "-n", &ns.name, "--duration=1h"]);
    let token = token.trim();
    assert!(!token.is_empty());

    let dir = TempDir::new("apigw-helm-op");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, token_kubeconfig(token, &work)).unwrap();

    // The token really is the ServiceAccount, and the ServiceAccount really is limited.
    let as_sa = |args: &[&str]| {
        cmd("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let who = as_sa(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        rel.service_account(),
        "{}",
        text(&who)
    );
    assert!(!as_sa(&["get", "secrets", "-n", &work]).status.success());
    eventually(
        "the chart's RoleBinding in the watched namespace to take effect",
        Duration::from_secs(20),
        || {
            as_sa(&["get", "apiintegrations", "-n", &work])
                .status
                .success()
                .then_some(())
        },
    );

    let kubeconfig_path = kubeconfig.display().to_string();
    let s = setup
        .args(&[
            // Leader election on the chart's Lease, in the release namespace: the Role must allow it.
            "--leader-election",
            "--lease-name",
            &sa,
            "--lease-namespace",
            &ns.name,
        ])
        .env("KUBECONFIG", &kubeconfig_path)
        .env("APIGW_LOG", "info")
        .start();
    let (moto, op) = (&s.moto, &s.op);
    let api_id = moto.create_api("HTTP");
    // (integration id, description) of everything moto holds for the API.
    let held = || -> Vec<(String, Option<String>)> {
        moto.integrations(&api_id)
            .iter()
            .map(|i| {
                (
                    i["integrationId"].as_str().unwrap().to_string(),
                    i["description"].as_str().map(String::from),
                )
            })
            .collect()
    };

    let name = "rbac-e2e";
    let manifest = |description: &str| {
        Manifest::http_proxy(name, &api_id)
            .uri("https://example.com")
            .spec_field("description", description)
            .namespace(&work)
            .yaml()
    };
    let out = kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest("created by the chart's account"),
    );
    assert!(out.status.success(), "{}", text(&out));

    // Create.
    let out = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        &format!("apiintegration/{name}"),
        "-n",
        &work,
    ]);
    assert!(
        out.status.success(),
        "the ApiIntegration did not become Ready: {}\n{}\n---- operator stderr ----\n{}",
        text(&out),
        kubectl_ok(&["get", "apiintegration", name, "-n", &work, "-o", "yaml"]),
        op.log_text()
    );
    let id = kubectl_ok(&[
        "get",
        "apiintegration",
        name,
        "-n",
        &work,
        "-o",
        "jsonpath={.status.integrationId}",
    ]);
    assert_eq!(
        held(),
        vec![(
            id.clone(),
            Some("created by the chart's account".to_string())
        )]
    );
    // The Event the operator publishes on create was written with the chart's rights.
    eventually(
        "the operator's Created event",
        Duration::from_secs(20),
        || {
            let ev = kubectl_ok(&[
                "get",
                "events",
                "-n",
                &work,
                "--field-selector",
                &format!("reason=Created,involvedObject.name={name}"),
                "-o",
                "name",
            ]);
            (!ev.trim().is_empty()).then_some(())
        },
    );

    // Update.
    kubectl_ok(&[
        "patch",
        "apiintegration",
        name,
        "-n",
        &work,
        "--type=merge",
        "-p",
        r#"{"spec":{"description":"updated by the chart's account"}}"#,
    ]);
    eventually(
        "moto to hold the new description",
        Duration::from_secs(60),
        || {
            let now = held();
            (now == vec![(
                id.clone(),
                Some("updated by the chart's account".to_string()),
            )])
            .then_some(())
        },
    );

    // Delete: the finalizer lets go only after the integration is gone from API Gateway.
    kubectl_ok(&[
        "delete",
        "apiintegration",
        name,
        "-n",
        &work,
        "--wait=false",
    ]);
    eventually(
        "the ApiIntegration to be deleted and moto to hold no integration",
        Duration::from_secs(60),
        || {
            let gone = !kubectl(&["get", "apiintegration", name, "-n", &work])
                .status
                .success();
            (gone && held().is_empty()).then_some(())
        },
    );

    // No request of the operator's was refused along the way.
    let logs = op.log_text();
    for bad in ["forbidden", "Forbidden", "could not publish event"] {
        assert!(
            !logs.contains(bad),
            "the operator logged {bad:?} running with the chart's ServiceAccount:\n{logs}"
        );
    }
}
