//! The adaptive budget against a simulated API Gateway that keeps a quota (a token bucket of its own,
//! 10/s with a burst of 40, full at the start), in 1 ms steps. Each client is an operator with the
//! defaults (ceiling 10/s, burst 40, at most 4 calls in flight); a call reaches AWS some milliseconds
//! after it leaves and is answered later still, both varying from call to call (a fixed seed), as on a
//! real network. [`Client::on_a_local_network`] makes every round trip 2–3 ms, as on the bench's machine,
//! where evenly spaced calls at the quota's rate lock one operator out (see `spaced_unevenly`).

use super::{Bucket, Budget};
use std::time::{Duration, Instant};

pub(super) const QUOTA: f64 = 10.0;
pub(super) const QUOTA_BURST: u32 = 40;
/// A call's round trip is RTT_MIN + 0..RTT_SPREAD ms; it reaches AWS within the first half of it.
pub(super) const RTT_MIN: u64 = 80;
pub(super) const RTT_SPREAD: u64 = 200;
/// Calls in flight at once per client (--aws-concurrency).
pub(super) const IN_FLIGHT: usize = 4;
/// The operator's default burst (--aws-burst).
pub(super) const BURST: u32 = 40;

/// A small deterministic generator (xorshift), so that every run of a test sees the same network.
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A call on its way: sent, reaching AWS, answered (ms), and whether AWS refused it (known on arrival).
pub(super) struct Call {
    pub(super) sent: u64,
    pub(super) arrives: u64,
    pub(super) answered: u64,
    pub(super) throttled: Option<bool>,
}

pub(super) struct Client {
    pub(super) budget: Budget,
    pub(super) bucket: Bucket,
    pub(super) pending: Vec<Call>,
    pub(super) ok: Vec<u64>,
    pub(super) throttled: Vec<u64>,
    pub(super) active: std::ops::Range<u64>,
    /// Calls it has to make (None: always more); a refused call is made again.
    pub(super) work: Option<usize>,
    /// When its last call was answered OK, once `work` is done.
    pub(super) done_at: Option<u64>,
    /// When the process restarts: a new budget and an empty bucket, answers in flight lost.
    pub(super) restart_at: Option<u64>,
    /// Its round trip, ms: the first figure plus 0..the second.
    pub(super) rtt: (u64, u64),
}

thread_local! {
    /// Each client's bucket draws its spacing from a seed of its own; per test thread, so every run of a
    /// test sees the same.
    static NEXT_SEED: std::cell::Cell<u64> = const { std::cell::Cell::new(0x5eed) };
}

/// An operator's bucket, full: its calls unevenly spaced as in the process (a seed of its own).
pub(super) fn operator_bucket(rate: f64, t0: Instant) -> Bucket {
    let seed = NEXT_SEED.with(|s| {
        s.set(
            s.get()
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1),
        );
        s.get()
    });
    Bucket::new(rate, BURST, t0).spaced_unevenly(seed)
}

impl Client {
    pub(super) fn new(ceiling: f64, t0: Instant, active: std::ops::Range<u64>) -> Client {
        Client {
            budget: Budget::new(ceiling),
            bucket: operator_bucket(ceiling, t0).emptied(),
            pending: Vec::new(),
            ok: Vec::new(),
            throttled: Vec::new(),
            active,
            work: None,
            done_at: None,
            restart_at: None,
            rtt: (RTT_MIN, RTT_SPREAD),
        }
    }

    /// The same client on a steady local network, as on the bench's machine: every round trip 2–3 ms.
    pub(super) fn on_a_local_network(self) -> Client {
        Client {
            rtt: (2, 2),
            ..self
        }
    }

    /// A client with `calls` to make from the start, its bucket full (it was idle before).
    pub(super) fn with_work(calls: usize, t0: Instant) -> Client {
        Client {
            bucket: operator_bucket(QUOTA, t0),
            work: Some(calls),
            ..Client::new(QUOTA, t0, 0..u64::MAX)
        }
    }

