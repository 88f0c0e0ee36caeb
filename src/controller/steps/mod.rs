//! Carrying a reconcile out: observe, ask [`crate::plan`] for the next step, carry that step out, and
//! report. Nothing here decides what to do next; the plan does.
//!
//! | file | what |
//! |---|---|
//! | `apply.rs`, `apply/` | a live resource: observe (`observe.rs`), then carry out each step until the plan says it is done (`sync.rs`) |
//! | `cleanup.rs` | the same for deletion |
//! | `create.rs` | the create: the re-create's status marker, CreateIntegration, the ID into the status |
//! | `finalizer.rs` | the finalizer and the first-create marker written with it |
//! | `permit.rs` | `--tenancy policy`: which ApiGatewayAccess (and so which identity) allows a resource |
//! | `resolve.rs` | apiRef and connectionRef to IDs, from the scope's listings |
//! | `responses.rs` | an integration's responses (rule 12): the read, and each create, update, delete |

pub mod apply;
pub mod cleanup;
pub mod create;
pub mod finalizer;
pub mod permit;
pub mod resolve;
pub mod responses;
