//! One reconcile of a live resource, as a sequence of instructions. The controller observes once, builds a
//! [`Progress`], and then repeats: ask [`Progress::next`] what to do, do exactly that, hand the outcome to
//! [`Progress::record`]. Everything the reconcile decides between its first observation and its report is
//! here: the finalizer before anything is owned in AWS, the status naming an integration before it is
//! changed (the ID written first), which AWS step, when the work is done and what the report says, and
//! when the next drift check comes.
//!
//! How a sync ends (the [`Finish`] that says what Ready reports and when the next drift check comes, and
//! why an integration was re-created) is in `finish`.

mod finish;
pub use finish::{Finish, Recreation, next_check_spread};

use super::diff::ObservedIntegration;
use super::diff::Protocol;
use super::observe::{Observation, observation, with_responses};
use super::responses::{
    ObservedResponse, ResponseChange, WantedResponses, WrittenResponse, apply_written,
    next_response_change, observed_response_ids, response_ids,
};
use super::step::{Blocker, Holding, Observed, Step, next_step};
use crate::api::ManagementPolicy;
use std::collections::BTreeMap;
use std::time::Instant;

/// What the controller does next. Each is carried out as it says, with no choice left.
// One at a time, moved once: boxing the fields would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Do {
    /// Put the finalizer on the object before AWS holds anything for it; for a first create, with the
    /// create-in-flight annotation in the same request.
    Own { first_create: bool },
    /// Write the status as it stands, so that it names the integration about to be updated (an update
    /// applied in AWS with its answer lost would leave an integration matching neither the spec its
    /// create sent nor the current one, and the next lookup would make another). An adopted
    /// integration is named by its annotation instead; the status is then what the object has, and the
    /// write is skipped as equal.
    RecordId,
    /// Carry out this AWS step: Adopt, RecoverInterrupted, Create, Recreate, MoveToNewApi or Update.
    Aws(Step),
    /// Done: report Ready and requeue for the next drift check.
    Finish(Finish),
    /// Nothing may be written until someone acts: report why.
    Refuse(Blocker),
    /// managementPolicy Observe: report what was found; nothing is written to AWS, and no finalizer.
    Observe(Observation),
    /// Rule 12: the integration is in sync; read or change its responses.
    Responses {
        integration_id: String,
        step: ResponseStep,
    },
}

/// Rule 12: what to do about an integration's responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseStep {
    /// GetIntegrationResponses: every response of the integration.
    Read,
    /// One create, update or delete.
    Change(ResponseChange),
}

/// What a step left behind, for [`Progress::record`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The finalizer (and the annotation, if asked) are on the object.
    Owned,
    /// The status on the API server names the integration being worked on.
    IdRecorded,
    /// Adopted, recovered or created: this integration is now the resource's.
    Made(ObservedIntegration),
    /// UpdateIntegration's answer.
    Updated(ObservedIntegration),
    /// UpdateIntegration (or GetIntegrationResponses) answered 404: the integration is gone.
    Gone,
    /// GetIntegrationResponses' answer.
    ResponsesRead(Vec<ObservedResponse>),
    /// What a response create, update or delete left in AWS.
    ResponseWritten(WrittenResponse),
}
/// The bookkeeping of one reconcile between its steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// What the next decision is made from; each step's outcome updates it.
    pub observed: Observed,
    /// The API the integration lives on.
    pub api_id: String,
    /// The recorded integration was not read but taken from this process's memory of its last sync: an
    /// update computed from it is sent at once, and AWS's answer checked like a fresh read.
    pub from_memory: bool,
    /// When AWS was last read or written for what `observed` holds.
    pub seen_at: Instant,
    /// The integration ID the status on the API server names.
    pub id_on_server: Option<String>,
    /// The finalizer is on the object.
    pub finalized: bool,
    /// The create-in-flight annotation for this reconcile's first create is on the object.
    pub marked: bool,
    /// This reconcile wrote to AWS.
    pub changed: bool,
    pub recreated: Option<Recreation>,
    /// AWS's answer to an update made from a fresh read: what is reported.
    answered: Option<ObservedIntegration>,
    /// Manage, or Observe: then the only instruction is [`Do::Observe`].
    pub management: ManagementPolicy,
    /// Rule 12: what the spec (and status) ask of the integration's responses.
    pub responses: WantedResponses,
    /// The integration's responses as last read and changed since by this reconcile (None: not read).
    pub responses_seen: Option<Vec<ObservedResponse>>,
}

