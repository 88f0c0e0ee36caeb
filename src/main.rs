//! The `apigw-operator` binary: `cli` parses the command line, `run` and `import` are the subcommands
//! (`crd` is short enough to live here), `startup` builds and checks the clients.

#[path = "main/cli.rs"]
mod cli;
#[path = "main/import.rs"]
mod import;
#[path = "main/run.rs"]
mod run;
#[path = "main/startup.rs"]
mod startup;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

/// The target of the binary's log lines: the crate's name, as when they were all written in main.rs,
/// wherever in src/main/ they are written now (log filters and queries that name it keep matching).
const LOG_TARGET: &str = "apigw_operator";

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Crd { dir: None } => {
            print!("{}", apigw_operator::crd::crd_yaml());
            Ok(())
        }
        Command::Crd { dir: Some(dir) } => write_crds(&dir),
        Command::Run(args) => run::run(args).await,
        Command::Import(args) => import::import(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause and its chain, with the hint the error carries. No Debug dump and
            // no backtrace (anyhow prints one from `main() -> Result` when RUST_BACKTRACE is set).
            eprintln!("error: {}", one_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    for (file, yaml) in apigw_operator::crd::crds() {
        let path = dir.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// An error chain (the error, then its sources) on one line, `a: b: c`, leaving out a source whose
/// text is already shown: kube's and the AWS SDK's errors often print their source in their own text.
fn one_line<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for e in chain {
        let text = e.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_is_one_line_without_repeats() {
        let io = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(io)
            .context("tcp connect error: connection refused")
            .context("cannot reach the Kubernetes API server at https://127.0.0.1:1/;\ncheck it");
        assert_eq!(
            one_line(e.chain()),
            "cannot reach the Kubernetes API server at https://127.0.0.1:1/; check it: \
             tcp connect error: connection refused"
        );
    }
}
