//! metadata.name of an imported integration: what it serves, from the routes that call it (`GET
//! /orders/{id}` → `get-orders-id`, `$connect` → `connect`), else from what it calls (the Lambda
//! function's name, the endpoint's host, the AWS action), as a DNS-1123 name. Names are unique within one
//! import and depend only on what AWS holds, so the same account imports under the same names every time.

use crate::plan::IntegrationFields;
use std::collections::BTreeMap;

/// Longest name written: a DNS-1123 label (a subdomain may be longer, but a label is what most tools
/// and people expect of a name, and it leaves room for kubectl's columns).
pub const MAX_NAME: usize = 63;

/// `text` as a DNS-1123 label: lower case, every run of other characters one `-`, no `-` at either
/// end, at most [`MAX_NAME`] characters. Empty when `text` holds no letter or digit.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    truncate(out, MAX_NAME)
}

/// At most `max` characters, with no `-` left at the end.
fn truncate(mut s: String, max: usize) -> String {
    s.truncate(max);
    while s.ends_with('-') {
        s.pop();
    }
    s
}

/// The name a route key gives: `GET /orders/{id}` → `get-orders-id`, `$connect` → `connect`,
/// `ANY /{proxy+}` → `any-proxy`.
pub fn from_route_key(route_key: &str) -> String {
    slug(route_key)
}

/// The name of what an integration calls, when no route names it: the Lambda function, the action of
/// an integration subtype, the endpoint's host, the load balancer or Cloud Map service of a private
/// integration; `mock` for a MOCK integration. None when nothing usable is there.
pub fn from_target(fields: &IntegrationFields) -> Option<String> {
    if let Some(subtype) = fields.integration_subtype {
        return Some(slug(subtype.as_str()));
    }
    let name = match fields.integration_uri.as_deref() {
        Some(uri) if !uri.is_empty() => target_of_uri(uri),
        _ => fields
            .integration_type
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
    };
    Some(slug(&name)).filter(|s| !s.is_empty())
}

/// The readable part of an integration URI.
fn target_of_uri(uri: &str) -> String {
    // A Lambda function ARN, bare or inside an invocation URI (`.../functions/<arn>/invocations`).
    if let Some(at) = uri.find(":function:") {
        let rest = &uri[at + ":function:".len()..];
        let end = rest.find([':', '/']).unwrap_or(rest.len());
        return rest[..end].to_string();
    }
    // An endpoint URL: its host.
    if let Some((_, rest)) = uri.split_once("://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit('@').next().unwrap_or(host);
        return host.split(':').next().unwrap_or(host).to_string();
    }
    // A load balancer listener: `listener/app/<name>/<id>/<id>`.
    if let Some(at) = uri.find(":listener/") {
        let parts: Vec<&str> = uri[at + ":listener/".len()..].split('/').collect();
        if let Some(name) = parts.get(1) {
            return name.to_string();
        }
    }
    // Any other ARN (a Cloud Map service, ...): its last segment.
    uri.rsplit(['/', ':']).next().unwrap_or(uri).to_string()
}

/// The base name of one integration: from the first of the route keys that call it (sorted, so the
/// choice does not depend on listing order), else from its target, else `integration`.
pub fn base_name(route_keys: &[String], fields: &IntegrationFields) -> String {
    let mut keys: Vec<&String> = route_keys.iter().collect();
    keys.sort();
    keys.iter()
        .map(|k| from_route_key(k))
        .find(|n| !n.is_empty())
        .or_else(|| from_target(fields))
        .unwrap_or_else(|| "integration".to_string())
}

/// One integration to be named: its base name and what tells it apart from others of the same base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub base: String,
    pub api_id: String,
    pub integration_id: String,
}

/// The final names, in the order of `candidates`, unique among them. A base name only one integration
/// has is used as is; integrations that share one each get their integration ID appended (and, should
/// two APIs' integrations share an ID too, the API's ID), so that which one keeps the plain name never
/// depends on the order AWS lists them in.
pub fn unique_names(candidates: &[Candidate]) -> Vec<String> {
    let mut by_base: BTreeMap<&str, usize> = BTreeMap::new();
    for c in candidates {
        *by_base.entry(&c.base).or_default() += 1;
    }
    let first: Vec<String> = candidates
        .iter()
        .map(|c| {
            if by_base[c.base.as_str()] == 1 {
                c.base.clone()
            } else {
                with_suffix(&c.base, &slug(&c.integration_id))
            }
        })
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &first {
        *seen.entry(n).or_default() += 1;
    }
    candidates
        .iter()
        .zip(&first)
        .map(|(c, n)| {
            if seen[n.as_str()] == 1 {
                n.clone()
            } else {
                let suffix = format!("{}-{}", slug(&c.integration_id), slug(&c.api_id));
                with_suffix(&c.base, &suffix)
            }
        })
        .collect()
}

