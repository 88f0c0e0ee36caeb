//! The two files that describe a running stack, written by `cargo xtask stack up` and read by the tests
//! and benches: `target/stack/state.json` (every process the stack started, and its endpoints), typed as
//! [`StackState`], and `target/stack/env` (the `export K=V` lines a shell sources), read by
//! [`read_env_file`].

use crate::paths::stack_dir;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A process the stack started: a name for people (`etcd`, `kube-apiserver`, `moto`, the demo's
/// `operator`), its pid, and a string its command line must contain (the binary's path), so that a
/// recycled pid is never signalled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackProcess {
    pub name: String,
    pub pid: u32,
    pub needle: String,
}

impl StackProcess {
    /// The process still runs (see [`crate::process::pid_runs`]).
    pub fn runs(&self) -> bool {
        crate::process::pid_runs(self.pid, &self.needle)
    }
}

/// `target/stack/state.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackState {
    /// In start order; `stack down` stops them in reverse.
    #[serde(default)]
    pub processes: Vec<StackProcess>,
    /// moto's endpoint, once it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint: Option<String>,
    /// The kube-apiserver's URL, once it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    /// The stack directory this state was written for. A checkout whose target/ was copied from another
    /// one carries that one's state.json: its processes are the other checkout's, never to be stopped
    /// or used from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The node (kubelet, containerd, kube-scheduler) when the stack runs one (`stack up --node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<StackNode>,
}

/// Everything a node of the stack made on this machine besides its processes, each recorded before it is
/// made, so that `stack down` removes exactly these (and a test can check that nothing else is left).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackNode {
    /// The Node object's name.
    pub name: String,
    /// The node's directory: kubelet's root, containerd's root and state (every mount and network
    /// namespace the node makes lives below it), logs of the pods, configuration.
    pub dir: PathBuf,
    /// containerd's socket.
    pub containerd_socket: PathBuf,
    /// containerd's client, for importing images into the node.
    pub ctr: PathBuf,
    /// The Linux bridge the Pods' network interfaces are attached to.
    pub bridge: String,
    /// The bridge's address: the node's address, and where Pods reach the host's loopback services
    /// (the stack's moto, a test's proxy) under the same port.
    pub gateway: String,
    /// The Pods' subnet on the bridge (CIDR).
    pub pod_subnet: String,
    /// The nftables table (family ip) holding the node's NAT and forwarding rules.
    pub nft_table: String,
    /// Cgroup directories the kubelet was given to make (the name below each hierarchy's root).
    pub cgroup_root: String,
    /// Directories outside `dir` that did not exist before the node started and that its components
    /// make anyway (removed when empty).
    #[serde(default)]
    pub made_dirs: Vec<PathBuf>,
}

impl StackState {
    /// Where the state of this checkout's stack is kept.
    pub fn path() -> PathBuf {
        stack_dir().join("state.json")
    }

    /// A new, empty state for this checkout's stack.
    pub fn for_this_checkout() -> StackState {
        StackState {
            dir: Some(stack_dir()),
            ..StackState::default()
        }
    }

    /// The recorded state of this checkout's stack: None when there is no file, or when the file was
    /// written for another checkout's stack (target/ copied); an error when it cannot be read or parsed.
    pub fn load() -> io::Result<Option<StackState>> {
        StackState::load_owned(&StackState::path(), &stack_dir())
    }

    /// The state at `path` if it belongs to the stack in `dir` (or says nothing about where it belongs,
    /// as files written before the field existed do).
    pub fn load_owned(path: &Path, dir: &Path) -> io::Result<Option<StackState>> {
        match StackState::load_from(path)? {
            Some(state) if state.dir.as_deref().is_some_and(|d| d != dir) => {
                eprintln!(
                    "stack: {} was written for the stack in {} (this target/ was copied from another \
                     checkout): ignored; its processes are left alone",
                    path.display(),
                    state.dir.as_deref().unwrap_or(dir).display()
                );
                Ok(None)
            }
            other => Ok(other),
        }
    }

    pub fn load_from(path: &Path) -> io::Result<Option<StackState>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// The recorded state, for a test or bench that needs the stack up: panics naming the command to run.
    pub fn expect_running() -> StackState {
        match StackState::load() {
            Ok(Some(state)) => state,
            Ok(None) => panic!(
                "{} does not exist: run `cargo xtask stack up`",
                StackState::path().display()
            ),
            Err(e) => panic!("the stack's state cannot be read: {e}"),
        }
    }

    /// Writes the state (to a temporary file first, then renamed over the old one, so that a reader
    /// never sees half a file).
    pub fn save(&self) -> io::Result<()> {
        self.save_to(&StackState::path())
    }

