//! In-process fakes for the controller's tests, all in one place: an in-memory API Gateway behind the
//! [`Gateway`] and [`Connect`] traits ([`FakeAws`]), an in-memory API server answering kube's `Client`
//! through a `tower_test` mock service ([`FakeApiServer`]), [`Context::test`] around both, and object
//! builders. Every call either fake receives is recorded, so a test can say what was and was not done.

use crate::api::{ApiIntegration, ApiIntegrationSpec, IntegrationResponseSpec};
use crate::aws::credentials::Identity;
use crate::aws::{AwsError, Connect, Gateway, Slots};
use crate::controller::{Context, Settings, Shared, Tenancy, TenancyView};
use crate::fence::Fence;
use crate::metrics::{Health, Metrics};
use crate::plan::{
    ApiSummary, IntegrationFields, ObservedIntegration, ObservedResponse, Protocol, VpcLinkSummary,
};
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---- API Gateway ----

/// One call the fake API Gateway received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCall {
    pub op: &'static str,
    /// The API named in the call ("" for the region's listings).
    pub api_id: String,
    pub integration_id: Option<String>,
    /// The account the caller acts in ("self": the operator's own identity).
    pub account: String,
    /// When, counted across both fakes: which of two calls came first.
    pub at: usize,
}

impl AwsCall {
    /// Does this call change anything in AWS?
    pub fn is_write(&self) -> bool {
        matches!(
            self.op,
            "CreateIntegration"
                | "UpdateIntegration"
                | "DeleteIntegration"
                | "CreateIntegrationResponse"
                | "UpdateIntegrationResponse"
                | "DeleteIntegrationResponse"
        )
    }
}

#[derive(Default)]
struct AwsState {
    apis: BTreeMap<String, ApiSummary>,
    integrations: BTreeMap<String, BTreeMap<String, ObservedIntegration>>,
    vpc_links: Vec<VpcLinkSummary>,
    next_id: u32,
    /// Errors the next calls of an operation answer with, in order.
    faults: HashMap<&'static str, VecDeque<AwsError>>,
    /// Creates that happen in AWS but whose answer is lost (the caller sees a timeout).
    lose_create_answers: u32,
    /// Integration responses by integration ID (rule 12), in the order they were made.
    responses: BTreeMap<String, Vec<ObservedResponse>>,
    /// Response creates that happen but whose answer is lost.
    lose_response_create_answers: u32,
    calls: Vec<AwsCall>,
}

/// An in-memory API Gateway: APIs, their integrations, VPC links, and a log of every call.
#[derive(Clone, Default)]
pub struct FakeAws {
    state: Arc<Mutex<AwsState>>,
    /// The clock shared with the harness's API server.
    seq: Sequence,
}

/// A count shared by both fakes, stamped on every call they receive.
#[derive(Clone, Default)]
pub struct Sequence(Arc<std::sync::atomic::AtomicUsize>);

