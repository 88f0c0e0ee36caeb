//! The classes of rule 6, the backoff, and the summaries.

use super::*;
use crate::conditions::Reason;

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
