//! The CreateIntegration fields the operator manages, as one table: [`Field`] names each of them,
//! [`Field::rule`] says how API Gateway treats it, [`IntegrationFields`] holds their typed values and
//! [`FieldValue`] is one of those values on its own. The diff, the update body, the removal rules, the SDK
//! mapping and the test generators all go through `Field::ALL` and exhaustive `match`es on [`Field`], so a
//! field added here does not compile until each of them says what to do with it.

use crate::api::{
    ApiIntegrationSpec, ConnectionType, ContentHandlingStrategy, IntegrationMethod,
    IntegrationSubtype, IntegrationType, PassthroughBehavior, PayloadFormatVersion, TlsConfig,
};
use std::collections::BTreeMap;

macro_rules! field_enum {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// One settable field of an integration (CreateIntegration's input, the spec's field of the same
        /// name).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $($variant),+
        }
        impl Field {
            /// Every field, in the order of the spec (and of status.appliedFields).
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];
            /// The field's name in the spec and in API Gateway's JSON (camelCase).
            pub const fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }
        }
        impl std::str::FromStr for Field {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Field::$variant),)+
                    other => Err(format!("no integration field is called {other:?}")),
                }
            }
        }
    };
}

field_enum! {
    IntegrationType = "integrationType",
    IntegrationUri = "integrationUri",
    IntegrationMethod = "integrationMethod",
    IntegrationSubtype = "integrationSubtype",
    ConnectionType = "connectionType",
    ConnectionId = "connectionId",
    CredentialsArn = "credentialsArn",
    Description = "description",
    PayloadFormatVersion = "payloadFormatVersion",
    TimeoutInMillis = "timeoutInMillis",
    RequestParameters = "requestParameters",
    RequestTemplates = "requestTemplates",
    ResponseParameters = "responseParameters",
    TemplateSelectionExpression = "templateSelectionExpression",
    ContentHandlingStrategy = "contentHandlingStrategy",
    PassthroughBehavior = "passthroughBehavior",
    TlsConfig = "tlsConfig",
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens when a field the operator set leaves the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// AWS offers no way to clear it: the value stays, and that is not drift.
    Kept,
    /// It is sent again with what AWS holds when it was never set (see [`IntegrationFields::unset`]): AWS's
    /// default, `""` for a string, an empty object for tlsConfig.
    Reset,
    /// A map: every key AWS still holds is sent with a removal tombstone (`""`, or `{}` per status code).
    Tombstones,
}

/// The kinds of API a field is accepted on (API Gateway's reference: "Supported only for ... APIs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Both,
    HttpOnly,
    WebSocketOnly,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRule {
    pub removal: Removal,
    pub support: Support,
}

impl Field {
    /// The table: how API Gateway treats each field (from the CreateIntegration reference and what the
    /// operator learnt of UpdateIntegration).
    pub const fn rule(self) -> FieldRule {
        use Removal::*;
        use Support::*;
        let (removal, support) = match self {
            Field::IntegrationType => (Kept, Both),
            Field::IntegrationUri => (Reset, Both),
            Field::IntegrationMethod => (Kept, Both),
            Field::IntegrationSubtype => (Kept, HttpOnly),
            Field::ConnectionType => (Reset, Both),
            Field::ConnectionId => (Reset, Both),
            Field::CredentialsArn => (Reset, Both),
            Field::Description => (Reset, Both),
            Field::PayloadFormatVersion => (Kept, Both),
            Field::TimeoutInMillis => (Reset, Both),
            Field::RequestParameters => (Tombstones, Both),
            Field::RequestTemplates => (Tombstones, WebSocketOnly),
            Field::ResponseParameters => (Tombstones, HttpOnly),
            Field::TemplateSelectionExpression => (Reset, WebSocketOnly),
            Field::ContentHandlingStrategy => (Kept, WebSocketOnly),
            Field::PassthroughBehavior => (Reset, WebSocketOnly),
            Field::TlsConfig => (Reset, HttpOnly),
        };
        FieldRule { removal, support }
    }
}

