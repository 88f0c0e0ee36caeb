//! `apigw-operator import`: writes an ApiIntegration for each integration API Gateway already holds, so
//! that integrations made by another tool come under the operator without a change (issue 22).
//!
//! Everything here is pure: the command (`src/main/import.rs`) lists the region through the AWS boundary
//! ([`crate::aws::AwsApi`]: GetApis, GetVpcLinks, per API GetIntegrations and GetRoutes, paged, and per
//! integration only GetIntegrationResponses, for a WebSocket API's AWS, HTTP and MOCK integrations),
//! hands the listings to [`import`], and writes what [`render`] makes of the
//! result.
//!
//! - [`list`]: the listings, the only part that calls AWS, page by page.
//! - [`retry`]: which failed calls are made again, and after which pause.
//! - [`select`]: which APIs `--api-id`, `--api-name` and `--api-tag` choose.
//! - [`spec`]: one integration's spec (AWS's values less AWS's own defaults, the API and VPC link by
//!   name where unique, its integration responses), checked with the operator's own diff to change nothing.
//! - [`naming`]: metadata.name from the routes that call the integration, else from what it calls.
//! - [`render`]: the YAML, with the comments that say why, and the kustomization.yaml.

pub mod list;
pub mod naming;
pub mod render;
pub mod retry;
pub mod select;
pub mod spec;

use crate::api::{ADOPT_ANNOTATION, ApiIntegration};
use crate::aws::RouteSummary;
use crate::plan::{ApiSummary, ObservedIntegration, ObservedResponse};
use std::collections::BTreeMap;

pub use select::{Selection, TagFilter};
pub use spec::{NotImported, Policy, Region};

/// One selected API and what it holds.
#[derive(Clone, Debug)]
pub struct ApiListing {
    pub api: ApiSummary,
    pub integrations: Vec<ObservedIntegration>,
    pub routes: Vec<RouteSummary>,
    /// GetIntegrationResponses' answer by integration ID, for the integrations that can have responses
    /// ([`spec::has_integration_responses`]); absent for the others.
    pub responses: BTreeMap<String, Vec<ObservedResponse>>,
}

/// Where the objects go and how they are managed.
#[derive(Clone, Debug)]
pub struct Options {
    /// metadata.namespace of every object (and the kustomization's namespace); None leaves it out.
    pub namespace: Option<String>,
    pub policy: Policy,
}

/// One integration's object, with the comments written around it.
#[derive(Clone, Debug)]
pub struct ImportedObject {
    pub object: ApiIntegration,
    /// Comment lines before the object (what it is and which routes call it).
    pub header: Vec<String>,
    pub notes: Vec<spec::FieldNote>,
    /// What AWS holds that the spec cannot say (also in the header, and reported on stderr).
    pub left_out: Vec<String>,
}

/// An integration that gets no object, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub api_id: String,
    pub api_name: String,
    pub integration_id: String,
    pub why: NotImported,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "integration {} of API {} ({}) is not imported: {}",
            self.integration_id, self.api_name, self.api_id, self.why
        )
    }
}

/// What one API's file holds.
#[derive(Clone, Debug)]
pub struct ApiFile {
    pub api: ApiSummary,
    /// The file's name under --out-dir (`<api name>.yaml`, with the ID when two APIs share a name).
    pub file_name: String,
    pub objects: Vec<ImportedObject>,
    pub skipped: Vec<Skipped>,
}

/// The result of an import: one file per API, in a stable order.
#[derive(Clone, Debug)]
pub struct Import {
    pub files: Vec<ApiFile>,
}

impl Import {
    pub fn objects(&self) -> impl Iterator<Item = &ImportedObject> {
        self.files.iter().flat_map(|f| f.objects.iter())
    }
    pub fn skipped(&self) -> impl Iterator<Item = &Skipped> {
        self.files.iter().flat_map(|f| f.skipped.iter())
    }
}

