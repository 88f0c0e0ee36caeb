//! A token bucket's arithmetic, apart from time and locking: the client-side pacing of API Gateway calls
//! that [`super::ratelimit::TokenBucket`] wraps, its rate set by the adaptive budget.

use std::time::{Duration, Instant};

/// How much later than its token a call may leave, in tokens, when spaced unevenly: each call waits for
/// 1 to 1 + this many (drawn at random), and keeps what it did not spend, so the mean rate is unchanged.
const SPACING_SPREAD: f64 = 1.0;

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Uneven spacing, see [`Bucket::spaced_unevenly`]; None: a call leaves as soon as a token is there.
    spacing: Option<UnevenSpacing>,
}

/// The tokens the next call waits for, and the generator (xorshift) that draws them.
#[derive(Debug, Clone)]
struct UnevenSpacing {
    state: u64,
    next_needs: f64,
    /// Spacing is uneven only at this rate or above (the rate the bucket was made with: the ceiling).
    from_rate: f64,
}

impl UnevenSpacing {
    fn new(seed: u64, from_rate: f64) -> Self {
        let mut spacing = UnevenSpacing {
            // xorshift never leaves 0.
            state: seed | 1,
            next_needs: 1.0,
            from_rate,
        };
        spacing.draw();
        spacing
    }

    fn draw(&mut self) {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let unit = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        self.next_needs = 1.0 + SPACING_SPREAD * unit;
    }
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
            spacing: None,
        }
    }

    /// The same bucket, while at the rate it was made with (the budget's ceiling), each call leaving
    /// when 1 to 2 tokens are saved (at random, from `seed`), the rest kept for the next: the same mean
    /// rate and at most one more call in any window, but the calls no longer evenly spaced.
    ///
    /// At a rate equal to API Gateway's quota, evenly spaced calls mirror the account's bucket: each
    /// arrives just after the token it needs appears there, so it is never refused and never gives way,
    /// while another caller sharing the account finds the bucket empty at every try and backs off to its
    /// floor. Two operators started together on one machine did that (one finished its half in half the
    /// time while the other waited). Calls that sometimes leave late leave a token in the account's
    /// bucket for the other caller now and then; the first then meets a refusal too, and both settle on
    /// half each. Below the ceiling (after a cut) the rate is under the quota, the account's bucket saves
    /// what this one leaves, and no mirror can form; there calls stay evenly spaced, which beside a
    /// caller that does not slow down is refused less often and done sooner (the simulation with the
    /// floor at 5/s on a local network: 52 refusals and 112.1 s against 93 and 123.9 s).
    pub fn spaced_unevenly(mut self, seed: u64) -> Self {
        self.spacing = Some(UnevenSpacing::new(seed, self.rate));
        self
    }

    /// The same bucket, each call leaving as soon as its token is there (the simulation's control).
    #[cfg(test)]
    pub fn evenly_spaced(mut self) -> Self {
        self.spacing = None;
        self
    }

    /// The same bucket with no token saved: calls start at `rate`, and the burst builds up from there.
    pub fn emptied(mut self) -> Self {
        self.tokens = 0.0;
        self
    }

    /// Drops every saved token at `now`: AWS has just throttled, so the account's own bucket is empty
    /// whatever this one saved (another caller spent it), and a saved burst would only be refused. The
    /// next call leaves one token's time later, as from an even bucket: with uneven spacing it would
    /// otherwise wait for up to two, and a drain after every refusal would slow the mean rate below the
    /// rate itself.
    pub fn drain(&mut self, now: Instant) {
        self.tokens = 0.0;
        self.last = now;
        if let Some(spacing) = &mut self.spacing {
            spacing.next_needs = 1.0;
        }
    }

    /// The tokens the next call waits for.
    fn needs(&self) -> f64 {
        self.spacing
            .as_ref()
            .filter(|s| self.rate >= s.from_rate)
            .map_or(1.0, |s| s.next_needs.min(self.burst))
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

    /// Takes a token if one is there (with uneven spacing: if this call's share is saved); otherwise
    /// says how long until it will be.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        let needs = self.needs();
        if self.tokens >= needs {
            self.tokens -= 1.0;
            if let Some(spacing) = &mut self.spacing {
                spacing.draw();
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((needs - self.tokens) / self.rate))
        }
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
    fn a_drained_bucket_saves_nothing_from_before() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 40, t0);
        b.drain(t0 + Duration::from_secs(1));
        let wait = b.try_take(t0 + Duration::from_secs(1)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert!(b.try_take(t0 + Duration::from_millis(1100)).is_ok());
    }

    #[test]
    fn unevenly_spaced_calls_keep_the_rate_and_the_window_bound() {
        // Callers that always want a token for 60 s, time stepping by 1 ms.
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 40, t0).emptied().spaced_unevenly(7);
        let mut taken = vec![];
        for ms in 0..60_000u64 {
            while b.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                taken.push(ms);
            }
        }
        // The same mean rate as evenly spaced calls: 600 in 60 s, less at most the two tokens a call
        // may wait for.
        assert!((598..=600).contains(&taken.len()), "{} calls", taken.len());
        for (i, start) in taken.iter().enumerate() {
            let in_window = taken[i..].iter().take_while(|t| **t < start + 1000).count();
            // A late call leaves up to one token behind, which the next may spend early: at most one
            // more than the rate in any second, far within burst + rate × window.
            assert!(
                in_window <= 11,
                "{in_window} calls in the second from {start} ms"
            );
        }
        // No longer evenly spaced: gaps from one to three tokens' time (100 to 300 ms) occur.
        let gaps: Vec<u64> = taken.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().any(|g| *g < 60), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g > 140), "{gaps:?}");
        assert!(gaps.iter().all(|g| *g <= 300), "{gaps:?}");
    }

    #[test]
    fn below_the_rate_it_was_made_with_calls_are_evenly_spaced() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 40, t0).emptied().spaced_unevenly(7);
        // Cut to 5/s: a call every 200 ms exactly, as an even bucket.
        b.set_rate(5.0, t0);
        let mut taken = vec![];
        for ms in 0..10_000u64 {
            while b.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                taken.push(ms);
            }
        }
        let gaps: Vec<u64> = taken.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (199..=201).contains(g)), "{gaps:?}");
    }

    #[test]
    fn a_drain_never_holds_the_next_call_back_more_than_one_token() {
        // At a fixed rate (ceiling and floor the same) a refusal drains the bucket after every call: the
        // next still leaves within one token's time, so the mean rate holds.
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, 40, t0).emptied().spaced_unevenly(11);
        let mut taken = 0;
        let mut drain_at = None;
        for ms in 0..60_000u64 {
            let now = t0 + Duration::from_millis(ms);
            if drain_at == Some(ms) {
                b.drain(now);
            }
            if b.try_take(now).is_ok() {
                taken += 1;
                drain_at = Some(ms + 5);
            }
        }
        // A call every 205 ms (one token after each drain): 292 in 60 s. Emptying the bucket alone had
        // the next call wait for 1 to 2 tokens: 3.3/s.
        assert!(taken >= 290, "{taken} calls in 60 s");
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
