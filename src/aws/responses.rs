//! The integration-response calls (design rule 12): GetIntegrationResponses, and Create, Update and
//! DeleteIntegrationResponse, each one counted, rate-limited call like every other; and the conversion
//! of AWS's answers into [`ObservedResponse`]s, which an import turns into a spec with
//! [`responses_spec_from_sdk`].

use super::AwsApi;
use super::convert::{content_handling_from_sdk, content_handling_to_sdk, to_btree};
use super::error::AwsError;
use crate::api::IntegrationResponseSpec;
use crate::plan::{ObservedResponse, spec_from_observed};
use aws_sdk_apigatewayv2::operation::get_integration_responses::GetIntegrationResponsesOutput;
use std::collections::{BTreeMap, HashMap};

/// One response out of any of AWS's answers that carry one (they share their accessors). A
/// contentHandlingStrategy value this operator does not know reads as unset.
macro_rules! observed_response {
    ($r:expr) => {{
        let r = $r;
        ObservedResponse {
            id: r.integration_response_id().unwrap_or_default().to_string(),
            fields: IntegrationResponseSpec {
                integration_response_key: r
                    .integration_response_key()
                    .unwrap_or_default()
                    .to_string(),
                response_templates: r.response_templates().map(to_btree),
                response_parameters: r.response_parameters().map(to_btree),
                template_selection_expression: r.template_selection_expression().map(String::from),
                content_handling_strategy: r
                    .content_handling_strategy()
                    .and_then(|c| content_handling_from_sdk(c).ok()),
            },
        }
    }};
}

/// The responses in one page of GetIntegrationResponses' answer.
pub fn responses_from_sdk(out: &GetIntegrationResponsesOutput) -> Vec<ObservedResponse> {
    out.items().iter().map(|r| observed_response!(r)).collect()
}

/// For adoption and import: the spec.integrationResponses that reproduces what GetIntegrationResponses
/// answered (see [`spec_from_observed`]: sorted by key, tombstones and empty maps left out).
pub fn responses_spec_from_sdk(
    out: &GetIntegrationResponsesOutput,
) -> Vec<IntegrationResponseSpec> {
    spec_from_observed(&responses_from_sdk(out))
}

fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Sets every field of `body` on a Create or UpdateIntegrationResponse request (their builders share
/// the setters, as their answers share the accessors).
macro_rules! with_response_body {
    ($req:expr, $body:expr) => {{
        let body: &IntegrationResponseSpec = $body;
        $req.integration_response_key(&body.integration_response_key)
            .set_response_templates(body.response_templates.as_ref().map(to_hash))
            .set_response_parameters(body.response_parameters.as_ref().map(to_hash))
            .set_template_selection_expression(body.template_selection_expression.clone())
            .set_content_handling_strategy(
                body.content_handling_strategy.map(content_handling_to_sdk),
            )
    }};
}

impl AwsApi {
    /// Every response of the integration, following NextToken; NotFound when the integration (or its
    /// API) does not exist.
    pub async fn list_integration_responses(
        &self,
        api_id: &str,
        integration_id: &str,
    ) -> Result<Vec<ObservedResponse>, AwsError> {
        super::every_page(|token| async move {
            self.integration_responses_page(api_id, integration_id, token.as_deref())
                .await
        })
        .await
    }

    pub async fn create_integration_response(
        &self,
        api_id: &str,
        integration_id: &str,
        body: &IntegrationResponseSpec,
    ) -> Result<ObservedResponse, AwsError> {
        let req = self
            .client
            .create_integration_response()
            .api_id(api_id)
            .integration_id(integration_id);
        let req = with_response_body!(req, body).send();
        let out = self.call("CreateIntegrationResponse", req).await?;
        Ok(observed_response!(&out))
    }

    /// Sends what `body` sets (the plan's update body: only what differs) for response `response_id`.
    pub async fn update_integration_response(
        &self,
        api_id: &str,
        integration_id: &str,
        response_id: &str,
        body: &IntegrationResponseSpec,
    ) -> Result<ObservedResponse, AwsError> {
        let req = self
            .client
            .update_integration_response()
            .api_id(api_id)
            .integration_id(integration_id)
            .integration_response_id(response_id);
        let req = with_response_body!(req, body).send();
        let out = self.call("UpdateIntegrationResponse", req).await?;
        Ok(observed_response!(&out))
    }

    /// Deletes the response; one already gone counts as deleted.
    pub async fn delete_integration_response(
        &self,
        api_id: &str,
        integration_id: &str,
        response_id: &str,
    ) -> Result<(), AwsError> {
        let req = self
            .client
            .delete_integration_response()
            .api_id(api_id)
            .integration_id(integration_id)
            .integration_response_id(response_id)
            .send();
        match self.call("DeleteIntegrationResponse", req).await {
            Ok(_) | Err(AwsError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ContentHandlingStrategy;
    use aws_sdk_apigatewayv2::types::{self as sdk, IntegrationResponse};

    #[test]
    fn an_answer_becomes_the_spec_that_reproduces_it() {
        let out = GetIntegrationResponsesOutput::builder()
            .items(
                IntegrationResponse::builder()
                    .integration_response_id("r2")
                    .integration_response_key("/4\\d\\d/")
                    .content_handling_strategy(sdk::ContentHandlingStrategy::ConvertToText)
                    .response_parameters("a", "b")
                    .build(),
            )
            .items(
                IntegrationResponse::builder()
                    .integration_response_id("r1")
                    .integration_response_key("$default")
                    .response_templates("$default", "{\"ok\":true}")
                    .response_templates("text/plain", "")
                    .template_selection_expression("\\$default")
                    .build(),
            )
            .build();
        let observed = responses_from_sdk(&out);
        assert_eq!(observed[1].id, "r1");
        assert_eq!(
            responses_spec_from_sdk(&out),
            vec![
                IntegrationResponseSpec {
                    integration_response_key: "$default".into(),
                    response_templates: Some(
                        [("$default".to_string(), "{\"ok\":true}".to_string())].into()
                    ),
                    template_selection_expression: Some("\\$default".into()),
                    ..Default::default()
                },
                IntegrationResponseSpec {
                    integration_response_key: "/4\\d\\d/".into(),
                    response_parameters: Some([("a".to_string(), "b".to_string())].into()),
                    content_handling_strategy: Some(ContentHandlingStrategy::ConvertToText),
                    ..Default::default()
                },
            ]
        );
    }
}
