//! The end-to-end harness (the operator under test, moto, the fault proxy, what the API server holds),
//! from the shared test kit (testkit/): `mod e2e;` in a test file keeps working.
#![allow(unused_imports)]

pub use testkit::kubectl::{
    SeenWrite, WriteWatch, apply_yaml, event_reasons, get_json, ready_of, wait_not_ready,
    wait_ready,
};
pub use testkit::moto::*;
pub use testkit::operator::*;
pub use testkit::proxy::*;
pub use testkit::runtime::*;
