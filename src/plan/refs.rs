//! References (design §6): the API and the VPC link found by Name and Tags in a listing of the region's
//! APIs (GetApis) and VPC links (GetVpcLinks). Pure: the controller fetches and shares the listings.

use super::diff::Protocol;
use crate::api::{ApiProtocolType, ApiRef, ConnectionRef};
use std::collections::BTreeMap;

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
    let protocol = r.protocol_type.map(|p| match p {
        ApiProtocolType::Http => Protocol::Http,
        ApiProtocolType::WebSocket => Protocol::WebSocket,
    });
    one_of(
        apis.iter()
            .filter(|a| name_matches(&r.name, &a.name))
            .filter(|a| tags_match(&r.tags, &a.tags))
            .filter(|a| protocol.is_none_or(|p| p == a.protocol))
            .map(|a| a.id.clone())
            .collect(),
    )
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
