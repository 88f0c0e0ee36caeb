//! Processes the bench starts and watches: a contender's operator, and the stack's own servers (whose CPU
//! the bench reads but never touches).

use crate::process::{Signal, cpu_seconds, peak_rss_kib, signal, spawn_logged, tail};
use crate::stack::StackState;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The stack's kube-apiserver, etcd and moto, from target/stack/state.json (for their CPU time).
pub struct StackPids {
    pub apiserver: Option<u32>,
    pub etcd: Option<u32>,
    pub moto: Option<u32>,
}

impl StackPids {
    pub fn read(stack_dir: &std::path::Path) -> StackPids {
        // No state (or an unreadable one): the bench runs on, counting those servers' CPU as 0.
        let state = StackState::load_from(&stack_dir.join("state.json"))
            .ok()
            .flatten()
            .unwrap_or_default();
        let pid = |name: &str| state.process(name).map(|p| p.pid);
        StackPids {
            apiserver: pid("kube-apiserver"),
            etcd: pid("etcd"),
            moto: pid("moto"),
        }
    }

    /// (kube-apiserver + etcd, moto) CPU seconds so far.
    pub fn cpu(&self) -> (f64, f64) {
        let cpu = |p: Option<u32>| p.and_then(cpu_seconds).unwrap_or(0.0);
        (cpu(self.apiserver) + cpu(self.etcd), cpu(self.moto))
    }
}

/// A contender's controller process: how to start it, and the one running now.
pub struct Controller {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    pub log: PathBuf,
    child: Option<Child>,
    /// Length of the log when the running process started.
    log_offset: usize,
    /// Peak RSS (KiB) of processes already stopped.
    pub peak_before_kib: u64,
    /// CPU seconds of processes already stopped.
    pub cpu_before_s: f64,
}

impl Controller {
    pub fn new(
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        unset: Vec<String>,
        log: PathBuf,
    ) -> Controller {
        Controller {
            program,
            args,
            env,
            unset,
            log,
            child: None,
            log_offset: 0,
            peak_before_kib: 0,
            cpu_before_s: 0.0,
        }
    }

    /// Appends arguments to the command line of the next start.
    pub fn add_args(&mut self, args: impl IntoIterator<Item = String>) {
        self.args.extend(args);
    }

    pub fn spawn(&mut self) {
        self.log_offset = std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
        let mut cmd = Command::new(&self.program);
        for k in &self.unset {
            cmd.env_remove(k);
        }
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = spawn_logged(&mut cmd, &self.log)
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.program.display()));
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Says how, with the log's tail, when the running process has exited.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(format!(
            "{} exited ({status}); last lines of {}:\n{}",
            self.program.display(),
            self.log.display(),
            self.log_tail(40)
        ))
    }

    /// What the running process has logged so far.
    pub fn log_since_start(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(self.log_offset..).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// CPU seconds of the running process (0 when none).
    pub fn cpu_now(&self) -> f64 {
        self.pid().and_then(cpu_seconds).unwrap_or(0.0)
    }

    /// Peak RSS over every process of this controller so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak_before_kib
            .max(self.pid().and_then(peak_rss_kib).unwrap_or(0))
    }

    /// SIGTERM, as a rollout does; SIGKILL after `grace`. Keeps its peak RSS and CPU time.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // Read what it used before it goes (a reaped process has no /proc entry).
        let mut peak = peak_rss_kib(pid).unwrap_or(0);
        let mut cpu = cpu_seconds(pid).unwrap_or(0.0);
        signal(pid, Signal::Term);
        let deadline = Instant::now() + grace;
        loop {
            // A zombie still has /proc/<pid>/stat with its final CPU time.
            if let Some(c) = cpu_seconds(pid) {
                cpu = cpu.max(c);
            }
            if let Some(p) = peak_rss_kib(pid) {
                peak = peak.max(p);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.peak_before_kib = self.peak_before_kib.max(peak);
        self.cpu_before_s += cpu;
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
