//! Small process helpers: run a command and fail loudly, start a detached server, probe readiness. Whether
//! a recorded pid runs, and stopping it, come from the shared test kit (the tests restart stack processes
//! the same way).

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
pub use testkit::process::{pid_runs, stop_pid, tail};

/// The program and its arguments, for messages. Not `{cmd:?}`: that also prints the environment the
/// command was given, which holds the stack's AWS secret key.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with inherited output; an unsuccessful exit is an error that names the command.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr is shown on failure.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = describe(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Starts a long-running server in its own process group (so a Ctrl-C in the terminal that ran
/// `stack up` does not take it down), with output appended to `log`.
pub fn spawn_detached(cmd: &mut Command, log: &Path) -> Result<Child> {
    testkit::process::spawn_logged(cmd.process_group(0), log)
        .with_context(|| format!("cannot start {}", describe(cmd)))
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; there is a small race until the server binds it).
pub fn free_port() -> Result<u16> {
    Ok(testkit::process::free_port()?)
}

/// A plain-HTTP GET on 127.0.0.1:`port`; returns the status code.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `ready` until it is true, the process dies (then the log tail is shown), or `timeout`.
pub fn wait_ready(
    what: &str,
    child: &mut Child,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(start.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited during start-up ({status}); last lines of {}:\n{}",
                log.display(),
                tail(log, 30)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "{what} not ready after {timeout:?}; last lines of {}:\n{}",
                log.display(),
                tail(log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