impl Progress {
    /// A reconcile that observed `observed` (at `seen_at`; `from_memory` as above), of an object whose
    /// status names `id_on_server` and which has the finalizer or not.
    pub fn new(
        observed: Observed,
        api_id: String,
        from_memory: bool,
        seen_at: Instant,
        id_on_server: Option<String>,
        finalized: bool,
    ) -> Self {
        Progress {
            observed,
            api_id,
            from_memory,
            seen_at,
            id_on_server,
            finalized,
            marked: false,
            changed: false,
            recreated: None,
            answered: None,
            management: ManagementPolicy::Manage,
            responses: WantedResponses::default(),
            responses_seen: None,
        }
    }

    /// The same reconcile, for a resource that asks `wanted` of its integration's responses (rule 12).
    pub fn with_responses(mut self, wanted: WantedResponses) -> Self {
        self.responses = wanted;
        self
    }

    /// What status.integrationResponses records at the finish: the responses' IDs by key.
    pub fn response_ids(&self) -> BTreeMap<String, String> {
        match &self.responses_seen {
            Some(seen) => response_ids(&self.responses, seen),
            None => self.responses.recorded.clone(),
        }
    }

    /// What status.integrationResponses records after an Observe look (rule 11): see
    /// [`observed_response_ids`]; what the status has when the responses were not read.
    pub fn observed_response_ids(&self) -> BTreeMap<String, String> {
        match &self.responses_seen {
            Some(seen) => observed_response_ids(&self.responses, seen),
            None => self.responses.recorded.clone(),
        }
    }

    /// The same reconcile under `management`.
    pub fn with_management(mut self, management: ManagementPolicy) -> Self {
        self.management = management;
        self
    }

    /// What to do next.
    pub fn next(&self) -> Do {
        // Rule 11: Observe reports what it read and nothing else, before any finalizer, ID or AWS step.
        if self.management == ManagementPolicy::Observe {
            return self.observe();
        }
        // Rule 12: responses exist on WebSocket APIs only; nothing is written for a spec that asks for
        // them on an HTTP API (the CEL rules catch it only when apiRef says the protocol).
        if self.responses.asks_for_any() && self.observed.protocol == Some(Protocol::Http) {
            return Do::Refuse(Blocker::ResponsesOnHttpApi);
        }
        if let Some(answer) = &self.answered {
            return self.after_integration(answer.clone());
        }
        let step = next_step(&self.observed);
        if let Step::Report(blocker) = step {
            return Do::Refuse(blocker);
        }
        // Whatever the resource owns in AWS must not outlive it: the finalizer comes first.
        let first_create = step == Step::Create;
        if !self.finalized || (first_create && !self.marked) {
            return Do::Own { first_create };
        }
        match step {
            Step::InSync(integration) => self.after_integration(integration),
            Step::Update {
                ref integration, ..
            } if self.id_on_server.as_deref() != Some(&integration.integration_id) => Do::RecordId,
            step => Do::Aws(step),
        }
    }

    /// Rule 11: what Observe reports. Where Manage would look at the integration's responses (rule 12:
    /// the spec declares them, or the status records some), they are read once (the only instruction
    /// besides the report, and a read) and what Manage would change about them joins the drift.
    fn observe(&self) -> Do {
        // As Manage refuses it, before anything is read.
        if self.responses.asks_for_any() && self.observed.protocol == Some(Protocol::Http) {
            return Do::Observe(Observation::Blocked(Blocker::ResponsesOnHttpApi));
        }
        let found = observation(&self.observed);
        let integration_id = match &found {
            Observation::InSync(integration) | Observation::Drifted { integration, .. }
                if self.responses.managed() =>
            {
                integration.integration_id.clone()
            }
            _ => return Do::Observe(found),
        };
        match &self.responses_seen {
            None => Do::Responses {
                integration_id,
                step: ResponseStep::Read,
            },
            Some(seen) => Do::Observe(with_responses(found, &self.responses, seen)),
        }
    }