/// A string-to-string map field (request parameters and templates).
pub type StringMap = BTreeMap<String, String>;
/// responseParameters: per backend status code, a string map.
pub type ResponseMap = BTreeMap<String, StringMap>;

/// The integration's settable fields, typed. Used for the desired state (from the spec), the observed
/// state (from AWS) and the body of an update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationFields {
    pub integration_type: Option<IntegrationType>,
    pub integration_uri: Option<String>,
    pub integration_method: Option<IntegrationMethod>,
    pub integration_subtype: Option<IntegrationSubtype>,
    pub connection_type: Option<ConnectionType>,
    pub connection_id: Option<String>,
    pub credentials_arn: Option<String>,
    pub description: Option<String>,
    pub payload_format_version: Option<PayloadFormatVersion>,
    pub timeout_in_millis: Option<i32>,
    pub request_parameters: Option<StringMap>,
    pub request_templates: Option<StringMap>,
    pub response_parameters: Option<ResponseMap>,
    pub template_selection_expression: Option<String>,
    pub content_handling_strategy: Option<ContentHandlingStrategy>,
    pub passthrough_behavior: Option<PassthroughBehavior>,
    pub tls_config: Option<TlsConfig>,
}

/// The value of one field, tagged with the field it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    IntegrationType(IntegrationType),
    IntegrationUri(String),
    IntegrationMethod(IntegrationMethod),
    IntegrationSubtype(IntegrationSubtype),
    ConnectionType(ConnectionType),
    ConnectionId(String),
    CredentialsArn(String),
    Description(String),
    PayloadFormatVersion(PayloadFormatVersion),
    TimeoutInMillis(i32),
    RequestParameters(StringMap),
    RequestTemplates(StringMap),
    ResponseParameters(ResponseMap),
    TemplateSelectionExpression(String),
    ContentHandlingStrategy(ContentHandlingStrategy),
    PassthroughBehavior(PassthroughBehavior),
    TlsConfig(TlsConfig),
}

impl FieldValue {
    /// The field this value is for.
    pub fn field(&self) -> Field {
        match self {
            FieldValue::IntegrationType(_) => Field::IntegrationType,
            FieldValue::IntegrationUri(_) => Field::IntegrationUri,
            FieldValue::IntegrationMethod(_) => Field::IntegrationMethod,
            FieldValue::IntegrationSubtype(_) => Field::IntegrationSubtype,
            FieldValue::ConnectionType(_) => Field::ConnectionType,
            FieldValue::ConnectionId(_) => Field::ConnectionId,
            FieldValue::CredentialsArn(_) => Field::CredentialsArn,
            FieldValue::Description(_) => Field::Description,
            FieldValue::PayloadFormatVersion(_) => Field::PayloadFormatVersion,
            FieldValue::TimeoutInMillis(_) => Field::TimeoutInMillis,
            FieldValue::RequestParameters(_) => Field::RequestParameters,
            FieldValue::RequestTemplates(_) => Field::RequestTemplates,
            FieldValue::ResponseParameters(_) => Field::ResponseParameters,
            FieldValue::TemplateSelectionExpression(_) => Field::TemplateSelectionExpression,
            FieldValue::ContentHandlingStrategy(_) => Field::ContentHandlingStrategy,
            FieldValue::PassthroughBehavior(_) => Field::PassthroughBehavior,
            FieldValue::TlsConfig(_) => Field::TlsConfig,
        }
    }
}

