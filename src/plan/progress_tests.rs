//! The reconcile's bookkeeping: which instruction follows which outcome.

use super::*;
use crate::api::DeletionPolicy;
use crate::conditions::{READY, Reason, set_condition};
use crate::plan::due::next_check_in;
use crate::plan::{IntegrationFields, Protocol};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

fn fields(uri: &str) -> IntegrationFields {
    IntegrationFields {
        integration_uri: Some(uri.into()),
        ..Default::default()
    }
}

fn held(id: &str, uri: &str) -> ObservedIntegration {
    ObservedIntegration {
        integration_id: id.into(),
        fields: fields(uri),
        ..Default::default()
    }
}

fn observed(holding: Holding) -> Observed {
    Observed {
        desired: fields("https://want"),
        previously_applied: vec![],
        protocol: Some(Protocol::Http),
        holding,
        unresolved: None,
        deletion_policy: DeletionPolicy::Delete,
    }
}

fn recorded(id: &str, found: Option<ObservedIntegration>) -> Holding {
    Holding::Recorded {
        id: id.into(),
        found,
    }
}

/// A reconcile of an object that has the finalizer and whose status names `on_server`.
fn progress(holding: Holding, on_server: Option<&str>) -> Progress {
    Progress::new(
        observed(holding),
        "a1".into(),
        false,
        Instant::now(),
        on_server.map(String::from),
        true,
    )
}

fn aws_step(d: Do) -> Step {
    match d {
        Do::Aws(step) => step,
        other => panic!("expected an AWS step, got {other:?}"),
    }
}

fn finish(d: Do) -> Finish {
    match d {
        Do::Finish(f) => f,
        other => panic!("expected the finish, got {other:?}"),
    }
}

#[test]
fn the_finalizer_comes_before_anything_is_owned_even_in_sync() {
    let mut p = progress(recorded("i1", Some(held("i1", "https://want"))), Some("i1"));
    p.finalized = false;
    let first = p.next();
    assert_eq!(
        first,
        Do::Own {
            first_create: false
        }
    );
    p.record(&first, Outcome::Owned, Instant::now());
    assert!(matches!(p.next(), Do::Finish(_)));
}

#[test]
fn a_first_create_carries_its_marker_with_the_finalizer_even_when_the_finalizer_is_there() {
    let mut p = progress(Holding::Nothing, None);
    let first = p.next();
    assert_eq!(first, Do::Own { first_create: true });
    p.record(&first, Outcome::Owned, Instant::now());
    assert_eq!(p.next(), Do::Aws(Step::Create));
}

#[test]
fn a_blocker_is_refused_without_owning_anything() {
    let mut p = progress(Holding::Nothing, None);
    p.finalized = false;
    p.observed.protocol = None;
    assert_eq!(p.next(), Do::Refuse(Blocker::ApiNotFound));
}

#[test]
fn the_id_is_written_before_an_update_of_an_integration_the_status_does_not_name() {
    let mut p = progress(recorded("i1", Some(held("i1", "https://old"))), None);
    let first = p.next();
    assert_eq!(first, Do::RecordId);
    p.record(&first, Outcome::IdRecorded, Instant::now());
    assert_eq!(p.id_on_server.as_deref(), Some("i1"));
    assert!(matches!(aws_step(p.next()), Step::Update { .. }));
}

#[test]
fn an_update_of_the_named_integration_goes_straight_to_aws() {
    let p = progress(recorded("i1", Some(held("i1", "https://old"))), Some("i1"));
    assert!(matches!(aws_step(p.next()), Step::Update { .. }));
}

#[test]
fn after_a_create_the_update_of_the_new_integration_first_records_its_id() {
    let mut p = progress(Holding::Nothing, None);
    p.marked = true;
    let create = p.next();
    assert_eq!(create, Do::Aws(Step::Create));
    // AWS made it with a value the spec does not ask for: it must be updated, and it is not named yet.
    p.record(
        &create,
        Outcome::Made(held("new", "https://odd")),
        Instant::now(),
    );
    assert_eq!(p.next(), Do::RecordId);
}

#[test]
fn an_update_answer_from_a_fresh_read_is_what_is_reported() {
    let mut p = progress(recorded("i1", Some(held("i1", "https://old"))), Some("i1"));
    let update = p.next();
    let t = Instant::now();
    // AWS's answer is reported as it is, even if it would diff again (no second round).
    p.record(&update, Outcome::Updated(held("i1", "https://aws-says")), t);
    let f = finish(p.next());
    assert_eq!(f.integration, held("i1", "https://aws-says"));
    assert!(!f.unchanged);
    assert_eq!(f.seen_at, t);
}