    pub(super) fn wants_more(&self) -> bool {
        self.work
            .is_none_or(|w| self.ok.len() + self.pending.len() < w)
    }

    pub(super) fn in_window(calls: &[u64], from: u64, to: u64) -> usize {
        calls.iter().filter(|t| (from..to).contains(*t)).count()
    }

    pub(super) fn accepted(&self, from: u64, to: u64) -> usize {
        Client::in_window(&self.ok, from, to)
    }

    pub(super) fn refused(&self, from: u64, to: u64) -> usize {
        Client::in_window(&self.throttled, from, to)
    }
}

/// A controller that does not slow down when throttled, as ACK's does with the Go SDK's standard
/// retryer: `WORKERS` resources at a time, each worker making its calls one after another (a short pause
/// between them for its own Kubernetes work), a refused call tried again after a random 0–2 s, then
/// 0–4 s, and after a third refusal the resource requeued a second later.
/// A greedy controller's calls in flight: (worker, the call).
type InFlight = Vec<(usize, Call)>;

pub(super) struct Greedy {
    /// One entry per worker: when it may send next, and how many times its current call was refused.
    pub(super) workers: Vec<(u64, u32)>,
    /// Calls in flight.
    pub(super) pending: InFlight,
    pub(super) ok: Vec<u64>,
    pub(super) throttled: Vec<u64>,
    pub(super) work: usize,
    pub(super) done_at: Option<u64>,
}

impl Greedy {
    pub(super) const WORKERS: usize = 4;
    /// Its round trip, ms: RTT_MIN + 0..RTT_SPREAD. It runs beside moto on the bench's machine, so its
    /// calls come back much sooner than ours in this simulation; with these figures it alone is refused
    /// as often as ACK alone was in the bench (24 % of its calls).
    pub(super) const RTT_MIN: u64 = 10;
    pub(super) const RTT_SPREAD: u64 = 30;
    /// A worker's pause between two calls (its own Kubernetes reads and writes), ms: 0..PAUSE_SPREAD.
    pub(super) const PAUSE_SPREAD: u64 = 10;

    pub(super) fn with_work(calls: usize) -> Greedy {
        Greedy {
            workers: vec![(0, 0); Greedy::WORKERS],
            pending: Vec::new(),
            ok: Vec::new(),
            throttled: Vec::new(),
            work: calls,
            done_at: None,
        }
    }

    pub(super) fn wants_more(&self) -> bool {
        self.ok.len() + self.pending.len() < self.work
    }
}

/// Runs `ms` milliseconds (or until every client with work is done); `other` is a tool outside our
/// control sending at a fixed rate in a range of time (rate, from ms, to ms), which takes the quota's
/// tokens first.
pub(super) fn simulate(clients: &mut [Client], ms: u64, other: Option<(f64, u64, u64)>) {
    simulate_beside(clients, &mut [], ms, other);
}