/// `base-suffix` within [`MAX_NAME`], shortening the base rather than the suffix.
fn with_suffix(base: &str, suffix: &str) -> String {
    let room = MAX_NAME.saturating_sub(suffix.len() + 1);
    let base = truncate(base.to_string(), room);
    if base.is_empty() {
        truncate(suffix.to_string(), MAX_NAME)
    } else {
        format!("{base}-{suffix}")
    }
}

/// Is `name` a valid DNS-1123 label?
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IntegrationSubtype, IntegrationType};
    use proptest::prelude::*;

    fn uri(u: &str) -> IntegrationFields {
        IntegrationFields {
            integration_type: Some(IntegrationType::HttpProxy),
            integration_uri: Some(u.into()),
            ..Default::default()
        }
    }

    #[test]
    fn route_keys_name_what_the_integration_serves() {
        assert_eq!(from_route_key("GET /orders/{id}"), "get-orders-id");
        assert_eq!(from_route_key("$connect"), "connect");
        assert_eq!(from_route_key("$default"), "default");
        assert_eq!(from_route_key("ANY /{proxy+}"), "any-proxy");
        assert_eq!(
            from_route_key("POST /Orders/v2/Items"),
            "post-orders-v2-items"
        );
    }

    #[test]
    fn the_first_route_key_in_sorted_order_wins_whatever_the_listing_order() {
        let f = IntegrationFields::default();
        let keys = ["POST /orders".to_string(), "GET /orders".to_string()];
        assert_eq!(base_name(&keys, &f), "get-orders");
        let reversed = [keys[1].clone(), keys[0].clone()];
        assert_eq!(base_name(&reversed, &f), "get-orders");
    }

    #[test]
    fn without_routes_the_target_names_it() {
        let lambda = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live";
        assert_eq!(from_target(&uri(lambda)).unwrap(), "orders-api");
        let invocation = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:chat/invocations";
        assert_eq!(from_target(&uri(invocation)).unwrap(), "chat");
        assert_eq!(
            from_target(&uri("https://orders.example.com:8443/v1/{proxy}")).unwrap(),
            "orders-example-com"
        );
        let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/billing/50dc6c495c0c9188/0467ef3c8400ae65";
        assert_eq!(from_target(&uri(listener)).unwrap(), "billing");
        let cloud_map = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abcdef";
        assert_eq!(from_target(&uri(cloud_map)).unwrap(), "srv-abcdef");
        let sqs = IntegrationFields {
            integration_type: Some(IntegrationType::AwsProxy),
            integration_subtype: Some(IntegrationSubtype::SqsSendMessage),
            ..Default::default()
        };
        assert_eq!(from_target(&sqs).unwrap(), "sqs-sendmessage");
        let mock = IntegrationFields {
            integration_type: Some(IntegrationType::Mock),
            ..Default::default()
        };
        assert_eq!(base_name(&[], &mock), "mock");
        assert_eq!(base_name(&[], &uri("%%%")), "integration");
    }

    fn cand(base: &str, api: &str, id: &str) -> Candidate {
        Candidate {
            base: base.into(),
            api_id: api.into(),
            integration_id: id.into(),
        }
    }

    #[test]
    fn shared_names_get_the_integration_id_and_lone_names_stay_plain() {
        let names = unique_names(&[
            cand("default", "api1", "AbC123"),
            cand("get-orders", "api1", "x1"),
            cand("default", "api2", "zz9"),
        ]);
        assert_eq!(names, ["default-abc123", "get-orders", "default-zz9"]);
        // The same ID on two APIs (and the same base): the API tells them apart.
        let names = unique_names(&[cand("a", "api1", "i1"), cand("a", "api2", "i1")]);
        assert_eq!(names, ["a-i1-api1", "a-i1-api2"]);
    }

    proptest! {
        #[test]
        fn names_are_dns_labels_unique_and_independent_of_order(
            items in proptest::collection::vec(("\\PC{0,80}", "[a-z0-9]{1,3}", "[a-zA-Z0-9]{1,10}"), 1..30)
        ) {
            // Integration IDs are unique within an API.
            let mut seen = std::collections::BTreeSet::new();
            let cands: Vec<Candidate> = items
                .into_iter()
                .filter(|(_, api, id)| seen.insert((api.clone(), id.to_ascii_lowercase())))
                .map(|(key, api, id)| cand(&base_name(&[key], &IntegrationFields::default()), &api, &id))
                .collect();
            let names = unique_names(&cands);
            for n in &names {
                prop_assert!(is_dns_label(n), "{n:?}");
            }
            let distinct: std::collections::BTreeSet<_> = names.iter().collect();
            prop_assert_eq!(distinct.len(), names.len());
            let mut reversed = cands.clone();
            reversed.reverse();
            let mut again = unique_names(&reversed);
            again.reverse();
            prop_assert_eq!(again, names);
        }
    }
}
