//! crds/ must hold exactly what the Rust types generate, one file per CRD and nothing else.

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let generated = apigw_operator::crd::crds();
    for (file, yaml) in &generated {
        let path = dir.join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            &committed == yaml,
            "{} is out of date with src/api: regenerate crds/ with\n  cargo run -- crd --dir crds",
            path.display()
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut expected: Vec<String> = generated.into_iter().map(|(f, _)| f).collect();
    expected.sort();
    assert_eq!(files, expected, "crds/ holds exactly the generated CRDs");
}