    /// The integration holds the spec: its responses next (rule 12), then the finish. A resource that
    /// manages no responses finishes at once, reading nothing more.
    fn after_integration(&self, integration: ObservedIntegration) -> Do {
        if !self.responses.managed() {
            return Do::Finish(self.finish(integration));
        }
        let integration_id = integration.integration_id.clone();
        let step = match &self.responses_seen {
            None => ResponseStep::Read,
            Some(seen) => match next_response_change(&self.responses, seen) {
                Some(change) => ResponseStep::Change(change),
                None => return Do::Finish(self.finish(integration)),
            },
        };
        Do::Responses {
            integration_id,
            step,
        }
    }

    fn finish(&self, integration: ObservedIntegration) -> Finish {
        Finish {
            recreated: self
                .recreated
                .as_ref()
                .map(|r| r.message(&integration.integration_id)),
            integration,
            unchanged: !self.changed,
            seen_at: self.seen_at,
        }
    }

    /// What `done` (the instruction [`Progress::next`] gave) left behind, at `now`.
    pub fn record(&mut self, done: &Do, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Owned => {
                self.finalized = true;
                self.marked |= matches!(done, Do::Own { first_create: true });
            }
            Outcome::IdRecorded => {
                if let Holding::Recorded { id, .. } = &self.observed.holding {
                    self.id_on_server = Some(id.clone());
                }
            }
            Outcome::ResponsesRead(list) => self.responses_seen = Some(list),
            Outcome::ResponseWritten(written) => {
                self.changed = true;
                apply_written(self.responses_seen.get_or_insert_default(), &written);
            }
            Outcome::Gone => {
                self.responses_seen = None;
                self.answered = None;
                match &self.observed.holding {
                    Holding::Recorded { id, .. } => {
                        self.observed.holding = Holding::Recorded {
                            id: id.clone(),
                            found: None,
                        }
                    }
                    // Observe reads an adoption target's responses without adopting it first.
                    Holding::AdoptionTarget { id, .. } => {
                        self.observed.holding = Holding::AdoptionTarget {
                            id: id.clone(),
                            found: None,
                        }
                    }
                    _ => {}
                }
                self.from_memory = false;
            }
            Outcome::Updated(answer) if !self.from_memory => {
                self.changed = true;
                self.seen_at = now;
                self.answered = Some(answer);
            }
            // The update was computed from memory: AWS's answer is the truth, and one more round repairs
            // anything changed behind our back meanwhile.
            Outcome::Updated(integration) | Outcome::Made(integration) => {
                if let Do::Aws(step) = done {
                    self.recreated = self.recreation(step).or(self.recreated.take());
                    // Rule 12: a new integration has no responses; one adopted or recovered is read.
                    match step {
                        Step::Create | Step::Recreate { .. } | Step::MoveToNewApi { .. } => {
                            self.responses_seen = Some(Vec::new())
                        }
                        Step::Adopt(_) | Step::RecoverInterrupted(_) => self.responses_seen = None,
                        _ => {}
                    }
                }
                self.changed = true;
                self.from_memory = false;
                self.seen_at = now;
                self.observed.holding = Holding::Recorded {
                    id: integration.integration_id.clone(),
                    found: Some(integration),
                };
            }
        }
    }

    /// Why `step` creates an integration again, if it does.
    pub fn recreation(&self, step: &Step) -> Option<Recreation> {
        match step {
            Step::Recreate { .. } => Some(Recreation::Lost),
            Step::MoveToNewApi {
                old_api,
                old_id,
                delete_old,
                ..
            } => Some(Recreation::Moved {
                old_api: old_api.clone(),
                new_api: self.api_id.clone(),
                old_id: old_id.clone(),
                old_deleted: *delete_old,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
