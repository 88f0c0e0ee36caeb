//! Where things live: the repository, the per-checkout stack directory under target/, and the tool cache
//! outside target/ (so `cargo clean` keeps the slow Go builds).

use std::path::{Path, PathBuf};

/// The repository root (this crate lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the repository root")
        .to_path_buf()
}

/// A path relative to the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// `$CARGO_TARGET_DIR`, else the repository's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `target/stack`: pids, data directories, logs, kubeconfigs and the `env` file of the running stack.
pub fn stack_dir() -> PathBuf {
    target_dir().join("stack")
}

/// The tool cache: `$APIGW_CACHE_DIR`, else `$XDG_CACHE_HOME/apigw-operator`, else `~/.cache/apigw-operator`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("APIGW_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("apigw-operator");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("apigw-operator")
}
