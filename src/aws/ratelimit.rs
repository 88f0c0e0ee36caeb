//! A client-side token bucket per (account, region) whose rate adapts to API Gateway's answers. The
//! control plane allows about 10 requests/s per account and region, and that quota is shared by every
//! tool that manages the account (other clusters running this operator, Terraform in CI, the console), so
//! a fixed rate is either too slow alone or too fast together. [`Budget`] lowers the allowed rate when AWS
//! answers 429 and raises it again over time, as the AWS SDKs' adaptive retry mode does (CUBIC), never
//! above `--aws-rate` and never below a floor. Every call waits on the bucket first.

use super::bucket::Bucket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// After a throttle, the rate drops to this share of what it was.
const BETA: f64 = 0.7;
/// How fast the rate grows back towards the rate at which AWS last throttled (calls/s per s³, CUBIC's
/// concave part). The AWS SDKs' adaptive retry mode uses 0.4, which probes past the quota every second
/// or two: two operators sharing 10/s then had one call in eight refused (the simulation in the tests).
/// At 0.0025 a cut from 10/s to 7/s takes 10.6 s to climb back, and the rate then stays near where AWS
/// throttled it, where two operators sharing the quota meet. The calls not made meanwhile are not lost:
/// API Gateway's own bucket (burst 40) saves them for the climb past the old rate. In the simulation,
/// 0.005 had two operators sharing a thousand calls take 1.055× the quota's bound with 4.5 % refused;
/// 0.0025 took 1.019× with 3.6 %.
const SCALE: f64 = 0.0025;
/// How fast the rate grows past the rate at which AWS last throttled (CUBIC's convex part): nobody has
/// refused it there, so the other caller has probably left. From 5/s back to 10/s in 4.6 s once past
/// the old limit (at SCALE it would take 12.6 s); each probe costs about one refused call.
const PROBE_SCALE: f64 = 0.05;
/// The slowest the budget goes by default, whatever AWS answers: a resource must still move
/// (`--aws-min-rate`).
pub const DEFAULT_FLOOR: f64 = 0.5;
/// A waiter looks at the allowed rate again at least this often (it may have risen meanwhile).
const RECHECK: Duration = Duration::from_millis(250);

/// The allowed rate of one (account, region), apart from time and locking: multiplicative decrease on a
/// throttled answer, cubic growth back towards (and past) the rate at which it was throttled, capped at
/// the ceiling. A 429 answering a call that was sent before the last decrease says nothing new (it was
/// sent at the old rate), so it does not cut the rate again: one decrease per round of answers.
///
/// Sharing with another caller that backs off too (another cluster running this operator), each cut
/// below the rate of the cut before it means the other has taken part of the quota; the target then
/// moves down to halfway between the old target and the new rate (CUBIC's fast convergence), so the
/// caller with the larger share gives some of it up, and two callers that started unequal meet near half
/// each within a few cuts instead of keeping their gap.
#[derive(Debug, Clone)]
pub struct Budget {
    ceiling: f64,
    floor: f64,
    /// The rate the growth aims at: where AWS last throttled, or less after a cut below the one before
    /// (CUBIC's W_max).
    last_max: f64,
    /// When the rate was last cut; None: never throttled, the rate is the ceiling.
    decreased_at: Option<Instant>,
    /// Seconds after a cut until the rate is back at `last_max` (CUBIC's K).
    back_after: f64,
}

impl Budget {
    pub fn new(ceiling: f64) -> Self {
        Budget::with_floor(ceiling, DEFAULT_FLOOR)
    }

    /// A budget that never goes below `floor` (nor above `ceiling`), whatever AWS answers. A floor above
    /// the default keeps a share of the quota beside a caller that does not slow down when throttled;
    /// see `--aws-min-rate`.
    pub fn with_floor(ceiling: f64, floor: f64) -> Self {
        assert!(ceiling > 0.0, "the ceiling must be positive");
        assert!(floor > 0.0, "the floor must be positive");
        Budget {
            ceiling,
            floor: floor.min(ceiling),
            last_max: ceiling,
            decreased_at: None,
            back_after: 0.0,
        }
    }

    /// The rate allowed at `now`.
    pub fn rate(&self, now: Instant) -> f64 {
        let Some(cut) = self.decreased_at else {
            return self.ceiling;
        };
        let t = now.saturating_duration_since(cut).as_secs_f64() - self.back_after;
        let scale = if t > 0.0 { PROBE_SCALE } else { SCALE };
        (scale * t.powi(3) + self.last_max).clamp(self.floor, self.ceiling)
    }