    pub fn save_to(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// The process recorded last under `name`.
    pub fn process(&self, name: &str) -> Option<&StackProcess> {
        self.processes.iter().rfind(|p| p.name == name)
    }

    /// Records a process the moment it has started.
    pub fn record(&mut self, name: &str, pid: u32, needle: &Path) {
        self.processes.push(StackProcess {
            name: name.to_string(),
            pid,
            needle: needle.display().to_string(),
        });
    }

    /// The process `name` with pid `old` runs now as `new` (restarted in place).
    pub fn replace_pid(&mut self, name: &str, old: u32, new: u32) {
        for p in &mut self.processes {
            if p.name == name && p.pid == old {
                p.pid = new;
            }
        }
    }
}

/// The environment of the running stack (KUBECONFIG, AWS_*, PATH with the stack's kubectl and helm) for
/// a test: from target/stack/env, so a plain `cargo test` works after `cargo xtask stack up`. A test that
/// needs the stack and cannot find it fails, naming the command to run; it never skips.
pub fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let file = stack_dir().join("env");
        let env: HashMap<String, String> = read_env_file(&file)
            .unwrap_or_else(|_| {
                panic!(
                    "this test needs the local stack, and {} does not exist: run `cargo xtask stack up` \
                     (or the whole suite with `cargo xtask test`)",
                    file.display()
                )
            })
            .into_iter()
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

/// Parses the `export K=V` lines of an env file as a shell would see them: surrounding double quotes
/// removed and `$PATH` expanded against this process's PATH.
pub fn read_env_file(path: &Path) -> io::Result<Vec<(String, String)>> {
    Ok(parse_env(&std::fs::read_to_string(path)?))
}

fn parse_env(text: &str) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').replace("$PATH", &path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state.json as xtask wrote it before the state was typed still reads, and writes back the same.
    #[test]
    fn the_state_file_keeps_its_format() {
        let old = r#"{
  "processes": [
    {"name": "etcd", "pid": 11, "needle": "/cache/bin/etcd"},
    {"name": "moto", "pid": 12, "needle": "/cache/venv/bin/moto_server"},
    {"name": "operator", "pid": 13, "needle": "/repo/target/debug/apigw-operator"}
  ],
  "awsEndpoint": "http://127.0.0.1:4566",
  "apiServer": "https://127.0.0.1:6443"
}"#;
        let state: StackState = serde_json::from_str(old).unwrap();
        assert_eq!(state.processes.len(), 3);
        assert_eq!(state.process("moto").unwrap().pid, 12);
        assert_eq!(state.aws_endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        let again: serde_json::Value = serde_json::to_value(&state).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
    }

    /// A stack still starting has no endpoints yet: they are left out, not written as null.
    #[test]
    fn a_starting_stack_has_only_processes() {
        let mut state = StackState::default();
        state.record("etcd", 7, Path::new("/bin/etcd"));
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(
            text,
            r#"{"processes":[{"name":"etcd","pid":7,"needle":"/bin/etcd"}]}"#
        );
        assert_eq!(serde_json::from_str::<StackState>(&text).unwrap(), state);
    }

    #[test]
    fn a_restart_replaces_only_that_pid_and_the_last_record_wins() {
        let mut state = StackState::default();
        state.record("operator", 20, Path::new("/op"));
        state.record("etcd", 21, Path::new("/etcd"));
        state.record("operator", 22, Path::new("/op"));
        state.replace_pid("etcd", 99, 30);
        assert_eq!(
            state.process("etcd").unwrap().pid,
            21,
            "another pid is left alone"
        );
        state.replace_pid("etcd", 21, 30);
        assert_eq!(state.process("etcd").unwrap().pid, 30);
        assert_eq!(state.process("operator").unwrap().pid, 22);
    }

    /// A target/ copied from another checkout brings that checkout's state.json: it must not make this
    /// checkout use, or stop, the other one's processes.
    #[test]
    fn a_state_written_for_another_checkouts_stack_is_ignored() {
        let dir = std::env::temp_dir().join(format!("testkit-owned-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let mut state = StackState {
            dir: Some(PathBuf::from("/elsewhere/target/stack")),
            ..StackState::default()
        };
        state.record("moto", 4242, Path::new("/bin/moto"));
        state.save_to(&path).unwrap();
        assert_eq!(StackState::load_owned(&path, &dir).unwrap(), None);
        assert_eq!(
            StackState::load_owned(&path, Path::new("/elsewhere/target/stack")).unwrap(),
            Some(state.clone())
        );
        // A file from before the field existed is taken as this checkout's, as it always was.
        state.dir = None;
        state.save_to(&path).unwrap();
        assert_eq!(StackState::load_owned(&path, &dir).unwrap(), Some(state));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_then_load_round_trips_and_a_missing_file_is_none() {
        let dir = std::env::temp_dir().join(format!("testkit-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert_eq!(StackState::load_from(&path).unwrap(), None);
        let mut state = StackState::default();
        state.record("moto", 5, Path::new("/moto"));
        state.aws_endpoint = Some("http://127.0.0.1:1".into());
        state.save_to(&path).unwrap();
        assert_eq!(StackState::load_from(&path).unwrap(), Some(state));
        std::fs::write(&path, "{not json").unwrap();
        assert!(
            StackState::load_from(&path).is_err(),
            "a broken file is an error, not an empty stack"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_lines_are_read_as_a_shell_reads_them() {
        let env = parse_env(
            "# comment\nexport KUBECONFIG=/s/kubeconfig\nexport AWS_REGION=\"us-east-1\"\nexport PATH=/s/bin:$PATH\n",
        );
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            env,
            vec![
                ("KUBECONFIG".to_string(), "/s/kubeconfig".to_string()),
                ("AWS_REGION".to_string(), "us-east-1".to_string()),
                ("PATH".to_string(), format!("/s/bin:{path}")),
            ]
        );
    }
}
