//! References (design §6): the API and the VPC link found by Name and Tags in a listing of the region's
//! APIs (GetApis) and VPC links (GetVpcLinks). Pure: the controller fetches and shares the listings.

use super::diff::Protocol;
use super::step::Blocker;
use crate::api::{ApiProtocolType, ApiRef, ConnectionRef};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// An API as GetApis lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSummary {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    pub tags: BTreeMap<String, String>,
}

/// A VPC link as GetVpcLinks lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcLinkSummary {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

/// What a reference resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    One(String),
    NoMatch,
    /// Several match: their IDs, sorted. Nothing may be created on any of them.
    Ambiguous(Vec<String>),
}

fn tags_match(wanted: &Option<BTreeMap<String, String>>, has: &BTreeMap<String, String>) -> bool {
    wanted.iter().flatten().all(|(k, v)| has.get(k) == Some(v))
}

fn name_matches(wanted: &Option<String>, has: &str) -> bool {
    wanted.as_deref().is_none_or(|n| n == has)
}

fn one_of(mut ids: Vec<String>) -> Resolved {
    ids.sort();
    ids.dedup();
    match ids.len() {
        0 => Resolved::NoMatch,
        1 => Resolved::One(ids.remove(0)),
        _ => Resolved::Ambiguous(ids),
    }
}

/// The API `r` names among `apis`.
pub fn resolve_api(r: &ApiRef, apis: &[ApiSummary]) -> Resolved {
    resolve_api_without(r, apis, None)
}

/// An API a reference resolved to that then answered 404, and when that was learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneApi {
    pub id: String,
    pub at: Instant,
}

/// The API `r` names among `apis`, leaving out `gone`: a listing taken before the API was deleted still
/// names it, and it must neither be chosen again nor make its replacement look ambiguous.
pub fn resolve_api_without(r: &ApiRef, apis: &[ApiSummary], gone: Option<&GoneApi>) -> Resolved {
    let protocol = r.protocol_type.map(|p| match p {
        ApiProtocolType::Http => Protocol::Http,
        ApiProtocolType::WebSocket => Protocol::WebSocket,
    });
    one_of(
        apis.iter()
            .filter(|a| name_matches(&r.name, &a.name))
            .filter(|a| tags_match(&r.tags, &a.tags))
            .filter(|a| protocol.is_none_or(|p| p == a.protocol))
            .filter(|a| gone.is_none_or(|g| g.id != a.id))
            .map(|a| a.id.clone())
            .collect(),
    )
}

/// Why an apiRef (`what` describes it) resolves to nothing in a listing fetched at `listed_at`, in a
/// look that began at `looked_from`. Only a listing fetched after the API it last resolved to was found
/// `gone`, and during this look, shows that no API has the name now (then the user has to act: a slow
/// retry). An older listing proves nothing: the reference is looked up again as soon as the region's
/// APIs may be listed again, `recheck_after` after `listed_at`, so an API re-made under the same name,
/// or made just before the object was applied, is followed within that bound instead of after a slow
/// retry.
pub fn unresolved_api_ref(
    what: String,
    gone: Option<&GoneApi>,
    listed_at: Instant,
    looked_from: Instant,
    now: Instant,
    recheck_after: Duration,
) -> Blocker {
    let relist_in = (listed_at + recheck_after).saturating_duration_since(now);
    match gone {
        Some(g) if listed_at < g.at => Blocker::ApiRefGone { what, relist_in },
        _ if listed_at < looked_from => Blocker::ApiRefNotListedYet { what, relist_in },
        _ => Blocker::ApiRefNotFound { what },
    }
}

/// The VPC link `r` names among `links`.
pub fn resolve_vpc_link(r: &ConnectionRef, links: &[VpcLinkSummary]) -> Resolved {
    one_of(
        links
            .iter()
            .filter(|l| name_matches(&r.name, &l.name))
            .filter(|l| tags_match(&r.tags, &l.tags))
            .map(|l| l.id.clone())
            .collect(),
    )
}

