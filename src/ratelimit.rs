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
    pub fn new(rate: f64, burst: u32) -> Self {
        TokenBucket {
            bucket: Mutex::new(Bucket::new(rate, burst, Instant::now())),
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
