//! API Gateway's control-plane quota as the fault proxy keeps it: a token bucket per account, refilled at
//! `rate` calls per second up to `burst` saved calls. AWS documents about 10 requests per second per
//! account and region with a burst of 40 for the API Gateway management API; moto keeps none, so without
//! this no test or bench ever meets the limit every real run meets. Built without features: xtask reads
//! the `--quota` flag with it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

/// The environment variable through which xtask hands `--quota` to the chaos run and the bench:
/// `RATE/BURST` (e.g. `10/40`) or `off`.
pub const QUOTA_ENV: &str = "APIGW_QUOTA";

/// Calls per second and saved calls allowed to one account.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub rate: f64,
    pub burst: u32,
}

impl Quota {
    /// API Gateway's documented default: 10 requests per second, burst 40.
    pub const API_GATEWAY: Quota = Quota {
        rate: 10.0,
        burst: 40,
    };

    /// The most calls this quota admits in any window of `seconds`: the saved burst plus the refill.
    pub fn most_in(&self, seconds: f64) -> f64 {
        f64::from(self.burst) + self.rate * seconds
    }

    /// The quota `QUOTA_ENV` asks for: unset means `default`, `off` means none.
    pub fn from_env_or(default: Option<Quota>) -> Result<Option<Quota>, String> {
        match std::env::var(QUOTA_ENV) {
            Err(_) => Ok(default),
            Ok(v) if v.trim().is_empty() => Ok(default),
            Ok(v) if v.trim() == "off" => Ok(None),
            Ok(v) => v.parse().map(Some),
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rate, self.burst)
    }
}

impl FromStr for Quota {
    type Err = String;

    /// `RATE/BURST`, e.g. `10/40` or `2.5/10`.
    fn from_str(s: &str) -> Result<Quota, String> {
        let bad = || {
            format!("a quota is RATE/BURST with a positive rate and burst (e.g. 10/40), not {s:?}")
        };
        let (rate, burst) = s.trim().split_once('/').ok_or_else(bad)?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        if !(rate.is_finite() && rate > 0.0 && burst > 0) {
            return Err(bad());
        }
        Ok(Quota { rate, burst })
    }
}

/// One account's bucket, apart from time (the caller says when).
#[derive(Clone, Debug)]
pub struct QuotaBucket {
    quota: Quota,
    tokens: f64,
    last: Instant,
}

impl QuotaBucket {
    /// A full bucket: an account that has been quiet may spend its whole burst at once.
    pub fn new(quota: Quota, now: Instant) -> QuotaBucket {
        QuotaBucket {
            quota,
            tokens: f64::from(quota.burst),
            last: now,
        }
    }

    /// Admits a call arriving at `now` if a token is there (and takes it); false: throttled.
    pub fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.quota.rate).min(f64::from(self.quota.burst));
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Tokens saved at `now` (without taking one).
    pub fn tokens(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.quota.rate).min(f64::from(self.quota.burst))
    }
}

/// The account a request is counted against: the access key ID of its SigV4 signature
/// (`Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ...`).
/// AWS keeps the quota per account; in the tests each account has one key, so the key tells them apart.
/// None for an unsigned request.
pub fn signing_key(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let key = credential.split('/').next()?.trim();
    (!key.is_empty() && !key.contains([',', ' '])).then_some(key)
}

/// What the quota did for one account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaCount {
    pub admitted: usize,
    pub throttled: usize,
}

/// The quota over every account: a bucket per signing key (unsigned requests share one), and counts.
#[derive(Debug)]
pub struct QuotaKeeper {
    quota: Quota,
    buckets: BTreeMap<String, QuotaBucket>,
    counts: BTreeMap<String, QuotaCount>,
}

/// The name unsigned requests are counted under.
pub const UNSIGNED: &str = "(unsigned)";

