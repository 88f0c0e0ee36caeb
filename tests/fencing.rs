//! Fencing (design rule 10), end to end: a leader frozen with SIGSTOP in the middle of a batch of creates
//! or of updates, while a stand-by takes over, finishes the batch and applies the next change, writes
//! nothing when it is resumed: no AWS call, no Kubernetes write. Against the real stack and moto; needs
//! `cargo xtask stack up` (or `cargo xtask test`).

mod common;
mod e2e;

use common::{Manifest, TempNamespace, eventually, kubectl_ok};
use e2e::*;
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::process::{Signal, signal};

const LEASE_SECONDS: u64 = 6;
const N: usize = 20;

fn is_leader(port: u16) -> Option<bool> {
    let (_, text) = http_get(&format!("http://127.0.0.1:{port}/metrics"))?;
    Some(metric(&text, "apigw_operator_leader")? == 1.0)
}

fn is_write(op: &str) -> bool {
    matches!(
        op,
        "CreateIntegration" | "UpdateIntegration" | "DeleteIntegration"
    )
}

fn writes(op: &Operator) -> usize {
    op.calls().iter().filter(|c| is_write(&c.op)).count()
}

/// AWS writes `op` began at or after `from_ms` (Unix ms). The call log stamps a call when it is sent and
/// writes the line when the answer (or the timeout) comes, so a write sent just before the freeze and
/// answered after the wake is not one of these.
fn writes_begun_since(op: &Operator, from_ms: u64) -> Vec<String> {
    op.calls()
        .iter()
        .filter(|c| is_write(&c.op) && c.ms >= from_ms)
        .map(|c| format!("{} at {} ({})", c.op, c.ms, c.outcome))
        .collect()
}

/// name → (resourceVersion, status) of every ApiIntegration in `ns`.
fn objects(ns: &str) -> BTreeMap<String, (String, serde_json::Value)> {
    let list: serde_json::Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "apiintegrations",
        "-n",
        ns,
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                (
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    o["status"].clone(),
                ),
            )
        })
        .collect()
}

