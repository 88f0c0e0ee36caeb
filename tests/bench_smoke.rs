//! The side-by-side benchmark (benches/sidebyside.rs), small: 20 resources, `limit` and `ours` (and ACK
//! with 4 workers when an earlier `cargo xtask bench` cached its build), so that the bench cannot rot.
//! It asserts that every phase completes and that the counts agree with what moto holds; it asserts no
//! timing. The rows under API Gateway's quota run small too (ours alone and two of ours on one account;
//! ACK's rows when it is cached).

use testkit::quota::Quota;
use testkit::sidebyside::underquota::{self, Row};
use testkit::sidebyside::{self, Kind, report};

const N: usize = 20;

#[test]
fn the_bench_runs_small_and_its_counts_agree_with_moto() {
    let ack = sidebyside::cached_ack();
    let mut contenders = vec![Kind::Limit, Kind::Ours];
    if ack.is_some() {
        contenders.push(Kind::Ack4);
    }
    let mut cfg = sidebyside::config(
        N,
        contenders.clone(),
        ack,
        env!("CARGO_BIN_EXE_apigw-operator").as_ref(),
    );
    // Short periods: this run checks the machinery, not the figures.
    cfg.drift_s = 4;
    cfg.idle_s = 4;
    cfg.quiet_s = 0.75;
    cfg.settle_max_s = 4;
    let run = sidebyside::run_blocking(&cfg).expect("the bench runs");

    assert_eq!(run.contenders.len(), contenders.len());
    for c in &run.contenders {
        let who = &c.name;
        assert_eq!(c.failure, None, "{who} stopped early");
        assert_eq!(c.not_run, None, "{who} did not run");
        let phases: Vec<&str> = c.phases.iter().map(|p| p.name.as_str()).collect();
        let expected: &[&str] = if c.name == "limit" {
            &["create", "update", "one new", "delete"]
        } else {
            &["create", "update", "idle", "restart", "one new", "delete"]
        };
        assert_eq!(phases, expected, "{who}: phases");
        // What the proxy counted agrees with moto: every resource (and the one added later) was created
        // exactly once, moto held each once, and nothing is left after the delete.
        assert_eq!(
            c.creates_ok,
            N + 1,
            "{who}: successful CreateIntegration calls"
        );
        assert_eq!(
            c.held_after_create, N,
            "{who}: integrations in moto after create"
        );
        assert_eq!(c.duplicates, 0, "{who}: duplicates");
        assert_eq!(c.leftovers, 0, "{who}: leftovers");
        let calls = |phase: &str, op: &str| {
            c.phase(phase)
                .and_then(|p| p.aws.get(op).copied())
                .unwrap_or(0)
        };
        assert_eq!(
            calls("create", "CreateIntegration"),
            N,
            "{who}: creates in the create phase"
        );
        assert!(
            calls("update", "UpdateIntegration") >= N,
            "{who}: an update reached AWS for each"
        );
        assert!(
            calls("delete", "DeleteIntegration") > N,
            "{who}: a delete reached AWS for each"
        );
        // Every contender records the integration on the object at least once per resource.
        let create = c.phase("create").unwrap();
        assert!(
            create.k8s_writes >= N as i64,
            "{who}: writes {}",
            create.k8s_writes
        );
        assert_eq!(
            c.ready_curve.last().map(|(_, r)| *r),
            Some(N),
            "{who}: Ready curve ends at N"
        );
        if c.name != "limit" {
            assert!(c.peak_rss_mib.is_some_and(|m| m > 1.0), "{who}: peak RSS");
        }
    }

    // The report renders from these results.
    let dir = std::env::temp_dir().join(format!("bench-smoke-{:08x}", rand::random::<u32>()));
    let meta = report::Meta::of_this_machine("cargo test --test bench_smoke", "");
    report::write(&dir, &meta, std::slice::from_ref(&run)).expect("the report is written");
    let md = std::fs::read_to_string(dir.join("benchmarks.md")).unwrap();
    for c in &contenders {
        assert!(md.contains(&format!("`{}`", c.name())), "{md}");
    }
    let svg = std::fs::read_to_string(dir.join(format!("benchmarks-{N}.svg"))).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rows_under_the_quota_run_small_and_count_every_call() {
    let ack = sidebyside::cached_ack();
    let mut rows = vec![Row::Ours, Row::OursTwice];
    if ack.is_some() {
        rows.extend([Row::Ack4, Row::AckBesideOurs]);
    }
    let cfg = sidebyside::config(
        N,
        vec![],
        ack,
        env!("CARGO_BIN_EXE_apigw-operator").as_ref(),
    );
    let quota = Quota::API_GATEWAY;
    let run = sidebyside::run_quota_blocking(&cfg, quota, &rows).expect("the quota rows run");
    assert_eq!(run.rows.len(), rows.len());
    for (row, r) in rows.iter().zip(&run.rows) {
        let who = &r.name;
        assert_eq!(r.failure, None, "{who} stopped early");
        assert_eq!(r.not_run, None, "{who} did not run");
        let phases: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["create", "update", "delete"], "{who}: phases");
        for p in &r.phases {
            assert!(p.wall_s.is_some(), "{who} {}: not done", p.name);
            assert_eq!(p.resources, N, "{who} {}: N objects in all", p.name);
            assert_eq!(
                p.parts.len(),
                row.contenders().len(),
                "{who}: one part each"
            );
            for part in &p.parts {
                // Each contender made at least one call per object, on its own APIs.
                assert!(
                    part.calls >= part.resources,
                    "{who} {} {}: {} calls for {} objects",
                    p.name,
                    part.who,
                    part.calls,
                    part.resources
                );
                assert!(part.done_s.is_some(), "{who} {} {}", p.name, part.who);
            }
            // Every call of the phase is on some contender's APIs (the bench's own reads go to moto).
            assert_eq!(
                p.parts.iter().map(|x| x.calls).sum::<usize>(),
                p.calls,
                "{who} {}",
                p.name
            );
            assert!(p.throttled <= p.calls);
        }
        if *row == Row::OursTwice {
            let shares = r.shares();
            assert_eq!(shares.len(), 2, "{shares:?}");
            assert!(shares.iter().all(|(_, s)| *s > 0.0), "{shares:?}");
        }
    }
    // At N = 20 every phase fits in the burst: no bound applies (the figure says so), the throttled
    // share does.
    let goals = underquota::goals(&run);
    let goal = |prefix: &str| goals.iter().find(|g| g.what.starts_with(prefix)).unwrap();
    assert_eq!(
        goal("(a) ours alone: every phase").figure,
        "no finished phase the quota bound"
    );
    assert!(
        goal("(a) ours alone: at most 2 %").met.is_some(),
        "{goals:#?}"
    );

    let dir = std::env::temp_dir().join(format!("bench-quota-{:08x}", rand::random::<u32>()));
    let meta = report::Meta::of_this_machine("cargo test --test bench_smoke", "");
    report::write_quota(&dir, &meta, &run).expect("the report is written");
    let md = std::fs::read_to_string(dir.join("benchmarks.md")).unwrap();
    assert!(
        md.contains("## Under API Gateway's quota (N = 20, 10 calls/s, burst 40)"),
        "{md}"
    );
    assert!(
        md.contains("(b) two of ours: each operator's share"),
        "{md}"
    );
    assert!(md.contains("the emulator's ceiling"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chart_axes_end_on_round_numbers() {
    use sidebyside::report::nice_ceiling;
    assert_eq!(nice_ceiling(7.3), 10.0);
    assert_eq!(nice_ceiling(36.0), 50.0);
    assert_eq!(nice_ceiling(120.0), 200.0);
    assert_eq!(nice_ceiling(2.0), 2.0);
}
