//! Watches a contender's objects in its namespace: which are Ready (or Synced), and how many times any of
//! them changed (each change is a new resourceVersion, i.e. one write to the API server).

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How an object says it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyRule {
    /// Ours (and `limit`, which writes the same status): condition Ready True and
    /// status.observedGeneration equal to metadata.generation.
    ReadyAtGeneration,
    /// ACK: condition ACK.ResourceSynced True (ACK's status carries no observedGeneration).
    AckSynced,
}

impl ReadyRule {
    pub fn is_ready(self, obj: &serde_json::Value) -> bool {
        let cond = |ty: &str| {
            obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
                .is_some_and(|c| c["status"] == "True")
        };
        match self {
            ReadyRule::ReadyAtGeneration => {
                cond("Ready")
                    && obj["status"]["observedGeneration"].as_i64().is_some()
                    && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
            }
            ReadyRule::AckSynced => cond("ACK.ResourceSynced"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub resource_version: String,
    pub generation: i64,
    pub ready: bool,
    /// When the watch first saw it ready at this generation (the event's arrival), so that a phase's
    /// time does not depend on how often the bench polls.
    pub ready_since: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Added,
    Modified,
    Deleted,
}

/// Counters since the watch started. `added` and `deleted` are objects appearing and going; `modified`
/// every other new resourceVersion.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
    /// Times the watch had to list again (a change in between may then be missed).
    pub relists: usize,
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Seen>,
    counts: Counts,
    /// Every change with its time, to count the changes of any stretch of time.
    changes: Vec<(Instant, Change)>,
    last_change: Option<Instant>,
    synced: bool,
}

impl State {
    fn record(&mut self, change: Change, at: Instant) {
        match change {
            Change::Added => self.counts.added += 1,
            Change::Modified => self.counts.modified += 1,
            Change::Deleted => self.counts.deleted += 1,
        }
        self.changes.push((at, change));
        self.last_change = Some(at);
    }
}

pub struct Watch {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub fn start(api: Api<DynamicObject>, rule: ReadyRule) -> Watch {
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            let mut first_init = true;
            let mut listed: Option<HashMap<String, Seen>> = None;
            while let Some(event) = stream.next().await {
                let Ok(event) = event else {
                    continue;
                };
                let mut st = shared.lock().unwrap();
                match event {
                    watcher::Event::Init => {
                        if !first_init {
                            st.counts.relists += 1;
                        }
                        listed = Some(HashMap::new());
                    }
                    watcher::Event::InitApply(obj) => {
                        let (name, seen) = seen_of(&obj, rule, Instant::now());
                        if let Some(l) = listed.as_mut() {
                            l.insert(name, seen);
                        }
                    }
                    watcher::Event::InitDone => {
                        let listed = listed.take().unwrap_or_default();
                        if !first_init {
                            // What changed while the watch was down, counted once per object.
                            let now = Instant::now();
                            for (name, seen) in &listed {
                                let change = match st.objects.get(name) {
                                    None => Change::Added,
                                    Some(old) if old.resource_version != seen.resource_version => {
                                        Change::Modified
                                    }
                                    _ => continue,
                                };
                                st.record(change, now);
                            }
                            let gone = st
                                .objects
                                .keys()
                                .filter(|k| !listed.contains_key(*k))
                                .count();
                            for _ in 0..gone {
                                st.record(Change::Deleted, Instant::now());
                            }
                        }
                        st.objects = listed;
                        st.synced = true;
                        first_init = false;
                    }
                    watcher::Event::Apply(obj) => {
                        // One instant for the change and for the readiness it brings, so that a
                        // phase that ends with this event counts it inside.
                        let at = Instant::now();
                        let (name, mut seen) = seen_of(&obj, rule, at);
                        if let Some(old) = st.objects.get(&name)
                            && old.ready
                            && seen.ready
                            && old.generation == seen.generation
                        {
                            seen.ready_since = old.ready_since;
                        }
                        let change = match st.objects.get(&name) {
                            None => Change::Added,
                            Some(old) if old.resource_version != seen.resource_version => {
                                Change::Modified
                            }
                            Some(_) => continue,
                        };
                        st.record(change, at);
                        st.objects.insert(name, seen);
                    }
                    watcher::Event::Delete(obj) => {
                        let name = obj.metadata.name.clone().unwrap_or_default();
                        if st.objects.remove(&name).is_some() {
                            st.record(Change::Deleted, Instant::now());
                        }
                    }
                }
            }
        });
        Watch { state, task }
    }

    /// Waits until the first listing is in.
    pub async fn synced(&self) {
        while !self.state.lock().unwrap().synced {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts
    }

    /// Changes seen after `from` up to and including `to`.
    pub fn counts_between(&self, from: Instant, to: Instant) -> Counts {
        let st = self.state.lock().unwrap();
        let mut c = Counts::default();
        for (at, change) in st.changes.iter().filter(|(at, _)| *at > from && *at <= to) {
            let _ = at;
            match change {
                Change::Added => c.added += 1,
                Change::Modified => c.modified += 1,
                Change::Deleted => c.deleted += 1,
            }
        }
        c
    }

    pub fn last_change(&self) -> Option<Instant> {
        self.state.lock().unwrap().last_change
    }

    /// (objects present, of which Ready).
    pub fn ready(&self) -> (usize, usize) {
        let st = self.state.lock().unwrap();
        (
            st.objects.len(),
            st.objects.values().filter(|s| s.ready).count(),
        )
    }

    /// A cheap handle that counts Ready objects (for sampling the Ready curve).
    pub fn ready_handle(&self) -> impl Fn() -> usize + Send + 'static {
        let state = self.state.clone();
        move || {
            state
                .lock()
                .unwrap()
                .objects
                .values()
                .filter(|s| s.ready)
                .count()
        }
    }

    /// When the last of `wanted` became ready at (at least) its generation, if all are.
    pub fn all_ready_since(&self, wanted: &HashMap<String, i64>) -> Option<Instant> {
        let st = self.state.lock().unwrap();
        wanted
            .iter()
            .map(|(name, generation)| {
                st.objects
                    .get(name)
                    .filter(|s| s.ready && s.generation >= *generation)
                    .and_then(|s| s.ready_since)
            })
            .try_fold(None, |latest: Option<Instant>, at| {
                at.map(|at| Some(latest.map_or(at, |l| l.max(at))))
            })
            .flatten()
    }

    /// Ready objects among `names` whose generation is at least the one given (the generation a spec
    /// change produced; 0 accepts any).
    pub fn ready_among(&self, wanted: &HashMap<String, i64>) -> usize {
        let st = self.state.lock().unwrap();
        wanted
            .iter()
            .filter(|(name, generation)| {
                st.objects
                    .get(*name)
                    .is_some_and(|s| s.ready && s.generation >= **generation)
            })
            .count()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn seen_of(obj: &DynamicObject, rule: ReadyRule, at: Instant) -> (String, Seen) {
    let json = serde_json::to_value(obj).unwrap_or_default();
    let ready = rule.is_ready(&json);
    (
        obj.metadata.name.clone().unwrap_or_default(),
        Seen {
            resource_version: obj.metadata.resource_version.clone().unwrap_or_default(),
            generation: obj.metadata.generation.unwrap_or(0),
            ready,
            ready_since: ready.then_some(at),
        },
    )
}