impl IntegrationFields {
    /// The spec that asks for exactly these fields and none of the operator's own (where the
    /// integration lives, deletion, management, responses): the mirror of [`IntegrationFields::from_spec`].
    /// None without a type, which every spec has.
    pub fn to_spec(&self) -> Option<ApiIntegrationSpec> {
        // Taken apart without `..`: a new integration field does not compile until it is imported.
        let IntegrationFields {
            integration_type,
            integration_uri,
            integration_method,
            integration_subtype,
            connection_type,
            connection_id,
            credentials_arn,
            description,
            payload_format_version,
            timeout_in_millis,
            request_parameters,
            request_templates,
            response_parameters,
            template_selection_expression,
            content_handling_strategy,
            passthrough_behavior,
            tls_config,
        } = self.clone();
        Some(ApiIntegrationSpec {
            api_id: None,
            api_ref: None,
            integration_type: integration_type?,
            integration_uri,
            integration_method,
            integration_subtype,
            connection_type,
            connection_id,
            connection_ref: None,
            credentials_arn,
            description,
            payload_format_version,
            timeout_in_millis,
            request_parameters,
            request_templates,
            response_parameters,
            template_selection_expression,
            content_handling_strategy,
            passthrough_behavior,
            tls_config,
            region: None,
            deletion_policy: None,
            management_policy: None,
            // Not a field of the integration: its responses are planned apart (rule 12).
            integration_responses: None,
        })
    }

    /// What the spec asks for; unset spec fields stay unset. The spec is taken apart field by field, so
    /// a new spec field does not compile until it is either mapped here or named as the operator's own.
    pub fn from_spec(spec: &ApiIntegrationSpec) -> Self {
        let ApiIntegrationSpec {
            // The operator's own fields: where the integration lives and what deleting it does.
            api_id: _,
            api_ref: _,
            connection_ref: _,
            region: _,
            deletion_policy: _,
            management_policy: _,
            // Not a field of the integration: its responses, planned by `plan::responses`.
            integration_responses: _,
            integration_type,
            integration_uri,
            integration_method,
            integration_subtype,
            connection_type,
            connection_id,
            credentials_arn,
            description,
            payload_format_version,
            timeout_in_millis,
            request_parameters,
            request_templates,
            response_parameters,
            template_selection_expression,
            content_handling_strategy,
            passthrough_behavior,
            tls_config,
        } = spec;
        IntegrationFields {
            integration_type: Some(*integration_type),
            integration_uri: integration_uri.clone(),
            integration_method: *integration_method,
            integration_subtype: *integration_subtype,
            connection_type: *connection_type,
            connection_id: connection_id.clone(),
            credentials_arn: credentials_arn.clone(),
            description: description.clone(),
            payload_format_version: *payload_format_version,
            timeout_in_millis: *timeout_in_millis,
            request_parameters: request_parameters.clone(),
            request_templates: request_templates.clone(),
            response_parameters: response_parameters.clone(),
            template_selection_expression: template_selection_expression.clone(),
            content_handling_strategy: *content_handling_strategy,
            passthrough_behavior: *passthrough_behavior,
            tls_config: tls_config.clone(),
        }
    }

    /// What API Gateway holds for a field that was never set, in the fields whose removal is
    /// [`Removal::Reset`]: sending that value is how such a field is removed.
    pub fn unset(default_timeout: i32) -> Self {
        IntegrationFields {
            integration_uri: Some(String::new()),
            connection_type: Some(ConnectionType::Internet),
            connection_id: Some(String::new()),
            credentials_arn: Some(String::new()),
            description: Some(String::new()),
            timeout_in_millis: Some(default_timeout),
            template_selection_expression: Some(String::new()),
            passthrough_behavior: Some(PassthroughBehavior::WhenNoMatch),
            tls_config: Some(TlsConfig::default()),
            ..Default::default()
        }
    }

