//! What this process remembers about each object between its reconciles: whether its current generation
//! is settled (and when its next drift check is due), what AWS held at its last successful sync, and how
//! many reconciles in a row failed (kube-runtime keeps no per-object error count). Nothing here is read
//! from or written to Kubernetes or AWS; a restart starts with an empty memory.

use super::scope::ApiKey;
use crate::api::ApiIntegration;
use crate::plan::{ObservedIntegration, Settled};
use kube::runtime::reflector::ObjectRef;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

type Key = ObjectRef<ApiIntegration>;

/// A remembered value and the object it is about, by UID. An object can be deleted without a reconcile
/// of its deletion (one in managementPolicy Observe has no finalizer) and made again under the same name:
/// that is another object, and it inherits nothing of the first.
struct Of<T> {
    uid: Option<String>,
    value: T,
}

impl<T> Of<T> {
    fn new(obj: &ApiIntegration, value: T) -> Self {
        Of {
            uid: obj.metadata.uid.clone(),
            value,
        }
    }

    /// The value, if it was remembered for this very object.
    fn of(&self, obj: &ApiIntegration) -> Option<&T> {
        (self.uid == obj.metadata.uid).then_some(&self.value)
    }
}

/// The per-object memory, shared by all reconciles.
#[derive(Default)]
pub struct Memory {
    /// Failures in a row per object, for the backoff.
    failures: Mutex<HashMap<Key, Of<u32>>>,
    /// What each object was last found to be (in sync, or refused by AWS), at which generation.
    settled: Mutex<HashMap<Key, Of<Settled>>>,
    /// What AWS held for each object's integration at its last successful sync (its answer then).
    last_synced: Mutex<HashMap<Key, Of<(ApiKey, ObservedIntegration)>>>,
}

impl Memory {
    /// What this process remembers about `obj` (see [`Settled`]).
    pub fn settled(&self, obj: &ApiIntegration) -> Option<Settled> {
        self.settled
            .lock()
            .unwrap()
            .get(&ObjectRef::from(obj))
            .and_then(|e| e.of(obj))
            .copied()
    }

    /// Remembers that `obj`'s current generation was settled (in sync, next checked at `due_at`; or
    /// refused by AWS), and clears its failure count.
    pub fn remember_settled(&self, obj: &ApiIntegration, refused: bool, due_at: Instant) {
        let key = ObjectRef::from(obj);
        self.failures.lock().unwrap().remove(&key);
        self.settled.lock().unwrap().insert(
            key,
            Of::new(
                obj,
                Settled {
                    generation: obj.metadata.generation,
                    due_at,
                    refused,
                },
            ),
        );
    }

    /// `obj` is no longer settled (a failure, or it is being deleted). What AWS held at its last sync is
    /// forgotten too: after a failure, whose effect may be unknown, the next look is a fresh read.
    /// `obj` is no longer settled, but what AWS held at its last sync still stands (AWS refused the
    /// call that failed without acting on it).
    pub fn unsettle(&self, obj: &ApiIntegration) {
        self.settled.lock().unwrap().remove(&ObjectRef::from(obj));
    }

    pub fn forget_settled(&self, obj: &ApiIntegration) {
        let key = ObjectRef::from(obj);
        self.settled.lock().unwrap().remove(&key);
        self.last_synced.lock().unwrap().remove(&key);
    }

    /// Remembers what AWS held for `obj`'s integration when it was just synced.
    pub fn remember_synced(&self, obj: &ApiIntegration, api: ApiKey, held: &ObservedIntegration) {
        self.last_synced
            .lock()
            .unwrap()
            .insert(ObjectRef::from(obj), Of::new(obj, (api, held.clone())));
    }

    /// What AWS held for integration `id` of `api` at `obj`'s last successful sync by this process.
    pub fn last_synced(
        &self,
        obj: &ApiIntegration,
        api: &ApiKey,
        id: &str,
    ) -> Option<ObservedIntegration> {
        let last = self.last_synced.lock().unwrap();
        let (at, held) = last.get(&ObjectRef::from(obj))?.of(obj)?;
        (at == api && held.integration_id == id).then(|| held.clone())
    }

    /// `obj` is gone: forget everything about it.
    pub fn forget(&self, obj: &ApiIntegration) {
        let key = ObjectRef::from(obj);
        self.settled.lock().unwrap().remove(&key);
        self.failures.lock().unwrap().remove(&key);
        self.last_synced.lock().unwrap().remove(&key);
    }

