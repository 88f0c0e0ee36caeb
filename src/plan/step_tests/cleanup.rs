//! Rule 5: what deletion does with the integration (retain, delete, or nothing to delete).

use super::*;

// ---- rule 5: deletion ----

fn cleanup(
    policy: DeletionPolicy,
    recorded_id: Option<&str>,
    interrupted_create: Option<(Option<Protocol>, Vec<Candidate>)>,
) -> CleanupObserved {
    CleanupObserved {
        policy,
        management: ManagementPolicy::Manage,
        recorded_id: recorded_id.map(String::from),
        create_in_flight: interrupted_create.is_some(),
        permitted: true,
        interrupted_create,
        desired: proxy("https://a.example"),
    }
}

#[test]
fn rule5_retain_is_decided_before_permission_and_delete_needs_it() {
    let mut o = cleanup(DeletionPolicy::Retain, Some("i1"), None);
    o.permitted = false;
    assert_eq!(
        next_cleanup_step(&o),
        CleanupStep::Retain {
            id: Some("i1".into())
        }
    );
    o.policy = DeletionPolicy::Delete;
    assert_eq!(next_cleanup_step(&o), CleanupStep::CheckPermission);
    // Even with nothing recorded: whether anything is owned is only looked at once permitted.
    let mut nothing = cleanup(DeletionPolicy::Delete, None, None);
    nothing.permitted = false;
    assert_eq!(next_cleanup_step(&nothing), CleanupStep::CheckPermission);
}

#[test]
fn rule2_a_create_in_flight_is_looked_for_before_deciding_there_is_nothing() {
    let mut o = cleanup(DeletionPolicy::Delete, None, None);
    o.create_in_flight = true;
    assert_eq!(next_cleanup_step(&o), CleanupStep::LookForInterruptedCreate);
    o.interrupted_create = Some((Some(Protocol::Http), vec![]));
    assert_eq!(next_cleanup_step(&o), CleanupStep::NothingToDelete);
}

#[test]
fn rule5_retain_leaves_the_integration() {
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Retain, Some("i1"), None)),
        CleanupStep::Retain {
            id: Some("i1".into())
        }
    );
    // Retain also leaves whatever an interrupted create made.
    let mine = held("i2", proxy("https://a.example"));
    assert_eq!(
        next_cleanup_step(&cleanup(
            DeletionPolicy::Retain,
            None,
            Some((Some(Protocol::Http), vec![unclaimed(mine)]))
        )),
        CleanupStep::Retain { id: None }
    );
}

#[test]
fn rule5_delete_removes_the_recorded_integration() {
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, Some("i1"), None)),
        CleanupStep::Delete { id: "i1".into() }
    );
}

#[test]
fn rule5_delete_finds_what_an_interrupted_create_made() {
    let mine = held("i2", proxy("https://a.example"));
    let theirs = held("i3", proxy("https://a.example"));
    let step = next_cleanup_step(&cleanup(
        DeletionPolicy::Delete,
        None,
        Some((Some(Protocol::Http), vec![claimed(theirs), unclaimed(mine)])),
    ));
    assert_eq!(step, CleanupStep::Delete { id: "i2".into() });
}

#[test]
fn rule5_nothing_to_delete() {
    // Never created.
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, None, None)),
        CleanupStep::NothingToDelete
    );
    // Interrupted create that made nothing (only another resource's integration matches).
    let theirs = held("i3", proxy("https://a.example"));
    assert_eq!(
        next_cleanup_step(&cleanup(
            DeletionPolicy::Delete,
            None,
            Some((Some(Protocol::Http), vec![claimed(theirs)]))
        )),
        CleanupStep::NothingToDelete
    );
    // The API is gone, and its integrations with it.
    assert_eq!(
        next_cleanup_step(&cleanup(DeletionPolicy::Delete, None, Some((None, vec![])))),
        CleanupStep::NothingToDelete
    );
}
