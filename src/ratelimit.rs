//! A client-side token bucket per (account, region) whose rate adapts to API Gateway's answers. The
//! control plane allows about 10 requests/s per account and region, and that quota is shared by every
//! tool that manages the account (other clusters running this operator, Terraform in CI, the console), so
//! a fixed rate is either too slow alone or too fast together. [`Budget`] lowers the allowed rate when AWS
//! answers 429 and raises it again over time, as the AWS SDKs' adaptive retry mode does (CUBIC), never
//! above `--aws-rate` and never below a floor. Every call waits on the bucket first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// After a throttle, the rate drops to this share of what it was.
const BETA: f64 = 0.7;
/// How fast the rate grows back (calls/s per s³). The AWS SDKs' adaptive retry mode uses 0.4, which
/// probes past the quota every second or two: two operators sharing 10/s then had one call in eight
/// refused (the simulation in the tests below). At 0.005 a cut from 10/s to 7/s takes 8.4 s to climb
/// back, and two operators sharing the quota see about 3 % of their calls refused.
const SCALE: f64 = 0.005;
/// The slowest the budget goes, whatever AWS answers: a resource must still move.
const FLOOR: f64 = 0.5;
/// A waiter looks at the allowed rate again at least this often (it may have risen meanwhile).
const RECHECK: Duration = Duration::from_millis(250);

/// The allowed rate of one (account, region), apart from time and locking: multiplicative decrease on a
/// throttled answer, cubic growth back towards (and past) the rate at which it was throttled, capped at
/// the ceiling. A 429 answering a call that was sent before the last decrease says nothing new (it was
/// sent at the old rate), so it does not cut the rate again: one decrease per round of answers.
#[derive(Debug, Clone)]
pub struct Budget {
    ceiling: f64,
    floor: f64,
    /// The rate when AWS last throttled (CUBIC's W_max).
    last_max: f64,
    /// When the rate was last cut; None: never throttled, the rate is the ceiling.
    decreased_at: Option<Instant>,
    /// Seconds after a cut until the rate is back at `last_max` (CUBIC's K).
    back_after: f64,
}

impl Budget {
    pub fn new(ceiling: f64) -> Self {
        assert!(ceiling > 0.0, "the ceiling must be positive");
        Budget {
            ceiling,
            floor: FLOOR.min(ceiling),
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
        (SCALE * t.powi(3) + self.last_max).clamp(self.floor, self.ceiling)
    }

    /// AWS throttled a call sent at `sent`; the answer came at `now`. Returns whether the rate was cut.
    pub fn throttled(&mut self, sent: Instant, now: Instant) -> bool {
        if self.decreased_at.is_some_and(|cut| sent < cut) {
            return false;
        }
        let rate = self.rate(now);
        self.last_max = rate;
        self.back_after = (rate * (1.0 - BETA) / SCALE).cbrt();
        self.decreased_at = Some(now);
        true
    }

    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }
}

/// The bucket's arithmetic, apart from time and locking.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        assert!(rate > 0.0, "rate must be positive");
        let burst = f64::from(burst.max(1));
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The same bucket with no token saved: calls start at `rate`, and the burst builds up from there.
    pub fn emptied(mut self) -> Self {
        self.tokens = 0.0;
        self
    }

    /// From `now` on, tokens come at `rate` (those saved until now at the rate before).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if rate == self.rate {
            return;
        }
        assert!(rate > 0.0, "rate must be positive");
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        self.rate = rate;
    }

    /// Takes a token if one is there; otherwise says how long until one will be.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Waiters are served in arrival order (tokio's Mutex is fair), so no caller starves.
pub struct TokenBucket {
    bucket: Mutex<Bucket>,
    budget: std::sync::Mutex<Budget>,
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
        TokenBucket {
            bucket: Mutex::new(Bucket::new(rate, burst, Instant::now()).emptied()),
            budget: std::sync::Mutex::new(Budget::new(rate)),
            allowed: AtomicU64::new(rate.to_bits()),
        }
    }

    /// Waits for a token at the rate the budget allows now.
    pub async fn acquire(&self) {
        let mut bucket = self.bucket.lock().await;
        loop {
            let now = Instant::now();
            bucket.set_rate(self.allowed_at(now), now);
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
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, 3, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        assert!(b.try_take(t0 + Duration::from_millis(200)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(200)).is_err());
    }

    #[test]
    fn restarts_never_add_a_burst() {
        // A process that spent its burst, then a new one started 300 ms later (a crash and a restart):
        // the second from the first call holds at most burst + rate calls, as for one process.
        let t0 = Instant::now();
        let mut first = Bucket::new(5.0, 3, t0);
        let mut taken: Vec<u64> = vec![];
        for ms in 0..300u64 {
            while first.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                taken.push(ms);
            }
        }
        let started = t0 + Duration::from_millis(300);
        let mut second = Bucket::new(5.0, 3, started).emptied();
        assert!(second.try_take(started).is_err(), "no token at start");
        for ms in 300..2_000u64 {
            while second.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                taken.push(ms);
            }
        }
        let in_first_second = taken.iter().filter(|t| **t < 1000).count();
        assert!(
            in_first_second <= 3 + 5,
            "{in_first_second} calls: {taken:?}"
        );
    }

    #[test]
    fn never_more_than_burst_plus_rate_times_window() {
        // Simulate 10 s of callers that always want a token, stepping time by 1 ms.
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, 2, t0);
        let mut taken = vec![];
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            while b.try_take(now).is_ok() {
                taken.push(ms);
            }
        }
        assert!(
            (50..=53).contains(&taken.len()),
            "{} tokens in 10 s",
            taken.len()
        );
        for (i, start) in taken.iter().enumerate() {
            let in_window = taken[i..].iter().take_while(|t| **t < start + 1000).count();
            assert!(
                in_window <= 2 + 5,
                "{in_window} calls in the second from {start} ms"
            );
        }
    }
}