impl Sequence {
    fn tick(&self) -> usize {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

impl FakeAws {
    /// Adds an HTTP API `id` named `name`.
    pub fn with_api(self, id: &str, name: &str) -> Self {
        self.with_api_tagged(id, name, Protocol::Http, &[])
    }

    pub fn with_api_tagged(
        self,
        id: &str,
        name: &str,
        protocol: Protocol,
        tags: &[(&str, &str)],
    ) -> Self {
        let mut s = self.state.lock().unwrap();
        s.apis.insert(
            id.into(),
            ApiSummary {
                id: id.into(),
                name: name.into(),
                protocol,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
        s.integrations.entry(id.into()).or_default();
        drop(s);
        self
    }

    /// Removes API `id` and its integrations.
    pub fn remove_api(&self, id: &str) {
        let mut s = self.state.lock().unwrap();
        s.apis.remove(id);
        s.integrations.remove(id);
    }

    /// Puts `integration` on API `api_id` (as if made outside the operator).
    pub fn put(&self, api_id: &str, integration: ObservedIntegration) {
        let mut s = self.state.lock().unwrap();
        s.integrations
            .entry(api_id.into())
            .or_default()
            .insert(integration.integration_id.clone(), integration);
    }

    /// Deletes an integration behind the operator's back.
    pub fn remove(&self, api_id: &str, id: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(m) = s.integrations.get_mut(api_id) {
            m.remove(id);
        }
        s.responses.remove(id);
    }

    pub fn integration(&self, api_id: &str, id: &str) -> Option<ObservedIntegration> {
        let s = self.state.lock().unwrap();
        s.integrations.get(api_id)?.get(id).cloned()
    }

    /// Every integration of API `api_id`.
    pub fn integrations(&self, api_id: &str) -> Vec<ObservedIntegration> {
        let s = self.state.lock().unwrap();
        s.integrations
            .get(api_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The next call of `op` answers `err` (and does nothing).
    pub fn fail_next(&self, op: &'static str, err: AwsError) {
        let mut s = self.state.lock().unwrap();
        s.faults.entry(op).or_default().push_back(err);
    }

    /// The next create happens in AWS, but its answer never arrives (the caller sees a timeout).
    pub fn lose_next_create_answer(&self) {
        self.state.lock().unwrap().lose_create_answers += 1;
    }

    /// The responses of integration `id`, in the order they were made.
    pub fn responses(&self, id: &str) -> Vec<ObservedResponse> {
        let s = self.state.lock().unwrap();
        s.responses.get(id).cloned().unwrap_or_default()
    }

    /// Deletes the response under `key` of integration `id` behind the operator's back.
    pub fn remove_response(&self, id: &str, key: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(list) = s.responses.get_mut(id) {
            list.retain(|r| r.fields.integration_response_key != key);
        }
    }

    /// Adds a response under `key` to integration `id`, as another tool would.
    pub fn put_response(&self, id: &str, key: &str) {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let made = ObservedResponse {
            id: format!("resp{}", s.next_id),
            fields: IntegrationResponseSpec {
                integration_response_key: key.into(),
                ..Default::default()
            },
        };
        s.responses.entry(id.into()).or_default().push(made);
    }

    /// The next response create happens, but its answer never arrives.
    pub fn lose_next_response_create_answer(&self) {
        self.state.lock().unwrap().lose_response_create_answers += 1;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<AwsCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The operations called so far, in order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.calls().iter().map(|c| c.op).collect()
    }

    /// The calls that changed (or tried to change) something.
    pub fn writes(&self) -> Vec<AwsCall> {
        self.calls().into_iter().filter(AwsCall::is_write).collect()
    }

    pub fn forget_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Records the call; Err when a fault was queued for it.
    fn enter(
        &self,
        account: &str,
        op: &'static str,
        api_id: &str,
        id: Option<&str>,
    ) -> Result<std::sync::MutexGuard<'_, AwsState>, AwsError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(AwsCall {
            op,
            api_id: api_id.into(),
            integration_id: id.map(String::from),
            account: account.into(),
            at: self.seq.tick(),
        });
        if let Some(err) = s.faults.get_mut(op).and_then(VecDeque::pop_front) {
            return Err(err);
        }
        Ok(s)
    }
}

fn not_found(what: &str) -> AwsError {
    AwsError::NotFound(format!("{what} not found"))
}

/// The fake API Gateway as one identity sees one region.
struct FakeGateway {
    aws: FakeAws,
    region: String,
    account: String,
}

impl FakeGateway {
    fn api_integrations<'s>(
        s: &'s mut AwsState,
        api_id: &str,
    ) -> Result<&'s mut BTreeMap<String, ObservedIntegration>, AwsError> {
        s.integrations
            .get_mut(api_id)
            .ok_or_else(|| not_found(&format!("API {api_id}")))
    }
}

impl Gateway for FakeGateway {
    fn region(&self) -> &str {
        &self.region
    }