#[test]
fn an_update_computed_from_memory_is_checked_once_more() {
    let mut p = progress(recorded("i1", Some(held("i1", "https://old"))), Some("i1"));
    p.from_memory = true;
    let update = p.next();
    // Someone changed another field behind our back: AWS's answer still differs from the spec.
    p.record(
        &update,
        Outcome::Updated(held("i1", "https://other")),
        Instant::now(),
    );
    assert!(!p.from_memory);
    assert!(matches!(aws_step(p.next()), Step::Update { .. }));
    let again = p.next();
    p.record(
        &again,
        Outcome::Updated(held("i1", "https://want")),
        Instant::now(),
    );
    assert!(!finish(p.next()).unchanged);
}

#[test]
fn an_update_that_finds_the_integration_gone_recreates_it_and_says_so() {
    let mut p = progress(recorded("i1", Some(held("i1", "https://old"))), Some("i1"));
    p.from_memory = true;
    let update = p.next();
    p.record(&update, Outcome::Gone, Instant::now());
    let recreate = p.next();
    assert_eq!(
        recreate,
        Do::Aws(Step::Recreate {
            lost_id: "i1".into()
        })
    );
    p.record(
        &recreate,
        Outcome::Made(held("i2", "https://want")),
        Instant::now(),
    );
    let f = finish(p.next());
    assert_eq!(f.integration.integration_id, "i2");
    assert_eq!(
        f.recreated.as_deref(),
        Some("Integration was deleted outside the operator and re-created as i2.")
    );
}

#[test]
fn a_move_to_a_new_api_names_both_apis_and_the_fate_of_the_old_integration() {
    let mut p = progress(
        Holding::OnReplacedApi {
            old_api: "a0".into(),
            old_id: "i0".into(),
        },
        Some("i0"),
    );
    let step = p.next();
    p.record(
        &step,
        Outcome::Made(held("i9", "https://want")),
        Instant::now(),
    );
    let message = finish(p.next()).recreated.unwrap();
    assert!(
        message.contains("API a0 was replaced by API a1"),
        "{message}"
    );
    assert!(
        message.contains("as i9; integration i0 there was deleted"),
        "{message}"
    );
}

#[test]
fn in_sync_without_a_write_is_unchanged() {
    let seen = Instant::now();
    let mut p = progress(recorded("i1", Some(held("i1", "https://want"))), Some("i1"));
    p.seen_at = seen;
    let f = finish(p.next());
    assert!(f.unchanged);
    assert_eq!(f.recreated, None);
    assert_eq!(f.seen_at, seen);
}

fn ready_condition(reason: Reason, message: &str, generation: i64) -> Condition {
    let mut conditions = vec![];
    set_condition(
        &mut conditions,
        READY,
        true,
        reason,
        message,
        Some(generation),
        Time(Timestamp::UNIX_EPOCH),
    );
    conditions.remove(0)
}

#[test]
fn the_ready_reason_keeps_telling_a_recreation_until_the_spec_changes() {
    let f = Finish {
        integration: held("i2", "https://want"),
        unchanged: true,
        recreated: None,
        seen_at: Instant::now(),
    };
    let told = ready_condition(Reason::Recreated, "re-created as i2", 3);
    assert_eq!(
        f.ready(Some(&told), Some(3)),
        (Reason::Recreated, "re-created as i2".to_string())
    );
    // A new generation, or a change written in this reconcile, ends it.
    let synced = (
        Reason::Synced,
        "Integration i2 matches the spec.".to_string(),
    );
    assert_eq!(f.ready(Some(&told), Some(4)), synced);
    let changed = Finish {
        unchanged: false,
        ..f.clone()
    };
    assert_eq!(changed.ready(Some(&told), Some(3)), synced);
    let just_recreated = Finish {
        recreated: Some("new news".into()),
        ..f
    };
    assert_eq!(
        just_recreated.ready(None, Some(1)),
        (Reason::Recreated, "new news".to_string())
    );
}