#[cfg(test)]
mod budget_tests {
    //! The budget against a simulated API Gateway that keeps a quota (a token bucket of its own, 10/s with
    //! a burst of 40, full at the start), in 1 ms steps, with clients that always have calls waiting.
    use super::*;

    const QUOTA: f64 = 10.0;
    const QUOTA_BURST: u32 = 40;
    const RTT: u64 = 30;

    struct Client {
        budget: Budget,
        bucket: Bucket,
        /// (sent at ms, answer due at ms, throttled)
        pending: Vec<(u64, u64, bool)>,
        ok: Vec<u64>,
        throttled: Vec<u64>,
        active: std::ops::Range<u64>,
    }

    impl Client {
        fn new(ceiling: f64, t0: Instant, active: std::ops::Range<u64>) -> Client {
            Client {
                budget: Budget::new(ceiling),
                bucket: Bucket::new(ceiling, 20, t0).emptied(),
                pending: Vec::new(),
                ok: Vec::new(),
                throttled: Vec::new(),
                active,
            }
        }

        fn in_window(calls: &[u64], from: u64, to: u64) -> usize {
            calls.iter().filter(|t| (from..to).contains(*t)).count()
        }

        fn accepted(&self, from: u64, to: u64) -> usize {
            Client::in_window(&self.ok, from, to)
        }

        fn refused(&self, from: u64, to: u64) -> usize {
            Client::in_window(&self.throttled, from, to)
        }
    }

    /// Runs `ms` milliseconds; `other` is a tool outside our control sending at a fixed rate in a range
    /// of time (rate, from ms, to ms), which takes the quota's tokens first.
    fn simulate(clients: &mut [Client], ms: u64, other: Option<(f64, u64, u64)>) {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut quota = Bucket::new(QUOTA, QUOTA_BURST, t0);
        let mut other_due = 0.0f64;
        for now in 0..ms {
            if let Some((rate, from, to)) = other
                && (from..to).contains(&now)
            {
                other_due += rate / 1000.0;
                while other_due >= 1.0 {
                    other_due -= 1.0;
                    let _ = quota.try_take(at(now));
                }
            }
            // Who asks first in a millisecond takes the token: the order turns, as on a real network
            // neither client is always first.
            let count = clients.len();
            let first = (now as usize) % count;
            for i in (0..count).map(|i| (first + i) % count) {
                let c = &mut clients[i];
                for (sent, due, throttled) in std::mem::take(&mut c.pending) {
                    if due > now {
                        c.pending.push((sent, due, throttled));
                    } else if throttled {
                        c.throttled.push(sent);
                        c.budget.throttled(at(sent), at(now));
                    } else {
                        c.ok.push(sent);
                    }
                }
                if !c.active.contains(&now) {
                    continue;
                }
                c.bucket.set_rate(c.budget.rate(at(now)), at(now));
                while c.bucket.try_take(at(now)).is_ok() {
                    let throttled = quota.try_take(at(now)).is_err();
                    c.pending.push((now, now + RTT, throttled));
                }
            }
        }
    }