    fn get_api<'a>(&'a self, api_id: &'a str) -> BoxFuture<'a, Result<ApiSummary, AwsError>> {
        Box::pin(async move {
            let s = self.aws.enter(&self.account, "GetApi", api_id, None)?;
            s.apis
                .get(api_id)
                .cloned()
                .ok_or_else(|| not_found(&format!("API {api_id}")))
        })
    }

    fn list_apis(&self) -> BoxFuture<'_, Result<Vec<ApiSummary>, AwsError>> {
        Box::pin(async move {
            let s = self.aws.enter(&self.account, "GetApis", "", None)?;
            Ok(s.apis.values().cloned().collect())
        })
    }

    fn list_vpc_links(&self) -> BoxFuture<'_, Result<Vec<VpcLinkSummary>, AwsError>> {
        Box::pin(async move {
            let s = self.aws.enter(&self.account, "GetVpcLinks", "", None)?;
            Ok(s.vpc_links.clone())
        })
    }

    fn get_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "GetIntegration",
                api_id,
                Some(integration_id),
            )?;
            Self::api_integrations(&mut s, api_id)?
                .get(integration_id)
                .cloned()
                .ok_or_else(|| not_found(&format!("integration {integration_id}")))
        })
    }

    fn list_integrations<'a>(
        &'a self,
        api_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedIntegration>, AwsError>> {
        Box::pin(async move {
            let mut s = self
                .aws
                .enter(&self.account, "GetIntegrations", api_id, None)?;
            Ok(Self::api_integrations(&mut s, api_id)?
                .values()
                .cloned()
                .collect())
        })
    }

    fn create_integration<'a>(
        &'a self,
        api_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(async move {
            let mut s = self
                .aws
                .enter(&self.account, "CreateIntegration", api_id, None)?;
            s.next_id += 1;
            let id = format!("int{}", s.next_id);
            let made = ObservedIntegration {
                integration_id: id.clone(),
                fields: fields.clone(),
                ..Default::default()
            };
            let lost = s.lose_create_answers > 0;
            s.lose_create_answers = s.lose_create_answers.saturating_sub(1);
            Self::api_integrations(&mut s, api_id)?.insert(id, made.clone());
            if lost {
                return Err(AwsError::Unavailable(
                    "timed out waiting for the answer".into(),
                ));
            }
            Ok(made)
        })
    }

    fn update_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        fields: &'a IntegrationFields,
    ) -> BoxFuture<'a, Result<ObservedIntegration, AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "UpdateIntegration",
                api_id,
                Some(integration_id),
            )?;
            let held = Self::api_integrations(&mut s, api_id)?
                .get_mut(integration_id)
                .ok_or_else(|| not_found(&format!("integration {integration_id}")))?;
            // The fake holds what the update sent (it carries every field the spec sets).
            held.fields = fields.clone();
            Ok(held.clone())
        })
    }

    fn delete_integration<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "DeleteIntegration",
                api_id,
                Some(integration_id),
            )?;
            // A gone API or integration counts as deleted, as AwsApi does it.
            if let Some(m) = s.integrations.get_mut(api_id) {
                m.remove(integration_id);
            }
            // Its responses go with it.
            s.responses.remove(integration_id);
            Ok(())
        })
    }

    fn list_integration_responses<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedResponse>, AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "GetIntegrationResponses",
                api_id,
                Some(integration_id),
            )?;
            Self::existing(&mut s, api_id, integration_id)?;
            Ok(s.responses.get(integration_id).cloned().unwrap_or_default())
        })
    }

    fn create_integration_response<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        body: &'a IntegrationResponseSpec,
    ) -> BoxFuture<'a, Result<ObservedResponse, AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "CreateIntegrationResponse",
                api_id,
                Some(integration_id),
            )?;
            Self::existing(&mut s, api_id, integration_id)?;
            s.next_id += 1;
            let made = ObservedResponse {
                id: format!("resp{}", s.next_id),
                fields: body.clone(),
            };
            // Like moto, the fake does not refuse a second response under a key.
            s.responses
                .entry(integration_id.into())
                .or_default()
                .push(made.clone());
            if s.lose_response_create_answers > 0 {
                s.lose_response_create_answers -= 1;
                return Err(AwsError::Unavailable(
                    "timed out waiting for the answer".into(),
                ));
            }
            Ok(made)
        })
    }

    fn update_integration_response<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        response_id: &'a str,
        body: &'a IntegrationResponseSpec,
    ) -> BoxFuture<'a, Result<ObservedResponse, AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "UpdateIntegrationResponse",
                api_id,
                Some(integration_id),
            )?;
            Self::existing(&mut s, api_id, integration_id)?;
            let held = s
                .responses
                .get_mut(integration_id)
                .and_then(|l| l.iter_mut().find(|r| r.id == response_id))
                .ok_or_else(|| not_found(&format!("integration response {response_id}")))?;
            // Like moto: each field sent replaces what was held (maps whole).
            let f = &mut held.fields;
            f.integration_response_key = body.integration_response_key.clone();
            if body.response_templates.is_some() {
                f.response_templates = body.response_templates.clone();
            }
            if body.response_parameters.is_some() {
                f.response_parameters = body.response_parameters.clone();
            }
            if body.template_selection_expression.is_some() {
                f.template_selection_expression = body.template_selection_expression.clone();
            }
            if body.content_handling_strategy.is_some() {
                f.content_handling_strategy = body.content_handling_strategy;
            }
            Ok(held.clone())
        })
    }

    fn delete_integration_response<'a>(
        &'a self,
        api_id: &'a str,
        integration_id: &'a str,
        response_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let mut s = self.aws.enter(
                &self.account,
                "DeleteIntegrationResponse",
                api_id,
                Some(integration_id),
            )?;
            if let Some(list) = s.responses.get_mut(integration_id) {
                list.retain(|r| r.id != response_id);
            }
            Ok(())
        })
    }
}

