//! `cargo xtask test`: everything CI runs, in the order that fails fastest (cargo deny's first run builds
//! cargo-deny, once).

use crate::deny;
use crate::proc::run;
use crate::stack;
use anyhow::Result;
use std::process::Command;
use std::time::Instant;

pub fn run_all(extra: &[&str]) -> Result<()> {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
    // Advisories, licenses, duplicate versions and sources of every dependency (deny.toml).
    deny::check()?;
    run(Command::new(&cargo).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Compile every test before the stack starts, so the stack is not kept waiting on the compiler.
    run(Command::new(&cargo).args(["test", "--workspace", "--no-run"]))?;
    // The tests build the operator with its test hooks; what ships must have none.
    crate::release_check::run_check()?;
    // tests/image.rs runs this image (the Dockerfile's, with the binary release-check just built).
    let image = crate::image::build_for_tests()?;
    let stack = stack::up()?;
    let result = run(stack
        .command(&cargo)
        .env("APIGW_IMAGE", image.as_str())
        .args(["test", "--workspace"])
        .args(extra));
    if stack.started_here {
        stack::down()?;
    } else {
        println!("xtask: the stack was already up before the tests and is left running");
    }
    result?;
    println!("xtask: test passed in {:.1?}", started.elapsed());
    Ok(())
}