fn all_ready_at(ns: &str, generation: i64) -> Option<()> {
    let objs = objects(ns);
    (objs.len() == N
        && objs.values().all(|(_, status)| {
            status["observedGeneration"].as_i64() == Some(generation)
                && status["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        }))
    .then_some(())
}

/// What the old leader is doing when it is frozen.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Batch {
    /// N new resources: A is part way through their CreateIntegration calls.
    Creates,
    /// N resources in sync, then a change to all: A is part way through their UpdateIntegration calls.
    Updates,
}

/// Two replicas (A leads); a batch begins; A is frozen with SIGSTOP part way through it; B takes over,
/// finishes the batch and applies the user's next change; A is resumed. A must exit having sent no AWS
/// write and changed no object, and AWS must hold exactly N integrations, each at the newest spec and
/// each named by one status.
fn freeze_the_leader_mid_batch(prefix: &str, batch: Batch) {
    let ns = TempNamespace::new(prefix);
    let n = &ns.name;
    let moto = Moto::new();
    let api = moto.create_api("HTTP");
    let lease = format!("apigw-{n}");
    let start = |port: u16, pod: &str| {
        Operator::start(
            n,
            &[
                "--leader-election",
                "--lease-name",
                &lease,
                "--lease-namespace",
                n,
                "--lease-duration-seconds",
                &LEASE_SECONDS.to_string(),
                "--aws-timeout-seconds",
                "2",
                // Slow writes, so that the batch is still under way when the leader is frozen.
                "--aws-rate",
                "4",
                "--aws-burst",
                "1",
                "--http-addr",
                &format!("127.0.0.1:{port}"),
            ],
            &[("POD_NAME", pod)],
        )
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start(port_a, "replica-a");
    eventually("replica A to lead", Duration::from_secs(60), || {
        is_leader(port_a).filter(|l| *l)
    });
    let b = start(port_b, "replica-b");
    eventually("replica B to stand by", Duration::from_secs(60), || {
        is_leader(port_b).filter(|l| !*l)
    });

    let manifest = |i: usize, timeout: u32| {
        Manifest::http_proxy(&format!("it-{i:02}"), &api).spec_field("timeoutInMillis", timeout)
    };
    // The generation B must reach after the batch, and after the user's next change.
    let (batch_generation, op) = match batch {
        Batch::Creates => (1, "CreateIntegration"),
        Batch::Updates => {
            for i in 0..N {
                manifest(i, 10_000).apply(n);
            }
            eventually("A to create all", Duration::from_secs(120), || {
                all_ready_at(n, 1)
            });
            (2, "UpdateIntegration")
        }
    };
    let done_before = a.count(op);
    let batch_timeout = if batch == Batch::Creates {
        10_000
    } else {
        12_000
    };
    for i in 0..N {
        manifest(i, batch_timeout).apply(n);
    }
    eventually(
        "A to be part way through the batch",
        Duration::from_secs(60),
        || (a.count(op) >= done_before + 3).then_some(()),
    );
    let pid_a = a.pid().expect("A runs");
    assert!(signal(pid_a, Signal::Stop), "kill -STOP {pid_a}");
    println!(
        "froze A after {} of {N} {op} calls",
        a.count(op) - done_before
    );

    eventually("replica B to lead", Duration::from_secs(60), || {
        is_leader(port_b).filter(|l| *l)
    });
    eventually("B to finish the batch", Duration::from_secs(120), || {
        all_ready_at(n, batch_generation)
    });
    // The user's next change, applied by B.
    for i in 0..N {
        manifest(i, 15_000).apply(n);
    }
    eventually("B to apply the change", Duration::from_secs(120), || {
        all_ready_at(n, batch_generation + 1)
    });
    let before = objects(n);
    let b_writes = writes(&b);

    let woken_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(signal(pid_a, Signal::Cont), "kill -CONT {pid_a}");
    eventually(
        "A to notice it lost the Lease and exit",
        Duration::from_secs(30),
        || (!a.is_running()).then_some(()),
    );
    // Give any straggler of A's a moment to land (it has exited, so nothing can be pending).
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(
        writes_begun_since(&a, woken_at),
        Vec::<String>::new(),
        "A sent AWS writes after it woke:\n{}",
        a.log_text()
    );
    assert_eq!(
        objects(n),
        before,
        "an object changed after A woke (a status write by A?)\n{}",
        a.log_text()
    );
    assert_eq!(writes(&b), b_writes, "B kept writing with nothing to do");
    assert!(
        a.log_text().contains("lost the leader lease"),
        "{}",
        a.log_text()
    );

    // AWS holds exactly one integration per resource, each at the newest spec, each named by a status.
    let held = moto.integrations(&api);
    assert_eq!(held.len(), N, "duplicates or losses: {held:#?}");
    let named: Vec<String> = before
        .values()
        .map(|(_, s)| s["integrationId"].as_str().unwrap().to_string())
        .collect();
    for integration in &held {
        let id = integration["integrationId"].as_str().unwrap();
        assert_eq!(
            named.iter().filter(|n| *n == id).count(),
            1,
            "integration {id} is named by no status, or by two"
        );
        assert_eq!(
            integration["timeoutInMillis"].as_i64(),
            Some(15_000),
            "{integration}"
        );
    }
}

#[test]
fn a_leader_frozen_mid_batch_of_creates_writes_nothing_when_it_wakes() {
    freeze_the_leader_mid_batch("fence-creates", Batch::Creates);
}

/// The first report: a leader woken mid-batch of updates sent its stale updates and left
/// integrations at the older spec under statuses that said in sync.
#[test]
fn a_leader_frozen_mid_batch_of_updates_writes_nothing_when_it_wakes() {
    freeze_the_leader_mid_batch("fence-updates", Batch::Updates);
}