impl FakeGateway {
    /// NotFound unless API `api_id` has integration `integration_id`.
    fn existing(s: &mut AwsState, api_id: &str, integration_id: &str) -> Result<(), AwsError> {
        Self::api_integrations(s, api_id)?
            .get(integration_id)
            .map(|_| ())
            .ok_or_else(|| not_found(&format!("integration {integration_id}")))
    }
}

impl Connect for FakeAws {
    fn connect<'a>(
        &'a self,
        identity: &'a Identity,
        region: &'a str,
        _slots: Slots,
    ) -> BoxFuture<'a, Arc<dyn Gateway>> {
        Box::pin(async move {
            Arc::new(FakeGateway {
                aws: self.clone(),
                region: region.into(),
                account: identity.account(),
            }) as Arc<dyn Gateway>
        })
    }
}

// ---- the API server ----

/// One request the fake API server received.
#[derive(Clone, Debug)]
pub struct KubeCall {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub body: Value,
    /// When, counted across both fakes.
    pub at: usize,
}

impl KubeCall {
    pub fn is_status_write(&self) -> bool {
        self.method == Method::PATCH && self.uri.contains("/status?")
    }
    pub fn is_object_patch(&self) -> bool {
        self.method == Method::PATCH
            && self.uri.contains("/apiintegrations/")
            && !self.uri.contains("/status")
    }
    pub fn is_event(&self) -> bool {
        self.method == Method::POST && self.uri.contains("/events")
    }
    /// The Event's reason, for an Event.
    pub fn event_reason(&self) -> Option<&str> {
        self.is_event()
            .then(|| self.body["reason"].as_str())
            .flatten()
    }
}

#[derive(Default)]
struct ServerState {
    /// ApiIntegrations by (namespace, name), as JSON.
    objects: BTreeMap<(String, String), Value>,
    calls: Vec<KubeCall>,
    /// The next status writes answer 409.
    conflicts: u32,
}

