//! The integration responses of a WebSocket integration (spec.integrationResponses, design rule 12):
//! which of them a resource manages, what differs between the spec and what API Gateway holds, the next
//! create, update or delete, and the spec an import writes for responses found in API Gateway.
//!
//! Responses are planned only once the integration itself is in sync: they belong to it, so they are
//! made after it and go with it. A response's key is unique within its integration, so "does this
//! response exist already" is answered by the integration's list of responses, read before any write:
//! a create whose answer was lost is found there on the next try instead of being made twice.

use crate::api::{FieldDrift, IntegrationResponseSpec};
use std::collections::{BTreeMap, BTreeSet};

/// An integration response as API Gateway reports it (GetIntegrationResponses, or the answer to a create
/// or update).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedResponse {
    pub id: String,
    /// Its key and fields, as AWS holds them.
    pub fields: IntegrationResponseSpec,
}

/// What a resource asks of its integration's responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantedResponses {
    /// spec.integrationResponses; None when the spec leaves the field out.
    pub declared: Option<Vec<IntegrationResponseSpec>>,
    /// status.integrationResponses: the responses this resource made, ID by key.
    pub recorded: BTreeMap<String, String>,
}

impl WantedResponses {
    pub fn new(
        declared: Option<Vec<IntegrationResponseSpec>>,
        recorded: BTreeMap<String, String>,
    ) -> Self {
        WantedResponses { declared, recorded }
    }

    /// Does this resource manage responses at all (so their list must be read)? Only if the spec
    /// declares the field, or responses it made are still recorded (the field was just removed): a
    /// resource that never declared any reads nothing more than before this feature existed.
    pub fn managed(&self) -> bool {
        self.declared.is_some() || !self.recorded.is_empty()
    }

    /// Does the spec ask for at least one response (which only a WebSocket API can have)?
    pub fn asks_for_any(&self) -> bool {
        self.declared.as_ref().is_some_and(|d| !d.is_empty())
    }

    fn desired(&self) -> &[IntegrationResponseSpec] {
        self.declared.as_deref().unwrap_or_default()
    }

    /// May the operator delete this response, which the spec does not ask for? With the field declared
    /// the list is the whole truth about the integration's responses; without it, only what this
    /// resource made and recorded is its to remove.
    fn may_delete(&self, response: &ObservedResponse) -> bool {
        self.declared.is_some() || self.recorded.values().any(|id| *id == response.id)
    }
}

/// One change to an integration's responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseChange {
    /// CreateIntegrationResponse with these fields.
    Create(IntegrationResponseSpec),
    /// UpdateIntegrationResponse of response `id`: `drift` names the fields that differ, and `body`
    /// carries exactly what to send (key included; removed map keys as `""`, see [`update_body`]).
    Update {
        id: String,
        drift: Vec<&'static str>,
        body: IntegrationResponseSpec,
    },
    /// DeleteIntegrationResponse of response `id` (key `key`): the spec no longer asks for it, or it is
    /// a second response under a key the spec's response already holds.
    Delete { id: String, key: String },
}

impl ResponseChange {
    /// The key of the response this change is about (for the Event, and for the error that names it).
    pub fn key(&self) -> &str {
        match self {
            ResponseChange::Create(spec) => &spec.integration_response_key,
            ResponseChange::Update { body, .. } => &body.integration_response_key,
            ResponseChange::Delete { key, .. } => key,
        }
    }
}

/// What to do about the responses next, given what the spec asks and the integration's responses as
/// last read (or as changed since by our own writes). None: they match. The first of
/// [`response_changes`].
pub fn next_response_change(
    wanted: &WantedResponses,
    observed: &[ObservedResponse],
) -> Option<ResponseChange> {
    response_changes(wanted, observed).into_iter().next()
}

/// Every change that would make the responses `observed` into what `wanted` asks, in the order
/// [`next_response_change`] gives them one reconcile step at a time (each step's own write takes its
/// change off the list and leaves the others as they are): deletes first (a stray or doubled response
/// goes before anything is added), then updates, then creates in the spec's order. Empty: they match.
/// Observe reports this list (rule 11) instead of carrying it out.
pub fn response_changes(
    wanted: &WantedResponses,
    observed: &[ObservedResponse],
) -> Vec<ResponseChange> {
    let desired = wanted.desired();
    let keys: BTreeSet<&str> = desired
        .iter()
        .map(|d| d.integration_response_key.as_str())
        .collect();
    let mut changes = Vec::new();
    // The response that stands for each key: the first AWS lists under it.
    let mut standing: BTreeMap<&str, &ObservedResponse> = BTreeMap::new();
    for response in observed {
        let key = response.fields.integration_response_key.as_str();
        let doubled = standing.contains_key(key);
        if !doubled && keys.contains(key) {
            standing.insert(key, response);
            continue;
        }
        if (doubled && keys.contains(key)) || wanted.may_delete(response) {
            changes.push(ResponseChange::Delete {
                id: response.id.clone(),
                key: key.to_string(),
            });
        }
    }
    for want in desired {
        if let Some(have) = standing.get(want.integration_response_key.as_str()) {
            let drift = drifted_response_fields(want, &have.fields);
            if !drift.is_empty() {
                changes.push(ResponseChange::Update {
                    id: have.id.clone(),
                    drift,
                    body: update_body(want, &have.fields),
                });
            }
        }
    }
    changes.extend(
        desired
            .iter()
            .filter(|want| !standing.contains_key(want.integration_response_key.as_str()))
            .map(|want| ResponseChange::Create(create_body(want))),
    );
    changes
}

