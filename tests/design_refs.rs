//! Every citation of the design in the repository resolves to docs/design.md (issue 20 item 8). Pure: reads
//! files, needs no stack.
//!
//! A citation is "§N" (a section), "§N rule M", "§N.M" (rule M of section N), or "rule M" / "rules M and K"
//! (a rule wherever it is). Sections are `## N. ...` headings of docs/design.md, rules `### Rule M. ...`
//! headings, and a rule belongs to the section above it. The scan covers src/, tests/, xtask/, benches/,
//! charts/, docs/, testkit/ and README.md; a failure names the file, the line and what is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sections of design.md, and the section each rule sits in.
#[derive(Debug, Default)]
struct Design {
    sections: Vec<u32>,
    rules: BTreeMap<u32, u32>,
}

fn parse_design(text: &str) -> Design {
    let mut design = Design::default();
    let mut section = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ")
            && let Some(n) = leading_number(rest).filter(|(_, after)| after.starts_with('.'))
        {
            section = Some(n.0);
            design.sections.push(n.0);
        } else if let Some(rest) = line.strip_prefix("### Rule ")
            && let Some((n, after)) = leading_number(rest)
            && after.starts_with('.')
        {
            let owner = section.expect("a rule heading before any section heading");
            assert!(
                design.rules.insert(n, owner).is_none(),
                "design.md has two headings for rule {n}"
            );
        }
    }
    design
}

/// The number at the start of `s`, and what follows it.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// What one citation names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cited {
    Section(u32),
    /// A rule, and the section it was cited under (None: "rule M" on its own).
    Rule(u32, Option<u32>),
}

/// Every citation on one line of text.
fn citations(line: &str) -> Vec<Cited> {
    let mut found = Vec::new();
    // "§N", "§N.M", "§N rule M", "§N rules M and K".
    for (at, _) in line.match_indices('§') {
        let rest = line[at + '§'.len_utf8()..].trim_start();
        let Some((section, after)) = leading_number(rest) else {
            continue;
        };
        if let Some(sub) = after.strip_prefix('.')
            && let Some((rule, _)) = leading_number(sub)
        {
            found.push(Cited::Rule(rule, Some(section)));
            continue;
        }
        let rules = rule_numbers(after.trim_start());
        if rules.is_empty() {
            found.push(Cited::Section(section));
        }
        found.extend(rules.into_iter().map(|r| Cited::Rule(r, Some(section))));
    }
    // "rule M" / "Rules M and K" not preceded by a section: those were taken above.
    let lower = line.to_ascii_lowercase();
    for (at, _) in lower.match_indices("rule") {
        let before = lower[..at].trim_end();
        let after_section = before
            .rsplit_once('§')
            .is_some_and(|(_, tail)| tail.trim().chars().all(|c| c.is_ascii_digit()));
        let starts_word = lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if after_section || !starts_word {
            continue;
        }
        found.extend(
            rule_numbers(&line[at..])
                .into_iter()
                .map(|r| Cited::Rule(r, None)),
        );
    }
    found
}

/// The numbers of "rule M", "rules M and K" or "rules M, K and L" at the start of `s` (case-insensitive).
fn rule_numbers(s: &str) -> Vec<u32> {
    let lower = s.to_ascii_lowercase();
    let (plural, rest) = match (lower.strip_prefix("rules "), lower.strip_prefix("rule ")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return vec![],
    };
    let mut numbers = Vec::new();
    let mut rest = rest;
    while let Some((n, after)) = leading_number(rest) {
        numbers.push(n);
        // "rule 6, 400" is one rule and a status code; only "rules" goes on to a list.
        if !plural {
            break;
        }
        rest = match after
            .strip_prefix(" and ")
            .or_else(|| after.strip_prefix(", "))
        {
            Some(r) => r,
            None => break,
        };
    }
    numbers
}

