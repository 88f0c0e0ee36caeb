//! The operator binary as a child process against the stack, watching one namespace, and the
//! [`Scenario`] most end-to-end tests start from.

use crate::eventually;
use crate::kubectl::{TempNamespace, kubectl};
use crate::moto::Moto;
use crate::process::{Signal, last_lines, signal, spawn_logged};
use crate::proxy::FaultProxy;
use crate::runtime::http_get;
use crate::stack::stack_env;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

/// The operator binary under test: the `apigw-operator` that cargo built for this run of the main
/// crate's tests or benches. Cargo builds a package's binaries before its integration tests and puts
/// them in the profile directory whose `deps/` holds the test executable (`CARGO_BIN_EXE_apigw-operator`
/// names the same file, but only while the test crate itself compiles).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        exe.parent()
            .and_then(Path::parent)
            .map(|profile| profile.join("apigw-operator"))
            .filter(|bin| bin.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no apigw-operator binary next to {}: the operator is started by the tests and \
                     benches of the apigw-operator package, which cargo builds it for",
                    exe.display()
                )
            })
    })
}

/// A command that runs the operator binary under test (its arguments and environment still to add).
pub fn command() -> Command {
    Command::new(binary())
}

/// One AWS call as the operator logged it (`--aws-call-log`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Call {
    pub ms: u64,
    pub op: String,
    pub outcome: String,
    pub region: String,
    /// The AWS account the call acted in ("self": the operator's own identity).
    pub account: String,
}

/// The operator binary, running in the background against the stack, watching one namespace.
pub struct Operator {
    child: Option<Child>,
    pub call_log: PathBuf,
    pub log: PathBuf,
    namespace: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Stack variables the operator must not see (e.g. static keys, to test another credential source).
    unset: Vec<String>,
}

impl Operator {
    /// Starts the operator for `namespace` with fast timings (resync 5 s, slow retries 2 s) unless
    /// `extra` overrides them (clap takes the last occurrence).
    pub fn start(namespace: &str, extra: &[&str], envs: &[(&str, &str)]) -> Operator {
        Operator::start_without(namespace, extra, envs, &[])
    }

