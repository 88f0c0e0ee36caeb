//! moto as the tests see it: AWS SDK clients for it, what it holds as the spec spells it, and what
//! differs from a spec.

use crate::runtime::block_on;
use crate::stack::stack_env;
use aws_sdk_apigatewayv2 as apigw;

/// A client for moto (or for the fault proxy in front of it), in the stack's region.
pub fn apigw_client(endpoint: &str) -> apigw::Client {
    apigw_client_in(endpoint, &stack_env()["AWS_REGION"])
}

/// A client for moto in `region` (moto keeps each region's APIs apart, as AWS does).
pub fn apigw_client_in(endpoint: &str, region: &str) -> apigw::Client {
    let env = stack_env();
    let config = apigw::Config::builder()
        .behavior_version_latest()
        .region(apigw::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(apigw::config::Credentials::new(
            env["AWS_ACCESS_KEY_ID"].clone(),
            env["AWS_SECRET_ACCESS_KEY"].clone(),
            None,
            None,
            "stack",
        ))
        .build();
    apigw::Client::from_conf(config)
}

pub fn moto_endpoint() -> String {
    stack_env()["AWS_ENDPOINT_URL"].clone()
}

/// What moto holds, read with the SDK.
pub struct Moto {
    pub client: apigw::Client,
}

impl Moto {
    /// The stack's moto (it needs the stack up, so there is no `Default`).
    #[expect(clippy::new_without_default, reason = "new() needs the running stack")]
    pub fn new() -> Moto {
        Moto {
            client: apigw_client(&moto_endpoint()),
        }
    }

    /// moto as seen from another region.
    pub fn in_region(region: &str) -> Moto {
        Moto {
            client: apigw_client_in(&moto_endpoint(), region),
        }
    }

    pub fn create_api(&self, protocol: &str) -> String {
        self.create_named_api(&format!("e2e-{:08x}", rand::random::<u32>()), protocol, &[])
    }

    /// An API with this Name, protocol and tags (for references and tenancy allowlists).
    pub fn create_named_api(&self, name: &str, protocol: &str, tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut req = self
            .client
            .create_api()
            .name(name)
            .protocol_type(protocol.into())
            .set_tags(Some(tags));
        if protocol == "WEBSOCKET" {
            req = req.route_selection_expression("$request.body.action");
        }
        block_on(req.send())
            .expect("moto creates the API")
            .api_id
            .unwrap()
    }

    pub fn delete_api(&self, api_id: &str) {
        block_on(self.client.delete_api().api_id(api_id).send()).expect("moto deletes the API");
    }

    /// Integrations of an API as camelCase JSON, the way the spec spells them.
    pub fn integrations(&self, api_id: &str) -> Vec<serde_json::Value> {
        let out = block_on(self.client.get_integrations().api_id(api_id).send())
            .expect("moto lists integrations");
        out.items().iter().map(integration_json).collect()
    }

    /// One integration as camelCase JSON, or None when moto does not hold it.
    pub fn integration(&self, api_id: &str, id: &str) -> Option<serde_json::Value> {
        self.integrations(api_id)
            .into_iter()
            .find(|i| i["integrationId"] == id)
    }

    pub fn create_integration_http_proxy(&self, api_id: &str, uri: &str) -> String {
        block_on(
            self.client
                .create_integration()
                .api_id(api_id)
                .integration_type(apigw::types::IntegrationType::HttpProxy)
                .integration_method("GET")
                .integration_uri(uri)
                .payload_format_version("1.0")
                .send(),
        )
        .expect("moto creates the integration")
        .integration_id
        .unwrap()
    }

    pub fn delete_integration(&self, api_id: &str, id: &str) {
        block_on(
            self.client
                .delete_integration()
                .api_id(api_id)
                .integration_id(id)
                .send(),
        )
        .expect("moto deletes the integration");
    }
}

/// Reseeds the random generator of the moto at `endpoint` (moto's own `/moto-api/seed`): IDs made after
/// it are predictable, which lets a test learn an API ID before that API exists. Only for a moto of the
/// test's own ([`crate::control::PrivateMoto`]): after a reseed the IDs repeat, and on the stack's moto,
/// which other test executables use at the same time, a repeated integration ID replaces the
/// integration that already has it.
pub fn seed_moto(endpoint: &str, seed: u32) {
    let url = format!("{endpoint}/moto-api/seed?a={seed}");
    block_on(post_empty(&url)).expect("moto takes the seed");
}

async fn post_empty(url: &str) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = hyper::Request::post(url)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", resp.status()))
    }
}

fn integration_json(i: &apigw::types::Integration) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    let s = |v: Option<&str>| v.map(|s| json!(s));
    put("integrationId", s(i.integration_id()));
    put("connectionId", s(i.connection_id()));
    put("connectionType", s(i.connection_type().map(|v| v.as_str())));
    put(
        "contentHandlingStrategy",
        s(i.content_handling_strategy().map(|v| v.as_str())),
    );
    put("credentialsArn", s(i.credentials_arn()));
    put("description", s(i.description()));
    put("integrationMethod", s(i.integration_method()));
    put("integrationSubtype", s(i.integration_subtype()));
    put(
        "integrationType",
        s(i.integration_type().map(|v| v.as_str())),
    );
    put("integrationUri", s(i.integration_uri()));
    put(
        "passthroughBehavior",
        s(i.passthrough_behavior().map(|v| v.as_str())),
    );
    put("payloadFormatVersion", s(i.payload_format_version()));
    put(
        "requestParameters",
        i.request_parameters().map(|m| json!(m)),
    );
    put("requestTemplates", i.request_templates().map(|m| json!(m)));
    put(
        "responseParameters",
        i.response_parameters().map(|m| json!(m)),
    );
    put(
        "templateSelectionExpression",
        s(i.template_selection_expression()),
    );
    put("timeoutInMillis", i.timeout_in_millis().map(|t| json!(t)));
    put(
        "tlsConfig",
        i.tls_config()
            .map(|t| json!({"serverNameToVerify": t.server_name_to_verify()})),
    );
    Value::Object(m)
}

/// The spec fields that are CreateIntegration inputs (not apiId, region or deletionPolicy, nor the
/// integration's responses, which are resources of their own in API Gateway).
pub fn integration_fields_of_spec(
    spec: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    spec.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "apiId" | "region" | "deletionPolicy" | "integrationResponses"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Which spec fields moto holds differently (an empty list means every field matches).
/// moto keeps a removed responseParameters status code as an empty map (real API Gateway drops it; the
/// operator sends exactly that `{}` removal), so empty entries count as absent.
pub fn mismatches(spec: &serde_json::Value, held: &serde_json::Value) -> Vec<String> {
    let mut held = held.clone();
    if let Some(resp) = held
        .get_mut("responseParameters")
        .and_then(|m| m.as_object_mut())
    {
        resp.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
    }
    // Likewise a removed requestTemplates key stays in moto as "" (the removal the operator sends).
    if let Some(t) = held
        .get_mut("requestTemplates")
        .and_then(|m| m.as_object_mut())
    {
        t.retain(|_, v| v != "");
    }
    integration_fields_of_spec(spec)
        .into_iter()
        .filter(|(k, v)| held.get(k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: spec {v}, moto {}",
                held.get(&k).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect()
}