    /// The value of `field`, if set.
    pub fn get(&self, field: Field) -> Option<FieldValue> {
        use FieldValue as V;
        match field {
            Field::IntegrationType => self.integration_type.map(V::IntegrationType),
            Field::IntegrationUri => self.integration_uri.clone().map(V::IntegrationUri),
            Field::IntegrationMethod => self.integration_method.map(V::IntegrationMethod),
            Field::IntegrationSubtype => self.integration_subtype.map(V::IntegrationSubtype),
            Field::ConnectionType => self.connection_type.map(V::ConnectionType),
            Field::ConnectionId => self.connection_id.clone().map(V::ConnectionId),
            Field::CredentialsArn => self.credentials_arn.clone().map(V::CredentialsArn),
            Field::Description => self.description.clone().map(V::Description),
            Field::PayloadFormatVersion => self.payload_format_version.map(V::PayloadFormatVersion),
            Field::TimeoutInMillis => self.timeout_in_millis.map(V::TimeoutInMillis),
            Field::RequestParameters => self.request_parameters.clone().map(V::RequestParameters),
            Field::RequestTemplates => self.request_templates.clone().map(V::RequestTemplates),
            Field::ResponseParameters => {
                self.response_parameters.clone().map(V::ResponseParameters)
            }
            Field::TemplateSelectionExpression => self
                .template_selection_expression
                .clone()
                .map(V::TemplateSelectionExpression),
            Field::ContentHandlingStrategy => self
                .content_handling_strategy
                .map(V::ContentHandlingStrategy),
            Field::PassthroughBehavior => self.passthrough_behavior.map(V::PassthroughBehavior),
            Field::TlsConfig => self.tls_config.clone().map(V::TlsConfig),
        }
    }

    /// Sets the field `value` belongs to.
    pub fn set(&mut self, value: FieldValue) {
        use FieldValue as V;
        match value {
            V::IntegrationType(v) => self.integration_type = Some(v),
            V::IntegrationUri(v) => self.integration_uri = Some(v),
            V::IntegrationMethod(v) => self.integration_method = Some(v),
            V::IntegrationSubtype(v) => self.integration_subtype = Some(v),
            V::ConnectionType(v) => self.connection_type = Some(v),
            V::ConnectionId(v) => self.connection_id = Some(v),
            V::CredentialsArn(v) => self.credentials_arn = Some(v),
            V::Description(v) => self.description = Some(v),
            V::PayloadFormatVersion(v) => self.payload_format_version = Some(v),
            V::TimeoutInMillis(v) => self.timeout_in_millis = Some(v),
            V::RequestParameters(v) => self.request_parameters = Some(v),
            V::RequestTemplates(v) => self.request_templates = Some(v),
            V::ResponseParameters(v) => self.response_parameters = Some(v),
            V::TemplateSelectionExpression(v) => self.template_selection_expression = Some(v),
            V::ContentHandlingStrategy(v) => self.content_handling_strategy = Some(v),
            V::PassthroughBehavior(v) => self.passthrough_behavior = Some(v),
            V::TlsConfig(v) => self.tls_config = Some(v),
        }
    }

    /// Leaves `field` unset.
    pub fn clear(&mut self, field: Field) {
        match field {
            Field::IntegrationType => self.integration_type = None,
            Field::IntegrationUri => self.integration_uri = None,
            Field::IntegrationMethod => self.integration_method = None,
            Field::IntegrationSubtype => self.integration_subtype = None,
            Field::ConnectionType => self.connection_type = None,
            Field::ConnectionId => self.connection_id = None,
            Field::CredentialsArn => self.credentials_arn = None,
            Field::Description => self.description = None,
            Field::PayloadFormatVersion => self.payload_format_version = None,
            Field::TimeoutInMillis => self.timeout_in_millis = None,
            Field::RequestParameters => self.request_parameters = None,
            Field::RequestTemplates => self.request_templates = None,
            Field::ResponseParameters => self.response_parameters = None,
            Field::TemplateSelectionExpression => self.template_selection_expression = None,
            Field::ContentHandlingStrategy => self.content_handling_strategy = None,
            Field::PassthroughBehavior => self.passthrough_behavior = None,
            Field::TlsConfig => self.tls_config = None,
        }
    }

    /// Is `field` set?
    pub fn is_set(&self, field: Field) -> bool {
        self.get(field).is_some()
    }

    /// The fields that are set, in table order.
    pub fn set_fields(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.iter().copied().filter(|f| self.is_set(*f))
    }

    /// Names of the fields that are set, for status.appliedFields.
    pub fn set_field_names(&self) -> Vec<String> {
        self.set_fields().map(|f| f.name().to_string()).collect()
    }
}

#[cfg(test)]
#[path = "fields_tests.rs"]
pub(crate) mod tests;
