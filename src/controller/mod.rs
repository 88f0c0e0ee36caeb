//! The reconciler. The top of reconcile splits a live resource ([`steps::apply`]: make API Gateway hold
//! the spec) from one being deleted ([`steps::cleanup`]: honour deletionPolicy, then drop the finalizer).
//! Both observe, ask [`crate::plan`] for the next step, carry it out and report it ([`status`]);
//! [`error`] decides once what each failure means. Layers, each using only those below it:
//!
//! | layer | what |
//! |---|---|
//! | `mod.rs` | reconcile, error_policy and the controller's wiring |
//! | `steps/` | carrying out what the plan decides (apply, cleanup, create, finalizer, permit, resolve) |
//! | `status.rs` | the status writes and Events that report an outcome |
//! | `context.rs` | the shared [`Context`]: clients, settings, scopes, memory |
//! | `scope/` | per (account, region): the call quota, listings, per-API locks, what is known of each API |
//! | `memory.rs` | per object: settled or not, what AWS held at the last sync, failures in a row |
//! | `tenancy.rs` | the watched ApiGatewayAccess policies and namespaces, and the policies' status |
//! | `trigger.rs` | which watch events start a reconcile (not our own status writes) |
//! | `events.rs` | the Event publisher (no cache) |
//! | `error.rs`, `error/` | errors (`error.rs`) and their classes (`class.rs`: reason, metrics label, retry) |

mod context;
mod error;
mod events;
mod memory;
mod scope;
mod status;
mod steps;
mod tenancy;
mod trigger;

pub use context::{Context, Settings, Shared};
pub use error::{Class, Error, Phase, Retry};
pub use events::MANAGER;
pub use steps::finalizer::FINALIZER;
pub use tenancy::{Tenancy, TenancyView};

use steps::{apply, cleanup, finalizer};

#[cfg(test)]
mod in_process;

use crate::api::ApiIntegration;
use crate::aws::SdkConnector;
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// One reconcile of one object. The span names the object, so every log line under it does too.
#[tracing::instrument(
    skip(obj, ctx),
    fields(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        generation = obj.metadata.generation.unwrap_or_default(),
    )
)]
///
/// Not kube-runtime's `finalizer()` helper: that adds the finalizer in a write of its own before the
/// first apply; here [`apply`] adds it when the resource first comes to own something in AWS, in the same
/// write as the first-create marker (see [`finalizer`]).
pub async fn reconcile(obj: Arc<ApiIntegration>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A replica that may no longer lead (woken from a pause, say) does not even read: its queue is
    // stale, and every write it would make is refused anyway.
    ctx.fence.check()?;
    if obj.metadata.deletion_timestamp.is_none() {
        return apply::apply(&obj, &ctx).await;
    }
    if !finalizer::has_finalizer(&obj.metadata) {
        // Never owned anything in AWS (or already cleaned up): the API server removes it.
        return Ok(Action::await_change());
    }
    let action = cleanup::cleanup(&obj, &ctx)
        .await
        .map_err(|e| Error::Cleanup(Box::new(e)))?;
    finalizer::remove(&obj, &ctx.client)
        .await
        .map_err(|e| Error::Cleanup(Box::new(e)))?;
    Ok(action)
}

/// When to try a failed reconcile again: the error's class, backed off by the failures in a row.
pub fn error_policy(obj: Arc<ApiIntegration>, err: &Error, ctx: Arc<Context>) -> Action {
    let attempt = ctx.memory.count_failure(&obj);
    let wait = err.retry_after(attempt, ctx.settings.slow_retry);
    // Spread, so that resources failing together do not retry together; but a wait for a known moment
    // (the region's APIs may be listed again) must not end before it.
    let wait = match err.class(Phase::Apply).retry {
        Retry::In(_) => wait,
        _ => status::jittered(wait),
    };
    tracing::info!(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        error = %err,
        retry_in = ?wait,
        "reconcile will be retried"
    );
    Action::requeue(wait)
}

/// reconcile, timed and counted. A panic in it is caught here: the process (and every other resource's
/// reconcile) goes on, the resource says InternalError, and it is retried with backoff like any failure.
async fn reconcile_measured(obj: Arc<ApiIntegration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = match AssertUnwindSafe(reconcile(obj.clone(), ctx.clone()))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(payload) => Err(report_panic(&obj, &ctx, panic_message(payload.as_ref())).await),
    };
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    };
    ctx.metrics.reconciled(label, started.elapsed());
    result
}

