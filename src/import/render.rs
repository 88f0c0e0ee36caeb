//! The import as YAML: one multi-document file per API, each object preceded by a comment saying which
//! integration it is and which routes call it, a remark beside a field kept as an ID, the integrations
//! left out as comments; and the kustomization.yaml that lists the files.

use super::{ApiFile, Import, ImportedObject, Skipped};

/// One object as YAML, with its comments.
pub fn object_yaml(o: &ImportedObject) -> String {
    let yaml = serde_saphyr::to_string(&o.object).expect("an ApiIntegration always serializes");
    let mut out = String::new();
    for h in &o.header {
        out.push_str(&comment(h));
    }
    let mut in_spec = false;
    for line in yaml.lines() {
        out.push_str(line);
        if line == "spec:" {
            in_spec = true;
        } else if in_spec && !line.starts_with(' ') {
            in_spec = false;
        }
        let key = line.trim_start().split(':').next().unwrap_or_default();
        let top_of_spec = in_spec && line.starts_with("  ") && !line.starts_with("   ");
        if top_of_spec {
            for note in o.notes.iter().filter(|n| n.key == key) {
                out.push_str("  # ");
                out.push_str(&one_line(&note.text));
            }
        }
        out.push('\n');
    }
    out
}

/// A skipped integration as a comment.
pub fn skipped_comment(s: &Skipped) -> String {
    comment(&format!("skipped: {s}"))
}

fn comment(text: &str) -> String {
    format!("# {}\n", one_line(text))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// One API's file: a comment naming the API, its objects as YAML documents, then the integrations left
/// out, as comments.
pub fn api_file(f: &ApiFile) -> String {
    let protocol = match f.api.protocol {
        crate::plan::Protocol::Http => "HTTP",
        crate::plan::Protocol::WebSocket => "WebSocket",
    };
    let mut out = comment(&format!(
        "Written by `apigw-operator import` from {protocol} API {} ({}): {} integration(s), {} skipped.",
        f.api.name,
        f.api.id,
        f.objects.len(),
        f.skipped.len()
    ));
    let docs: Vec<String> = f.objects.iter().map(object_yaml).collect();
    out.push_str(&docs.join("---\n"));
    for s in &f.skipped {
        out.push_str(&skipped_comment(s));
    }
    out
}

/// The files to write under --out-dir: one per API that has at least one object (a file of comments
/// only is no resource kustomize or kubectl can take), and kustomization.yaml listing them. An API whose
/// integrations were all left out is named in the kustomization's comments.
pub fn out_dir_files(import: &Import, namespace: Option<&str>) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut k = String::from(
        "# Written by `apigw-operator import`: one file per API.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
    );
    if let Some(ns) = namespace {
        k.push_str(&format!("namespace: {ns}\n"));
    }
    k.push_str("resources:\n");
    let mut empty = Vec::new();
    for f in &import.files {
        if f.objects.is_empty() {
            empty.push(f);
            continue;
        }
        k.push_str(&format!("  - {}\n", f.file_name));
        files.push((f.file_name.clone(), api_file(f)));
    }
    if import.files.iter().all(|f| f.objects.is_empty()) {
        // `resources:` with nothing under it would be null; an empty list is what is meant.
        k = k.replace("resources:\n", "resources: []\n");
    }
    for f in empty {
        k.push_str(&comment(&format!(
            "API {} ({}): nothing imported, {} integration(s) skipped",
            f.api.name,
            f.api.id,
            f.skipped.len()
        )));
        for s in &f.skipped {
            k.push_str(&skipped_comment(s));
        }
    }
    files.push(("kustomization.yaml".to_string(), k));
    files
}

/// Everything as one YAML stream (stdout).
pub fn stream(import: &Import) -> String {
    let files: Vec<String> = import.files.iter().map(api_file).collect();
    files.join("---\n")
}
