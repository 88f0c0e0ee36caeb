//! The spec of one imported integration: what API Gateway holds, without the values API Gateway fills in
//! by itself (a user would not write them, and GitOps would then show changes nobody made), checked with
//! the operator's own diff to change nothing once applied.

use crate::api::{
    ApiIntegrationSpec, ApiRef, ConnectionRef, ConnectionType, DEFAULT_RESPONSE_KEY,
    DeletionPolicy, IntegrationMethod, IntegrationResponseSpec, IntegrationType,
    MAX_INTEGRATION_RESPONSES, ManagementPolicy, PayloadFormatVersion,
};
use crate::plan::responses::next_response_change;
use crate::plan::{
    ApiSummary, Field, IntegrationFields, ObservedIntegration, ObservedResponse, Protocol, Removal,
    ResponseChange, VpcLinkSummary, WantedResponses, drifted_fields, normalize_observed,
    spec_from_observed,
};
use std::collections::BTreeMap;

/// The integration fields a user would write for what AWS holds: AWS's answer normalized as the diff
/// reads it, then without
/// - every field whose removal is [`Removal::Reset`] holding what AWS holds when it was never set
///   ([`IntegrationFields::unset`]: connectionType INTERNET, the protocol's default timeout,
///   passthroughBehavior WHEN_NO_MATCH, empty strings, an empty tlsConfig);
/// - payloadFormatVersion "1.0" on a WebSocket API (AWS sets it; only HTTP APIs require it);
/// - integrationMethod POST on an HTTP API's Lambda proxy integration (AWS sets it).
pub fn imported_fields(observed: &IntegrationFields, protocol: Protocol) -> IntegrationFields {
    let mut f = normalize_observed(observed);
    let never_set = IntegrationFields::unset(protocol.default_timeout());
    for &field in Field::ALL {
        if field.rule().removal == Removal::Reset
            && f.is_set(field)
            && f.get(field) == never_set.get(field)
        {
            f.clear(field);
        }
    }
    if protocol == Protocol::WebSocket && f.payload_format_version == Some(PayloadFormatVersion::V1)
    {
        f.payload_format_version = None;
    }
    let lambda_proxy =
        f.integration_type == Some(IntegrationType::AwsProxy) && f.integration_subtype.is_none();
    if protocol == Protocol::Http
        && lambda_proxy
        && f.integration_method == Some(IntegrationMethod::Post)
    {
        f.integration_method = None;
    }
    f
}

/// A remark on one spec field, written as a YAML comment after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNote {
    /// The spec key the comment goes after (`apiId`, `connectionId`).
    pub key: &'static str,
    pub text: String,
}

/// Why an integration gets no ApiIntegration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotImported {
    /// API Gateway made it (quick create) and manages it: the operator never takes those over.
    ManagedByApiGateway,
    /// It holds a value this operator does not know (API Gateway added it since).
    UnknownValue { field: Field, value: String },
    /// It has no integration type (nothing a spec could say).
    NoType,
    /// The spec AWS's values make would still differ from them in these fields (a rule of the diff the
    /// import does not follow): applying it would change the integration, so it is not written.
    WouldChange(Vec<&'static str>),
}

impl std::fmt::Display for NotImported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotImported::ManagedByApiGateway => f.write_str(
                "API Gateway made it (quick create) and manages it itself; the operator never takes \
                 such integrations over",
            ),
            NotImported::UnknownValue { field, value } => write!(
                f,
                "its {field} is {value:?}, which this version of the operator does not know"
            ),
            NotImported::NoType => f.write_str("API Gateway reports no integrationType for it"),
            NotImported::WouldChange(fields) => write!(
                f,
                "a spec of what AWS holds would still differ from it in {}; applying it would change \
                 the integration",
                fields.join(", ")
            ),
        }
    }
}

/// What the import knows of the region, to name the API and the VPC link by name where it can.
#[derive(Clone, Debug, Default)]
pub struct Region {
    pub name: String,
    /// Every API of the region (not only the imported ones): a name is usable only when unique.
    pub apis: Vec<ApiSummary>,
    /// Every VPC link of the region (empty when none of the imported integrations uses one).
    pub vpc_links: Vec<VpcLinkSummary>,
}

/// How the imported objects are to be managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub management: ManagementPolicy,
}

