//! `cargo xtask release-check`: the binary `cargo build --release` makes carries none of the operator's
//! test hooks (src/failpoints.rs, cargo feature `failpoints`, which only the tests turn on).
//!
//! The build is the release profile with optimisation and debug info turned down (environment
//! overrides), so that it costs about what a debug build of the crate does. Which code exists is
//! decided by the features, not the profile; an unoptimised binary keeps every string its code names,
//! so a hook that leaked into a default build is found here at least as surely as in an optimised one.

use crate::proc::run;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// What the hooks' code names: the variable that arms them, their names, and what they log.
pub const HOOK_STRINGS: &[&str] = &["APIGW_FAILPOINT", "panic-once", "after-create"];

/// The hook strings that occur in `binary`.
pub fn hooks_in(binary: &[u8]) -> Vec<&'static str> {
    HOOK_STRINGS
        .iter()
        .copied()
        .filter(|s| binary.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

pub fn run_check() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .args(["build", "--release", "--locked", "--bin", "apigw-operator"])
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true"))?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/apigw-operator");
    let binary = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let found = hooks_in(&binary);
    if !found.is_empty() {
        bail!(
            "{} carries test hooks ({}): the feature `failpoints` is on in a release build",
            path.display(),
            found.join(", ")
        );
    }
    println!(
        "xtask: {} ({} bytes) carries no test hook",
        path.display(),
        binary.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_string_is_found_and_nothing_else() {
        let with =
            b"..\x00APIGW_FAILPOINT\x00failpoint panic-once reached for\x00after-create\x00..";
        assert_eq!(hooks_in(with), HOOK_STRINGS);
        assert!(hooks_in(b"APIGW_LOG\x00panic\x00after create").is_empty());
    }
}
