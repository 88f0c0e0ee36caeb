//! The import's only I/O: the listings it reads, through the AWS boundary ([`AwsApi`]). List calls only,
//! each paged to the end: GetApis once, then GetIntegrations and GetRoutes per selected API, and
//! GetVpcLinks once if an integration uses a VPC link. The one call per integration is
//! GetIntegrationResponses, and only for the integrations that can have responses (a WebSocket API's
//! AWS, HTTP and MOCK integrations, [`super::spec::has_integration_responses`]).
//!
//! The import asks for each page itself, so that a page whose call failed for a passing reason (a 429,
//! a 5xx, a timeout: [`Retry`]) is asked for again with the same token, after a pause, instead of the
//! listing starting over: no item is read twice and none is missed. What does not pass by itself ends
//! the listing with an error naming the call ([`ListError`]).

use super::retry::Retry;
use super::spec::has_integration_responses;
use super::{ApiListing, Region, Selection};
use crate::api::ConnectionType;
use crate::aws::{AwsApi, AwsError, Page};
use crate::plan::ApiSummary;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a listing call lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// The region's APIs or VPC links.
    Region,
    /// One API's integrations or routes.
    Api { api_id: String },
    /// One integration's responses.
    Integration {
        api_id: String,
        integration_id: String,
    },
}

/// One call of a listing, as the user is told of it: the operation, what it lists, and which page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    pub listed: Listed,
    /// 1 for the first page.
    pub page: usize,
}

impl Call {
    fn first(operation: &'static str, listed: Listed) -> Call {
        Call {
            operation,
            listed,
            page: 1,
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        match &self.listed {
            Listed::Region => {}
            Listed::Api { api_id } => write!(f, " of API {api_id}")?,
            Listed::Integration {
                api_id,
                integration_id,
            } => write!(f, " of integration {integration_id} of API {api_id}")?,
        }
        write!(f, " (page {})", self.page)
    }
}

/// Why the listing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A failure that does not pass by itself (access denied, a rejected request, no credentials).
    #[error("{call} failed: {source}")]
    Aws { call: Call, source: AwsError },
    /// A passing failure (throttled, unavailable) that lasted through every attempt.
    #[error("{call} failed {attempts} times in a row, the last time: {source}; gave up")]
    GaveUp {
        call: Call,
        attempts: u32,
        source: AwsError,
    },
    /// The API (or integration) was listed, then deleted before the import had read it. The import
    /// stops rather than leave it out: the listing of the region that names and references were
    /// chosen from is no longer true, and a run after the change gives a consistent picture.
    #[error(
        "{call} failed: {source}. It was listed a moment before, so it was deleted while the import \
         ran; run the import again"
    )]
    Gone { call: Call, source: AwsError },
    #[error("no API in {region} has the ID {ids} given with --api-id")]
    NoSuchApi { region: String, ids: String },
}

/// Why a listing call ends the import, after `attempts` attempts that ended with `error`.
fn stop(call: Call, attempts: u32, error: AwsError) -> ListError {
    match error {
        AwsError::NotFound(_) if call.listed != Listed::Region => ListError::Gone {
            call,
            source: error,
        },
        _ if super::retry::is_passing(&error) => ListError::GaveUp {
            call,
            attempts,
            source: error,
        },
        _ => ListError::Aws {
            call,
            source: error,
        },
    }
}

/// What the listing tells the command as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// API `position` of `count` is listed.
    Listed {
        position: usize,
        count: usize,
        listing: &'a ApiListing,
    },
    /// Attempt `failed` of `call` failed with `error`; it is made again after `pause`.
    Retrying {
        call: &'a Call,
        failed: u32,
        error: &'a AwsError,
        pause: Duration,
    },
}

impl fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Listed {
                position,
                count,
                listing: l,
            } => write!(
                f,
                "API {position}/{count} {} ({}): {} integrations, {} routes",
                l.api.name,
                l.api.id,
                l.integrations.len(),
                l.routes.len()
            ),
            Progress::Retrying {
                call,
                failed,
                error,
                pause,
            } => write!(
                f,
                "{call} failed ({error}); attempt {} in {:.1} s",
                failed + 1,
                pause.as_secs_f64()
            ),
        }
    }
}