/// How a reference reads in messages: `name "orders", tags env=prod`.
pub fn describe(name: &Option<String>, tags: &Option<BTreeMap<String, String>>) -> String {
    let mut parts = vec![];
    if let Some(n) = name {
        parts.push(format!("name {n:?}"));
    }
    if let Some(t) = tags.as_ref().filter(|t| !t.is_empty()) {
        let t: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags {}", t.join(",")));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(id: &str, name: &str, protocol: Protocol, tags: &[(&str, &str)]) -> ApiSummary {
        ApiSummary {
            id: id.into(),
            name: name.into(),
            protocol,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn r(name: Option<&str>, tags: &[(&str, &str)], protocol: Option<ApiProtocolType>) -> ApiRef {
        ApiRef {
            name: name.map(String::from),
            tags: (!tags.is_empty()).then(|| {
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            protocol_type: protocol,
        }
    }

    fn apis() -> Vec<ApiSummary> {
        vec![
            api(
                "a1",
                "orders",
                Protocol::Http,
                &[("env", "prod"), ("team", "x")],
            ),
            api("a2", "orders", Protocol::Http, &[("env", "dev")]),
            api("a3", "orders", Protocol::WebSocket, &[("env", "prod")]),
            api("a4", "billing", Protocol::Http, &[("env", "prod")]),
        ]
    }

    #[test]
    fn name_and_tags_pick_one() {
        let found = resolve_api(&r(Some("orders"), &[("env", "dev")], None), &apis());
        assert_eq!(found, Resolved::One("a2".into()));
        let found = resolve_api(
            &r(
                Some("orders"),
                &[("env", "prod")],
                Some(ApiProtocolType::Http),
            ),
            &apis(),
        );
        assert_eq!(found, Resolved::One("a1".into()));
    }

    #[test]
    fn tags_alone_are_enough_and_extra_tags_on_the_api_do_not_matter() {
        let found = resolve_api(&r(None, &[("team", "x")], None), &apis());
        assert_eq!(found, Resolved::One("a1".into()));
    }

    #[test]
    fn several_matches_are_ambiguous_with_every_id() {
        let found = resolve_api(&r(Some("orders"), &[("env", "prod")], None), &apis());
        assert_eq!(found, Resolved::Ambiguous(vec!["a1".into(), "a3".into()]));
    }

    #[test]
    fn no_match() {
        assert_eq!(
            resolve_api(&r(Some("payments"), &[], None), &apis()),
            Resolved::NoMatch
        );
        assert_eq!(
            resolve_api(&r(Some("billing"), &[("env", "dev")], None), &apis()),
            Resolved::NoMatch
        );
        assert_eq!(
            resolve_api(&r(Some("orders"), &[], None), &[]),
            Resolved::NoMatch
        );
    }

    fn gone(id: &str, at: Instant) -> GoneApi {
        GoneApi { id: id.into(), at }
    }

    #[test]
    fn an_api_found_gone_is_left_out_so_its_replacement_resolves() {
        let by_name = r(Some("orders"), &[("env", "dev")], None);
        let t0 = Instant::now();
        // The listing predates the deletion: only the gone API matches, so nothing does.
        assert_eq!(
            resolve_api_without(&by_name, &apis(), Some(&gone("a2", t0))),
            Resolved::NoMatch
        );
        // It also holds the replacement (same name and tags): the replacement, not an ambiguity.
        let mut listed = apis();
        listed.push(api("a9", "orders", Protocol::Http, &[("env", "dev")]));
        assert_eq!(
            resolve_api(&by_name, &listed),
            Resolved::Ambiguous(vec!["a2".into(), "a9".into()])
        );
        assert_eq!(
            resolve_api_without(&by_name, &listed, Some(&gone("a2", t0))),
            Resolved::One("a9".into())
        );
        // Another API gone changes nothing.
        assert_eq!(
            resolve_api_without(&by_name, &apis(), Some(&gone("a4", t0))),
            Resolved::One("a2".into())
        );
    }

    #[test]
    fn a_listing_older_than_the_404_waits_only_for_the_next_listing_not_a_slow_retry() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let recheck = Duration::from_secs(5);
        let what = || "name \"orders\"".to_string();
        // Listed at t0, the API found gone 2 s later: listed again 3 s from then.
        let g = gone("a2", at(2000));
        assert_eq!(
            unresolved_api_ref(what(), Some(&g), t0, t0, at(2000), recheck),
            Blocker::ApiRefGone {
                what: what(),
                relist_in: Duration::from_secs(3)
            }
        );
        // A listing fetched after the 404 that has no match: no API has the name now.
        assert_eq!(
            unresolved_api_ref(what(), Some(&g), at(2100), at(2100), at(2100), recheck),
            Blocker::ApiRefNotFound { what: what() }
        );
        // A reference that never resolved, in a listing fetched for this look: not found, whatever
        // the listing's age by now.
        assert_eq!(
            unresolved_api_ref(what(), None, t0, t0, at(2000), recheck),
            Blocker::ApiRefNotFound { what: what() }
        );
    }

    #[test]
    fn a_listing_older_than_the_look_waits_only_for_the_next_listing_not_a_slow_retry() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let recheck = Duration::from_secs(5);
        let what = || "name \"legacy-shop\"".to_string();
        // Listed at t0 (for another resource); this object is looked up 1 s later, when the region may
        // not be listed again yet: the listing may predate the API, so look again 4 s from now.
        assert_eq!(
            unresolved_api_ref(what(), None, t0, at(1000), at(1000), recheck),
            Blocker::ApiRefNotListedYet {
                what: what(),
                relist_in: Duration::from_secs(4)
            }
        );
        // The listing fetched for the next look has no match either: not found, a slow retry.
        assert_eq!(
            unresolved_api_ref(what(), None, at(5000), at(5000), at(5100), recheck),
            Blocker::ApiRefNotFound { what: what() }
        );
    }

    #[test]
    fn vpc_links_by_name_and_tags() {
        let links = vec![
            VpcLinkSummary {
                id: "l1".into(),
                name: "orders-link".into(),
                tags: [("env".to_string(), "prod".to_string())].into(),
            },
            VpcLinkSummary {
                id: "l2".into(),
                name: "orders-link".into(),
                tags: BTreeMap::new(),
            },
        ];
        let by_name = ConnectionRef {
            name: Some("orders-link".into()),
            tags: None,
        };
        assert_eq!(
            resolve_vpc_link(&by_name, &links),
            Resolved::Ambiguous(vec!["l1".into(), "l2".into()])
        );
        let by_both = ConnectionRef {
            tags: Some([("env".to_string(), "prod".to_string())].into()),
            ..by_name
        };
        assert_eq!(
            resolve_vpc_link(&by_both, &links),
            Resolved::One("l1".into())
        );
    }

    #[test]
    fn descriptions_name_what_was_looked_for() {
        let tags = Some([("env".to_string(), "prod".to_string())].into());
        assert_eq!(
            describe(&Some("orders".into()), &tags),
            "name \"orders\", tags env=prod"
        );
    }
}
