//! `cargo xtask chaos [--rounds N] [--resources M] [--seed S] [--quota RATE/BURST|off]`: the full storm of
//! tests/storm against the local stack (brought up if needed), run as the ignored test `full_storm` of
//! tests/chaos.rs, which prints the table of what it did and found. The table is also kept in
//! target/chaos/seed-<S>.txt. The fault proxy keeps API Gateway's quota per account (default 10/40).

use crate::paths::repo_root;
use crate::stack;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

pub fn run(args: &[&str]) -> Result<()> {
    let mut rounds = "1".to_string();
    let mut resources = "100".to_string();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let mut quota = testkit::quota::Quota::API_GATEWAY.to_string();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .to_string();
        if *flag == "--quota" {
            if value != "off" {
                value
                    .parse::<testkit::quota::Quota>()
                    .map_err(anyhow::Error::msg)?;
            }
            quota = value;
            continue;
        }
        value
            .parse::<u64>()
            .with_context(|| format!("{flag} takes a whole number, not {value:?}"))?;
        match *flag {
            "--rounds" => rounds = value,
            "--resources" => resources = value,
            "--seed" => seed = value,
            other => {
                bail!(
                    "unknown option {other}: chaos takes --rounds N, --resources M, --seed S, --quota RATE/BURST|off"
                )
            }
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Build first, so the stack is not kept waiting on the compiler.
    crate::proc::run(
        std::process::Command::new(&cargo).args(["test", "--test", "chaos", "--no-run"]),
    )?;
    let stack = stack::up()?;
    println!(
        "xtask: chaos with seed {seed}, {rounds} round(s) of {resources} resources, quota {quota}"
    );
    let mut child = stack
        .command(&cargo)
        .args([
            "test",
            "--test",
            "chaos",
            "--",
            "--ignored",
            "--exact",
            "full_storm",
            "--nocapture",
        ])
        .env("CHAOS_SEED", &seed)
        .env("CHAOS_ROUNDS", &rounds)
        .env("CHAOS_RESOURCES", &resources)
        .env(testkit::quota::QUOTA_ENV, &quota)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    // Show the output as it comes, and keep the table.
    let mut table = Vec::new();
    let mut in_table = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        in_table |= line.starts_with("chaos run (seed");
        in_table &= !line.starts_with("test ");
        if in_table {
            table.push(line);
        }
    }
    let status = child.wait()?;
    if !table.is_empty() {
        let dir = repo_root().join("target/chaos");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("seed-{seed}.txt"));
        let mut f = std::fs::File::create(&path)?;
        writeln!(
            f,
            "cargo xtask chaos --rounds {rounds} --resources {resources} --seed {seed} --quota {quota}"
        )?;
        writeln!(f, "{}", table.join("\n"))?;
        println!("xtask: table kept in {}", path.display());
    }
    if stack.started_here {
        stack::down()?;
    }
    if !status.success() {
        bail!("the chaos run failed (seed {seed}): {status}");
    }
    Ok(())
}
