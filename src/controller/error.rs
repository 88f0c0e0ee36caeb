//! The reconciler's errors, and the one place that decides what each means: the condition reason a user
//! sees, the metrics label, and when to try again (design §2 rule 6).

use super::scope::ApiKey;
use crate::aws::AwsError;
use crate::conditions::Reason;
use crate::plan::Blocker;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("API {0} does not exist in API Gateway")]
    ApiNotFound(String),
    #[error("adoption refused: {0}")]
    AdoptionRefused(String),
    #[error("not permitted: {0}; nothing in AWS is touched until an ApiGatewayAccess allows it")]
    NotPermitted(String),
    #[error("no API in {region} matches apiRef ({what}); nothing is created until one does")]
    ApiRefNotFound { what: String, region: String },
    /// No API matched in a listing older than the look; the region's APIs are listed again in
    /// `relist_in`.
    #[error(
        "no API in {region} matched apiRef ({what}) when the region's APIs were last listed; they are \
         listed again shortly, and nothing is created until one matches"
    )]
    ApiRefNotListedYet {
        what: String,
        region: String,
        relist_in: Duration,
    },
    /// The API apiRef resolved to was deleted; the region's APIs are listed again in `relist_in`.
    #[error(
        "the API in {region} that apiRef ({what}) resolved to was deleted; nothing is created until \
         the region's APIs, listed again shortly, show one that matches"
    )]
    ApiRefGone {
        what: String,
        region: String,
        relist_in: Duration,
    },
    #[error(
        "no VPC link in {region} matches connectionRef ({what}); nothing is created until one does"
    )]
    VpcLinkNotFound { what: String, region: String },
    #[error("{what} matches more than one: {ids}; nothing is created until exactly one matches")]
    AmbiguousReference { what: String, ids: String },
    #[error(
        "API Gateway will not delete integration {id} while routes use it ({detail}); remove those routes first"
    )]
    DeletionBlocked { id: String, detail: AwsError },
    /// Nothing was done: this replica cannot be sure it still leads (design rule 10).
    #[error(transparent)]
    Fenced(#[from] crate::fence::Fenced),
    #[error("status write timed out")]
    StatusTimeout,
    /// A reconcile panicked (a bug in the operator); the panic was caught and the resource is retried.
    #[error("internal error in the operator (a bug; please report it), will retry: {0}")]
    Panicked(String),
    /// Deleting the resource failed (its phase is known: the errors inside are classed as a deletion's).
    #[error(transparent)]
    Cleanup(Box<Error>),
    /// Rule 12: the spec asks for integration responses of an HTTP API's integration.
    #[error(
        "spec.integrationResponses is set, but API {0} is an HTTP API, which has no integration \
         responses; remove the field or use a WebSocket API"
    )]
    ResponsesOnHttpApi(String),
    /// Rule 12: a call about one integration response failed; classed as the AWS error it carries.
    #[error("integration response {key}: {source}")]
    Response { key: String, source: AwsError },
}

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
    /// The error the reconcile itself failed with, and the phase, out of the deletion's wrapper.
    fn innermost(&self) -> (&Error, Option<Phase>) {
        match self {
            Error::Cleanup(e) => (e.innermost().0, Some(Phase::Delete)),
            e => (e, None),
        }
    }

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

    /// The error a blocker is reported as.
    pub fn blocked(blocker: Blocker, api: &ApiKey) -> Error {
        let api_id = &api.api_id;
        match blocker {
            Blocker::ApiNotFound => Error::ApiNotFound(api_id.to_string()),
            Blocker::AdoptionTargetMissing { id } => {
                Error::AdoptionRefused(format!("integration {id} does not exist in API {api_id}"))
            }
            Blocker::ManagedByApiGateway { id } => Error::AdoptionRefused(format!(
                "integration {id} is managed by API Gateway (quick create) and cannot be adopted or changed"
            )),
            Blocker::AdoptionTargetClaimed { id, owner } => Error::AdoptionRefused(format!(
                "integration {id} is already owned by ApiIntegration {owner}"
            )),
            Blocker::ApiRefNotFound { what } => Error::ApiRefNotFound {
                what,
                region: api.region.clone(),
            },
            Blocker::ApiRefGone { what, relist_in } => Error::ApiRefGone {
                what,
                region: api.region.clone(),
                relist_in,
            },
            Blocker::ApiRefNotListedYet { what, relist_in } => Error::ApiRefNotListedYet {
                what,
                region: api.region.clone(),
                relist_in,
            },
            Blocker::VpcLinkNotFound { what } => Error::VpcLinkNotFound {
                what,
                region: api.region.clone(),
            },
            Blocker::AmbiguousReference { what, ids } => Error::AmbiguousReference {
                what,
                ids: ids.join(", "),
            },
            Blocker::ResponsesOnHttpApi => Error::ResponsesOnHttpApi(api_id.to_string()),
        }
    }

    /// A Kubernetes write refused because the object is not the version it was decided on: 409 (a
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

    /// One or two plain sentences for the condition and the Event. The full error chain goes to the log.
    pub fn summary(&self) -> String {
        let (err, _) = self.innermost();
        match err {
            Error::Kube(e) => format!("Kubernetes API error: {}", first_line(&e.to_string())),
            other => first_line(&other.to_string()),
        }
    }
}

