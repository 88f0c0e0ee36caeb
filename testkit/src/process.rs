//! Process control on Linux through /proc and kill(1): is a recorded pid still our process, stop it,
//! start a server with its output in a log, and what a process has used (CPU time, resident memory).

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pid is alive, not a zombie, and its command line contains `needle` (so a pid the kernel has
/// given to another program since is never taken for ours).
///
/// Each of the two /proc files may be unreadable; both mean "not running", on purpose:
/// - no `cmdline`: there is no such process (any process's cmdline is readable by every user);
/// - `cmdline` read but then no `stat`: the process exited between the two reads. Answering "runs"
///   there would make a caller wait on, or signal, a pid that is gone and may be reused.
pub fn pid_runs(pid: u32, needle: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The arguments are NUL-separated; joined with spaces a needle can only match within them.
    let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
    !is_zombie(&stat) && cmdline.contains(needle)
}

/// /proc/<pid>/stat says the process has exited and waits to be reaped (state `Z`, the first field
/// after the parenthesised command name, which may itself hold spaces and parentheses).
fn is_zombie(stat: &str) -> bool {
    stat.rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
}

/// The command line of a live process, one string per argument.
pub fn argv_of(pid: u32) -> io::Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

/// The signals the harness sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Asks the process to shut down (a rollout's first step).
    Term,
    /// Ends the process at once; no shutdown code runs.
    Kill,
    /// Freezes the process until [`Signal::Cont`] (a long GC pause, a throttled or suspended VM).
    Stop,
    /// Resumes a frozen process.
    Cont,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Kill => "-KILL",
            Signal::Stop => "-STOP",
            Signal::Cont => "-CONT",
        }
    }
}

/// Sends `sig` to `pid` with kill(1); says whether it was delivered.
pub fn signal(pid: u32, sig: Signal) -> bool {
    Command::new("kill")
        .arg(sig.flag())
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGTERM, then SIGKILL after `grace`; returns once the process is gone (at once when it is not ours).
pub fn stop_pid(pid: u32, needle: &str, grace: Duration) {
    if !pid_runs(pid, needle) {
        return;
    }
    signal(pid, Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !pid_runs(pid, needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, Signal::Kill);
    while pid_runs(pid, needle) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `cmd` with stdin closed and stdout and stderr appended to `log`. A server that must outlive
/// the caller's terminal (Ctrl-C) is given `process_group(0)` by the caller first.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> io::Result<Child> {
    let out = File::options().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; there is a small race until the server binds it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// User + system CPU seconds of a process (/proc/<pid>/stat; a zombie still has its final figure),
/// None when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_ticks(&stat).map(|ticks| ticks as f64 / ticks_per_second())
}

/// utime + stime, fields 14 and 15 of a stat line (counted after the command name, fields 12 and 13).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Resident memory of a live process in KiB: (now, peak), from VmRSS and VmHWM of /proc/<pid>/status.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Peak resident memory (VmHWM) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    memory_kib(pid).map(|(_, peak)| peak)
}

/// The last `lines` lines of a text.
pub fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last `lines` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_under_its_own_name_only() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(pid_runs(me, &name));
        assert!(!pid_runs(me, "no-such-program-in-this-command-line"));
        assert!(!pid_runs(u32::MAX, ""), "no such pid");
    }

    #[test]
    fn an_exited_child_not_yet_reaped_does_not_run() {
        let mut child = Command::new("sleep").arg("0").spawn().unwrap();
        let pid = child.id();
        // Not waited on: once it exits it is a zombie until the wait below.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !is_zombie(&s)) {
            assert!(Instant::now() < deadline, "sleep 0 did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !pid_runs(pid, ""),
            "a zombie is not running, whatever the needle"
        );
        assert!(
            cpu_seconds(pid).is_some(),
            "a zombie still tells its CPU time"
        );
        child.wait().unwrap();
        assert!(!pid_runs(pid, ""));
    }

    #[test]
    fn the_state_and_cpu_fields_are_read_after_the_command_name() {
        let stat = "42 (a (b) c) Z 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0";
        assert!(is_zombie(stat));
        assert!(!is_zombie("42 (Z) S 1 42"));
        assert_eq!(cpu_ticks(stat), Some(12));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let (now, peak) = memory_kib(std::process::id()).unwrap();
        assert!(now > 0 && peak >= now);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn a_stopped_process_still_runs_and_a_killed_one_does_not() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(signal(pid, Signal::Stop));
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stat()
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('T')
        {
            assert!(
                Instant::now() < deadline,
                "sleep was not stopped: {}",
                stat()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            pid_runs(pid, "sleep"),
            "a frozen process is still ours and alive"
        );
        assert!(signal(pid, Signal::Cont));
        assert!(signal(pid, Signal::Kill));
        child.wait().unwrap();
        assert!(!pid_runs(pid, "sleep"));
        assert!(!signal(pid, Signal::Term), "no process to signal");
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