/// An imported integration's spec, with the remarks to write beside its fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Drafted {
    pub spec: ApiIntegrationSpec,
    pub notes: Vec<FieldNote>,
    /// Values AWS holds that no spec can say, left out of this one (reported on stderr and as a
    /// comment, never dropped silently).
    pub left_out: Vec<String>,
}

/// Longest timeout of a WebSocket API's integration (the CRD refuses more).
const WEBSOCKET_MAX_TIMEOUT: i32 = 29000;

/// Clears the values of `fields` that the CRD would refuse, saying what each was.
fn leave_out_inexpressible(fields: &mut IntegrationFields, protocol: Protocol) -> Vec<String> {
    let mut left_out = Vec::new();
    if protocol == Protocol::WebSocket
        && let Some(t) = fields.timeout_in_millis
        && t > WEBSOCKET_MAX_TIMEOUT
    {
        fields.timeout_in_millis = None;
        left_out.push(format!(
            "timeoutInMillis {t} is above a WebSocket API's maximum of {WEBSOCKET_MAX_TIMEOUT}, \
             which the spec cannot hold; left out, so the spec asks for the default"
        ));
    }
    left_out
}

/// The ApiIntegration spec of one integration of `api`: AWS's values less AWS's own defaults
/// ([`imported_fields`]), the API named by `apiRef: {name}` and the VPC link by `connectionRef: {name}`
/// when that name is unique in the region (else by ID, with a note saying why), the region,
/// `deletionPolicy: Retain` and `policy`'s management policy. Refused when it cannot be expressed, or
/// when the operator's own diff would still find a difference.
///
/// This is the one place an integration becomes a spec, its integration responses included:
/// `responses` is what GetIntegrationResponses answered for it (empty when it was not asked, see
/// [`has_integration_responses`]). They become spec.integrationResponses when there are any and the spec
/// can hold them in sync ([`imported_responses`]); otherwise the field stays out (and the operator then
/// leaves the responses alone), with the reason in `left_out` when there were responses.
pub fn integration_spec(
    api: &ApiSummary,
    integration: &ObservedIntegration,
    responses: &[ObservedResponse],
    region: &Region,
    policy: Policy,
) -> Result<Drafted, NotImported> {
    if integration.api_gateway_managed {
        return Err(NotImported::ManagedByApiGateway);
    }
    if let Some(u) = integration.unknown_values.first() {
        return Err(NotImported::UnknownValue {
            field: u.field,
            value: u.value.clone(),
        });
    }
    let mut fields = imported_fields(&integration.fields, api.protocol);
    let mut left_out = leave_out_inexpressible(&mut fields, api.protocol);
    let drift = drifted_fields(&fields, &integration.fields, &[], api.protocol);
    if !drift.is_empty() {
        return Err(NotImported::WouldChange(drift));
    }
    let mut notes = Vec::new();
    let mut spec = fields.to_spec().ok_or(NotImported::NoType)?;
    let namesakes = region.apis.iter().filter(|a| a.name == api.name).count();
    if namesakes == 1 && !api.name.is_empty() {
        spec.api_ref = Some(ApiRef {
            name: Some(api.name.clone()),
            ..Default::default()
        });
    } else {
        spec.api_id = Some(api.id.clone());
        notes.push(FieldNote {
            key: "apiId",
            text: format!(
                "by ID: {namesakes} APIs in {} are named {:?}, so apiRef by name would be ambiguous",
                region.name, api.name
            ),
        });
    }
    if fields.connection_type == Some(ConnectionType::VpcLink)
        && let Some(id) = &fields.connection_id
    {
        match vpc_link_by_name(id, region) {
            Ok(name) => {
                spec.connection_id = None;
                spec.connection_ref = Some(ConnectionRef {
                    name: Some(name),
                    tags: None,
                });
            }
            Err(why) => notes.push(FieldNote {
                key: "connectionId",
                text: why,
            }),
        }
    }
    if !responses.is_empty() {
        if has_integration_responses(api.protocol, &fields) {
            match imported_responses(responses) {
                Ok(list) => spec.integration_responses = Some(list),
                Err(why) => left_out.push(format!("integrationResponses: {why}")),
            }
        } else {
            left_out.push(format!(
                "integrationResponses: {} response(s), which the spec holds only for a WebSocket \
                 API's AWS, HTTP or MOCK integration; left out, so the operator leaves them alone",
                responses.len()
            ));
        }
    }
    spec.region = Some(region.name.clone());
    spec.deletion_policy = Some(DeletionPolicy::Retain);
    spec.management_policy = Some(policy.management);
    Ok(Drafted {
        spec,
        notes,
        left_out,
    })
}