/// Rule 11 for responses: what Manage would change about them ([`response_changes`]), as drift entries
/// beside the integration's own fields. A response to update gives one entry per differing field,
/// `integrationResponses[KEY].FIELD`, with the spec's value and AWS's (maps as JSON, tombstones left
/// out, an absent side meaning unset); a response to create gives `integrationResponses[KEY]` with the
/// spec's response as JSON and no AWS value; a response to delete gives `integrationResponses[KEY]` with
/// no spec value and AWS's response (its ID included, as a key may be held twice) as JSON.
pub fn response_drift(wanted: &WantedResponses, observed: &[ObservedResponse]) -> Vec<FieldDrift> {
    let entry = |key: &str| format!("integrationResponses[{key}]");
    let held = |id: &str| observed.iter().find(|o| o.id == id);
    let mut drift = Vec::new();
    for change in response_changes(wanted, observed) {
        match change {
            ResponseChange::Create(body) => drift.push(FieldDrift {
                field: entry(&body.integration_response_key),
                spec: Some(as_json(&body)),
                aws: None,
            }),
            ResponseChange::Delete { id, key } => {
                let aws = held(&id).map(|r| {
                    let mut shown = serde_json::json!({ "integrationResponseId": r.id });
                    if let (Some(shown), Ok(serde_json::Value::Object(fields))) =
                        (shown.as_object_mut(), serde_json::to_value(&r.fields))
                    {
                        shown.extend(fields);
                    }
                    shown.to_string()
                });
                drift.push(FieldDrift {
                    field: entry(&key),
                    spec: None,
                    aws,
                });
            }
            ResponseChange::Update {
                id,
                drift: fields,
                body,
            } => {
                let key = &body.integration_response_key;
                let want = wanted
                    .desired()
                    .iter()
                    .find(|w| &w.integration_response_key == key);
                let have = held(&id).map(|h| &h.fields);
                for field in fields {
                    drift.push(FieldDrift {
                        field: format!("{}.{field}", entry(key)),
                        spec: want.and_then(|w| shown_field(w, field)),
                        aws: have.and_then(|h| shown_field(h, field)),
                    });
                }
            }
        }
    }
    drift
}

fn as_json(response: &IntegrationResponseSpec) -> String {
    serde_json::to_string(response).unwrap_or_default()
}

/// One field of a response as the comparison sees it ([`drifted_response_fields`]), spelt for the drift
/// report; None when unset.
fn shown_field(response: &IntegrationResponseSpec, field: &str) -> Option<String> {
    let map = |m: &Option<BTreeMap<String, String>>| {
        let live = live(m);
        (!live.is_empty()).then(|| serde_json::to_string(&live).unwrap_or_default())
    };
    match field {
        "responseTemplates" => map(&response.response_templates),
        "responseParameters" => map(&response.response_parameters),
        "templateSelectionExpression" => {
            live_string(&response.template_selection_expression).map(String::from)
        }
        "contentHandlingStrategy" => response.content_handling_strategy.map(|c| c.to_string()),
        _ => None,
    }
}

/// What status.integrationResponses records after an Observe look at `observed` (rule 11): the IDs of
/// the responses found under the spec's keys (as Manage records them), and those the status recorded
/// under keys the spec no longer lists while they still exist (Manage would delete them, and needs
/// their IDs to know they are its own). Responses Observe did not find are dropped: nothing is left
/// to delete.
pub fn observed_response_ids(
    wanted: &WantedResponses,
    observed: &[ObservedResponse],
) -> BTreeMap<String, String> {
    let mut ids = response_ids(wanted, observed);
    for (key, id) in &wanted.recorded {
        let declared = wanted
            .desired()
            .iter()
            .any(|w| &w.integration_response_key == key);
        if !declared && observed.iter().any(|o| &o.id == id) {
            ids.insert(key.clone(), id.clone());
        }
    }
    ids
}

/// The responses' IDs by key once [`next_response_change`] has nothing left to do: what the status
/// records (only the keys the spec asks for).
pub fn response_ids(
    wanted: &WantedResponses,
    observed: &[ObservedResponse],
) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for want in wanted.desired() {
        let key = &want.integration_response_key;
        if let Some(have) = observed
            .iter()
            .find(|o| &o.fields.integration_response_key == key)
        {
            ids.insert(key.clone(), have.id.clone());
        }
    }
    ids
}