/// Every item of one listing: `fetch(token)` for each page, from the first (None) to the one without a
/// next token. A page whose call fails for a passing reason is asked for again with the same token after
/// the pause `retry` gives (`sleep` waits it out; told to `progress`); the pages before it are kept.
async fn every_page<T, F, Fut, S, SFut>(
    mut call: Call,
    retry: &Retry,
    mut fetch: F,
    mut sleep: S,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<T>, ListError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, AwsError>>,
    S: FnMut(Duration) -> SFut,
    SFut: Future<Output = ()>,
{
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut failed = 0;
        let page = loop {
            match fetch(token.clone()).await {
                Ok(page) => break page,
                Err(error) => {
                    failed += 1;
                    match retry.pause_after(failed, &error, rand::random()) {
                        Some(pause) => {
                            progress(Progress::Retrying {
                                call: &call,
                                failed,
                                error: &error,
                                pause,
                            });
                            sleep(pause).await;
                        }
                        None => return Err(stop(call, failed, error)),
                    }
                }
            }
        };
        all.extend(page.items);
        match page.next {
            Some(next) => {
                token = Some(next);
                call.page += 1;
            }
            None => return Ok(all),
        }
    }
}

/// What the selected APIs hold, and what the region knows of API and VPC link names. Each page is
/// retried as `retry` says; `progress` is told after each API, and before each retry.
pub async fn list(
    aws: &AwsApi,
    selection: &Selection,
    retry: &Retry,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<(Vec<ApiListing>, Region), ListError> {
    let progress: &mut dyn FnMut(Progress<'_>) = &mut progress;
    let sleep = tokio::time::sleep;
    let apis = every_page(
        Call::first("GetApis", Listed::Region),
        retry,
        |t| async move { aws.apis_page(t.as_deref()).await },
        sleep,
        progress,
    )
    .await?;
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
        let listing = list_api(aws, api, retry, progress).await?;
        progress(Progress::Listed {
            position: i + 1,
            count,
            listing: &listing,
        });
        listings.push(listing);
    }
    let uses_vpc_link = listings.iter().any(|l| {
        l.integrations
            .iter()
            .any(|i| i.fields.connection_type == Some(ConnectionType::VpcLink))
    });
    let vpc_links = if uses_vpc_link {
        every_page(
            Call::first("GetVpcLinks", Listed::Region),
            retry,
            |t| async move { aws.vpc_links_page(t.as_deref()).await },
            sleep,
            progress,
        )
        .await?
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

/// One API's integrations, routes and, for the integrations that can have them, integration responses;
/// each page retried as `retry` says.
async fn list_api(
    aws: &AwsApi,
    api: ApiSummary,
    retry: &Retry,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ApiListing, ListError> {
    let sleep = tokio::time::sleep;
    let of_api = || Listed::Api {
        api_id: api.id.clone(),
    };
    let id = api.id.as_str();
    let integrations = every_page(
        Call::first("GetIntegrations", of_api()),
        retry,
        |t| async move { aws.integrations_page(id, t.as_deref()).await },
        sleep,
        progress,
    )
    .await?;
    let routes = every_page(
        Call::first("GetRoutes", of_api()),
        retry,
        |t| async move { aws.routes_page(id, t.as_deref()).await },
        sleep,
        progress,
    )
    .await?;
    let mut responses = BTreeMap::new();
    for integration in &integrations {
        if has_integration_responses(api.protocol, &integration.fields) {
            let integration_id = integration.integration_id.as_str();
            let held = every_page(
                Call::first(
                    "GetIntegrationResponses",
                    Listed::Integration {
                        api_id: api.id.clone(),
                        integration_id: integration_id.to_string(),
                    },
                ),
                retry,
                |t| async move {
                    aws.integration_responses_page(id, integration_id, t.as_deref())
                        .await
                },
                sleep,
                progress,
            )
            .await?;
            responses.insert(integration.integration_id.clone(), held);
        }
    }
    Ok(ApiListing {
        api,
        integrations,
        routes,
        responses,
    })
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