/// At most one line of at most 400 characters: condition messages and Events stay readable.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= 400 {
        line.to_string()
    } else {
        let cut: String = line.chars().take(397).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Duration = Duration::from_secs(60);

    fn aws(e: AwsError) -> Error {
        Error::Aws(e)
    }

    fn as_cleanup_failure(e: Error) -> Error {
        Error::Cleanup(Box::new(e))
    }

    #[test]
    fn rule6_classes_follow_the_design() {
        let cases = [
            (
                aws(AwsError::BadRequest("x".into())),
                Reason::InvalidSpec,
                Retry::WhenSpecChanges,
            ),
            (
                aws(AwsError::AccessDenied("x".into())),
                Reason::AccessDenied,
                Retry::Slow,
            ),
            (
                aws(AwsError::CredentialsMissing("x".into())),
                Reason::CredentialsMissing,
                Retry::Slow,
            ),
            (
                Error::ApiNotFound("a".into()),
                Reason::ApiNotFound,
                Retry::Slow,
            ),
            (
                Error::AdoptionRefused("a".into()),
                Reason::AdoptionRefused,
                Retry::Slow,
            ),
        ];
        for (err, reason, retry) in cases {
            let class = err.class(Phase::Apply);
            assert_eq!((class.reason, class.retry), (reason, retry), "{err:?}");
        }
        let throttled = aws(AwsError::Throttled("x".into())).class(Phase::Apply);
        assert_eq!(throttled.reason, Reason::Throttled);
        assert!(matches!(throttled.retry, Retry::Backoff { .. }));
        let down = aws(AwsError::Unavailable("x".into())).class(Phase::Apply);
        assert_eq!(down.reason, Reason::AwsError);
        let garbled = aws(AwsError::Unreadable("x".into())).class(Phase::Apply);
        assert_eq!(garbled.reason, Reason::AwsError);
        assert_eq!(garbled.label, "unreadable");
        assert!(matches!(garbled.retry, Retry::Backoff { .. }));
    }

    #[test]
    fn a_panic_is_an_internal_error_retried_with_backoff_in_every_phase() {
        let e = Error::Panicked("index out of bounds".into());
        for phase in [Phase::Apply, Phase::Update, Phase::Delete] {
            let class = e.class(phase);
            assert_eq!(class.reason, Reason::InternalError);
            assert!(matches!(class.retry, Retry::Backoff { .. }), "{class:?}");
        }
        assert_eq!(e.retry_after(0, SLOW).as_secs(), 1);
        assert_eq!(e.retry_after(30, SLOW).as_secs(), 300);
        assert!(
            e.summary().contains("index out of bounds"),
            "{}",
            e.summary()
        );
    }

    #[test]
    fn a_passing_failure_says_what_was_under_way() {
        let e = aws(AwsError::Unavailable("503".into()));
        assert_eq!(e.class(Phase::Apply).reason, Reason::AwsError);
        assert_eq!(e.class(Phase::Update).reason, Reason::Updating);
        assert_eq!(e.class(Phase::Delete).reason, Reason::Deleting);
        let conflict = aws(AwsError::Conflict("concurrent modification".into()));
        assert_eq!(conflict.class(Phase::Delete).reason, Reason::Deleting);
        // The deletion's wrapper knows it was a cleanup.
        let wrapped = as_cleanup_failure(aws(AwsError::Unavailable("503".into())));
        assert_eq!(wrapped.class(Phase::Apply).reason, Reason::Deleting);
    }

    #[test]
    fn rule5_deletion_with_a_route_attached_is_blocked_and_retried_slowly() {
        let e = Error::DeletionBlocked {
            id: "i1".into(),
            detail: AwsError::Conflict("referenced by the following Routes: r1".into()),
        };
        let class = e.class(Phase::Delete);
        assert_eq!(
            (class.reason, class.retry),
            (Reason::DeletionBlocked, Retry::Slow)
        );
        assert_eq!(as_cleanup_failure(e).retry_after(7, SLOW), SLOW);
    }

    #[test]
    fn a_400_while_deleting_is_retried_slowly_not_abandoned() {
        let e = as_cleanup_failure(aws(AwsError::BadRequest("x".into())));
        assert_eq!(e.class(Phase::Delete).retry, Retry::Slow);
        assert_eq!(e.retry_after(0, SLOW), SLOW);
    }

    #[test]
    fn a_reference_whose_api_was_deleted_names_the_reference_and_retries_when_it_may_be_listed() {
        let api = ApiKey::new("eu-west-1", "oldapi123");
        let blocker = Blocker::ApiRefGone {
            what: "name \"orders-1\"".into(),
            relist_in: Duration::from_millis(2300),
        };
        let e = Error::blocked(blocker, &api);
        let class = e.class(Phase::Apply);
        assert_eq!(class.reason, Reason::ApiNotFound);
        assert_eq!(class.retry, Retry::In(Duration::from_millis(2300)));
        // Not the slow retry, whatever the failures before.
        assert_eq!(e.retry_after(5, SLOW), Duration::from_millis(2300));
        let summary = e.summary();
        assert!(summary.contains("apiRef (name \"orders-1\")"), "{summary}");
        assert!(!summary.contains("oldapi123"), "{summary}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let throttled = aws(AwsError::Throttled("x".into()));
        assert_eq!(throttled.retry_after(0, SLOW).as_secs(), 2);
        assert_eq!(throttled.retry_after(3, SLOW).as_secs(), 16);
        assert_eq!(throttled.retry_after(30, SLOW).as_secs(), 120);
        let down = aws(AwsError::Unavailable("x".into()));
        assert_eq!(down.retry_after(30, SLOW).as_secs(), 300);
        assert_eq!(Error::ApiNotFound("a".into()).retry_after(5, SLOW), SLOW);
    }

    fn api_status(code: u16, message: &str) -> Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "message": message, "reason": "x",
        }))
        .unwrap();
        Error::Kube(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn a_failed_conditional_patch_is_a_conflict_retried_soon_and_never_an_aws_error() {
        for e in [
            api_status(
                422,
                "Testing value /metadata/resourceVersion failed: test failed",
            ),
            api_status(
                409,
                "the object has been modified; please apply your changes",
            ),
            as_cleanup_failure(api_status(409, "Operation cannot be fulfilled")),
        ] {
            assert!(e.is_conflict(), "{e:?}");
            assert!(!e.is_reported(), "{e:?}");
            for phase in [Phase::Apply, Phase::Update, Phase::Delete] {
                let class = e.class(phase);
                assert_ne!(class.reason, Reason::AwsError, "{e:?}");
                assert_eq!(class.label, "kube_conflict");
            }
            assert!(e.retry_after(0, SLOW) < Duration::from_secs(1));
            assert!(e.retry_after(20, SLOW) <= Duration::from_secs(5));
        }
        // A 422 that is not a failed test (an invalid object) stays a Kubernetes error, and is reported.
        let invalid = api_status(422, "spec.timeoutInMillis: Invalid value");
        assert!(!invalid.is_conflict());
        assert!(invalid.is_reported());
        assert_eq!(invalid.class(Phase::Apply).label, "kube");
    }

    #[test]
    fn a_fenced_write_is_never_reported() {
        let aws_refused = aws(AwsError::Fenced("not sent".into()));
        let fenced = crate::fence::Fenced {
            age_ms: 51_000,
            window_ms: 4_000,
        };
        let kube_refused = Error::Kube(kube::Error::Service(Box::new(fenced)));
        for e in [aws_refused, kube_refused] {
            assert!(e.is_fenced(), "{e:?}");
            assert!(!e.is_reported());
            assert_eq!(e.class(Phase::Apply).label, "fenced");
        }
        assert!(!aws(AwsError::Unavailable("x".into())).is_fenced());
    }

    #[test]
    fn labels_name_the_class() {
        assert_eq!(
            aws(AwsError::Throttled("x".into())).metric_label(),
            "throttled"
        );
        assert_eq!(
            Error::ApiNotFound("a".into()).metric_label(),
            "api_not_found"
        );
        assert_eq!(Error::StatusTimeout.metric_label(), "kube");
        assert_eq!(Error::Panicked("boom".into()).metric_label(), "panic");
        let wrapped = as_cleanup_failure(Error::DeletionBlocked {
            id: "i".into(),
            detail: AwsError::Conflict("c".into()),
        });
        assert_eq!(wrapped.metric_label(), "deletion_blocked");
    }

    #[test]
    fn summaries_are_one_short_line() {
        let long = format!("first line {}\nsecond line", "x".repeat(500));
        let s = aws(AwsError::Unavailable(long)).summary();
        assert!(!s.contains('\n') && s.chars().count() <= 400, "{s}");
        let blocked = Error::DeletionBlocked {
            id: "i1".into(),
            detail: AwsError::Conflict("routes".into()),
        };
        assert!(blocked.summary().contains("remove those routes first"));
    }
}
