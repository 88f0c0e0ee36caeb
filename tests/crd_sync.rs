//! crds/ must hold exactly what the Rust types generate.

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crds/apiintegrations.apigw.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = apigw_operator::crd::crd_yaml();
    assert!(
        committed == generated,
        "{} is out of date with src/api: regenerate it with\n  cargo run -- crd > crds/apiintegrations.apigw.dev.yaml",
        path.display()
    );
}
