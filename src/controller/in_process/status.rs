//! What the user is told: a refused spec waits for a change, a failure is told once, a conflict is not
//! told at all, and lastSyncTime moves only with news.

use super::{ready_of, settle};
use crate::aws::AwsError;
use crate::controller::{Context, Error};
use crate::fixtures::{FakeAws, integration};

fn aws() -> FakeAws {
    FakeAws::default().with_api("a1", "orders")
}

#[tokio::test]
async fn a_spec_aws_refuses_waits_for_the_next_change_with_no_call() {
    let fake = aws();
    fake.fail_next("CreateIntegration", AwsError::BadRequest("bad uri".into()));
    let h = Context::test(&fake, &[integration("web", "a1", "not a uri")]);
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(ready_of(&h, "web").reason, "InvalidSpec");
    fake.forget_calls();
    h.server.forget_calls();
    let action = h.reconcile("team", "web").await.unwrap();
    assert!(fake.calls().is_empty());
    assert!(h.server.calls().is_empty());
    assert!(
        format!("{action:?}").contains("requeue_after: None"),
        "{action:?}"
    );
}

#[tokio::test]
async fn the_same_failure_twice_is_one_event_and_one_status_write() {
    let fake = FakeAws::default();
    let h = Context::test(&fake, &[integration("web", "missing", "https://a")]);
    h.reconcile("team", "web").await.unwrap_err();
    h.reconcile("team", "web").await.unwrap_err();
    settle().await;
    assert_eq!(
        h.server.event_reasons(),
        ["ApiNotFound"],
        "one Warning Event"
    );
    assert_eq!(
        h.server.status_writes().len(),
        1,
        "the second report equals the first"
    );
}

#[tokio::test]
async fn a_conflicting_status_write_is_retried_without_telling_the_user() {
    let fake = aws();
    let h = Context::test(&fake, &[integration("web", "a1", "https://a")]);
    h.server.conflict_next_status_write();
    let err = h.reconcile("team", "web").await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    settle().await;
    assert_eq!(
        h.server.event_reasons(),
        ["Created"],
        "no Warning about the conflict"
    );
    // The created integration is found by its marker on the retry, not made again.
    h.reconcile("team", "web").await.unwrap();
    assert_eq!(fake.integrations("a1").len(), 1);
    assert_eq!(ready_of(&h, "web").reason, "Synced");
}

#[tokio::test]
async fn last_sync_time_moves_only_with_news() {
    let fake = aws();
    let first = Context::test(&fake, &[integration("web", "a1", "https://a")]);
    first.reconcile("team", "web").await.unwrap();
    let synced = first.server.object("team", "web");
    let before = synced.status.clone().unwrap().last_sync_time;
    assert!(before.is_some());
    let h = Context::test(&fake, &[synced]);
    h.reconcile("team", "web").await.unwrap();
    let after = h
        .server
        .object("team", "web")
        .status
        .unwrap()
        .last_sync_time;
    assert_eq!(before, after);
}

#[tokio::test]
async fn error_policy_backs_off_and_counts_failures_per_object() {
    let fake = FakeAws::default();
    let obj = integration("web", "missing", "https://a");
    let h = Context::test(&fake, std::slice::from_ref(&obj));
    let err = Error::Aws(AwsError::Unavailable("down".into()));
    let obj = std::sync::Arc::new(obj);
    crate::controller::error_policy(obj.clone(), &err, h.ctx.clone());
    crate::controller::error_policy(obj.clone(), &err, h.ctx.clone());
    assert_eq!(
        h.ctx.memory.count_failure(&obj),
        2,
        "two failures counted before this one"
    );
}