/// An in-memory API server for ApiIntegrations and Events, behind kube's `Client`: status writes
/// (server-side apply, with the resourceVersion precondition), JSON patches of the object (their `test`
/// ops checked), status reads and Event posts.
#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<ServerState>>,
    seq: Sequence,
}

impl FakeApiServer {
    /// A server stamping its calls on `seq`.
    pub fn new(seq: Sequence) -> Self {
        FakeApiServer {
            state: Arc::default(),
            seq,
        }
    }

    /// A client whose requests this server answers (a task serves them until the client is dropped).
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let response = server.answer(request).await;
                respond.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    pub fn put(&self, obj: &ApiIntegration) {
        let key = (
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default(),
        );
        let value = serde_json::to_value(obj).unwrap();
        self.state.lock().unwrap().objects.insert(key, value);
    }

    /// The object as the server has it now.
    pub fn object(&self, namespace: &str, name: &str) -> ApiIntegration {
        let s = self.state.lock().unwrap();
        let value = s.objects[&(namespace.to_string(), name.to_string())].clone();
        serde_json::from_value(value).unwrap()
    }

    pub fn calls(&self) -> Vec<KubeCall> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn status_writes(&self) -> Vec<KubeCall> {
        self.calls()
            .into_iter()
            .filter(KubeCall::is_status_write)
            .collect()
    }

    /// The reasons of the Events posted so far, in order.
    pub fn event_reasons(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter_map(|c| c.event_reason().map(String::from))
            .collect()
    }

    pub fn forget_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// The next status write answers 409 Conflict.
    pub fn conflict_next_status_write(&self) {
        self.state.lock().unwrap().conflicts += 1;
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        use http_body_util::BodyExt;
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let uri = parts.uri.path_and_query().unwrap().to_string();
        let mut s = self.state.lock().unwrap();
        s.calls.push(KubeCall {
            method: parts.method.clone(),
            uri: uri.clone(),
            body: body.clone(),
            at: self.seq.tick(),
        });
        let path = parts.uri.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (parts.method.clone(), segments.as_slice()) {
            (Method::POST, [.., "events"]) => reply(StatusCode::CREATED, body),
            (
                method,
                [
                    "apis",
                    "apigw.dev",
                    "v1alpha1",
                    "namespaces",
                    ns,
                    "apiintegrations",
                    name,
                    rest @ ..,
                ],
            ) => {
                let key = (ns.to_string(), name.to_string());
                let Some(current) = s.objects.get(&key).cloned() else {
                    return status_reply(StatusCode::NOT_FOUND, "not found");
                };
                match (method, rest) {
                    (Method::GET, _) => reply(StatusCode::OK, current),
                    (Method::PATCH, ["status"]) => {
                        if s.conflicts > 0 {
                            s.conflicts -= 1;
                            return status_reply(
                                StatusCode::CONFLICT,
                                "the object has been modified",
                            );
                        }
                        let wanted = &body["metadata"]["resourceVersion"];
                        if wanted.is_string() && *wanted != current["metadata"]["resourceVersion"] {
                            return status_reply(
                                StatusCode::CONFLICT,
                                "the object has been modified",
                            );
                        }
                        let mut next = current;
                        next["status"] = body["status"].clone();
                        bump(&mut next);
                        s.objects.insert(key, next.clone());
                        reply(StatusCode::OK, next)
                    }
                    (Method::PATCH, []) => {
                        let patch: json_patch::Patch = serde_json::from_value(body).unwrap();
                        let mut next = current;
                        // The API server reads an absent list as null (a `test` for null passes).
                        let meta = next["metadata"].as_object_mut().unwrap();
                        meta.entry("finalizers").or_insert(Value::Null);
                        if let Err(e) = json_patch::patch(&mut next, &patch) {
                            return status_reply(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                &format!("Testing value failed: {e}"),
                            );
                        }
                        let meta = next["metadata"].as_object_mut().unwrap();
                        if meta.get("finalizers") == Some(&Value::Null) {
                            meta.remove("finalizers");
                        }
                        bump(&mut next);
                        s.objects.insert(key, next.clone());
                        reply(StatusCode::OK, next)
                    }
                    _ => status_reply(StatusCode::METHOD_NOT_ALLOWED, "not served by the fake"),
                }
            }
            _ => status_reply(StatusCode::NOT_FOUND, "not served by the fake"),
        }
    }
}

