//! Fencing (design rule 10): no write to AWS or to Kubernetes unless this process can be sure, by its own
//! clock, that it still holds the leader Lease.
//!
//! Leader election alone does not fence: a leader that is stopped (a frozen VM or cgroup, SIGSTOP, a
//! debugger, a stalled disk) for longer than the lease wakes up still believing it leads, and sends
//! whatever its queue held until its lease task runs. Here every write is checked just before it is sent:
//! the last successful renewal must be younger than [`LeaseTimings::write_window`], measured on
//! [`boot_time`], a clock that keeps counting while the process is stopped or the machine suspended.
//!
//! The window ends `--aws-timeout-seconds` + `--lease-margin-seconds` before the lease itself could
//! pass to another replica: a write sent at the last allowed instant has been answered (or given up on)
//! by then, so the next leader's first reads already see it. What remains is a process stopped in the
//! microseconds between this check and the socket write; docs/reliability.md states that window.
//!
//! The check sits in the transports, so no write can forget it: [`FenceLayer`] wraps the Kubernetes
//! client (every POST, PUT, PATCH and DELETE), [`FenceInterceptor`] the API Gateway clients (everything
//! but GET), right before the request goes out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time since boot, counting time the machine was suspended and time this process was stopped
/// (CLOCK_BOOTTIME). std's and tokio's `Instant` use CLOCK_MONOTONIC, which stops during a suspend.
pub fn boot_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The shortest time writes stay allowed after a renewal; less would leave no room to renew.
pub const MIN_WRITE_WINDOW: Duration = Duration::from_millis(1500);
/// The smallest margin accepted: it covers the new leader's polling and clock-rate differences.
pub const MIN_MARGIN: Duration = Duration::from_millis(100);

/// The leader Lease's timings, checked for consistency once at start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaseTimings {
    /// How long a renewal holds the Lease (`--lease-duration-seconds`); a stand-by takes over after it
    /// has seen the same renewal for this long.
    pub duration: Duration,
    /// The longest an AWS call may stay unanswered (`--aws-timeout-seconds`).
    pub aws_timeout: Duration,
    /// Extra room between the end of the write window and the end of the lease
    /// (`--lease-margin-seconds`).
    pub margin: Duration,
}

impl LeaseTimings {
    /// Refuses timings that cannot fence, with a message that names the flag to change.
    pub fn new(
        duration: Duration,
        aws_timeout: Duration,
        margin: Duration,
    ) -> Result<LeaseTimings, String> {
        let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
        if margin < MIN_MARGIN || margin * 2 > duration {
            return Err(format!(
                "--lease-margin-seconds {} cannot hold: it must be at least {} s and at most half of \
                 --lease-duration-seconds ({} s)",
                secs(margin),
                secs(MIN_MARGIN),
                secs(duration)
            ));
        }
        let timings = LeaseTimings {
            duration,
            aws_timeout,
            margin,
        };
        let needed = aws_timeout + margin + MIN_WRITE_WINDOW;
        if duration < needed {
            return Err(format!(
                "--lease-duration-seconds {} is too short for --aws-timeout-seconds {}: an AWS write may \
                 wait that long for its answer and must be over --lease-margin-seconds {} before a \
                 stand-by may take the Lease, which leaves less than {} s after each renewal to write \
                 and to renew; raise --lease-duration-seconds to at least {} or lower \
                 --aws-timeout-seconds",
                secs(duration),
                secs(aws_timeout),
                secs(margin),
                secs(MIN_WRITE_WINDOW),
                needed.as_secs_f64().ceil()
            ));
        }
        Ok(timings)
    }

    /// How long after a renewal was sent writes may be sent: the lease less the AWS timeout and the
    /// margin.
    pub fn write_window(&self) -> Duration {
        self.duration.saturating_sub(self.aws_timeout + self.margin)
    }

    /// How often the leader renews: three tries within each write window, so that one slow or failed
    /// renewal does not stop the writes.
    pub fn renew_every(&self) -> Duration {
        self.write_window() / 3
    }

    /// Whether a write may be sent at `now` after the renewal sent at `renewed_at` (both [`boot_time`]).
    pub fn allows(&self, renewed_at: Duration, now: Duration) -> bool {
        now.checked_sub(renewed_at)
            .is_some_and(|age| age < self.write_window())
    }

    /// Whether a leader whose last renewal was sent at `renewed_at` must assume the Lease may be someone
    /// else's at `now`: a stand-by may take it once it has seen one renewal unchanged for a duration.
    pub fn may_have_passed(&self, renewed_at: Duration, now: Duration) -> bool {
        now.saturating_sub(renewed_at) + self.margin >= self.duration
    }
}

