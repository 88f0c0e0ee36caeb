//! The stack helpers every stack test uses, from the shared test kit (testkit/): `mod common;` in a test
//! file keeps working.
#![allow(unused_imports)]

pub use testkit::eventually;
pub use testkit::kubectl::{TempNamespace, cmd, kubectl, kubectl_ok, kubectl_stdin};
pub use testkit::manifest::Manifest;
pub use testkit::paths::repo_path;
pub use testkit::stack::stack_env;