fn bump(obj: &mut Value) {
    let rv: u64 = obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    obj["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
}

fn reply(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn status_reply(code: StatusCode, message: &str) -> Response<Body> {
    reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": "", "code": code.as_u16()}),
    )
}

// ---- the context and objects ----

/// What a test runs the controller against.
pub struct Harness {
    pub ctx: Arc<Context>,
    pub aws: FakeAws,
    pub server: FakeApiServer,
}

impl Harness {
    /// Reconciles the object as the server has it now.
    pub async fn reconcile(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::runtime::controller::Action, crate::controller::Error> {
        let obj = Arc::new(self.server.object(namespace, name));
        tokio::time::timeout(
            Duration::from_secs(10),
            crate::controller::reconcile(obj, self.ctx.clone()),
        )
        .await
        .expect("a reconcile against the fakes finishes at once")
    }
}

impl Settings {
    /// Settings for in-process tests: region us-east-1, a 600 s period, open tenancy.
    pub fn test() -> Settings {
        Settings {
            default_region: "us-east-1".into(),
            resync: Duration::from_secs(600),
            slow_retry: Duration::from_secs(60),
            aws_rate: 1_000_000.0,
            aws_burst: 1_000_000,
            aws_min_rate: crate::aws::DEFAULT_FLOOR,
            tenancy: Tenancy::Open,
            failpoints: Default::default(),
            namespace: None,
            concurrency: 4,
            aws_concurrency: 4,
            aws_timeout: Duration::from_secs(5),
        }
    }
}

impl Context {
    /// A context around the fakes: `objects` are on the fake API server and in the controller's cache.
    pub fn test(aws: &FakeAws, objects: &[ApiIntegration]) -> Harness {
        Context::test_with(aws, objects, Settings::test(), None)
    }

    /// As [`Context::test`], with these settings and tenancy view.
    pub fn test_with(
        aws: &FakeAws,
        objects: &[ApiIntegration],
        settings: Settings,
        tenancy: Option<TenancyView>,
    ) -> Harness {
        let server = FakeApiServer::new(aws.seq.clone());
        let (store, mut writer) = kube::runtime::reflector::store();
        for obj in objects {
            server.put(obj);
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(obj.clone()));
        }
        let shared = Shared {
            stats: Default::default(),
            metrics: Arc::new(Metrics::default()),
            health: Arc::new(Health::default()),
            fence: Fence::open(),
        };
        let ctx = Context::new(
            server.client(),
            store,
            Arc::new(aws.clone()),
            settings,
            &shared,
            tenancy,
        );
        Harness {
            ctx: Arc::new(ctx),
            aws: aws.clone(),
            server,
        }
    }
}

/// An ApiIntegration `name` in namespace "team" on API `api_id`, an HTTP proxy to `uri`.
pub fn integration(name: &str, api_id: &str, uri: &str) -> ApiIntegration {
    let spec: ApiIntegrationSpec = serde_json::from_value(json!({
        "apiId": api_id, "integrationType": "HTTP_PROXY", "integrationUri": uri,
        "integrationMethod": "ANY", "payloadFormatVersion": "1.0"
    }))
    .unwrap();
    let mut obj = ApiIntegration::new(name, spec);
    obj.metadata.namespace = Some("team".into());
    obj.metadata.uid = Some(format!("uid-{name}"));
    obj.metadata.generation = Some(1);
    obj.metadata.resource_version = Some("1".into());
    obj
}