/// A write was not sent: this process cannot be sure it still holds the Lease.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "not sent: this replica cannot be sure it still leads (last Lease renewal {age_ms} ms ago, writes stop {window_ms} ms after one)"
)]
pub struct Fenced {
    pub age_ms: u64,
    pub window_ms: u64,
}

/// Whether this process may write now. Shared by the lease task, which records renewals, and the
/// transports, which check it before every write.
#[derive(Debug)]
pub struct Fence {
    /// None: no leader election, this process is the only writer and is never fenced.
    timings: Option<LeaseTimings>,
    /// [`boot_time`] in nanoseconds when the last successful renewal was sent; 0: not leading.
    renewed_at: AtomicU64,
    /// Writes refused so far (for the log and the metrics).
    refused: AtomicU64,
}

impl Fence {
    /// A fence that always allows: the operator runs without leader election.
    pub fn open() -> Arc<Fence> {
        Arc::new(Fence {
            timings: None,
            renewed_at: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// A fence closed until the first renewal is recorded.
    pub fn leased(timings: LeaseTimings) -> Arc<Fence> {
        Arc::new(Fence {
            timings: Some(timings),
            renewed_at: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The Lease was acquired or renewed by a request sent at `sent_at` ([`boot_time`]).
    pub fn renewed(&self, sent_at: Duration) {
        let nanos = u64::try_from(sent_at.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.renewed_at.fetch_max(nanos, Ordering::SeqCst);
    }

    /// The Lease is lost (or released): no write from now on.
    pub fn revoke(&self) {
        self.renewed_at.store(0, Ordering::SeqCst);
    }

    /// When the last renewal was sent, if this process leads.
    pub fn renewed_at(&self) -> Option<Duration> {
        match self.renewed_at.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Ok if a write may be sent at `now` ([`boot_time`]).
    pub fn check_at(&self, now: Duration) -> Result<(), Fenced> {
        let Some(timings) = self.timings else {
            return Ok(());
        };
        let renewed_at = self.renewed_at();
        if renewed_at.is_some_and(|r| timings.allows(r, now)) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Err(Fenced {
            age_ms: renewed_at.map_or(u64::MAX, |r| ms(now.saturating_sub(r))),
            window_ms: ms(timings.write_window()),
        })
    }

    /// Ok if a write may be sent now.
    pub fn check(&self) -> Result<(), Fenced> {
        self.check_at(boot_time())
    }

    /// Writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Whether `err` or one of its sources is a [`Fenced`] refusal (the transports wrap it).
pub fn is_fenced(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<Fenced>().is_some() {
            return true;
        }
        current = e.source();
    }
    false
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower layer for the Kubernetes client: every request but a read is checked against the fence
/// right before it is sent, and refused with [`Fenced`] (kube reports it as `Error::Service`).
#[derive(Clone)]
pub struct FenceLayer(pub Arc<Fence>);

impl<S> tower_layer::Layer<S> for FenceLayer {
    type Service = FencedService<S>;
    fn layer(&self, inner: S) -> FencedService<S> {
        FencedService {
            inner,
            fence: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FencedService<S> {
    inner: S,
    fence: Arc<Fence>,
}

/// GET, HEAD and OPTIONS only read; everything else changes something.
fn is_write(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

impl<S, B> tower_service::Service<http::Request<B>> for FencedService<S>
where
    S: tower_service::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if is_write(req.method())
            && let Err(fenced) = self.fence.check()
        {
            tracing::warn!(method = %req.method(), path = req.uri().path(), error = %fenced,
                "Kubernetes write refused by the fence");
            return Box::pin(futures::future::ready(Err(Box::new(fenced) as BoxError)));
        }
        let call = self.inner.call(req);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}

/// The same check for API Gateway: an SDK interceptor that runs after signing, right before the
/// request is handed to the HTTP client. Reads (GET) pass.
#[derive(Debug)]
pub struct FenceInterceptor(pub Arc<Fence>);

impl aws_sdk_apigatewayv2::config::Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "LeaseFence"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_apigatewayv2::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _runtime_components: &aws_sdk_apigatewayv2::config::RuntimeComponents,
        _cfg: &mut aws_sdk_apigatewayv2::config::ConfigBag,
    ) -> Result<(), BoxError> {
        let method = context.request().method();
        if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
            return Ok(());
        }
        self.0.check().map_err(|fenced| {
            tracing::warn!(method, error = %fenced, "AWS write refused by the fence");
            Box::new(fenced) as BoxError
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn timings() -> LeaseTimings {
        LeaseTimings::new(s(15.0), s(10.0), s(1.0)).unwrap()
    }

    #[test]
    fn a_write_is_allowed_until_the_window_ends_and_refused_from_then_on() {
        let t = timings();
        let renewed = s(1000.0);
        // duration − margin, where the margin of a write is the AWS timeout plus --lease-margin-seconds.
        let end = renewed + t.duration - (t.aws_timeout + t.margin);
        let epsilon = Duration::from_millis(1);
        assert!(t.allows(renewed, renewed));
        assert!(t.allows(renewed, end - epsilon));
        assert!(!t.allows(renewed, end));
        assert!(!t.allows(renewed, end + s(51.0)));
        // A renewal recorded after `now` (another thread's clock read) is not a licence to write.
        assert!(!t.allows(renewed, renewed - epsilon));
    }

    #[test]
    fn the_fence_follows_renewals_and_revocation() {
        let fence = Fence::leased(timings());
        assert!(
            fence.check_at(s(5.0)).is_err(),
            "closed before the first renewal"
        );
        fence.renewed(s(10.0));
        assert_eq!(fence.check_at(s(13.9)), Ok(()));
        let refused = fence.check_at(s(14.0)).unwrap_err();
        assert_eq!(refused.age_ms, 4000);
        assert_eq!(refused.window_ms, 4000);
        // An older renewal answered late does not move the fence back.
        fence.renewed(s(9.0));
        assert!(fence.check_at(s(14.0)).is_err());
        fence.renewed(s(12.0));
        assert_eq!(fence.check_at(s(14.0)), Ok(()));
        fence.revoke();
        assert!(fence.check_at(s(12.5)).is_err());
        assert_eq!(fence.refused(), 4);
    }

    #[test]
    fn without_leader_election_nothing_is_fenced() {
        assert_eq!(Fence::open().check_at(s(1e9)), Ok(()));
    }

    #[test]
    fn a_lease_too_short_for_the_aws_timeout_is_refused_naming_the_flags() {
        let e = LeaseTimings::new(s(6.0), s(10.0), s(1.0)).unwrap_err();
        assert!(e.contains("--lease-duration-seconds 6.0"), "{e}");
        assert!(e.contains("--aws-timeout-seconds 10.0"), "{e}");
        assert!(e.contains("at least 13"), "{e}");
        // Just enough: 10 + 1 + 1.5.
        let t = LeaseTimings::new(s(12.5), s(10.0), s(1.0)).unwrap();
        assert_eq!(t.write_window(), s(1.5));
        assert_eq!(t.renew_every(), s(0.5));
    }

    #[test]
    fn a_margin_that_cannot_hold_is_refused() {
        for margin in [0.0, 0.05, 8.0] {
            let e = LeaseTimings::new(s(15.0), s(2.0), s(margin)).unwrap_err();
            assert!(e.contains("--lease-margin-seconds"), "{margin}: {e}");
        }
    }

    #[test]
    fn the_defaults_fence_with_room_to_renew() {
        let t = timings();
        assert_eq!(t.write_window(), s(4.0));
        assert!(t.renew_every() * 3 <= t.write_window());
        assert!(!t.may_have_passed(s(0.0), s(13.9)));
        assert!(t.may_have_passed(s(0.0), s(14.0)));
    }

    #[test]
    fn the_boot_clock_moves_forward() {
        let a = boot_time();
        std::thread::sleep(Duration::from_millis(5));
        assert!(boot_time() >= a + Duration::from_millis(5));
    }

    #[test]
    fn a_fenced_refusal_is_found_through_wrapping_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failed")]
        struct Wrapper(#[source] Fenced);
        let fenced = Fenced {
            age_ms: 1,
            window_ms: 1,
        };
        assert!(is_fenced(&Wrapper(fenced)));
        assert!(!is_fenced(&std::io::Error::other("x")));
    }

    #[tokio::test]
    async fn the_kubernetes_layer_refuses_writes_and_passes_reads_when_closed() {
        use tower_layer::Layer;
        use tower_service::Service;
        let fence = Fence::leased(timings());
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>("sent")
        });
        let mut svc = FenceLayer(fence.clone()).layer(inner);
        let req = |m: http::Method| {
            http::Request::builder()
                .method(m)
                .uri("/x")
                .body(())
                .unwrap()
        };
        assert_eq!(svc.call(req(http::Method::GET)).await.unwrap(), "sent");
        let refused = svc.call(req(http::Method::PATCH)).await.unwrap_err();
        assert!(is_fenced(refused.as_ref()), "{refused}");
        fence.renewed(boot_time());
        assert_eq!(svc.call(req(http::Method::PATCH)).await.unwrap(), "sent");
    }
}
