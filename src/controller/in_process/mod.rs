//! The controller carried out in-process, against the fakes of [`crate::fixtures`]: an in-memory API
//! Gateway and an in-memory API server behind kube's `Client`. Each test reconciles objects and says
//! which AWS calls and which Kubernetes writes were made, and in what order. The stack tests (tests/)
//! check the same behaviour against a real API server and moto; these run in a second.

mod apply;
mod cleanup;
mod observe;
mod references;
mod responses;
mod status;
mod tenancy;

use crate::api::ApiIntegration;
use crate::conditions::ready;
use crate::fixtures::Harness;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Lets the Events the reconcile published in the background reach the fake API server.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

/// The Ready condition of the object as the server has it.
fn ready_of(h: &Harness, name: &str) -> Condition {
    let obj: ApiIntegration = h.server.object("team", name);
    let status = obj.status.expect("a status");
    ready(&status.conditions)
        .expect("a Ready condition")
        .clone()
}
