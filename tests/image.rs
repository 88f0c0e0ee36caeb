//! The image built from the repository's Dockerfile runs the way a kubelet runs it: as uid 65532 with a
//! read-only root filesystem (no writable /tmp either), no capabilities, and starts against the stack —
//! takes the Lease and makes an ApiIntegration Ready in moto.
//!
//! The image is `$APIGW_IMAGE` when `cargo xtask test` built it already, else this builds it with
//! `cargo xtask image` (podman, no registry; a few seconds when the release binary and the base stand-in
//! are cached).

mod common;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;
use testkit::moto::Moto;
use testkit::runtime::{free_port, http_get};

/// The image under test, built once per test binary.
fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if let Ok(image) = std::env::var("APIGW_IMAGE") {
            return image;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(repo_path(""))
            .args(["xtask", "image"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo xtask image starts");
        assert!(
            out.status.success(),
            "cargo xtask image failed: {}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .last()
            .expect("cargo xtask image prints the image reference last")
            .trim()
            .to_string()
    })
}

/// podman with the project's containers.conf (the one `cargo xtask image` writes).
fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env(
        "CONTAINERS_CONF",
        testkit::paths::cache_dir().join("containers/containers.conf"),
    );
    cmd
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman().args(args).output().expect("podman starts");
    assert!(
        out.status.success(),
        "podman {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a kubelet runs the chart's Pod, as podman options: uid/gid 65532, read-only root without the
/// writable /tmp, /run and /var/tmp podman would otherwise add, no capabilities, no privilege gain.
const RESTRICTED: [&str; 8] = [
    "--read-only",
    "--read-only-tmpfs=false",
    "--user",
    "65532:65532",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
];

#[test]
fn the_image_prints_its_version_as_nonroot_on_a_read_only_root() {
    let image = image();
    let config = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}",
        image,
    ]);
    assert_eq!(
        config.trim(),
        r#"65532:65532 ["/apigw-operator"] ["run"]"#,
        "{image}'s user, entrypoint and command"
    );
    let out: Output = podman()
        .args(["run", "--rm", "--network", "none"])
        .args(RESTRICTED)
        .args([image, "--version"])
        .output()
        .expect("podman starts");
    assert!(
        out.status.success(),
        "{image} --version failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("apigw-operator {}", env!("CARGO_PKG_VERSION")),
        "the image's binary is this version"
    );
}

/// A container removed (with its logs shown) when the test ends, however it ends.
struct Container {
    name: String,
}

impl Container {
    fn logs(&self) -> String {
        let out = podman()
            .args(["logs", &self.name])
            .output()
            .expect("podman starts");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.name, self.logs());
        }
        let _ = podman().args(["rm", "--force", &self.name]).output();
    }
}

/// A directory removed when the test ends, however it ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_image_leads_and_reconciles_against_the_stack() {
    let image = image();
    let env = stack_env();
    let ns = TempNamespace::new("image");
    // The kubeconfig, readable by uid 65532 (the stack's own is the invoking user's), mounted read-only.
    let dir =
        ScratchDir(testkit::paths::target_dir().join(format!("image-test-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("a directory for the kubeconfig");
    let kubeconfig = dir.0.join("kubeconfig");
    std::fs::copy(&env["KUBECONFIG"], &kubeconfig).expect("copy the kubeconfig");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();

    let port = free_port();
    let container = Container {
        name: format!("apigw-image-test-{}", std::process::id()),
    };
    let pod_name = "image-test-0";
    let mut run = podman();
    run.args([
        "run",
        "--detach",
        "--name",
        &container.name,
        "--network",
        "host",
    ])
    .args(RESTRICTED)
    .arg("--volume")
    .arg(format!(
        "{}:/var/run/apigw/kubeconfig:ro",
        kubeconfig.display()
    ))
    .args(["--env", "KUBECONFIG=/var/run/apigw/kubeconfig"])
    .args(["--env", &format!("POD_NAME={pod_name}")])
    .args(["--env", &format!("POD_NAMESPACE={}", ns.name)]);
    for key in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        run.args(["--env", &format!("{key}={}", env[key])]);
    }
    let http_addr = format!("127.0.0.1:{port}");
    run.args([
        image,
        "run",
        "--watch-namespace",
        &ns.name,
        "--leader-election",
        "--http-addr",
        &http_addr,
    ]);
    let out = run.output().expect("podman starts");
    assert!(
        out.status.success(),
        "podman run failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    eventually(
        "the container's /readyz to answer 200",
        Duration::from_secs(60),
        || {
            let state = podman_ok(&["inspect", "--format", "{{.State.Status}}", &container.name]);
            assert_eq!(
                state.trim(),
                "running",
                "the container stopped:\n{}",
                container.logs()
            );
            http_get(&format!("http://{http_addr}/readyz")).filter(|(status, _)| *status == 200)
        },
    );
    let holder = eventually(
        "the container to hold the Lease",
        Duration::from_secs(30),
        || {
            let out = kubectl(&[
                "get",
                "lease",
                "apigw-operator",
                "-n",
                &ns.name,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ]);
            let holder = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !holder.is_empty()).then_some(holder)
        },
    );
    assert_eq!(holder, pod_name, "the Lease names the container's POD_NAME");

    // Through AWS too: an integration made in moto by the containerised operator.
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    Manifest::http_proxy("from-the-image", &api).apply(&ns.name);
    testkit::kubectl::wait_ready(
        "apiintegration/from-the-image",
        &ns.name,
        Duration::from_secs(60),
    );
    assert_eq!(
        moto.integrations(&api).len(),
        1,
        "moto holds the integration the container made"
    );
    let logs = container.logs();
    assert!(
        logs.contains(&format!(
            "leading: starting the controller identity={pod_name}"
        )),
        "the container's log says it leads:\n{logs}"
    );
    // A clean start in the image warns about nothing (a file it may not read, a directory it may not
    // write: the read-only root and the nonroot user are where such warnings would come from).
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.is_empty(),
        "the container warned at a clean start:\n{}",
        warnings.join("\n")
    );
}
