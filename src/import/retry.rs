//! When the import asks for a page again. An import of a large estate makes hundreds of calls against
//! API Gateway's quota (about 10 calls/s per account and region, shared with every other tool of the
//! account), so a 429 is to be expected, and so is the odd 5xx or timeout; neither should throw away the
//! pages already read. A call that failed for a passing reason ([`is_passing`]) is made again after a
//! pause that doubles with each failure, up to a bounded number of attempts. Every attempt goes through
//! the client's adaptive budget like any other call, so a 429 also lowers the rate of the calls after it
//! (the SDK's own retries stay off: they would hide the 429s from the budget). Anything else ends the
//! import at once, naming the call.

use crate::aws::AwsError;
use std::time::Duration;

/// How often, and after which pauses, a failed call is made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts of one call in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; it doubles after each further one.
    pub first_pause: Duration,
    /// The longest pause.
    pub longest_pause: Duration,
}

impl Retry {
    /// The import's: 8 attempts, pausing about 0.5, 1, 2, 4, 8, 10 and 10 s between them (each pause
    /// between half and all of that, at random), so a call is given up after 35 s of pauses at most: long
    /// enough for another tool's burst on the account to pass, short enough that an API Gateway that
    /// stays down ends the import within a minute.
    pub const IMPORT: Retry = Retry {
        attempts: 8,
        first_pause: Duration::from_millis(500),
        longest_pause: Duration::from_secs(10),
    };

    /// The pause before attempt `failed + 1` of a call whose attempt number `failed` (1 for the first)
    /// failed with `error`, or None to stop: the error does not pass by itself, or the attempts are used
    /// up. `jitter` in [0, 1] picks the pause between half and all of the doubled one, so that callers
    /// throttled together do not come back together.
    pub fn pause_after(&self, failed: u32, error: &AwsError, jitter: f64) -> Option<Duration> {
        if !is_passing(error) || failed >= self.attempts {
            return None;
        }
        let doubled = self
            .first_pause
            .saturating_mul(1u32 << failed.saturating_sub(1).min(20))
            .min(self.longest_pause);
        Some(doubled.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

/// Does the failure pass by itself, so that the same call may succeed later? A 429 (throttled: the
/// budget slows down meanwhile), a 5xx, a timeout or a lost connection (unavailable), and a success
/// answer that could not be read (cut short on the way): the listing changes nothing in AWS, so asking
/// again is always safe. Not: access denied, an API or integration not found (deleted since it was
/// listed), a rejected request, missing credentials.
pub fn is_passing(error: &AwsError) -> bool {
    match error {
        AwsError::Throttled(_) | AwsError::Unavailable(_) | AwsError::Unreadable(_) => true,
        AwsError::BadRequest(_)
        | AwsError::AccessDenied(_)
        | AwsError::NotFound(_)
        | AwsError::Conflict(_)
        | AwsError::CredentialsMissing(_)
        | AwsError::Fenced(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled() -> AwsError {
        AwsError::Throttled("TooManyRequestsException: Too Many Requests".into())
    }

    #[test]
    fn throttled_and_unavailable_calls_are_made_again_the_rest_are_not() {
        let r = Retry::IMPORT;
        for passing in [
            throttled(),
            AwsError::Unavailable("InternalServerError: boom".into()),
            AwsError::Unavailable("timed out: operation timeout".into()),
            AwsError::Unreadable("HTTP 200 answer that could not be read".into()),
        ] {
            assert!(r.pause_after(1, &passing, 0.0).is_some(), "{passing}");
        }
        for lasting in [
            AwsError::AccessDenied("AccessDeniedException: no".into()),
            AwsError::NotFound("NotFoundException: Invalid API identifier".into()),
            AwsError::BadRequest("BadRequestException: bad".into()),
            AwsError::Conflict("ConflictException: x".into()),
            AwsError::CredentialsMissing("none".into()),
        ] {
            assert_eq!(r.pause_after(1, &lasting, 0.0), None, "{lasting}");
        }
    }

    #[test]
    fn the_pause_doubles_up_to_the_longest_and_the_attempts_are_bounded() {
        let r = Retry::IMPORT;
        let full: Vec<Duration> = (1..r.attempts)
            .map(|failed| r.pause_after(failed, &throttled(), 1.0).unwrap())
            .collect();
        let secs: Vec<f64> = full.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        // The eighth failure is the last attempt: give up.
        assert_eq!(r.pause_after(r.attempts, &throttled(), 1.0), None);
        assert_eq!(r.pause_after(r.attempts + 5, &throttled(), 1.0), None);
        // Jitter keeps each pause between half and all of the doubled one.
        for (failed, whole) in (1..r.attempts).zip(&full) {
            let least = r.pause_after(failed, &throttled(), 0.0).unwrap();
            let some = r.pause_after(failed, &throttled(), 0.37).unwrap();
            assert_eq!(least, *whole / 2);
            assert!(
                least < some && some < *whole,
                "{least:?} {some:?} {whole:?}"
            );
        }
        // Out-of-range jitter and huge failure counts stay bounded.
        let odd = Retry {
            attempts: u32::MAX,
            ..r
        };
        assert_eq!(
            odd.pause_after(1000, &throttled(), 7.0),
            Some(r.longest_pause)
        );
        assert_eq!(
            odd.pause_after(1, &throttled(), -3.0),
            Some(r.first_pause / 2)
        );
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let once = Retry {
            attempts: 1,
            ..Retry::IMPORT
        };
        assert_eq!(once.pause_after(1, &throttled(), 0.5), None);
    }
}
