//! Faults in the processes around the operator: the stack's etcd and kube-apiserver restarted in place
//! (same binary, arguments, ports and data, read from target/stack/state.json and /proc), etcd compacted
//! through its HTTP/JSON gateway, and a moto of the test's own that it can wipe by restarting.

use crate::kubectl::kubectl;
use crate::paths::{repo_path, stack_dir};
use crate::process::{Signal, argv_of, free_port, pid_runs, signal, spawn_logged};
use crate::runtime::http_get;
use crate::stack::{StackProcess, StackState};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The stack's process called `name`, as recorded last.
fn recorded(name: &str) -> StackProcess {
    StackState::expect_running()
        .process(name)
        .unwrap_or_else(|| panic!("no process {name} in {}", StackState::path().display()))
        .clone()
}

/// The command line of the stack's process `pid`, which must be running.
fn argv_of_running(pid: u32) -> Vec<String> {
    argv_of(pid).unwrap_or_else(|e| panic!("the command line of pid {pid}: {e}"))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "{what} not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

/// SIGKILLs the stack's process `name` and starts it again with the same command line, working directory
/// and log file; state.json gets the new pid (so `cargo xtask stack down` still stops it). Returns once
/// `ready` holds, with the time it took from the kill.
pub fn restart_stack_process(name: &str, ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    let StackProcess { pid, needle, .. } = recorded(name);
    assert!(pid_runs(pid, &needle), "{name} (pid {pid}) is not running");
    let argv = argv_of_running(pid);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| repo_path("."));
    assert!(signal(pid, Signal::Kill), "kill -KILL {pid} ({name})");
    wait_until(&format!("{name} to die"), Duration::from_secs(20), || {
        !pid_runs(pid, &needle)
    });
    let log = stack_dir().join("logs").join(format!("{name}.log"));
    // The killed process's threads may still hold its ports for a moment after its pid reads as gone:
    // a start that fails at once (address in use) is tried again.
    let mut ready = ready;
    let mut attempts = 0;
    let new_pid = loop {
        attempts += 1;
        // Its own process group, output to its log and nothing inherited from the test: it outlives
        // this test like any stack process, and cargo does not wait on its output.
        let mut child = spawn_logged(
            Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(&cwd)
                .process_group(0),
            &log,
        )
        .unwrap_or_else(|e| panic!("{name} restarts: {e}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let exited = loop {
            // Ready, and still running a moment later: not a dying predecessor answering.
            if ready() {
                std::thread::sleep(Duration::from_secs(1));
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if ready() {
                    break None;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready again within 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        match exited {
            None => {
                let pid = child.id();
                // Not waited on: it belongs to the stack now.
                std::mem::forget(child);
                break pid;
            }
            Some(status) => {
                assert!(
                    attempts < 30,
                    "{name} keeps exiting at start ({status}); see {}",
                    log.display()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let mut state = StackState::expect_running();
    state.replace_pid(name, pid, new_pid);
    state.save().expect("the stack's state is written");
    started.elapsed()
}

/// The API server answers /readyz.
pub fn apiserver_ready() -> bool {
    kubectl(&["get", "--raw=/readyz", "--request-timeout=3s"])
        .status
        .success()
}

/// etcd's client port, from its command line.
pub fn etcd_port() -> u16 {
    argv_of_running(recorded("etcd").pid)
        .iter()
        .find_map(|a| a.strip_prefix("--listen-client-urls=http://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .expect("etcd's --listen-client-urls")
}

fn curl_post(url: &str, body: &str) -> Option<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", "-X", "POST", "-d", body, url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// etcd on `port` answers /health (the port is read before a restart: the dying process's command line
/// cannot be read).
pub fn etcd_healthy(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/health");
    Command::new("curl")
        .args(["-sf", "--max-time", "3", &url])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compacts etcd's whole history up to its current revision (POST /v3/kv/compaction): a watch that
/// resumes from an older resourceVersion can only be answered 410 Gone. Returns the revision.
pub fn compact_etcd() -> i64 {
    let base = format!("http://127.0.0.1:{}", etcd_port());
    // Any range read reports the store's current revision in its header ("Lw==" is the key "/").
    let range = curl_post(&format!("{base}/v3/kv/range"), r#"{"key":"Lw=="}"#)
        .expect("etcd answers a range read");
    let revision: i64 = range["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("etcd's revision");
    let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
    curl_post(&format!("{base}/v3/kv/compaction"), &body).expect("etcd compacts");
    revision
}

/// A moto server of the test's own on a fixed port, so a restart (which loses every API and
/// integration) does not touch the stack's moto that other tests use.
pub struct PrivateMoto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    binary: String,
    log: PathBuf,
}

impl PrivateMoto {
    pub fn start() -> PrivateMoto {
        let binary = recorded("moto").needle;
        let port = free_port().expect("a free port");
        let log = std::env::temp_dir().join(format!("apigw-chaos-moto-{port}.log"));
        let mut moto = PrivateMoto {
            child: None,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            binary,
            log,
        };
        moto.spawn();
        moto
    }

    fn spawn(&mut self) {
        let child = spawn_logged(
            Command::new(&self.binary)
                .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
                .process_group(0),
            &self.log,
        )
        .expect("moto_server starts");
        self.child = Some(child);
        let url = format!("{}/moto-api/", self.endpoint);
        wait_until(
            "the private moto to answer",
            Duration::from_secs(60),
            || http_get(&url).is_some(),
        );
    }

    /// SIGKILL and start again on the same port: every API and integration is gone.
    pub fn restart(&mut self) -> Duration {
        let started = Instant::now();
        self.stop();
        self.spawn();
        started.elapsed()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        self.stop();
    }
}
