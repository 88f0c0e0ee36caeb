//! What an error means, decided once (design §2 rule 6): the condition reason, the metrics label and
//! when to try again, by the phase the reconciler was in.

use super::Error;
use crate::aws::AwsError;
use crate::conditions::Reason;
use std::time::Duration;

/// What the reconciler was doing when the error happened; it changes what some errors mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Observing, creating or adopting.
    Apply,
    /// Sending an UpdateIntegration.
    Update,
    /// Deleting the resource (the finalizer's cleanup).
    Delete,
}

/// When to try again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Retry {
    /// Not until the spec changes (AWS refused this spec).
    WhenSpecChanges,
    /// After the slow-retry period: someone else has to act (create the API, grant access, remove routes).
    Slow,
    /// Exponential backoff from `base` seconds, doubling per failure, at most `cap` seconds.
    Backoff { base: f64, cap: f64 },
    /// At a known moment (when the region's APIs may be listed again): not earlier, so not jittered.
    In(Duration),
}

/// What an error means, decided once for the condition, the metrics and the retry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Class {
    pub reason: Reason,
    pub label: &'static str,
    pub retry: Retry,
}

impl Error {
    /// Design §2 rule 6, in one table. `phase` is ignored for errors wrapped as a deletion's, which
    /// know their own.
    pub fn class(&self, phase: Phase) -> Class {
        let (err, wrapped_phase) = self.innermost();
        let phase = wrapped_phase.unwrap_or(phase);
        let backoff = |base, cap| Retry::Backoff { base, cap };
        // A passing failure (5xx, network, a concurrent change) says what was under way and is retried.
        let passing = match phase {
            Phase::Apply => Reason::AwsError,
            Phase::Update => Reason::Updating,
            Phase::Delete => Reason::Deleting,
        };
        // What an unreported failure would say if it were shown: what was under way, never AwsError.
        let unreported = match phase {
            Phase::Apply => Reason::Creating,
            Phase::Update => Reason::Updating,
            Phase::Delete => Reason::Deleting,
        };
        let (reason, label, retry) = match err {
            // Neither is the user's concern nor AWS's, and neither is written to the status: the
            // object changed since it was read (a newer copy is on its way), or this replica may no
            // longer lead (the lease task decides).
            e if e.is_conflict() => (unreported, "kube_conflict", backoff(0.2, 5.0)),
            e if e.is_fenced() => (unreported, "fenced", backoff(1.0, 5.0)),
            Error::Kube(_) | Error::StatusTimeout | Error::Cleanup(_) | Error::Fenced(_) => {
                (passing, "kube", backoff(1.0, 300.0))
            }
            Error::ApiNotFound(_) | Error::ApiRefNotFound { .. } => {
                (Reason::ApiNotFound, "api_not_found", Retry::Slow)
            }
            Error::ApiRefGone { relist_in, .. } | Error::ApiRefNotListedYet { relist_in, .. } => {
                (Reason::ApiNotFound, "api_not_found", Retry::In(*relist_in))
            }
            Error::VpcLinkNotFound { .. } => {
                (Reason::VpcLinkNotFound, "vpc_link_not_found", Retry::Slow)
            }
            Error::AmbiguousReference { .. } => (
                Reason::AmbiguousReference,
                "ambiguous_reference",
                Retry::Slow,
            ),
            Error::AdoptionRefused(_) => (Reason::AdoptionRefused, "adoption_refused", Retry::Slow),
            // A bug, perhaps one that only this state or this answer trips: try again, backing off.
            Error::Panicked(_) => (Reason::InternalError, "panic", backoff(1.0, 300.0)),
            // A policy change triggers a reconcile at once; the slow retry is only a safety net.
            Error::NotPermitted(_) => (Reason::NotPermitted, "not_permitted", Retry::Slow),
            Error::DeletionBlocked { .. } => {
                (Reason::DeletionBlocked, "deletion_blocked", Retry::Slow)
            }
            Error::ResponsesOnHttpApi(_) => {
                (Reason::InvalidSpec, "invalid_spec", Retry::WhenSpecChanges)
            }
            Error::Response { source, .. } => {
                let class = Error::Aws(source.clone()).class(phase);
                (class.reason, class.label, class.retry)
            }
            Error::Aws(aws) => {
                let label = aws.outcome();
                match aws {
                    // 400: the spec is wrong; while deleting the spec no longer matters, so retry slowly
                    // instead of holding the finalizer for good.
                    AwsError::BadRequest(_) if phase == Phase::Delete => {
                        (Reason::InvalidSpec, label, Retry::Slow)
                    }
                    AwsError::BadRequest(_) => (Reason::InvalidSpec, label, Retry::WhenSpecChanges),
                    AwsError::AccessDenied(_) => (Reason::AccessDenied, label, Retry::Slow),
                    AwsError::Fenced(_) => (unreported, label, backoff(1.0, 5.0)),
                    AwsError::CredentialsMissing(_) => {
                        (Reason::CredentialsMissing, label, Retry::Slow)
                    }
                    AwsError::Throttled(_) => (Reason::Throttled, label, backoff(2.0, 120.0)),
                    AwsError::Conflict(_) => (passing, label, backoff(0.5, 10.0)),
                    // An answer that cannot be used: as if none came (the request may have been applied,
                    // which the next observation finds).
                    AwsError::NotFound(_) | AwsError::Unavailable(_) | AwsError::Unreadable(_) => {
                        (passing, label, backoff(1.0, 300.0))
                    }
                }
            }
        };
        Class {
            reason,
            label,
            retry,
        }
    }