/// Can this integration have integration responses, so that an import asks for them (one
/// GetIntegrationResponses, the only call an import makes per integration)? Only a WebSocket API's
/// integrations that are not proxies (AWS, HTTP, MOCK): API Gateway passes a proxy's answer on by itself
/// and refuses responses for it, and an HTTP API has none.
pub fn has_integration_responses(protocol: Protocol, fields: &IntegrationFields) -> bool {
    protocol == Protocol::WebSocket
        && matches!(
            fields.integration_type,
            Some(IntegrationType::Aws | IntegrationType::Http | IntegrationType::Mock)
        )
}

/// Most entries the CRD allows in a response's responseTemplates or responseParameters.
const MAX_RESPONSE_MAP_ENTRIES: usize = 16;
/// Longest integrationResponseKey the CRD allows.
const MAX_RESPONSE_KEY_LEN: usize = 256;
/// Longest templateSelectionExpression of a response the CRD allows.
const MAX_RESPONSE_SELECTION_LEN: usize = 1024;

/// spec.integrationResponses for the responses AWS holds ([`spec_from_observed`]: by key, without
/// tombstones), or why the spec cannot hold them: a value the CRD would refuse, or a difference the
/// operator's own response diff would still find (two responses under one key), so that applying the
/// spec would change them.
pub fn imported_responses(
    observed: &[ObservedResponse],
) -> Result<Vec<IntegrationResponseSpec>, String> {
    let list = spec_from_observed(observed);
    if list.len() > MAX_INTEGRATION_RESPONSES {
        return Err(format!(
            "{} responses, more than the {MAX_INTEGRATION_RESPONSES} the spec holds",
            list.len()
        ));
    }
    for r in &list {
        let key = &r.integration_response_key;
        let pattern = key.len() > 2 && key.starts_with('/') && key.ends_with('/');
        if (key != DEFAULT_RESPONSE_KEY && !pattern) || key.len() > MAX_RESPONSE_KEY_LEN {
            return Err(format!(
                "key {key:?} is neither {DEFAULT_RESPONSE_KEY} nor a pattern between slashes of at \
                 most {MAX_RESPONSE_KEY_LEN} characters"
            ));
        }
        let too_many = |m: &Option<BTreeMap<String, String>>| {
            m.as_ref()
                .is_some_and(|m| m.len() > MAX_RESPONSE_MAP_ENTRIES)
        };
        if too_many(&r.response_templates) || too_many(&r.response_parameters) {
            return Err(format!(
                "response {key:?} has more than {MAX_RESPONSE_MAP_ENTRIES} responseTemplates or \
                 responseParameters"
            ));
        }
        if r.template_selection_expression
            .as_ref()
            .is_some_and(|t| t.len() > MAX_RESPONSE_SELECTION_LEN)
        {
            return Err(format!(
                "response {key:?} has a templateSelectionExpression longer than \
                 {MAX_RESPONSE_SELECTION_LEN} characters"
            ));
        }
    }
    let wanted = WantedResponses::new(Some(list.clone()), BTreeMap::new());
    if let Some(change) = next_response_change(&wanted, observed) {
        let what = match change {
            ResponseChange::Create(_) => "create",
            ResponseChange::Update { .. } => "update",
            ResponseChange::Delete { .. } => "delete",
        };
        return Err(format!(
            "a spec of them would still {what} response {:?} (two responses under one key?)",
            change.key()
        ));
    }
    Ok(list)
}

/// The name a connectionRef can use for VPC link `id`, or why it keeps the ID.
fn vpc_link_by_name(id: &str, region: &Region) -> Result<String, String> {
    let Some(link) = region.vpc_links.iter().find(|l| l.id == id) else {
        return Err(format!(
            "by ID: GetVpcLinks in {} does not list {id} (a REST API VPC link, as WebSocket APIs \
             use, is not one)",
            region.name
        ));
    };
    let namesakes = region
        .vpc_links
        .iter()
        .filter(|l| l.name == link.name)
        .count();
    if namesakes == 1 && !link.name.is_empty() {
        Ok(link.name.clone())
    } else {
        Err(format!(
            "by ID: {namesakes} VPC links in {} are named {:?}, so connectionRef by name would be \
             ambiguous",
            region.name, link.name
        ))
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
