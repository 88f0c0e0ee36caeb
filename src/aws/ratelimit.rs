//! A client-side token bucket: `rate` calls per second on average, at most `burst` at once. API Gateway's
//! control plane allows about 10 requests/s per account, so every call waits here first.

use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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
        }
    }

    pub async fn acquire(&self) {
        let mut bucket = self.bucket.lock().await;
        loop {
            match bucket.try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
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
