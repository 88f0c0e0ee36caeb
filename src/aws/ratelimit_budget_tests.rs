//! The adaptive budget against a simulated API Gateway that keeps a quota (a token bucket of its own,
//! 10/s with a burst of 40, full at the start), in 1 ms steps, with clients that always have calls waiting.

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
