//! The custom resource types. Each served version lives in its own module.

pub mod v1alpha1;

pub use v1alpha1::*;