/// Logs a caught panic with the object and tells the user (Ready False, InternalError, a Warning Event).
/// Whatever the reconcile held was dropped while unwinding (the per-API lock is a tokio Mutex, which a
/// panic does not poison).
async fn report_panic(obj: &ApiIntegration, ctx: &Context, message: String) -> Error {
    tracing::error!(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        generation = obj.metadata.generation.unwrap_or_default(),
        panic = %message,
        "reconcile panicked; caught, the resource will be retried"
    );
    let latest = status::latest_status(obj, ctx)
        .await
        .or_else(|| obj.status.clone())
        .unwrap_or_default();
    match status::report_failure(obj, ctx, latest, Error::Panicked(message), Phase::Apply).await {
        Err(e) => e,
        // Not reached: a panic's class is retried, so report_failure hands the error back.
        Ok(_) => Error::Panicked("reconcile panicked".into()),
    }
}

/// The text a panic was raised with (`panic!("...")` gives a &str or a String; anything else is opaque).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// What the cache keeps of an object: everything but `managedFields` (several server-side-apply field
/// sets, the larger part of a small object) and kubectl's last-applied-configuration (a copy of the
/// manifest). Neither is read by the operator, and at thousands of resources they were most of its memory.
/// An annotation map emptied here stays a map, so that a JSON patch adding our annotation adds a key to
/// the object's map rather than replacing the map.
fn trim_for_cache(obj: &mut ApiIntegration) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Runs the controller until `shutdown` resolves, then lets in-flight reconciles finish.
///
/// A watch event reaches reconcile only when something a reconcile reads changed (spec, annotations,
/// finalizers, deletion; see [`trigger`]): a status write, most often our own, does not re-run the
/// reconcile that made it. The filter does not replace the "is anything due" check in
/// [`crate::plan::next_check`]: requeues re-read the object from the reflector's store, which may still
/// be older than our last status write, so the in-memory [`crate::plan::Settled`] is needed either
/// way. The due check costs no AWS call and no write.
pub async fn run(
    client: Client,
    sdk_config: aws_config::SdkConfig,
    settings: Settings,
    shared: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let namespace = settings.namespace.clone();
    let api: Api<ApiIntegration> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // main checked, naming the fix, that the CRD is installed and that we may list where we watch.
    // The cache keeps each object without what the operator never reads (see [`trim_for_cache`]).
    let (store, writer) = reflector::store();
    let objects = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger::reconcile_inputs, Default::default());
    let mut controller = Controller::for_stream(objects, store.clone())
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown);
    // §7: with --tenancy policy, policies and namespace labels are watched; a change re-runs every
    // reconcile (granting heals at once, revoking is seen at once) and refreshes the policies' status.
    let mut tenancy_view = None;
    let mut status_writer = None;
    if settings.tenancy == Tenancy::Policy {
        let changed = Arc::new(tokio::sync::Notify::new());
        let (view, changes) = tenancy::watch(client.clone(), changed.clone());
        controller = controller.reconcile_all_on(changes);
        status_writer = Some(tokio::spawn(tenancy::write_policy_status(
            client.clone(),
            view.clone(),
            changed,
        )));
        tenancy_view = Some(view);
    }
    shared.metrics.watch_store(store.clone());
    // Ready: the API server answered the list above with our credentials and the controller runs.
    // Not Store::wait_until_ready: the controller's applier already waits on that store, and kube-runtime
    // 5's DelayedInit keeps only the last poller's waker, so a second waiter either never wakes or steals
    // the applier's wake-up (seen: a spawned waiter never resolved while the applier went on).
    shared
        .health
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let gateways = Arc::new(SdkConnector::new(
        sdk_config,
        shared.fence.clone(),
        settings.aws_timeout,
        shared.stats.clone(),
    ));
    let ctx = Context::new(client, store, gateways, settings, &shared, tenancy_view);
    let ctx = Arc::new(ctx);
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "controller started"
    );
    controller
        .run(reconcile_measured, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => {
                    tracing::debug!(name = %obj.name, namespace = ?obj.namespace, "reconciled")
                }
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    if let Some(writer) = status_writer {
        writer.abort();
    }
    tracing::info!("controller stopped; in-flight reconciles finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_read_from_either_payload() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        let literal = caught(|| panic!("plain"));
        let formatted = caught(|| panic!("formatted {}", 42));
        let opaque = caught(|| std::panic::panic_any(7u8));
        assert_eq!(panic_message(literal.as_ref()), "plain");
        assert_eq!(panic_message(formatted.as_ref()), "formatted 42");
        assert_eq!(panic_message(opaque.as_ref()), "a panic without a message");
    }
}
