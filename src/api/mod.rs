//! The custom resource types. Each served version lives in its own module; `access` is the v1alpha1
//! ApiGatewayAccess (cluster-scoped tenancy policy, design §7).

pub mod access;
pub mod in_flight;
pub mod v1alpha1;

pub use access::*;
pub use in_flight::{Carrier, CreateInFlight};
pub use v1alpha1::*;
