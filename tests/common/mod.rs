//! Shared helpers for the tests that run against the real local stack (`cargo xtask stack up`).
//! A test that needs the stack and cannot find it fails, naming the command to run; it never skips.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment of the running stack: from the process environment when `cargo xtask test` set it,
/// otherwise from target/stack/env (so a plain `cargo test` works after `cargo xtask stack up`).
pub fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stack/env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "this test needs the local stack, and {} does not exist: run `cargo xtask stack up` \
                 (or the whole suite with `cargo xtask test`)",
                file.display()
            )
        });
        let path = std::env::var("PATH").unwrap_or_default();
        let env: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("$PATH", &path)))
            .collect();
        let kc = env.get("KUBECONFIG").expect("KUBECONFIG in stack env");
        let probe = Command::new("kubectl")
            .env("PATH", &env["PATH"])
            .env("KUBECONFIG", kc)
            .args(["get", "--raw=/readyz", "--request-timeout=5s"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "the local stack described by {} is not answering: run `cargo xtask stack up`",
                file.display()
            ),
        }
        env
    })
}

/// A command with the stack's environment (KUBECONFIG, AWS_*, PATH with the stack's kubectl and helm).
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.envs(stack_env());
    c
}

pub fn kubectl(args: &[&str]) -> Output {
    cmd("kubectl").args(args).output().expect("kubectl runs")
}

/// kubectl that must succeed; returns stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kubectl applying `yaml` from stdin with extra args.
pub fn kubectl_stdin(args: &[&str], yaml: &str) -> Output {
    use std::io::Write;
    let mut child = cmd("kubectl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A namespace of its own for one test, deleted (without waiting) when dropped.
pub struct TempNamespace {
    pub name: String,
}

impl TempNamespace {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        kubectl_ok(&["create", "namespace", &name]);
        TempNamespace { name }
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Polls `f` every 200 ms until it returns Some, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