impl QuotaKeeper {
    pub fn new(quota: Quota) -> QuotaKeeper {
        QuotaKeeper {
            quota,
            buckets: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Admits (true) or throttles (false) a call of `account` arriving at `now`, and counts it.
    pub fn admit(&mut self, account: Option<&str>, now: Instant) -> bool {
        let account = account.unwrap_or(UNSIGNED);
        let quota = self.quota;
        let admitted = self
            .buckets
            .entry(account.to_string())
            .or_insert_with(|| QuotaBucket::new(quota, now))
            .admit(now);
        let count = self.counts.entry(account.to_string()).or_default();
        if admitted {
            count.admitted += 1;
        } else {
            count.throttled += 1;
        }
        admitted
    }

    /// What the quota did so far, per account.
    pub fn counts(&self) -> BTreeMap<String, QuotaCount> {
        self.counts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_quota_is_rate_slash_burst() {
        assert_eq!("10/40".parse(), Ok(Quota::API_GATEWAY));
        assert_eq!(
            " 2.5 / 10 ".parse(),
            Ok(Quota {
                rate: 2.5,
                burst: 10
            })
        );
        for bad in [
            "10", "10/", "/40", "0/40", "10/0", "-1/40", "ten/40", "10/4.5", "inf/40",
        ] {
            assert!(bad.parse::<Quota>().is_err(), "{bad} parsed");
        }
        assert_eq!(Quota::API_GATEWAY.to_string(), "10/40");
        assert_eq!(Quota::API_GATEWAY.most_in(2.0), 60.0);
    }

    #[test]
    fn a_full_bucket_admits_the_burst_at_once_then_the_rate() {
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(Quota::API_GATEWAY, t0);
        assert!((0..40).all(|_| b.admit(t0)), "the burst of 40");
        assert!(!b.admit(t0), "the 41st at once is throttled");
        // 10/s: one token per 100 ms.
        assert!(!b.admit(at(t0, 50)));
        assert!(b.admit(at(t0, 100)));
        assert!(!b.admit(at(t0, 150)));
        // Calls every 100 ms for 10 s: all admitted, none saved.
        let admitted = (1..=100).filter(|i| b.admit(at(t0, 100 + i * 100))).count();
        assert_eq!(admitted, 100);
        assert!(b.tokens(at(t0, 10_100)) < 1.0);
        // A quiet stretch refills to the burst, not beyond.
        assert_eq!(b.tokens(at(t0, 60_000)), 40.0);
    }

    #[test]
    fn over_any_window_the_bucket_admits_at_most_burst_plus_rate_times_window() {
        // A client asking 30/s for 20 s gets the burst and then 10/s.
        let t0 = Instant::now();
        let q = Quota {
            rate: 10.0,
            burst: 40,
        };
        let mut b = QuotaBucket::new(q, t0);
        let admitted: Vec<u64> = (0..600)
            .map(|i| i * 1000 / 30)
            .filter(|&ms| b.admit(at(t0, ms)))
            .collect();
        assert!((230..=241).contains(&admitted.len()), "{}", admitted.len());
        for window_ms in [1000u64, 2000, 5000, 10_000] {
            let most = (0..admitted.len())
                .map(|i| {
                    admitted[i..]
                        .iter()
                        .take_while(|&&t| t < admitted[i] + window_ms)
                        .count()
                })
                .max()
                .unwrap();
            assert!(
                most as f64 <= q.most_in(window_ms as f64 / 1000.0),
                "{most} in {window_ms} ms"
            );
        }
    }

    #[test]
    fn the_account_is_the_signing_key_of_the_authorization_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/apigateway/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(signing_key(h), Some("AKIDEXAMPLE"));
        assert_eq!(signing_key("AWS4-HMAC-SHA256 Credential=/20261207/x"), None);
        assert_eq!(signing_key("Bearer token"), None);
        assert_eq!(signing_key(""), None);
    }

    #[test]
    fn each_account_has_its_own_bucket() {
        let t0 = Instant::now();
        let mut k = QuotaKeeper::new(Quota {
            rate: 1.0,
            burst: 2,
        });
        assert!(k.admit(Some("A"), t0));
        assert!(k.admit(Some("A"), t0));
        assert!(!k.admit(Some("A"), t0), "A's burst is spent");
        assert!(k.admit(Some("B"), t0), "B is another account");
        assert!(
            k.admit(None, t0),
            "unsigned requests have a bucket of their own"
        );
        assert!(
            k.admit(Some("A"), at(t0, 1000)),
            "A refilled one token in 1 s"
        );
        assert_eq!(
            k.counts()["A"],
            QuotaCount {
                admitted: 3,
                throttled: 1
            }
        );
        assert_eq!(k.counts()["B"].admitted, 1);
        assert_eq!(k.counts()[UNSIGNED].admitted, 1);
    }
}
