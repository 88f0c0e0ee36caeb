//! Where things live: the repository, the per-checkout stack directory under target/, and the tool cache
//! outside target/ (so `cargo clean` keeps the slow Go builds).

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// `target/stack`: pids, data directories, logs, kubeconfigs and the `env` file of the running stack.
pub fn stack_dir() -> PathBuf {
    target_dir().join("stack")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
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
