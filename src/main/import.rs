//! `apigw-operator import`: writes an ApiIntegration for each integration API Gateway already holds.

use crate::cli::ImportArgs;
use crate::startup::sdk_config;
use anyhow::Context;
use apigw_operator::aws::CallStats;
use std::sync::Arc;
use std::time::Duration;

/// `apigw-operator import`: list, build, write; progress and the call count on stderr.
pub(crate) async fn import(args: ImportArgs) -> anyhow::Result<()> {
    use apigw_operator::api::ManagementPolicy;
    use apigw_operator::aws::credentials::Identity;
    use apigw_operator::import::{self, Options, Policy, Selection, render};
    anyhow::ensure!(args.aws_rate > 0.0, "--aws-rate must be positive");
    let started = std::time::Instant::now();
    let sdk_config = sdk_config(args.region.as_deref()).await;
    let region = sdk_config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| anyhow::anyhow!("no AWS region: pass --region or set AWS_REGION"))?;
    let identity = Identity {
        role_arn: args.role_arn.clone(),
        external_id: args.external_id.clone(),
        session_name: "apigw-operator-import".into(),
    };
    let stats = Arc::new(CallStats::default());
    let aws = apigw_operator::aws::reader(
        &sdk_config,
        &identity,
        &region,
        Duration::from_secs(args.aws_timeout_seconds.max(1)),
        (args.aws_rate, args.aws_burst),
        stats.clone(),
    )
    .await;
    let selection = Selection {
        ids: args.api_ids.clone(),
        name_globs: args.api_names.clone(),
        tags: args.api_tags.clone(),
    };
    let mut listed = 0usize;
    let retry = import::retry::Retry::IMPORT;
    let (listings, region_info) = import::list::list(&aws, &selection, &retry, |p| {
        if let import::list::Progress::Listed { listing, .. } = &p {
            listed += listing.integrations.len();
            eprintln!("import: {p} ({listed} integrations so far)");
        } else {
            eprintln!("import: {p}");
        }
    })
    .await
    .with_context(|| format!("cannot list API Gateway in {region}"))?;
    let options = Options {
        namespace: args.namespace.clone(),
        policy: Policy {
            management: if args.manage {
                ManagementPolicy::Manage
            } else {
                ManagementPolicy::Observe
            },
        },
    };
    let result = import::import(&listings, &region_info, &options);
    for s in result.skipped() {
        eprintln!("import: {s}");
    }
    for o in result.objects() {
        for l in &o.left_out {
            let name = o.object.metadata.name.as_deref().unwrap_or_default();
            eprintln!("import: {name}: {l}");
        }
    }
    match &args.out_dir {
        None => print!("{}", render::stream(&result)),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create --out-dir {}", dir.display()))?;
            for (name, text) in render::out_dir_files(&result, args.namespace.as_deref()) {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    let counts = stats.counts();
    let calls: u64 = counts.values().sum();
    let by_op: Vec<String> = counts.iter().map(|(op, n)| format!("{op} {n}")).collect();
    eprintln!(
        "import: {} ApiIntegrations written, {} integrations skipped, from {} APIs in {region} in \
         {:.1} s; {calls} AWS calls ({})",
        result.objects().count(),
        result.skipped().count(),
        result.files.len(),
        started.elapsed().as_secs_f64(),
        by_op.join(", ")
    );
    if result.files.is_empty() {
        eprintln!("import: no API in {region} matched the selection");
    }
    Ok(())
}
