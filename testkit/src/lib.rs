//! The harness shared by apigw-operator's tests, benches and xtask, in one place so that each contract
//! between them (the stack's state and env files, how a process is known to run, how AWS calls are
//! counted) is written and read by the same code.
//!
//! Always built (all xtask needs): [`paths`], [`stack`] (the typed `target/stack/state.json` and the env
//! file), [`process`] (pids, signals, /proc), [`quota`] (API Gateway's quota as the proxy keeps it). With the `stack` feature, for the tests against the local
//! stack: [`kubectl`], [`manifest`], [`moto`], [`operator`], [`proxy`], [`control`], [`runtime`]. With
//! `bench`: [`sidebyside`], the side-by-side benchmark that `benches/sidebyside.rs` runs at full size
//! and `tests/bench_smoke.rs` runs small.

pub mod paths;
pub mod process;
pub mod quota;
pub mod stack;

#[cfg(feature = "stack")]
pub mod control;
#[cfg(feature = "stack")]
pub mod kubectl;
#[cfg(feature = "stack")]
pub mod manifest;
#[cfg(feature = "stack")]
pub mod moto;
#[cfg(feature = "stack")]
pub mod node;
#[cfg(feature = "stack")]
pub mod operator;
#[cfg(feature = "stack")]
pub mod proxy;
#[cfg(feature = "stack")]
pub mod runtime;
#[cfg(feature = "bench")]
pub mod sidebyside;

use std::time::{Duration, Instant};

/// Polls `f` every 200 ms until it returns Some, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