/// [`simulate`] with controllers that do not slow down beside ours.
pub(super) fn simulate_beside(
    clients: &mut [Client],
    greedy: &mut [Greedy],
    ms: u64,
    other: Option<(f64, u64, u64)>,
) {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut quota = Bucket::new(QUOTA, QUOTA_BURST, t0);
    let mut other_due = 0.0f64;
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15);
    for now in 0..ms {
        if clients
            .iter()
            .all(|c| c.work.is_some() && c.done_at.is_some())
            && greedy.iter().all(|g| g.done_at.is_some())
        {
            return;
        }
        if let Some((rate, from, to)) = other
            && (from..to).contains(&now)
        {
            other_due += rate / 1000.0;
            while other_due >= 1.0 {
                other_due -= 1.0;
                let _ = quota.try_take(at(now));
            }
        }
        // Calls reach AWS in the order they arrive; within a millisecond the order turns, as on a real
        // network neither client is always first.
        let count = clients.len();
        let first = (now as usize) % count.max(1);
        let greedy_first = now % 2 == 0;
        if greedy_first {
            arrive_greedy(greedy, &mut quota, now, at(now));
        }
        for i in (0..count).map(|i| (first + i) % count) {
            for call in &mut clients[i].pending {
                if call.throttled.is_none() && call.arrives <= now {
                    call.throttled = Some(quota.try_take(at(now)).is_err());
                }
            }
        }
        if !greedy_first {
            arrive_greedy(greedy, &mut quota, now, at(now));
        }
        for g in greedy.iter_mut() {
            step_greedy(g, now, &mut jitter);
        }
        for i in (0..count).map(|i| (first + i) % count) {
            let c = &mut clients[i];
            if c.restart_at == Some(now) {
                c.budget = Budget::with_floor(c.budget.ceiling(), c.budget.floor());
                c.bucket = operator_bucket(c.budget.ceiling(), at(now)).emptied();
                c.pending.clear();
            }
            let (answered, pending): (Vec<Call>, Vec<Call>) = std::mem::take(&mut c.pending)
                .into_iter()
                .partition(|call| call.answered <= now && call.throttled.is_some());
            c.pending = pending;
            for call in answered {
                if call.throttled == Some(true) {
                    c.throttled.push(call.sent);
                    if c.budget.throttled(at(call.sent), at(now)) {
                        c.bucket.drain(at(now));
                    }
                } else {
                    c.ok.push(call.sent);
                    if c.work.is_some() && !c.wants_more() && c.pending.is_empty() {
                        c.done_at = Some(now);
                    }
                }
            }
            if !c.active.contains(&now) {
                continue;
            }
            c.bucket.set_rate(c.budget.rate(at(now)), at(now));
            while c.pending.len() < IN_FLIGHT
                && c.wants_more()
                && c.bucket.try_take(at(now)).is_ok()
            {
                let rtt = c.rtt.0 + jitter.below(c.rtt.1);
                c.pending.push(Call {
                    sent: now,
                    arrives: now + 1 + jitter.below(rtt / 2),
                    answered: now + rtt,
                    throttled: None,
                });
            }
        }
    }
}

pub(super) fn arrive_greedy(greedy: &mut [Greedy], quota: &mut Bucket, now: u64, at: Instant) {
    for g in greedy.iter_mut() {
        for (_, call) in &mut g.pending {
            if call.throttled.is_none() && call.arrives <= now {
                call.throttled = Some(quota.try_take(at).is_err());
            }
        }
    }
}

/// One millisecond of a greedy controller: answers come in, idle workers send.
pub(super) fn step_greedy(g: &mut Greedy, now: u64, jitter: &mut Jitter) {
    let (answered, pending): (InFlight, InFlight) = std::mem::take(&mut g.pending)
        .into_iter()
        .partition(|(_, call)| call.answered <= now && call.throttled.is_some());
    g.pending = pending;
    for (worker, call) in answered {
        let (next, refusals) = &mut g.workers[worker];
        if call.throttled == Some(true) {
            g.throttled.push(call.sent);
            *refusals += 1;
            *next = now
                + match *refusals {
                    1 => jitter.below(2_000),
                    2 => jitter.below(4_000),
                    _ => 1_000,
                };
            if *refusals >= 3 {
                *refusals = 0;
            }
        } else {
            g.ok.push(call.sent);
            *refusals = 0;
            *next = now + jitter.below(Greedy::PAUSE_SPREAD);
            if !g.wants_more() && g.pending.is_empty() && g.done_at.is_none() {
                g.done_at = Some(now);
            }
        }
    }
    for worker in 0..g.workers.len() {
        let busy = g.pending.iter().any(|(w, _)| *w == worker);
        if !busy && g.workers[worker].0 <= now && g.wants_more() {
            let rtt = Greedy::RTT_MIN + jitter.below(Greedy::RTT_SPREAD);
            g.pending.push((
                worker,
                Call {
                    sent: now,
                    arrives: now + 1 + jitter.below(rtt / 2),
                    answered: now + rtt,
                    throttled: None,
                },
            ));
        }
    }
}
