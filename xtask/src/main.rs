//! Developer tasks for apigw-operator: `cargo xtask stack up|down|status`, `cargo xtask demo`,
//! `cargo xtask test`. Everything the project needs on a fresh machine is built or installed from here.

mod bench;
mod chaos;
mod demo;
mod paths;
mod proc;
mod release_check;
mod stack;
mod test;
mod tools;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  stack up       build the tools if needed, start etcd, kube-apiserver, kube-controller-manager and moto
  stack down     stop exactly the processes `stack up` started and remove their data
  stack status   say what runs
  tools          build (or find cached) the Go tools and the moto virtualenv, print versions
  demo           stack up, run the operator, apply every example, wait for Ready, show what AWS holds
  test           fmt check, clippy -D warnings, unit, integration and end-to-end tests on the real stack,
                 and release-check
  release-check  build with --release and check that the binary carries no test hook (failpoints)
  chaos [--rounds N] [--resources M] [--seed S]
                 the full storm (kills, AWS faults, control-plane restarts, moto wiped) and its table";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["stack", "up"] => stack::up().map(|_| ()),
        ["stack", "down"] => stack::down(),
        ["stack", "status"] => stack::status(),
        ["tools"] => tools::ensure_all().map(|t| t.print_versions()),
        ["demo"] => demo::run(),
        ["test"] => test::run_all(&[]),
        ["release-check"] => release_check::run_check(),
        ["test", "--", rest @ ..] => test::run_all(rest),
        ["bench", rest @ ..] => bench::run_cmd(rest),
        ["chaos", rest @ ..] => chaos::run(rest),
        _ => bail!("{USAGE}{}", bench::USAGE),
    }
}