    /// Counts one more failure in a row for `obj`; returns how many came before it.
    pub fn count_failure(&self, obj: &ApiIntegration) -> u32 {
        let mut failures = self.failures.lock().unwrap();
        let entry = failures
            .entry(ObjectRef::from(obj))
            .or_insert_with(|| Of::new(obj, 0));
        if entry.of(obj).is_none() {
            *entry = Of::new(obj, 0);
        }
        entry.value += 1;
        entry.value - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiIntegrationSpec;
    use std::time::Duration;

    fn object(name: &str, generation: i64) -> ApiIntegration {
        let spec: ApiIntegrationSpec = serde_json::from_value(serde_json::json!({
            "apiId": "a1", "integrationType": "HTTP_PROXY", "integrationUri": "https://x"
        }))
        .unwrap();
        let mut obj = ApiIntegration::new(name, spec);
        obj.metadata.namespace = Some("ns".into());
        obj.metadata.generation = Some(generation);
        obj
    }

    fn held(id: &str) -> ObservedIntegration {
        ObservedIntegration {
            integration_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn failures_count_up_per_object_until_settled() {
        let memory = Memory::default();
        let (a, b) = (object("a", 1), object("b", 1));
        assert_eq!(memory.count_failure(&a), 0);
        assert_eq!(memory.count_failure(&a), 1);
        assert_eq!(
            memory.count_failure(&b),
            0,
            "another object has its own count"
        );
        memory.remember_settled(&a, false, Instant::now());
        assert_eq!(memory.count_failure(&a), 0, "settling clears the count");
    }

    #[test]
    fn settled_is_remembered_with_the_generation_and_forgotten_on_failure() {
        let memory = Memory::default();
        let a = object("a", 3);
        assert_eq!(memory.settled(&a), None);
        let due = Instant::now() + Duration::from_secs(60);
        memory.remember_settled(&a, true, due);
        assert_eq!(
            memory.settled(&a),
            Some(Settled {
                generation: Some(3),
                due_at: due,
                refused: true
            })
        );
        memory.remember_synced(&a, ApiKey::new("r", "a1"), &held("i1"));
        memory.forget_settled(&a);
        assert_eq!(memory.settled(&a), None);
        assert_eq!(
            memory.last_synced(&a, &ApiKey::new("r", "a1"), "i1"),
            None,
            "after a failure the next look is a fresh read"
        );
    }

    #[test]
    fn last_synced_answers_only_for_the_same_api_and_integration() {
        let memory = Memory::default();
        let a = object("a", 1);
        let api = ApiKey::new("r", "a1");
        memory.remember_synced(&a, api.clone(), &held("i1"));
        assert_eq!(memory.last_synced(&a, &api, "i1"), Some(held("i1")));
        assert_eq!(memory.last_synced(&a, &api, "i2"), None);
        assert_eq!(memory.last_synced(&a, &ApiKey::new("r", "a2"), "i1"), None);
        assert_eq!(memory.last_synced(&a, &ApiKey::new("r2", "a1"), "i1"), None);
        assert_eq!(memory.last_synced(&object("b", 1), &api, "i1"), None);
    }

    #[test]
    fn an_object_made_again_under_the_same_name_inherits_nothing() {
        let memory = Memory::default();
        let mut first = object("a", 1);
        first.metadata.uid = Some("uid-1".into());
        let api = ApiKey::new("r", "a1");
        memory.count_failure(&first);
        memory.remember_settled(&first, false, Instant::now() + Duration::from_secs(600));
        memory.remember_synced(&first, api.clone(), &held("i1"));
        memory.count_failure(&first);
        // Deleted without a reconcile of its deletion (no finalizer), then made again: same name and
        // generation, another UID.
        let mut second = object("a", 1);
        second.metadata.uid = Some("uid-2".into());
        assert_eq!(memory.settled(&second), None);
        assert_eq!(memory.last_synced(&second, &api, "i1"), None);
        assert_eq!(memory.count_failure(&second), 0);
        assert_eq!(memory.count_failure(&second), 1);
        assert!(memory.settled(&first).is_some(), "the first is still known");
    }

    #[test]
    fn a_deleted_object_is_forgotten_entirely() {
        let memory = Memory::default();
        let a = object("a", 1);
        memory.count_failure(&a);
        memory.remember_settled(&a, false, Instant::now());
        memory.remember_synced(&a, ApiKey::new("r", "a1"), &held("i1"));
        memory.count_failure(&a);
        memory.forget(&a);
        assert_eq!(memory.settled(&a), None);
        assert_eq!(memory.last_synced(&a, &ApiKey::new("r", "a1"), "i1"), None);
        assert_eq!(memory.count_failure(&a), 0);
    }
}
