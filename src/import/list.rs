//! The import's only I/O: the listings it reads, through the AWS boundary ([`AwsApi`]). List calls only,
//! each paged to the end: GetApis once, then GetIntegrations and GetRoutes per selected API, and
//! GetVpcLinks once if an integration uses a VPC link. The one call per integration is
//! GetIntegrationResponses, and only for the integrations that can have responses (a WebSocket API's
//! AWS, HTTP and MOCK integrations, [`super::spec::has_integration_responses`]).

use super::spec::has_integration_responses;
use super::{ApiListing, Region, Selection};
use crate::api::ConnectionType;
use crate::aws::{AwsApi, AwsError};
use std::collections::BTreeMap;

/// Why the listing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{operation} failed: {source}")]
    Aws {
        operation: &'static str,
        source: AwsError,
    },
    #[error("no API in {region} has the ID {ids} given with --api-id")]
    NoSuchApi { region: String, ids: String },
}

/// What the selected APIs hold, and what the region knows of API and VPC link names. `progress` is told
/// after each API (its position, the count, the listing).
pub async fn list(
    aws: &AwsApi,
    selection: &Selection,
    mut progress: impl FnMut(usize, usize, &ApiListing),
) -> Result<(Vec<ApiListing>, Region), ListError> {
    let aws_err = |operation| move |source| ListError::Aws { operation, source };
    let apis = aws.list_apis().await.map_err(aws_err("GetApis"))?;
    let (taken, missing) = selection.apply(&apis);
    if !missing.is_empty() {
        return Err(ListError::NoSuchApi {
            region: aws.region().to_string(),
            ids: missing.join(", "),
        });
    }
    let mut taken: Vec<_> = taken.into_iter().cloned().collect();
    taken.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let mut listings = Vec::new();
    let count = taken.len();
    for (i, api) in taken.into_iter().enumerate() {
        let integrations = aws
            .list_integrations(&api.id)
            .await
            .map_err(aws_err("GetIntegrations"))?;
        let routes = aws
            .list_routes(&api.id)
            .await
            .map_err(aws_err("GetRoutes"))?;
        let mut responses = BTreeMap::new();
        for integration in &integrations {
            if has_integration_responses(api.protocol, &integration.fields) {
                let held = aws
                    .list_integration_responses(&api.id, &integration.integration_id)
                    .await
                    .map_err(aws_err("GetIntegrationResponses"))?;
                responses.insert(integration.integration_id.clone(), held);
            }
        }
        let listing = ApiListing {
            api,
            integrations,
            routes,
            responses,
        };
        progress(i + 1, count, &listing);
        listings.push(listing);
    }
    let uses_vpc_link = listings.iter().any(|l| {
        l.integrations
            .iter()
            .any(|i| i.fields.connection_type == Some(ConnectionType::VpcLink))
    });
    let vpc_links = if uses_vpc_link {
        aws.list_vpc_links().await.map_err(aws_err("GetVpcLinks"))?
    } else {
        Vec::new()
    };
    let region = Region {
        name: aws.region().to_string(),
        apis,
        vpc_links,
    };
    Ok((listings, region))
}
