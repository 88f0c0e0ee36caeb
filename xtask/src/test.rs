//! `cargo xtask test`: everything CI runs, in the order that fails fastest (cargo deny's first run builds
//! cargo-deny, once). With no ARGS the test executables run side by side (test_binaries.rs); with ARGS
//! (a test name filter, `--nocapture`, …) they go to one `cargo test --workspace`, one executable at a
//! time, as before.

use crate::deny;
use crate::paths;
use crate::proc::{output, run};
use crate::stack;
use crate::test_binaries::{self, Records};
use anyhow::{Context, Result};
use std::process::Command;
use std::time::Instant;

/// Lanes for the test executables that share the stack, unless `APIGW_TEST_LANES` says otherwise
/// (1 runs them one at a time, as `cargo test` does). Most of them wait on the stack, not the CPU.
const DEFAULT_LANES: usize = 3;

pub fn run_all(extra: &[&str]) -> Result<()> {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut phases = Phases::starting_now();
    run(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
    // Advisories, licenses, duplicate versions and sources of every dependency (deny.toml).
    deny::check()?;
    phases.done("fmt and cargo deny");
    run(Command::new(&cargo).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    phases.done("clippy");
    // Compile every test before the stack starts, so the stack is not kept waiting on the compiler.
    let built = output(Command::new(&cargo).args([
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]))?;
    let binaries = test_binaries::parse_cargo_messages(&built)?;
    phases.done("building the tests");
    // The documentation's examples (compiled and run by rustdoc; they need no stack).
    run(Command::new(&cargo).args(["test", "--workspace", "--doc"]))?;
    phases.done("doc tests");
    // The tests build the operator with its test hooks; what ships must have none.
    crate::release_check::run_check()?;
    phases.done("release check");
    // tests/image.rs runs this image (the Dockerfile's, with the binary release-check just built).
    let image = crate::image::build_for_tests()?;
    phases.done("image");
    let stack = stack::up()?;
    phases.done("stack up");
    let mut env = stack.env.clone();
    env.push(("APIGW_IMAGE".to_string(), image.to_string()));
    let result = if extra.is_empty() {
        let lanes = lanes()?;
        let records = Records {
            dir: paths::target_dir().join("test-logs"),
        };
        let (shared, alone) = test_binaries::order(binaries, &records.last_durations());
        test_binaries::run(shared, alone, lanes, &env, &records).map(drop)
    } else {
        run(stack
            .command(&cargo)
            .env("APIGW_IMAGE", image.as_str())
            .args(["test", "--workspace"])
            .args(extra))
    };
    phases.done("tests");
    if stack.started_here {
        stack::down()?;
    } else {
        println!("xtask: the stack was already up before the tests and is left running");
    }
    result?;
    phases.print();
    println!("xtask: test passed in {:.1?}", started.elapsed());
    Ok(())
}

fn lanes() -> Result<usize> {
    match std::env::var("APIGW_TEST_LANES") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("APIGW_TEST_LANES={v}: expected a whole number above 0")),
        Err(_) => Ok(DEFAULT_LANES),
    }
}

/// How long each phase of the run took, printed at the end.
struct Phases {
    last: Instant,
    took: Vec<(&'static str, f64)>,
}

impl Phases {
    fn starting_now() -> Phases {
        Phases {
            last: Instant::now(),
            took: Vec::new(),
        }
    }

    fn done(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.took.push((phase, (now - self.last).as_secs_f64()));
        self.last = now;
    }

    fn print(&self) {
        println!("xtask: phases:");
        for (phase, secs) in &self.took {
            println!("  {secs:>7.1}s  {phase}");
        }
    }
}