#[test]
fn the_next_check_is_the_apis_check_time_within_two_percent() {
    let resync = Duration::from_secs(600);
    let now = Instant::now();
    let f = Finish {
        integration: held("i1", "https://want"),
        unchanged: true,
        recreated: None,
        seen_at: now,
    };
    let wall = Duration::from_secs(1_800_000_000);
    let point = next_check_in("a1", wall, Duration::ZERO, resync);
    let low = f.next_check("a1", wall, now, resync, 0.0);
    let high = f.next_check("a1", wall, now, resync, 1.0);
    assert_eq!(low, point.saturating_sub(Duration::from_secs(12)));
    assert_eq!(high, point + Duration::from_secs(12));
    // Seen earlier (a shared listing fetched a while ago): counted from then.
    let seen_earlier = Finish {
        seen_at: now - Duration::from_secs(200),
        ..f
    };
    let earlier = next_check_in("a1", wall, Duration::from_secs(200), resync);
    assert_eq!(
        seen_earlier.next_check("a1", wall, now, resync, 0.5),
        earlier
    );
}

// Rule 12: responses come after the integration is in sync, and only where the resource manages them.

fn responses(keys: &[&str]) -> crate::plan::WantedResponses {
    crate::plan::WantedResponses::new(
        Some(
            keys.iter()
                .map(|k| crate::api::IntegrationResponseSpec {
                    integration_response_key: k.to_string(),
                    ..Default::default()
                })
                .collect(),
        ),
        Default::default(),
    )
}

fn websocket(p: Progress) -> Progress {
    let mut p = p;
    p.observed.protocol = Some(Protocol::WebSocket);
    p
}

#[test]
fn an_in_sync_integration_without_responses_finishes_without_reading_them() {
    let p = websocket(progress(
        recorded("i1", Some(held("i1", "https://want"))),
        Some("i1"),
    ));
    finish(p.next());
}

#[test]
fn an_in_sync_integration_with_responses_reads_them_then_makes_what_is_missing() {
    let mut p = websocket(progress(
        recorded("i1", Some(held("i1", "https://want"))),
        Some("i1"),
    ))
    .with_responses(responses(&["$default"]));
    let read = p.next();
    assert_eq!(
        read,
        Do::Responses {
            integration_id: "i1".into(),
            step: ResponseStep::Read
        }
    );
    p.record(&read, Outcome::ResponsesRead(vec![]), Instant::now());
    let create = p.next();
    let Do::Responses {
        step: ResponseStep::Change(ResponseChange::Create(body)),
        ..
    } = &create
    else {
        panic!("expected a response create, got {create:?}");
    };
    assert_eq!(body.integration_response_key, "$default");
    let made = crate::plan::ObservedResponse {
        id: "r1".into(),
        fields: body.clone(),
    };
    p.record(
        &create,
        Outcome::ResponseWritten(WrittenResponse::Made(made)),
        Instant::now(),
    );
    let f = finish(p.next());
    assert!(!f.unchanged, "a response write is a change");
    assert_eq!(
        p.response_ids(),
        [("$default".to_string(), "r1".to_string())].into()
    );
}

#[test]
fn a_new_integration_has_no_responses_to_read() {
    let mut p =
        websocket(progress(Holding::Nothing, None)).with_responses(responses(&["$default"]));
    p.marked = true;
    let create = p.next();
    assert_eq!(create, Do::Aws(Step::Create));
    p.record(
        &create,
        Outcome::Made(held("i9", "https://want")),
        Instant::now(),
    );
    assert!(matches!(
        p.next(),
        Do::Responses {
            step: ResponseStep::Change(ResponseChange::Create(_)),
            ..
        }
    ));
}

#[test]
fn responses_on_an_http_api_are_refused_before_the_finalizer() {
    let mut p = progress(Holding::Nothing, None).with_responses(responses(&["$default"]));
    p.finalized = false;
    assert_eq!(p.next(), Do::Refuse(Blocker::ResponsesOnHttpApi));
    // An empty list asks for nothing an HTTP API lacks.
    let mut empty = progress(Holding::Nothing, None).with_responses(responses(&[]));
    empty.finalized = false;
    assert_eq!(empty.next(), Do::Own { first_create: true });
}

#[test]
fn a_404_reading_responses_means_the_integration_is_gone() {
    let mut p = websocket(progress(
        recorded("i1", Some(held("i1", "https://want"))),
        Some("i1"),
    ))
    .with_responses(responses(&["$default"]));
    let read = p.next();
    p.record(&read, Outcome::Gone, Instant::now());
    assert_eq!(
        aws_step(p.next()),
        Step::Recreate {
            lost_id: "i1".into()
        }
    );
}