    /// As [`Operator::start`], with the stack's variables named in `unset` removed from its environment.
    pub fn start_without(
        namespace: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
        unset: &[&str],
    ) -> Operator {
        let dir = std::env::temp_dir().join("apigw-e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let tag = format!("{namespace}-{:08x}", rand::random::<u32>());
        let call_log = dir.join(format!("{tag}.calls.jsonl"));
        let mut args: Vec<String> = vec![
            "run".into(),
            "--watch-namespace".into(),
            namespace.into(),
            "--aws-call-log".into(),
            call_log.display().to_string(),
        ];
        for (flag, default) in [
            ("--resync-seconds", "5"),
            ("--slow-retry-seconds", "2"),
            // Tests run operators side by side: each serves metrics on a port of its own.
            ("--http-addr", "127.0.0.1:0"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut op = Operator {
            child: None,
            call_log,
            log: dir.join(format!("{tag}.log")),
            namespace: namespace.to_string(),
            args,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unset: unset.iter().map(|k| k.to_string()).collect(),
        };
        op.spawn();
        op
    }

    fn spawn(&mut self) {
        let mut command = command();
        // `cargo xtask test` puts the stack's variables in this process's own environment too, which a
        // child inherits: remove the unset ones from both sources.
        for k in &self.unset {
            command.env_remove(k);
        }
        command
            .args(&self.args)
            .envs(stack_env().iter().filter(|(k, _)| !self.unset.contains(k)))
            .env("APIGW_LOG", "info,apigw_operator=debug")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        let child = spawn_logged(&mut command, &self.log).expect("operator starts");
        self.child = Some(child);
        // Fail here, with its output, if it refuses to start (bad flag, no CRD, no credentials).
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            self.child = None;
            panic!(
                "the operator exited at start ({status}):\n{}",
                self.log_text()
            );
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `grace` for the exit; returns the exit status (None if still running,
    /// in which case it is killed).
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        assert!(
            signal(child.id(), Signal::Term),
            "kill -TERM {}",
            child.id()
        );
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process started last is still running (has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the operator and starts it again: same flags, environment, call log and log file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// As [`Operator::restart`], without the `APIGW_FAILPOINT` it was started with.
    pub fn restart_without_failpoint(&mut self) {
        self.envs.retain(|(k, _)| k != "APIGW_FAILPOINT");
        self.restart();
    }

    pub fn calls(&self) -> Vec<Call> {
        std::fs::read_to_string(&self.call_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("call log line is JSON"))
            .collect()
    }

    /// Calls of operation `op` (any outcome).
    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| c.op == op).count()
    }

    /// The operator's /metrics page (of its latest start).
    pub fn metrics_text(&self) -> String {
        let url = format!("http://{}/metrics", self.http_addr());
        eventually(&format!("{url} to answer"), Duration::from_secs(10), || {
            http_get(&url).filter(|(status, _)| *status == 200)
        })
        .1
    }

    /// Reconciles finished since the latest start, whatever their result (`apigw_operator_reconciles_total`).
    pub fn reconciles(&self) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with("apigw_operator_reconciles_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Where /metrics is served: the `--http-addr` given, or for port 0 the address the latest start
    /// logged.
    fn http_addr(&self) -> String {
        let given = self
            .args
            .iter()
            .rposition(|a| a == "--http-addr")
            .map(|i| self.args[i + 1].clone())
            .expect("the operator is started with --http-addr");
        if !given.ends_with(":0") {
            return given;
        }
        eventually(
            "the operator to log the address of /metrics",
            Duration::from_secs(10),
            || {
                let log = self.log_text();
                let line = log.lines().rev().find(|l| l.contains("/metrics"))?;
                let at = line.find("127.0.0.1:")?;
                let port: String = line[at + "127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
            },
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the `after-create` failpoint holds the operator between create and status write.
    pub fn wait_for_failpoint(&self, timeout: Duration) {
        eventually("the failpoint to be reached", timeout, || {
            self.log_text()
                .contains("failpoint after-create reached")
                .then_some(())
        });
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // Let the operator release what it holds in this namespace, so the namespace can go away.
        if self.child.is_some() {
            let _ = kubectl(&[
                "delete",
                "apiintegrations",
                "--all",
                "-n",
                &self.namespace,
                "--timeout=30s",
            ]);
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- operator log ({}) ----\n{}",
                self.log.display(),
                last_lines(&self.log_text(), 60)
            );
        }
    }
}

/// The set-up most end-to-end tests start from: a namespace of their own, moto, optionally the fault proxy
/// in front of moto, and the operator watching that namespace (through the proxy when there is one).
///
/// `Scenario::new("e2e-x")` for the plain case; `Scenario::builder("e2e-x")` to choose the proxy, flags
/// and environment. The builder creates the namespace (and the proxy) at once, so a test can prepare moto
/// or apply resources before [`ScenarioBuilder::start`] starts the operator.
pub struct Scenario {
    // Fields drop in this order: the operator first (it deletes the namespace's ApiIntegrations, which
    // needs moto and the proxy), the namespace last.
    pub op: Operator,
    proxy: Option<FaultProxy>,
    pub moto: Moto,
    pub ns: TempNamespace,
}

impl Scenario {
    /// A namespace named after `prefix`, moto, and the operator with its test defaults.
    pub fn new(prefix: &str) -> Scenario {
        Scenario::builder(prefix).start()
    }

    pub fn builder(prefix: &str) -> ScenarioBuilder {
        ScenarioBuilder {
            proxy: None,
            moto: Moto::new(),
            ns: TempNamespace::new(prefix),
            args: Vec::new(),
            envs: Vec::new(),
            unset: Vec::new(),
        }
    }

    /// The fault proxy between the operator and moto.
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("this scenario has no fault proxy: build it with .with_proxy()")
    }
}

/// A [`Scenario`] whose operator has not started yet.
pub struct ScenarioBuilder {
    proxy: Option<FaultProxy>,
    pub moto: Moto,
    pub ns: TempNamespace,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    unset: Vec<String>,
}

impl ScenarioBuilder {
    /// Puts a [`FaultProxy`] between the operator and moto.
    pub fn with_proxy(mut self) -> ScenarioBuilder {
        self.proxy = Some(FaultProxy::start());
        self
    }

    /// Extra operator flags (see [`Operator::start`]).
    pub fn args(mut self, args: &[&str]) -> ScenarioBuilder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for the operator.
    pub fn env(mut self, key: &str, value: &str) -> ScenarioBuilder {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the operator with failpoint `name` (`APIGW_FAILPOINT`).
    pub fn failpoint(self, name: &str) -> ScenarioBuilder {
        self.env("APIGW_FAILPOINT", name)
    }

    /// Keeps the stack's variable `key` from the operator (see [`Operator::start_without`]).
    pub fn without_env(mut self, key: &str) -> ScenarioBuilder {
        self.unset.push(key.to_string());
        self
    }

    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("this scenario has no fault proxy: build it with .with_proxy()")
    }

    /// Starts the operator.
    pub fn start(self) -> Scenario {
        let mut envs: Vec<(&str, &str)> = Vec::new();
        if let Some(proxy) = &self.proxy {
            envs.push(("AWS_ENDPOINT_URL", proxy.endpoint.as_str()));
        }
        envs.extend(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let unset: Vec<&str> = self.unset.iter().map(String::as_str).collect();
        let op = Operator::start_without(&self.ns.name, &args, &envs, &unset);
        Scenario {
            op,
            proxy: self.proxy,
            moto: self.moto,
            ns: self.ns,
        }
    }
}
