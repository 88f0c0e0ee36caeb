//! Which APIs an import takes: `--api-id` (exact), `--api-name` (a glob: `*` any run of characters, `?`
//! one character) and `--api-tag k=v`. Each option may be repeated; an API is taken when it matches one
//! of the IDs or names given (any API when neither is given) and carries every tag given.

use crate::plan::ApiSummary;

/// One `--api-tag key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: String,
}

impl std::str::FromStr for TagFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(TagFilter {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err(format!("{s:?} is not key=value")),
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub ids: Vec<String>,
    pub name_globs: Vec<String>,
    pub tags: Vec<TagFilter>,
}

impl Selection {
    /// Does the selection take `api`?
    pub fn takes(&self, api: &ApiSummary) -> bool {
        let named = (self.ids.is_empty() && self.name_globs.is_empty())
            || self.ids.contains(&api.id)
            || self.name_globs.iter().any(|g| glob_matches(g, &api.name));
        named
            && self
                .tags
                .iter()
                .all(|t| api.tags.get(&t.key) == Some(&t.value))
    }

    /// The APIs taken out of the region's, and the `--api-id`s that name no API of the region (an
    /// error: a mistyped ID must not pass as "nothing to import").
    pub fn apply<'a>(&self, apis: &'a [ApiSummary]) -> (Vec<&'a ApiSummary>, Vec<&str>) {
        let taken = apis.iter().filter(|a| self.takes(a)).collect();
        let missing = self
            .ids
            .iter()
            .filter(|id| !apis.iter().any(|a| a.id == **id))
            .map(String::as_str)
            .collect();
        (taken, missing)
    }
}

/// Does `text` match `glob` (`*` any run, `?` any one character, everything else itself)?
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point (the last `*`).
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                gi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg + 1;
                    ti = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Protocol;
    use std::collections::BTreeMap;

    fn api(id: &str, name: &str, tags: &[(&str, &str)]) -> ApiSummary {
        ApiSummary {
            id: id.into(),
            name: name.into(),
            protocol: Protocol::Http,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("orders-*", "orders-prod"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("o?ders", "orders"));
        assert!(glob_matches("*-api-*", "team-api-v2"));
        assert!(glob_matches("a*b*c", "aXXbYYbZc"));
        assert!(!glob_matches("orders-*", "order-prod"));
        assert!(!glob_matches("orders", "orders-prod"));
        assert!(!glob_matches("?", ""));
    }

    #[test]
    fn ids_and_names_add_up_and_tags_narrow() {
        let apis = [
            api("a1", "orders", &[("env", "prod")]),
            api("a2", "orders-v2", &[("env", "dev")]),
            api("a3", "chat", &[("env", "prod")]),
        ];
        let ids = |s: &Selection| {
            let (taken, missing) = s.apply(&apis);
            (
                taken.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
                missing.into_iter().map(str::to_string).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            ids(&Selection::default()),
            (vec!["a1", "a2", "a3"], Vec::<String>::new())
        );
        let s = Selection {
            ids: vec!["a3".into(), "nope".into()],
            name_globs: vec!["orders*".into()],
            tags: vec![],
        };
        assert_eq!(ids(&s), (vec!["a1", "a2", "a3"], vec!["nope".to_string()]));
        let s = Selection {
            tags: vec!["env=prod".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(ids(&s), (vec!["a1", "a3"], Vec::<String>::new()));
        let s = Selection {
            name_globs: vec!["orders*".into()],
            tags: vec!["env=prod".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(ids(&s), (vec!["a1"], Vec::<String>::new()));
        assert!("novalue".parse::<TagFilter>().is_err());
        assert!("=v".parse::<TagFilter>().is_err());
        assert_eq!(
            "k=".parse::<TagFilter>().unwrap(),
            TagFilter {
                key: "k".into(),
                value: String::new()
            }
        );
    }
}