    /// resourceVersion precondition, an apply conflict), or 422 from a JSON patch whose `test` op failed
    /// (the API server reports those as "Testing value ... failed").
    pub fn is_conflict(&self) -> bool {
        match self.innermost().0 {
            Error::Kube(kube::Error::Api(s)) => {
                s.code == 409
                    || (s.code == 422 && s.message.to_ascii_lowercase().contains("testing value"))
            }
            _ => false,
        }
    }

    /// A write this replica did not send because it cannot be sure it still leads (design rule 10).
    pub fn is_fenced(&self) -> bool {
        match self.innermost().0 {
            Error::Aws(AwsError::Fenced(_)) | Error::Fenced(_) => true,
            Error::Kube(kube::Error::Service(e)) => crate::fence::is_fenced(e.as_ref()),
            _ => false,
        }
    }

    /// Whether API Gateway is known to hold what it held before the call that failed: a 429 is refused
    /// before anything is done, and a fenced call was never sent. What the process remembers of the
    /// integration then still stands, and the next try need not read it again (a read per refusal
    /// would spend on reads the quota the refusal asked to spare). Any other failure may hide a change
    /// (a timeout, a 5xx) and sends the next try to AWS for a fresh read.
    pub fn left_aws_as_it_was(&self) -> bool {
        matches!(
            self.innermost().0,
            Error::Aws(AwsError::Throttled(_) | AwsError::Fenced(_))
        )
    }

    /// Whether the failure is the user's to know: a conflict or a fenced write is neither written to
    /// the status nor published as an Event (the first heals at the next read, and for the second this
    /// replica may no longer write at all).
    pub fn is_reported(&self) -> bool {
        !(self.is_conflict() || self.is_fenced())
    }

    /// Label for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        self.class(Phase::Apply).label
    }

    /// How long to wait before the next try after `attempt` earlier failures in a row.
    pub fn retry_after(&self, attempt: u32, slow: Duration) -> Duration {
        match self.class(Phase::Apply).retry {
            // Only reached when the status write that records the refusal failed: try that again slowly.
            Retry::WhenSpecChanges | Retry::Slow => slow,
            Retry::In(wait) => wait,
            Retry::Backoff { base, cap } => {
                Duration::from_secs_f64((base * 2f64.powi(attempt.min(16) as i32)).min(cap))
            }
        }
    }
}
