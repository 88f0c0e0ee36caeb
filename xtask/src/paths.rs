//! Where things live: the repository, the per-checkout stack directory under target/, and the tool cache
//! outside target/ (so `cargo clean` keeps the slow Go builds). The same paths the tests use, from the
//! shared test kit.

pub use testkit::paths::{cache_dir, repo_root, stack_dir, target_dir};