/// Why a citation does not resolve, if it does not.
fn unresolved(design: &Design, cited: &Cited) -> Option<String> {
    match *cited {
        Cited::Section(n) if !design.sections.contains(&n) => {
            Some(format!("§{n} (no `## {n}.` heading)"))
        }
        Cited::Section(_) => None,
        Cited::Rule(r, under) => match (design.rules.get(&r), under) {
            (None, _) => Some(format!("rule {r} (no `### Rule {r}.` heading)")),
            (Some(&owner), Some(s)) if owner != s => {
                Some(format!("§{s} rule {r} (rule {r} is in §{owner})"))
            }
            _ => None,
        },
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files a citation may sit in: sources, docs and the chart; not build output or generated data.
fn files_to_scan() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if ["rs", "md", "yaml", "yml", "tpl", "txt", "toml"]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
            {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut files = vec![root.join("README.md")];
    // testkit/: the shared test crate, once it exists (issue 20 item 7).
    for dir in [
        "src", "tests", "xtask", "benches", "charts", "docs", "testkit",
    ] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

#[test]
fn every_design_citation_resolves_to_docs_design_md() {
    let root = root();
    let design = parse_design(
        &std::fs::read_to_string(root.join("docs/design.md")).expect("docs/design.md exists"),
    );
    // The numbering the code was written against: sections 1 to 9, rules 1 to 9 in §2, 10 and 11 in §8,
    // 12 in §9 (added at the end, as new rules are).
    assert_eq!(design.sections, (1..=9).collect::<Vec<_>>(), "{design:?}");
    for rule in 1..=12 {
        let section = match rule {
            1..=9 => 2,
            10 | 11 => 8,
            _ => 9,
        };
        assert_eq!(design.rules.get(&rule), Some(&section), "rule {rule}");
    }

    let mut checked = 0;
    let mut broken = Vec::new();
    // This file cites missing sections on purpose, to test the scanner.
    let this_file = root.join("tests/design_refs.rs");
    for file in files_to_scan().into_iter().filter(|f| *f != this_file) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            for cited in citations(line) {
                checked += 1;
                if let Some(why) = unresolved(&design, &cited) {
                    let shown = file.strip_prefix(&root).unwrap_or(&file).display();
                    broken.push(format!("{shown}:{}: {why}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    println!("{checked} design citations checked");
    assert!(
        broken.is_empty(),
        "citations that docs/design.md does not resolve:\n{}",
        broken.join("\n")
    );
    // The code cites the design about 90 times; far fewer means the scan stopped finding them.
    assert!(checked >= 60, "only {checked} citations found");
}

#[test]
fn citations_are_read_in_each_form_the_code_uses() {
    use Cited::*;
    let cases: &[(&str, &[Cited])] = &[
        ("(design §6): apiRef", &[Section(6)]),
        ("design §2 rule 5).", &[Rule(5, Some(2))]),
        (
            "(design §2 rules 6 and 9).",
            &[Rule(6, Some(2)), Rule(9, Some(2))],
        ),
        ("(design §2.8: no call)", &[Rule(8, Some(2))]),
        ("(design rule 10);", &[Rule(10, None)]),
        ("// Rules 3 and 4: compare", &[Rule(3, None), Rule(4, None)]),
        ("/// Rule 2's lookup", &[Rule(2, None)]),
        ("(rule 6, 400): only", &[Rule(6, None)]),
        (
            "rules 3, 4 and 5",
            &[Rule(3, None), Rule(4, None), Rule(5, None)],
        ),
        ("§3 and the field table of §1", &[Section(3), Section(1)]),
        // Not citations: a CEL rule, a word that contains "rule", a bare section sign.
        ("each CEL rule on the spec", &[]),
        ("the overrule 5 times", &[]),
        ("see § below", &[]),
    ];
    for (line, expected) in cases {
        assert_eq!(citations(line), *expected, "{line}");
    }
}

#[test]
fn a_citation_design_md_lacks_is_reported() {
    let design = parse_design(
        "## 1. One\n### Rule 1. First\n## 2. Two\n### Rule 2. Second\n## Unnumbered\n",
    );
    assert_eq!(design.sections, vec![1, 2]);
    let missing = |line: &str| -> Vec<String> {
        citations(line)
            .iter()
            .filter_map(|c| unresolved(&design, c))
            .collect()
    };
    assert!(missing("design §2 rule 2, §1, rule 1").is_empty());
    assert_eq!(missing("design §9"), vec!["§9 (no `## 9.` heading)"]);
    assert_eq!(missing("rule 7"), vec!["rule 7 (no `### Rule 7.` heading)"]);
    assert_eq!(missing("§1 rule 2"), vec!["§1 rule 2 (rule 2 is in §2)"]);
}

/// The repository paths design.md and architecture.md name in backquotes (`src/...`, `tests/...`, and
/// `path.rs::item`) exist, and a named item is defined there: a file moved or renamed shows up here
/// rather than as a stale page.
#[test]
fn files_the_design_pages_name_exist() {
    let root = root();
    let mut missing = Vec::new();
    let mut named = 0;
    for page in ["docs/design.md", "docs/architecture.md"] {
        let text = std::fs::read_to_string(root.join(page)).expect("the page exists");
        for quoted in text.split('`').skip(1).step_by(2) {
            let top = quoted.split('/').next().unwrap_or_default();
            let is_path = quoted.contains('/')
                && !quoted.contains(' ')
                && [
                    "src", "tests", "xtask", "benches", "docs", "crds", "charts", "deploy",
                    "testkit",
                ]
                .contains(&top);
            if !is_path {
                continue;
            }
            named += 1;
            let (path, item) = match quoted.split_once("::") {
                Some((path, item)) => (path, Some(item)),
                None => (quoted, None),
            };
            let full = root.join(path);
            if !full.exists() {
                missing.push(format!("{page}: {quoted} (no such file)"));
            } else if let Some(item) = item {
                let source = std::fs::read_to_string(&full).unwrap_or_default();
                if !source.contains(&format!("fn {item}")) {
                    missing.push(format!("{page}: {quoted} (no fn {item} in {path})"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(named >= 20, "only {named} paths found in the design pages");
}