    #[test]
    fn never_throttled_it_keeps_the_ceiling_and_a_throttle_cuts_it_once_per_round() {
        let t0 = Instant::now();
        let s = |x: f64| t0 + Duration::from_secs_f64(x);
        let mut b = Budget::new(10.0);
        assert_eq!(b.rate(s(100.0)), 10.0);
        assert!(b.throttled(s(0.9), s(1.0)));
        assert!((b.rate(s(1.0)) - 7.0).abs() < 1e-9, "{}", b.rate(s(1.0)));
        // Answers to calls sent before the cut change nothing.
        let before = b.clone();
        assert!(!b.throttled(s(0.95), s(1.05)));
        assert_eq!(b.rate(s(1.05)), before.rate(s(1.05)));
        assert!(b.rate(s(1.05)) < 7.5, "{}", b.rate(s(1.05)));
        // Back at the old rate after K = cbrt(10 × (1 − BETA) / SCALE) s, and never above the ceiling.
        let k = (10.0 * (1.0 - BETA) / SCALE).cbrt();
        assert!((b.rate(s(1.0 + k)) - 10.0).abs() < 1e-9);
        assert_eq!(b.rate(s(1000.0)), 10.0);
        // Throttled again and again, it never goes below the floor.
        for i in 0..100 {
            b.throttled(s(2.0 + f64::from(i) * 0.1), s(2.01 + f64::from(i) * 0.1));
        }
        assert_eq!(b.rate(s(12.02)), FLOOR);
    }

    #[test]
    fn alone_under_the_quota_it_is_never_throttled_and_uses_it_all() {
        let mut c = [Client::new(QUOTA, Instant::now(), 0..60_000)];
        simulate(&mut c, 61_000, None);
        assert_eq!(c[0].refused(0, 60_000), 0);
        let rate = c[0].accepted(10_000, 60_000) as f64 / 50.0;
        assert!(rate > 0.97 * QUOTA, "{rate:.2}/s");
    }

    #[test]
    fn alone_with_a_ceiling_above_the_quota_it_settles_just_under_it() {
        // A ceiling set too high (or a quota lowered by AWS): it finds the quota and stays near it.
        let mut c = [Client::new(2.0 * QUOTA, Instant::now(), 0..120_000)];
        simulate(&mut c, 121_000, None);
        let (ok, refused) = (
            c[0].accepted(30_000, 120_000),
            c[0].refused(30_000, 120_000),
        );
        let rate = ok as f64 / 90.0;
        let share = refused as f64 / (ok + refused) as f64;
        assert!(rate > 0.85 * QUOTA && rate <= QUOTA * 1.01, "{rate:.2}/s");
        // The probing above the quota costs a call every few seconds.
        assert!(share < 0.03, "{:.1} % throttled", 100.0 * share);
    }

    #[test]
    fn two_sharing_an_account_settle_near_half_each() {
        let t0 = Instant::now();
        let mut c = [
            Client::new(QUOTA, t0, 0..180_000),
            Client::new(QUOTA, t0, 0..180_000),
        ];
        simulate(&mut c, 181_000, None);
        let (from, to) = (60_000, 180_000);
        let ok: Vec<usize> = c.iter().map(|c| c.accepted(from, to)).collect();
        let refused: usize = c.iter().map(|c| c.refused(from, to)).sum();
        let total: usize = ok.iter().sum();
        let together = total as f64 / 120.0;
        let share = ok[0] as f64 / total as f64;
        let throttled = refused as f64 / (total + refused) as f64;
        assert!(together > 0.85 * QUOTA, "together {together:.2}/s");
        assert!((0.4..=0.6).contains(&share), "first's share {share:.2}");
        assert!(throttled < 0.05, "{:.1} % throttled", 100.0 * throttled);
        assert!(together <= QUOTA * 1.01, "together {together:.2}/s");
    }

    #[test]
    fn when_the_other_leaves_it_takes_the_whole_quota_again() {
        let t0 = Instant::now();
        let mut c = [
            Client::new(QUOTA, t0, 0..120_000),
            Client::new(QUOTA, t0, 0..60_000),
        ];
        simulate(&mut c, 121_000, None);
        let rate = c[0].accepted(75_000, 120_000) as f64 / 45.0;
        assert!(rate > 0.95 * QUOTA, "{rate:.2}/s after the other left");
    }

    #[test]
    fn a_burst_from_another_tool_makes_it_yield_and_come_back() {
        // Terraform takes 8 of the 10 calls/s for 20 s.
        let mut c = [Client::new(QUOTA, Instant::now(), 0..90_000)];
        simulate(&mut c, 91_000, Some((8.0, 20_000, 40_000)));
        let during = c[0].accepted(25_000, 40_000) as f64 / 15.0;
        let refused = c[0].refused(25_000, 40_000) as f64 / 15.0;
        let after = c[0].accepted(55_000, 90_000) as f64 / 35.0;
        // Ours leaves the other tool (which never slows down) more than half of the quota, and fewer
        // than one in five of its own calls is refused meanwhile.
        assert!(
            during < 5.0,
            "ours took {during:.2}/s while the other wanted 8/s"
        );
        assert!(
            refused < 0.2 * during,
            "{refused:.2}/s throttled while yielding"
        );
        assert!(after > 0.95 * QUOTA, "{after:.2}/s after the burst");
    }
}