    /// AWS throttled a call sent at `sent`; the answer came at `now`. Returns whether the rate was cut.
    pub fn throttled(&mut self, sent: Instant, now: Instant) -> bool {
        if self.decreased_at.is_some_and(|cut| sent < cut) {
            return false;
        }
        let rate = self.rate(now);
        self.last_max = if rate < self.last_max {
            rate * (1.0 + BETA) / 2.0
        } else {
            rate
        };
        // Starting from rate × BETA (the floor holds it up if that is lower), back at the aim after K s.
        self.back_after = ((self.last_max - rate * BETA) / SCALE).cbrt();
        self.decreased_at = Some(now);
        true
    }

    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    pub fn floor(&self) -> f64 {
        self.floor
    }
}

/// Waiters are served in arrival order (tokio's Mutex is fair), so no caller starves.
pub struct TokenBucket {
    bucket: Mutex<Bucket>,
    budget: std::sync::Mutex<Budget>,
    /// Set when a throttled answer cut the rate: the next waiter drops the tokens saved until then.
    cut: AtomicBool,
    /// The rate the budget allowed when last asked (f64 bits), for the metrics.
    allowed: AtomicU64,
}

impl TokenBucket {
    /// A bucket that starts empty. The quota is the account's, not the process's: a process that has
    /// just started cannot know what the one before it spent in the last seconds, and a full bucket at
    /// every start let an operator killed and restarted in a loop send a burst each time (the chaos storm
    /// measured 46 calls in one second across restarts at 8/s, burst 20). Starting empty, any window
    /// across restarts holds at most burst + rate × window, as within one process.
    pub fn new(rate: f64, burst: u32) -> Self {
        TokenBucket::with_floor(rate, burst, DEFAULT_FLOOR)
    }

    /// A bucket whose budget never goes below `floor` calls/s (see [`Budget::with_floor`]).
    pub fn with_floor(rate: f64, burst: u32, floor: f64) -> Self {
        use std::hash::BuildHasher;
        // Another process (another cluster's operator) must not draw the same spacing.
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let bucket = Bucket::new(rate, burst, Instant::now())
            .emptied()
            .spaced_unevenly(seed);
        TokenBucket {
            bucket: Mutex::new(bucket),
            budget: std::sync::Mutex::new(Budget::with_floor(rate, floor)),
            cut: AtomicBool::new(false),
            allowed: AtomicU64::new(rate.to_bits()),
        }
    }

    /// Waits for a token at the rate the budget allows now.
    pub async fn acquire(&self) {
        let mut bucket = self.bucket.lock().await;
        loop {
            let now = Instant::now();
            bucket.set_rate(self.allowed_at(now), now);
            if self.cut.swap(false, Ordering::Relaxed) {
                bucket.drain(now);
            }
            match bucket.try_take(now) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait.min(RECHECK)).await,
            }
        }
    }

    /// AWS answered a call sent at `sent`: a throttled answer may lower the allowed rate.
    pub fn answered(&self, sent: Instant, throttled: bool) {
        if throttled {
            let now = Instant::now();
            let mut budget = self
                .budget
                .lock()
                .expect("the budget lock is never poisoned");
            if budget.throttled(sent, now) {
                self.cut.store(true, Ordering::Relaxed);
                tracing::debug!(
                    rate = budget.rate(now),
                    "throttled by API Gateway: rate lowered"
                );
            }
        }
    }

    /// The rate allowed at `now`.
    fn allowed_at(&self, now: Instant) -> f64 {
        let rate = self
            .budget
            .lock()
            .expect("the budget lock is never poisoned")
            .rate(now);
        self.allowed.store(rate.to_bits(), Ordering::Relaxed);
        rate
    }

    /// The rate allowed now, in calls per second.
    pub fn allowed_rate(&self) -> f64 {
        self.allowed_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_below_the_last_one_aims_lower_than_where_it_was_cut() {
        let t0 = Instant::now();
        let s = |x: f64| t0 + Duration::from_secs_f64(x);
        let mut b = Budget::new(10.0);
        assert!(b.throttled(s(0.9), s(1.0)));
        // Cut again at 2 s, while still climbing back (below 10): it gives up more of the quota, aiming
        // at halfway between the new start and the rate it was cut at, not at 10 again.
        let at_cut = b.rate(s(2.0));
        assert!(at_cut < 10.0, "{at_cut}");
        assert!(b.throttled(s(1.9), s(2.0)));
        assert!((b.rate(s(2.0)) - at_cut * BETA).abs() < 1e-9);
        let aim = at_cut * (1.0 + BETA) / 2.0;
        let k = ((aim - at_cut * BETA) / SCALE).cbrt();
        assert!(
            (b.rate(s(2.0 + k)) - aim).abs() < 1e-9,
            "{}",
            b.rate(s(2.0 + k))
        );
        // Past that, with no refusal, it grows faster (probing: the other caller may have left).
        let one_s_past = b.rate(s(3.0 + k)) - aim;
        assert!((one_s_past - PROBE_SCALE).abs() < 1e-9, "{one_s_past}");
    }
}

#[cfg(test)]
#[path = "ratelimit_sim.rs"]
mod sim;

#[cfg(test)]
#[path = "ratelimit_budget_tests.rs"]
mod budget_tests;