/// The objects for `listings` (the selected APIs of `region`). APIs are ordered by name and ID, each
/// API's objects by name, so that the output depends only on what AWS holds.
pub fn import(listings: &[ApiListing], region: &Region, options: &Options) -> Import {
    let mut listings: Vec<&ApiListing> = listings.iter().collect();
    listings.sort_by(|a, b| (&a.api.name, &a.api.id).cmp(&(&b.api.name, &b.api.id)));

    // First every spec, then the names, which must be unique across the whole output.
    struct Pending<'a> {
        file: usize,
        integration: &'a ObservedIntegration,
        routes: Vec<String>,
        drafted: spec::Drafted,
    }
    let mut pending = Vec::new();
    let mut files = Vec::new();
    for (file, listing) in listings.iter().enumerate() {
        let routes = routes_by_integration(&listing.routes);
        let mut skipped = Vec::new();
        for integration in &listing.integrations {
            let responses = listing
                .responses
                .get(&integration.integration_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match spec::integration_spec(
                &listing.api,
                integration,
                responses,
                region,
                options.policy,
            ) {
                Ok(drafted) => pending.push(Pending {
                    file,
                    integration,
                    routes: routes
                        .get(integration.integration_id.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    drafted,
                }),
                Err(why) => skipped.push(Skipped {
                    api_id: listing.api.id.clone(),
                    api_name: listing.api.name.clone(),
                    integration_id: integration.integration_id.clone(),
                    why,
                }),
            }
        }
        skipped.sort_by(|a, b| a.integration_id.cmp(&b.integration_id));
        files.push(ApiFile {
            api: listing.api.clone(),
            file_name: String::new(),
            objects: Vec::new(),
            skipped,
        });
    }
    let candidates: Vec<naming::Candidate> = pending
        .iter()
        .map(|p| naming::Candidate {
            base: naming::base_name(&p.routes, &p.integration.fields),
            api_id: files[p.file].api.id.clone(),
            integration_id: p.integration.integration_id.clone(),
        })
        .collect();
    let names = naming::unique_names(&candidates);
    for (p, name) in pending.into_iter().zip(names) {
        let api = &files[p.file].api;
        let object = object(
            &name,
            &p.integration.integration_id,
            p.drafted.spec,
            options,
        );
        let mut header = header(api, &p.integration.integration_id, &p.routes);
        header.extend(p.drafted.left_out.iter().map(|l| format!("left out: {l}")));
        files[p.file].objects.push(ImportedObject {
            object,
            header,
            notes: p.drafted.notes,
            left_out: p.drafted.left_out,
        });
    }
    let file_names = file_names(&files);
    for (f, name) in files.iter_mut().zip(file_names) {
        f.file_name = name;
        f.objects
            .sort_by(|a, b| a.object.metadata.name.cmp(&b.object.metadata.name));
    }
    Import { files }
}

/// The route keys calling each integration, sorted.
fn routes_by_integration(routes: &[RouteSummary]) -> BTreeMap<&str, Vec<String>> {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in routes {
        if let Some(id) = r.integration_id() {
            by.entry(id).or_default().push(r.route_key.clone());
        }
    }
    for keys in by.values_mut() {
        keys.sort();
    }
    by
}

fn object(
    name: &str,
    integration_id: &str,
    spec: crate::api::ApiIntegrationSpec,
    options: &Options,
) -> ApiIntegration {
    let mut object = ApiIntegration::new(name, spec);
    object.metadata.namespace = options.namespace.clone();
    object.metadata.annotations = Some(BTreeMap::from([(
        ADOPT_ANNOTATION.to_string(),
        integration_id.to_string(),
    )]));
    object
}

fn header(api: &ApiSummary, integration_id: &str, routes: &[String]) -> Vec<String> {
    let calls = if routes.is_empty() {
        "no route calls it".to_string()
    } else {
        format!("called by {}", routes.join(", "))
    };
    vec![format!(
        "integration {integration_id} of API {} ({}); {calls}",
        api.name, api.id
    )]
}

/// `<api name>.yaml` per API, with `-<api id>` when the name's file would be shared.
fn file_names(files: &[ApiFile]) -> Vec<String> {
    let bases: Vec<String> = files
        .iter()
        .map(|f| {
            let s = naming::slug(&f.api.name);
            if s.is_empty() { "api".to_string() } else { s }
        })
        .collect();
    bases
        .iter()
        .zip(files)
        .map(|(b, f)| {
            if bases.iter().filter(|o| *o == b).count() == 1 && b != "kustomization" {
                format!("{b}.yaml")
            } else {
                format!("{b}-{}.yaml", naming::slug(&f.api.id))
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
