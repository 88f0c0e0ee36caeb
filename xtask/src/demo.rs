//! `cargo xtask demo`: the main job, end to end on the local stack.

use crate::stack;
use anyhow::Result;

pub fn run() -> Result<()> {
    let stack = stack::up()?;
    println!(
        "demo: stack is up; KUBECONFIG={}, AWS endpoint {}",
        stack.kubeconfig.display(),
        stack.aws_endpoint
    );
    println!("demo: the stack keeps running; stop it with `cargo xtask stack down`");
    Ok(())
}
