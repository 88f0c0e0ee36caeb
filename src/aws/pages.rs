//! The listings one page at a time: each method is one call (GetApis, GetVpcLinks, GetRoutes,
//! GetIntegrations, GetIntegrationResponses) for the page that `token` names (None: the first), answering
//! that page's items and the token of the next. The `list_*` methods follow the tokens to the end with
//! [`every_page`]; a caller that must survive a failed page (`apigw-operator import`, which retries it)
//! drives the pages itself, so that a retry asks for the same page again instead of starting over.

use super::convert::{observed, to_btree};
use super::error::AwsError;
use super::{AwsApi, RouteSummary, responses_from_sdk};
// `observed!` expands here and names these.
use crate::api::TlsConfig;
use crate::plan::{
    ApiSummary, IntegrationFields, ObservedIntegration, ObservedResponse, Protocol, VpcLinkSummary,
};
use aws_sdk_apigatewayv2::types::ProtocolType;

/// The most items API Gateway is asked for in one page.
const PAGE_SIZE: &str = "100";

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The token that asks for the next page; None after the last page.
    pub next: Option<String>,
}

/// The token to ask for the page after the one asked for with `sent`, from the `answered` NextToken: None
/// ends the listing, as do an empty token and the token just sent (a listing that would never end).
pub fn next_token(sent: Option<&str>, answered: Option<&str>) -> Option<String> {
    match answered {
        Some(t) if !t.is_empty() && Some(t) != sent => Some(t.to_string()),
        _ => None,
    }
}

/// Every item of a listing: `page(token)` for the first page (None) and then for each next token.
pub async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, AwsError>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let Page { items, next } = page(token).await?;
        all.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

impl AwsApi {
    /// One page of GetApis.
    pub async fn apis_page(&self, token: Option<&str>) -> Result<Page<ApiSummary>, AwsError> {
        let req = self
            .client
            .get_apis()
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string));
        let out = self.call("GetApis", req.send()).await?;
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(|a| ApiSummary {
                    id: a.api_id().unwrap_or_default().to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    protocol: match a.protocol_type() {
                        Some(ProtocolType::Websocket) => Protocol::WebSocket,
                        _ => Protocol::Http,
                    },
                    tags: a.tags().map(to_btree).unwrap_or_default(),
                })
                .collect(),
            next: next_token(token, out.next_token()),
        })
    }

    /// One page of GetVpcLinks.
    pub async fn vpc_links_page(
        &self,
        token: Option<&str>,
    ) -> Result<Page<VpcLinkSummary>, AwsError> {
        let req = self
            .client
            .get_vpc_links()
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string));
        let out = self.call("GetVpcLinks", req.send()).await?;
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(|l| VpcLinkSummary {
                    id: l.vpc_link_id().unwrap_or_default().to_string(),
                    name: l.name().unwrap_or_default().to_string(),
                    tags: l.tags().map(to_btree).unwrap_or_default(),
                })
                .collect(),
            next: next_token(token, out.next_token()),
        })
    }

    /// One page of the API's GetRoutes; NotFound when the API does not exist.
    pub async fn routes_page(
        &self,
        api_id: &str,
        token: Option<&str>,
    ) -> Result<Page<RouteSummary>, AwsError> {
        let req = self
            .client
            .get_routes()
            .api_id(api_id)
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string));
        let out = self.call("GetRoutes", req.send()).await?;
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(|r| RouteSummary {
                    route_key: r.route_key().unwrap_or_default().to_string(),
                    target: r.target().map(str::to_string),
                })
                .collect(),
            next: next_token(token, out.next_token()),
        })
    }

    /// One page of the API's GetIntegrations; NotFound when the API does not exist.
    pub async fn integrations_page(
        &self,
        api_id: &str,
        token: Option<&str>,
    ) -> Result<Page<ObservedIntegration>, AwsError> {
        let req = self
            .client
            .get_integrations()
            .api_id(api_id)
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string));
        let out = self.call("GetIntegrations", req.send()).await?;
        let mut items = Vec::with_capacity(out.items().len());
        for i in out.items() {
            items.push(observed!(i, "GetIntegrations"));
        }
        Ok(Page {
            items,
            next: next_token(token, out.next_token()),
        })
    }

    /// One page of the integration's GetIntegrationResponses; NotFound when the integration (or its
    /// API) does not exist.
    pub async fn integration_responses_page(
        &self,
        api_id: &str,
        integration_id: &str,
        token: Option<&str>,
    ) -> Result<Page<ObservedResponse>, AwsError> {
        let req = self
            .client
            .get_integration_responses()
            .api_id(api_id)
            .integration_id(integration_id)
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string));
        let out = self.call("GetIntegrationResponses", req.send()).await?;
        Ok(Page {
            items: responses_from_sdk(&out),
            next: next_token(token, out.next_token()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_ends_without_a_new_token() {
        assert_eq!(next_token(None, Some("2")), Some("2".into()));
        assert_eq!(next_token(Some("2"), Some("3")), Some("3".into()));
        assert_eq!(next_token(Some("2"), None), None);
        assert_eq!(next_token(Some("2"), Some("")), None);
        // The token just sent again: the listing would never end.
        assert_eq!(next_token(Some("2"), Some("2")), None);
    }

    #[tokio::test]
    async fn every_page_follows_the_tokens_once_each() {
        let mut asked = Vec::new();
        let all = every_page(|token: Option<String>| {
            asked.push(token.clone());
            let page = match token.as_deref() {
                None => Page {
                    items: vec![1, 2],
                    next: Some("a".into()),
                },
                Some("a") => Page {
                    items: vec![3],
                    next: Some("b".into()),
                },
                _ => Page {
                    items: vec![4],
                    next: None,
                },
            };
            async move { Ok::<_, AwsError>(page) }
        })
        .await
        .unwrap();
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert_eq!(asked, vec![None, Some("a".into()), Some("b".into())]);
    }
}