/// A map as the comparison sees it: unset and empty are the same, and so is a `""` value and no value
/// (the tombstone a removal sends may stay behind, as moto keeps it).
fn live(map: &Option<BTreeMap<String, String>>) -> BTreeMap<&str, &str> {
    map.iter()
        .flatten()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn live_string(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The fields of `want` that `have` does not match, by their spec names. Maps and
/// templateSelectionExpression compare whole (what the spec leaves out must be absent in AWS: the
/// responses of a declared list are the operator's). contentHandlingStrategy compares only when the
/// spec sets it: API Gateway cannot unset it.
pub fn drifted_response_fields(
    want: &IntegrationResponseSpec,
    have: &IntegrationResponseSpec,
) -> Vec<&'static str> {
    let mut drift = Vec::new();
    if live(&want.response_templates) != live(&have.response_templates) {
        drift.push("responseTemplates");
    }
    if live(&want.response_parameters) != live(&have.response_parameters) {
        drift.push("responseParameters");
    }
    if live_string(&want.template_selection_expression)
        != live_string(&have.template_selection_expression)
    {
        drift.push("templateSelectionExpression");
    }
    if want.content_handling_strategy.is_some()
        && want.content_handling_strategy != have.content_handling_strategy
    {
        drift.push("contentHandlingStrategy");
    }
    drift
}

/// What CreateIntegrationResponse sends: the spec's response, empty maps left out.
pub fn create_body(want: &IntegrationResponseSpec) -> IntegrationResponseSpec {
    let non_empty = |m: &Option<BTreeMap<String, String>>| m.clone().filter(|m| !m.is_empty());
    IntegrationResponseSpec {
        integration_response_key: want.integration_response_key.clone(),
        response_templates: non_empty(&want.response_templates),
        response_parameters: non_empty(&want.response_parameters),
        template_selection_expression: want.template_selection_expression.clone(),
        content_handling_strategy: want.content_handling_strategy,
    }
}

/// What UpdateIntegrationResponse sends to make `have` into `want`: only the fields that differ. A map
/// goes whole, with each key AWS has and the spec dropped sent as `""` (right whether AWS merges the map
/// or replaces it, as for an integration's requestTemplates, design rule 4); a removed
/// templateSelectionExpression is sent as `""`.
pub fn update_body(
    want: &IntegrationResponseSpec,
    have: &IntegrationResponseSpec,
) -> IntegrationResponseSpec {
    let drift = drifted_response_fields(want, have);
    let with_removals = |want: &Option<BTreeMap<String, String>>,
                         have: &Option<BTreeMap<String, String>>| {
        let mut body = want.clone().unwrap_or_default();
        for key in live(have).keys() {
            body.entry(key.to_string()).or_default();
        }
        Some(body)
    };
    IntegrationResponseSpec {
        integration_response_key: want.integration_response_key.clone(),
        response_templates: drift
            .contains(&"responseTemplates")
            .then(|| with_removals(&want.response_templates, &have.response_templates))
            .flatten(),
        response_parameters: drift
            .contains(&"responseParameters")
            .then(|| with_removals(&want.response_parameters, &have.response_parameters))
            .flatten(),
        template_selection_expression: drift.contains(&"templateSelectionExpression").then(|| {
            want.template_selection_expression
                .clone()
                .unwrap_or_default()
        }),
        content_handling_strategy: drift
            .contains(&"contentHandlingStrategy")
            .then_some(want.content_handling_strategy)
            .flatten(),
    }
}

/// For adoption and import: the spec.integrationResponses that describes `observed` (GetIntegrationResponses'
/// answer, converted by `aws::response_from_sdk`) exactly, so that a resource made from it finds
/// nothing to change. Sorted by key (`$default` first, as `$` sorts before `/`); `""` values (tombstones)
/// and empty maps are left out; a key AWS lists twice is given once (the first, as the plan keeps).
pub fn spec_from_observed(observed: &[ObservedResponse]) -> Vec<IntegrationResponseSpec> {
    let mut by_key: BTreeMap<&str, IntegrationResponseSpec> = BTreeMap::new();
    for response in observed {
        let f = &response.fields;
        let clean = |m: &Option<BTreeMap<String, String>>| {
            let live: BTreeMap<String, String> = live(m)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (!live.is_empty()).then_some(live)
        };
        by_key
            .entry(f.integration_response_key.as_str())
            .or_insert_with(|| IntegrationResponseSpec {
                integration_response_key: f.integration_response_key.clone(),
                response_templates: clean(&f.response_templates),
                response_parameters: clean(&f.response_parameters),
                template_selection_expression: live_string(&f.template_selection_expression)
                    .map(String::from),
                content_handling_strategy: f.content_handling_strategy,
            });
    }
    by_key.into_values().collect()
}

/// Applies our own write to the responses as last read, so the next decision sees it without reading
/// again. A create or update answer replaces what was known of that response; a delete removes it.
pub fn apply_written(observed: &mut Vec<ObservedResponse>, written: &WrittenResponse) {
    match written {
        WrittenResponse::Made(r) => match observed.iter_mut().find(|o| o.id == r.id) {
            Some(o) => *o = r.clone(),
            None => observed.push(r.clone()),
        },
        WrittenResponse::Removed { id } => observed.retain(|o| &o.id != id),
    }
}

/// What a response write left in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WrittenResponse {
    /// A create's or update's answer.
    Made(ObservedResponse),
    /// A delete (or a response found already gone).
    Removed { id: String },
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
