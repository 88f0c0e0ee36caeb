//! Tenancy (design §7): which ApiGatewayAccess policy, if any, lets a namespace manage integrations of an
//! API in a region. Pure: the controller supplies the namespace's labels, the policies, and what it
//! learned about the API (its ID, Name and Tags) through each candidate policy's own identity.

use crate::api::{ApiGatewayAccessSpec, ApiMatch};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A policy by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub spec: ApiGatewayAccessSpec,
}

/// What a policy may be asked about an API.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ApiFacts {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

/// Does `selector` select an object with `labels`? (matchLabels and matchExpressions, ANDed; `{}` selects
/// everything.) An unknown operator selects nothing.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let has = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => has.is_some_and(|v| values.contains(v)),
            "NotIn" => has.is_none_or(|v| !values.contains(v)),
            "Exists" => has.is_some(),
            "DoesNotExist" => has.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// `*` matches any run of characters, `?` exactly one; everything else itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last star.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn entry_matches(entry: &ApiMatch, api: &ApiFacts) -> bool {
    if let Some(id) = &entry.id {
        return *id == api.id;
    }
    if let Some(name) = &entry.name {
        return glob_matches(name, &api.name);
    }
    if let Some(tags) = &entry.tags {
        return tags.iter().all(|(k, v)| api.tags.get(k) == Some(v));
    }
    false
}

/// Does the policy allow `region`? (Unset regions: every region.)
pub fn allows_region(policy: &Policy, region: &str) -> bool {
    policy
        .spec
        .regions
        .as_ref()
        .is_none_or(|rs| rs.iter().any(|r| r.0 == region))
}

/// Does the policy allow the API? (Unset apis: every API its identity reaches.)
pub fn allows_api(policy: &Policy, api: &ApiFacts) -> bool {
    policy
        .spec
        .apis
        .as_ref()
        .is_none_or(|entries| entries.iter().any(|e| entry_matches(e, api)))
}

/// The policies that select the namespace, by name (the order §7 picks them in).
pub fn selecting<'a>(
    policies: &'a [Policy],
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<&'a Policy> {
    let mut found: Vec<&Policy> = policies
        .iter()
        .filter(|p| selects(&p.spec.namespace_selector, namespace_labels))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Why a resource may not be managed: one sentence naming what is missing.
pub fn refusal(
    namespace: &str,
    selecting: &[&Policy],
    region: &str,
    region_allowed: bool,
    api: Option<&ApiFacts>,
) -> String {
    if selecting.is_empty() {
        return format!("no ApiGatewayAccess selects namespace {namespace}");
    }
    let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
    let names = names.join(", ");
    if !region_allowed {
        return format!(
            "ApiGatewayAccess {names} selects namespace {namespace} but allows no region {region}"
        );
    }
    match api {
        Some(api) => format!(
            "ApiGatewayAccess {names} selects namespace {namespace} but allows no API {} (name {:?}) in {region}",
            api.id, api.name
        ),
        None => format!(
            "ApiGatewayAccess {names} selects namespace {namespace} but allows no such API in {region}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Region;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn policy(
        name: &str,
        selector: LabelSelector,
        regions: Option<&[&str]>,
        apis: Option<Vec<ApiMatch>>,
    ) -> Policy {
        Policy {
            name: name.into(),
            spec: ApiGatewayAccessSpec {
                namespace_selector: selector,
                role_arn: None,
                external_id: None,
                regions: regions.map(|rs| rs.iter().map(|r| Region(r.to_string())).collect()),
                apis,
            },
        }
    }

    fn team(t: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(&[("team", t)])),
            match_expressions: None,
        }
    }

    fn api(id: &str, name: &str, tags: &[(&str, &str)]) -> ApiFacts {
        ApiFacts {
            id: id.into(),
            name: name.into(),
            tags: labels(tags),
        }
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let ns = labels(&[("team", "payments"), ("env", "prod")]);
        assert!(
            selects(&LabelSelector::default(), &ns),
            "{{}} selects everything"
        );
        assert!(selects(&team("payments"), &ns));
        assert!(!selects(&team("orders"), &ns));
        let expr = |key: &str, op: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        };
        assert!(selects(&expr("env", "In", &["prod", "staging"]), &ns));
        assert!(!selects(&expr("env", "NotIn", &["prod"]), &ns));
        assert!(selects(&expr("tier", "DoesNotExist", &[]), &ns));
        assert!(selects(&expr("team", "Exists", &[]), &ns));
        assert!(!selects(&expr("team", "Bogus", &[]), &ns));
    }

    #[test]
    fn globs() {
        assert!(glob_matches("payments-*", "payments-prod"));
        assert!(glob_matches("payments-*", "payments-"));
        assert!(!glob_matches("payments-*", "orders-prod"));
        assert!(glob_matches("*-prod", "orders-prod"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("*a*b*", "xxaxxbxx"));
    }

    #[test]
    fn an_api_is_allowed_by_id_by_name_glob_or_by_tags() {
        let entries = vec![
            ApiMatch {
                id: Some("a1".into()),
                ..Default::default()
            },
            ApiMatch {
                name: Some("payments-*".into()),
                ..Default::default()
            },
            ApiMatch {
                tags: Some(labels(&[("team", "payments")])),
                ..Default::default()
            },
        ];
        let p = policy("p", team("payments"), None, Some(entries));
        assert!(allows_api(&p, &api("a1", "other", &[])));
        assert!(allows_api(&p, &api("zz", "payments-eu", &[])));
        assert!(allows_api(
            &p,
            &api("zz", "x", &[("team", "payments"), ("env", "prod")])
        ));
        assert!(!allows_api(&p, &api("zz", "orders", &[("team", "orders")])));
        // No allowlist: every API.
        let open = policy("o", team("payments"), None, None);
        assert!(allows_api(&open, &api("zz", "anything", &[])));
    }

    #[test]
    fn regions_allowlist() {
        let p = policy("p", team("a"), Some(&["eu-west-1"]), None);
        assert!(allows_region(&p, "eu-west-1"));
        assert!(!allows_region(&p, "us-east-1"));
        assert!(allows_region(
            &policy("q", team("a"), None, None),
            "us-east-1"
        ));
    }

    #[test]
    fn policies_are_taken_in_name_order() {
        let ps = vec![
            policy("zeta", LabelSelector::default(), None, None),
            policy("alpha", team("a"), None, None),
            policy("beta", team("b"), None, None),
        ];
        let found = selecting(&ps, &labels(&[("team", "a")]));
        let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["alpha", "zeta"]);
        assert!(selecting(&ps[1..], &labels(&[("team", "c")])).is_empty());
    }

    #[test]
    fn refusals_say_what_is_missing() {
        let p = policy("payments", team("payments"), Some(&["eu-west-1"]), None);
        assert_eq!(
            refusal("ns1", &[], "us-east-1", true, None),
            "no ApiGatewayAccess selects namespace ns1"
        );
        assert!(
            refusal("ns1", &[&p], "us-east-1", false, None).contains("allows no region us-east-1")
        );
        let a = api("a9", "orders", &[]);
        let m = refusal("ns1", &[&p], "eu-west-1", true, Some(&a));
        assert!(
            m.contains("a9") && m.contains("orders") && m.contains("payments"),
            "{m}"
        );
    }
}
