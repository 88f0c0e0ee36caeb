//! The chaos program behind `cargo xtask chaos` and tests/chaos.rs: one storm of every fault at once
//! against the operator, then a check of the outcome from both sides (Kubernetes and moto).
//!
//! Phases:
//! - A, crash and AWS storm: rounds of M resources created, every one updated, half deleted, while the
//!   single operator is SIGKILLed every 0.5–3 s and restarted at once, and the fault proxy spoils a share
//!   of the AWS calls (429, 500, 503, reset, slow past the timeout, applied but answer lost).
//! - Throughout, the proxy keeps API Gateway's quota for the account (10/s, burst 40 unless APIGW_QUOTA
//!   says otherwise) in front of its storm, as AWS does: the operator's calls, every life and replica
//!   together, must stay within it in every window, and the table shows the 429s the quota gave.
//! - B, control plane: kube-apiserver SIGKILLed and restarted; etcd compacted and the API server restarted
//!   again (the operator's watch can only be answered 410 Gone, so it must re-list); etcd SIGKILLed and
//!   restarted. The operator must live through all three (same pid), and the AWS storm goes on.
//! - C, hand-overs: two replicas with leader election; the lease holder (mostly) is SIGKILLed at random
//!   and restarted at once, while every resource is updated again.
//! - Freezes: the lease holder is stopped (SIGSTOP) part way through a batch of updates, for longer than
//!   the lease; the stand-by takes over and applies the change; the frozen one is resumed (SIGCONT) and
//!   must send no AWS write before it notices it lost the Lease and exits; it is then started again.
//! - Calm: the storm ends; the time until everything is Ready and equal to moto is measured; check 1.
//! - D, moto restarted: every API and integration gone. Resources by apiRef heal once the APIs are made
//!   again under the same names; resources by plain apiId say ApiNotFound with bounded calls, and their
//!   deletion completes. Check 2, then every resource is deleted and moto must be empty.
//!
//! The seed fixes the kill intervals, which replica is killed, and which calls the proxy spoils, in the
//! order they arrive; the interleaving with the operator's own timing is not fixed, so a seed replays the
//! same storm, not the same run.

pub use testkit::control;
use testkit::process::{Signal, last_lines, signal};
use testkit::quota::Quota;

use crate::common::{TempNamespace, kubectl, kubectl_stdin};
use crate::e2e::{
    Call, FaultProxy, Moto, Operator, ProxyCall, Storm, StormFault, apigw_client, mismatches,
};
use control::PrivateMoto;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The ceiling of the operator's client-side budget in the storm (its defaults).
const RATE: f64 = 10.0;
const BURST: usize = 40;
/// The operator's AWS timeout in the storm; slow answers are held back longer than that.
const AWS_TIMEOUT_S: u64 = 2;
const SLOW_BY: Duration = Duration::from_secs(3);
const SLOW_RETRY_S: u64 = 5;
/// APIs by name (apiRef) and by ID (apiId).
const NAMED_APIS: [&str; 2] = ["chaos-orders", "chaos-billing"];
const ID_APIS: usize = 2;

/// What a storm does; `Config::ci()` is the size `cargo xtask test` runs, `Config::from_env()` what
/// `cargo xtask chaos` asks for.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub rounds: usize,
    pub resources: usize,
    /// SIGKILLs of the single operator in phase A, and of replicas in phase C (at least these many).
    pub kills_single: usize,
    pub kills_handover: usize,
    /// Leaders frozen (SIGSTOP) for longer than the lease, then resumed, after phase C's kills.
    pub freezes: usize,
    /// Share of AWS calls the proxy spoils.
    pub share: f64,
    /// Longest wait for convergence after the last fault.
    pub converge_within: Duration,
    /// API Gateway's quota the proxy keeps per account (None: moto's unlimited answers).
    pub quota: Option<Quota>,
}

impl Config {
    pub fn ci() -> Config {
        Config {
            seed: 14,
            rounds: 1,
            resources: 12,
            kills_single: 6,
            kills_handover: 4,
            freezes: 2,
            share: 0.3,
            converge_within: Duration::from_secs(180),
            quota: Some(Quota::API_GATEWAY),
        }
    }

    /// CHAOS_SEED, CHAOS_ROUNDS, CHAOS_RESOURCES (defaults: a seed from the clock, 1 round, 100 resources),
    /// APIGW_QUOTA (`RATE/BURST` or `off`; default API Gateway's 10/40).
    pub fn from_env() -> Config {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = get("CHAOS_SEED").unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
        let resources = get("CHAOS_RESOURCES").unwrap_or(100).max(2) as usize;
        Config {
            seed,
            rounds: get("CHAOS_ROUNDS").unwrap_or(1).max(1) as usize,
            resources,
            kills_single: 22,
            kills_handover: 10,
            freezes: 4,
            share: 0.3,
            converge_within: Duration::from_secs(600),
            quota: Quota::from_env_or(Some(Quota::API_GATEWAY)).expect("APIGW_QUOTA"),
        }
    }
}

/// One ApiIntegration of the storm and where it points.
#[derive(Clone, Debug)]
struct Resource {
    name: String,
    /// Some(index into NAMED_APIS) for apiRef, None for apiId.
    named: Option<usize>,
    id_api: usize,
    version: u32,
    deleted: bool,
}

impl Resource {
    fn spec(&self, id_apis: &[String]) -> Value {
        let v = self.version;
        let mut spec = json!({
            "integrationType": "HTTP_PROXY",
            "integrationMethod": "GET",
            "integrationUri": format!("https://example.com/{}/v{v}", self.name),
            "payloadFormatVersion": "1.0",
            "description": format!("chaos {} v{v}", self.name),
            "timeoutInMillis": 9000 + 1000 * v,
            "requestParameters": {"append:header.x-chaos": format!("v{v}")},
        });
        if v >= 2 {
            spec["requestParameters"]["append:querystring.round"] = json!(v.to_string());
        }
        match self.named {
            Some(k) => spec["apiRef"] = json!({"name": NAMED_APIS[k], "tags": {"suite": "chaos"}}),
            None => spec["apiId"] = json!(id_apis[self.id_api]),
        }
        spec
    }

    fn manifest(&self, id_apis: &[String]) -> Value {
        json!({"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiIntegration",
               "metadata": {"name": self.name}, "spec": self.spec(id_apis)})
    }
}

/// An operator process and the times (Unix ms) it was SIGKILLed, which split its call log into lives.
struct Slot {
    op: Operator,
    kills: Vec<u64>,
    name: &'static str,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the killer did.
#[derive(Default)]
struct KillFigures {
    kills: AtomicUsize,
    mid_call: AtomicUsize,
    mid_write: AtomicUsize,
}

/// The outcome seen from both sides at one moment.
#[derive(Debug, Default, Clone)]
pub struct Check {
    pub live: usize,
    pub ready: usize,
    pub equal: usize,
    pub not_ready: BTreeMap<String, usize>,
    pub without_reason: Vec<String>,
    pub mismatched: Vec<String>,
    pub duplicates: Vec<String>,
    pub leaks: Vec<String>,
    pub deleted_in_moto: Vec<String>,
    pub deleted_in_kube: Vec<String>,
    pub integrations_in_moto: usize,
}

impl Check {
    fn clean(&self) -> bool {
        self.ready == self.live
            && self.equal == self.live
            && self.without_reason.is_empty()
            && self.duplicates.is_empty()
            && self.leaks.is_empty()
            && self.deleted_in_moto.is_empty()
            && self.deleted_in_kube.is_empty()
    }
}

/// The figures a run produces, for the table and for the tests' assertions.
#[derive(Debug, Default)]
pub struct Figures {
    pub created: usize,
    pub updates: usize,
    pub deleted: usize,
    pub kills_single: usize,
    pub kills_handover: usize,
    pub kills_mid_call: usize,
    pub kills_mid_write: usize,
    pub freezes: usize,
    /// Freezes made while an AWS write was in flight (a batch under way).
    pub freezes_mid_write: usize,
    /// AWS writes a frozen leader sent after it was resumed (must be none), one line per write.
    pub writes_after_wake: Vec<String>,
    /// The longest a resumed leader took to notice it lost the Lease and exit.
    pub slowest_exit_after_wake: Option<Duration>,
    pub leaderships: usize,
    pub unexpected_exits: Vec<String>,
    pub faults: BTreeMap<StormFault, usize>,
    pub apiserver_restarts: usize,
    pub etcd_restarts: usize,
    pub compactions: usize,
    pub watch_410s: usize,
    pub pid_kept_through_control_plane: bool,
    pub converge_after_last_fault: Option<Duration>,
    pub check1: Check,
    pub rate_worst_ratio: f64,
    pub rate_violations: Vec<String>,
    pub busiest_second: usize,
    /// Against the quota: the worst window's share of its bound, for the operator's calls (every life and
    /// replica) and for the calls the proxy admitted; windows over; API Gateway calls the quota admitted
    /// and refused (429).
    pub quota_worst_ratio: (f64, f64),
    pub quota_violations: Vec<String>,
    pub quota_admitted: usize,
    pub quota_throttled: usize,
    pub calls_total: usize,
    pub moto_restart_api_not_found_in: Option<Duration>,
    pub calls_while_api_not_found: (usize, f64, usize),
    pub healed_by_ref: (usize, usize),
    pub healed_in: Option<Duration>,
    pub by_id_api_not_found: (usize, usize),
    pub by_id_deleted: bool,
    pub check2: Check,
    pub left_in_moto_after_delete_all: usize,
    pub wall: Duration,
}

/// Runs the storm described by `cfg`, prints the table, and returns the figures (the caller asserts).
pub fn run(cfg: &Config) -> Figures {
    let wall = Instant::now();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut fig = Figures::default();
    let ns = TempNamespace::new("chaos");
    let n = ns.name.clone();
    let mut moto_proc = PrivateMoto::start();
    let moto = Moto {
        client: apigw_client(&moto_proc.endpoint),
    };
    let make_apis = |moto: &Moto| {
        for name in NAMED_APIS {
            moto.create_named_api(name, "HTTP", &[("suite", "chaos")]);
        }
    };
    make_apis(&moto);
    let id_apis: Vec<String> = (0..ID_APIS)
        .map(|i| moto.create_named_api(&format!("chaos-by-id-{i}"), "HTTP", &[]))
        .collect();
    let proxy = FaultProxy::start_to(&moto_proc.endpoint);
    if let Some(quota) = cfg.quota {
        proxy.keep_quota(quota);
    }
    proxy.storm(Storm {
        seed: cfg.seed,
        share: cfg.share,
        slow_by: SLOW_BY,
    });
    let proxy = Arc::new(proxy);
    let lease = format!("chaos-{:08x}", rand::random::<u32>());
    let start_op = |leader_election: bool, pod: &str| {
        let aws_timeout = AWS_TIMEOUT_S.to_string();
        let slow = SLOW_RETRY_S.to_string();
        let mut args = vec![
            "--aws-timeout-seconds",
            &aws_timeout,
            "--slow-retry-seconds",
            &slow,
            "--resync-seconds",
            "20",
        ];
        if leader_election {
            args.extend([
                "--leader-election",
                "--lease-name",
                &lease,
                "--lease-namespace",
                &n,
                "--lease-duration-seconds",
                // The shortest that fences a 2 s AWS timeout: 2 + 1 (margin) + 1.5 (renewals).
                "5",
            ]);
        }
        Operator::start(
            &n,
            &args,
            &[
                ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
                ("POD_NAME", pod),
                // The watcher's debug lines say when a watch ended with 410 Gone.
                (
                    "APIGW_LOG",
                    "info,apigw_operator=debug,kube_runtime::watcher=debug",
                ),
            ],
        )
    };

    // Phase A: crash storm and AWS storm over the workload.
    let slots = Arc::new(Mutex::new(vec![Slot {
        op: start_op(false, "single"),
        kills: Vec::new(),
        name: "single",
    }]));
    let killer_rng = StdRng::seed_from_u64(rng.random());
    let (figures_a, stop_a, killer) = spawn_killer(
        slots.clone(),
        proxy.clone(),
        killer_rng,
        cfg.kills_single,
        false,
        &n,
        &lease,
    );
    let mut resources: Vec<Resource> = Vec::new();
    for round in 0..cfg.rounds {
        let batch: Vec<Resource> = (0..cfg.resources)
            .map(|i| Resource {
                name: format!("r{round}-{i:03}"),
                // Kinds alternate; APIs change every four, so the survivors (i % 4 in {0, 3}) use them all.
                named: (i % 2 == 0).then_some((i / 4) % NAMED_APIS.len()),
                id_api: (i / 4) % ID_APIS,
                version: 1,
                deleted: false,
            })
            .collect();
        apply_all(&n, &batch, &id_apis);
        fig.created += batch.len();
        std::thread::sleep(Duration::from_millis(rng.random_range(4000..9000)));
        let mut batch: Vec<Resource> = batch
            .into_iter()
            .map(|r| Resource { version: 2, ..r })
            .collect();
        apply_all(&n, &batch, &id_apis);
        fig.updates += batch.len();
        std::thread::sleep(Duration::from_millis(rng.random_range(3000..6000)));
        let doomed: Vec<String> = batch
            .iter_mut()
            .enumerate()
            // Half of them, of both kinds (apiRef at even indices, apiId at odd ones).
            .filter(|(i, _)| i % 4 == 1 || i % 4 == 2)
            .map(|(_, r)| {
                r.deleted = true;
                r.name.clone()
            })
            .collect();
        delete_some(&n, &doomed);
        fig.deleted += doomed.len();
        resources.extend(batch);
    }
    stop_a.store(true, Ordering::SeqCst);
    killer.join().expect("the killer thread");
    fig.kills_single = figures_a.kills.load(Ordering::SeqCst);

    // Phase B: control plane faults, one operator process that must live through them. It must be past
    // its start-up first: an operator that cannot reach the API server while starting exits with a
    // message (by design: the kubelet starts it again), which is not what this phase is about.
    wait_for(
        "the operator's latest start to run its controller",
        Duration::from_secs(60),
        || {
            let s = slots.lock().unwrap();
            let starts = s[0].kills.len() + 1;
            (s[0].op.log_text().matches("controller started").count() >= starts).then_some(())
        },
    );
    let pid_before = slots.lock().unwrap()[0].op.pid();
    fig.apiserver_restarts += 1;
    control::restart_stack_process("kube-apiserver", control::apiserver_ready);
    std::thread::sleep(Duration::from_secs(5));
    control::compact_etcd();
    fig.compactions += 1;
    control::restart_stack_process("kube-apiserver", control::apiserver_ready);
    fig.apiserver_restarts += 1;
    std::thread::sleep(Duration::from_secs(5));
    let etcd_port = control::etcd_port();
    control::restart_stack_process("etcd", || control::etcd_healthy(etcd_port));
    fig.etcd_restarts += 1;
    wait_for(
        "the API server to be ready after etcd's restart",
        Duration::from_secs(120),
        || control::apiserver_ready().then_some(()),
    );
    std::thread::sleep(Duration::from_secs(5));
    {
        let mut s = slots.lock().unwrap();
        let alive = s[0].op.is_running();
        fig.pid_kept_through_control_plane = alive && s[0].op.pid() == pid_before;
        if !alive {
            fig.unexpected_exits.push(format!(
                "single operator exited during control-plane faults:\n{}",
                last_lines(&s[0].op.log_text(), 20)
            ));
        }
        fig.watch_410s = count_410(&s[0].op.log_text());
        // Phase C replaces it: SIGTERM, a clean stop.
        if alive {
            s[0].op.terminate(Duration::from_secs(20));
        }
    }

    // Phase C: two replicas with leader election; kills land on the holder mostly, mid-write.
    let calls_single;
    {
        let mut s = slots.lock().unwrap();
        let single = s.pop().unwrap();
        drop(s);
        calls_single = lives(&single);
        let mut s = slots.lock().unwrap();
        s.push(Slot {
            op: start_op(true, "replica-a"),
            kills: Vec::new(),
            name: "replica-a",
        });
        s.push(Slot {
            op: start_op(true, "replica-b"),
            kills: Vec::new(),
            name: "replica-b",
        });
        drop(s);
    }
    let killer_rng = StdRng::seed_from_u64(rng.random());
    let (figures_c, stop_c, killer) = spawn_killer(
        slots.clone(),
        proxy.clone(),
        killer_rng,
        cfg.kills_handover,
        true,
        &n,
        &lease,
    );
    std::thread::sleep(Duration::from_millis(rng.random_range(3000..6000)));
    for r in resources.iter_mut().filter(|r| !r.deleted) {
        r.version = 3;
    }
    let live: Vec<Resource> = resources.iter().filter(|r| !r.deleted).cloned().collect();
    apply_all(&n, &live, &id_apis);
    fig.updates += live.len();
    stop_c.store(true, Ordering::SeqCst);
    killer.join().expect("the killer thread");
    fig.kills_handover = figures_c.kills.load(Ordering::SeqCst);
    fig.kills_mid_call =
        figures_a.mid_call.load(Ordering::SeqCst) + figures_c.mid_call.load(Ordering::SeqCst);
    fig.kills_mid_write =
        figures_a.mid_write.load(Ordering::SeqCst) + figures_c.mid_write.load(Ordering::SeqCst);

    // Freezes: the holder stopped mid-batch for longer than the lease, the stand-by applying the change.
    for _ in 0..cfg.freezes {
        let next = resources
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| r.version)
            .max()
            .unwrap_or(0)
            + 1;
        for r in resources.iter_mut().filter(|r| !r.deleted) {
            r.version = next;
        }
        let live: Vec<Resource> = resources.iter().filter(|r| !r.deleted).cloned().collect();
        fig.updates += live.len();
        freeze_the_holder(&slots, &proxy, &mut rng, &n, &lease, &mut fig, || {
            apply_all(&n, &live, &id_apis)
        });
    }

    // Calm: the last fault is now.
    proxy.calm();
    let last_fault = Instant::now();
    fig.faults = proxy.storm_counts();
    let all_apis = |moto: &Moto| -> Vec<String> {
        let out = crate::e2e::block_on(moto.client.get_apis().send()).expect("moto lists APIs");
        out.items()
            .iter()
            .filter_map(|a| a.api_id().map(str::to_string))
            .collect()
    };
    let converged = poll_check(&n, &moto, &resources, &all_apis(&moto), cfg.converge_within);
    fig.converge_after_last_fault = converged.0.then(|| last_fault.elapsed());
    fig.check1 = converged.1;
    {
        let mut s = slots.lock().unwrap();
        fig.leaderships = s
            .iter()
            .map(|slot| {
                slot.op
                    .log_text()
                    .matches("leading: starting the controller")
                    .count()
            })
            .sum();
        for slot in s.iter_mut() {
            if !slot.op.is_running() {
                fig.unexpected_exits.push(format!(
                    "{} was not running after phase C:\n{}",
                    slot.name,
                    last_lines(&slot.op.log_text(), 20)
                ));
            }
        }
    }

    // Phase D: moto restarted, every API and integration lost.
    moto_proc.restart();
    let lost_at = Instant::now();
    let live: Vec<Resource> = resources.iter().filter(|r| !r.deleted).cloned().collect();
    let all_not_found = wait_opt(Duration::from_secs(120), || {
        let objs = list_objects(&n);
        live.iter()
            .all(|r| {
                reason_of(&objs, &r.name)
                    .is_some_and(|(s, why)| s == "False" && why == "ApiNotFound")
            })
            .then_some(())
    });
    fig.moto_restart_api_not_found_in = all_not_found.map(|_| lost_at.elapsed());
    // Bounded calls while every resource waits for its API: a window of slow retries.
    let window = Duration::from_secs(4 * SLOW_RETRY_S);
    let from = now_ms();
    std::thread::sleep(window);
    let to = now_ms();
    let calls_in_window: usize = {
        let s = slots.lock().unwrap();
        s.iter()
            .map(|slot| {
                slot.op
                    .calls()
                    .iter()
                    .filter(|c| c.ms >= from && c.ms < to)
                    .count()
            })
            .sum()
    };
    // Each resource retries at most once per slow-retry period, with at most 3 calls per attempt
    // (the API or its listing, and the reference listing), plus one listing per API per resync.
    let bound = live.len() * 3 * (window.as_secs() / SLOW_RETRY_S + 1) as usize;
    fig.calls_while_api_not_found = (
        calls_in_window,
        calls_in_window as f64 / window.as_secs_f64(),
        bound,
    );
    make_apis(&moto);
    let remade_at = Instant::now();
    let by_ref: Vec<Resource> = live.iter().filter(|r| r.named.is_some()).cloned().collect();
    let by_id: Vec<Resource> = live.iter().filter(|r| r.named.is_none()).cloned().collect();
    let healed = poll_check(
        &n,
        &moto,
        &by_ref,
        &all_apis(&moto),
        Duration::from_secs(180),
    );
    fig.healed_in = healed.0.then(|| remade_at.elapsed());
    fig.healed_by_ref = (healed.1.ready.min(healed.1.equal), by_ref.len());
    let objs = list_objects(&n);
    fig.by_id_api_not_found = (
        by_id
            .iter()
            .filter(|r| {
                reason_of(&objs, &r.name)
                    .is_some_and(|(s, why)| s == "False" && why == "ApiNotFound")
            })
            .count(),
        by_id.len(),
    );
    {
        let mut s = slots.lock().unwrap();
        for slot in s.iter_mut() {
            if !slot.op.is_running() {
                fig.unexpected_exits.push(format!(
                    "{} was not running after moto's restart:\n{}",
                    slot.name,
                    last_lines(&slot.op.log_text(), 20)
                ));
            }
        }
    }
    // Resources whose API is gone for good can still be deleted: 404 counts as deleted.
    let names: Vec<String> = by_id.iter().map(|r| r.name.clone()).collect();
    delete_some(&n, &names);
    for r in resources.iter_mut().filter(|r| r.named.is_none()) {
        r.deleted = true;
    }
    let check2 = poll_check(
        &n,
        &moto,
        &resources,
        &all_apis(&moto),
        Duration::from_secs(120),
    );
    fig.by_id_deleted = check2.1.deleted_in_kube.is_empty();
    fig.check2 = check2.1;

    // Everything deleted: moto must be empty.
    let out = kubectl(&[
        "delete",
        "apiintegrations",
        "--all",
        "-n",
        &n,
        "--timeout=300s",
    ]);
    assert!(
        out.status.success(),
        "deleting every resource: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fig.left_in_moto_after_delete_all = all_apis(&moto)
        .iter()
        .map(|a| moto.integrations(a).len())
        .sum();
    {
        let mut s = slots.lock().unwrap();
        let mut lives_all = calls_single;
        for slot in s.iter() {
            lives_all.extend(lives(slot));
        }
        rate_check(&lives_all, &mut fig);
        if let Some(quota) = cfg.quota {
            quota_check(quota, &lives_all, &proxy.calls_since(0, None), &mut fig);
        }
        fig.calls_total += lives_all.iter().map(Vec::len).sum::<usize>();
        for slot in s.iter_mut() {
            if slot.op.is_running() {
                slot.op.terminate(Duration::from_secs(20));
            }
        }
    }
    fig.wall = wall.elapsed();
    print_table(cfg, &fig);
    fig
}

/// Starts the killer: SIGKILL an operator (with leader election: the lease holder three times in four)
/// every 0.5–3 s (half the time as soon as an AWS write is in flight in the last second of that), restart
/// it at once, until told to stop and at least `at_least` kills were made.
fn spawn_killer(
    slots: Arc<Mutex<Vec<Slot>>>,
    proxy: Arc<FaultProxy>,
    mut rng: StdRng,
    at_least: usize,
    handover: bool,
    ns: &str,
    lease: &str,
) -> (
    Arc<KillFigures>,
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let figures = Arc::new(KillFigures::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (f, st, ns, lease) = (
        figures.clone(),
        stop.clone(),
        ns.to_string(),
        lease.to_string(),
    );
    let handle = std::thread::spawn(move || {
        while !(st.load(Ordering::SeqCst) && f.kills.load(Ordering::SeqCst) >= at_least) {
            // Who leads is asked first, so the kill follows the wait below without delay.
            let holder = handover.then(|| lease_holder(&ns, &lease)).flatten();
            // The next kill comes 0.5–3 s after the last. Every other one (on average) is made in the
            // last second of that interval as soon as an AWS write is in flight, so that kills land
            // mid-write by design rather than by luck.
            let interval = Duration::from_millis(rng.random_range(500..3000));
            let started = Instant::now();
            if rng.random_bool(0.5) {
                let watch_from = interval
                    .saturating_sub(Duration::from_secs(1))
                    .max(Duration::from_millis(500));
                std::thread::sleep(watch_from);
                while proxy.in_flight().1 == 0 && started.elapsed() < interval {
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                std::thread::sleep(interval);
            }
            let mut s = slots.lock().unwrap();
            let idx = match (&holder, s.len()) {
                (Some(h), 2) if rng.random_bool(0.75) => {
                    s.iter().position(|slot| slot.name == h).unwrap_or(0)
                }
                (_, len) => rng.random_range(0..len),
            };
            let (calls, writes) = proxy.in_flight();
            let slot = &mut s[idx];
            // A replica that left by itself (not our kill) is a finding, not a kill.
            if !slot.op.is_running() {
                panic!(
                    "{} exited by itself:\n{}",
                    slot.name,
                    last_lines(&slot.op.log_text(), 30)
                );
            }
            slot.kills.push(now_ms());
            slot.op.restart();
            f.kills.fetch_add(1, Ordering::SeqCst);
            if calls > 0 {
                f.mid_call.fetch_add(1, Ordering::SeqCst);
            }
            if writes > 0 {
                f.mid_write.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (figures, stop, handle)
}

/// One freeze: waits for a holder, starts `batch` (the user's change), stops the holder with SIGSTOP
/// as soon as an AWS write is in flight (part way through the batch; at most 3 s later), waits until the other replica holds the Lease and
/// 1–3 s more (it applies the change meanwhile), resumes the frozen one with SIGCONT, and waits for it to
/// notice it lost the Lease and exit; it is then started again. Every AWS write the frozen one began
/// after it was resumed is a finding (a write begun before the stop and answered after is not: the call
/// log stamps a call when it is started).
fn freeze_the_holder(
    slots: &Arc<Mutex<Vec<Slot>>>,
    proxy: &FaultProxy,
    rng: &mut StdRng,
    ns: &str,
    lease: &str,
    fig: &mut Figures,
    batch: impl FnOnce() + Send,
) {
    let holder = wait_opt(Duration::from_secs(60), || {
        let h = lease_holder(ns, lease)?;
        let s = slots.lock().unwrap();
        s.iter().position(|slot| slot.name == h)
    });
    let Some(idx) = holder else {
        fig.unexpected_exits
            .push("no replica held the Lease before a freeze".into());
        batch();
        return;
    };
    let (frozen, pid) = {
        let s = slots.lock().unwrap();
        (s[idx].name, s[idx].op.pid().expect("the holder runs"))
    };
    // The user's change is applied on another thread and the proxy watched from the start: the operator
    // may begin (and, on a quick machine, finish) its updates before kubectl has returned.
    let mid_write = std::thread::scope(|scope| {
        scope.spawn(batch);
        let started = Instant::now();
        while proxy.in_flight().1 == 0 && started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(signal(pid, Signal::Stop), "kill -STOP {pid}");
        proxy.in_flight().1 > 0
    });
    fig.freezes += 1;
    if mid_write {
        fig.freezes_mid_write += 1;
    }
    let taken_over = wait_opt(Duration::from_secs(60), || {
        lease_holder(ns, lease).filter(|h| h != frozen)
    });
    if taken_over.is_none() {
        fig.unexpected_exits.push(format!(
            "the stand-by did not take the Lease while {frozen} was frozen"
        ));
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(1000..3000)));
    let woken_at = now_ms();
    assert!(signal(pid, Signal::Cont), "kill -CONT {pid}");
    let exited = wait_opt(Duration::from_secs(30), || {
        let mut s = slots.lock().unwrap();
        (!s[idx].op.is_running()).then_some(())
    });
    let mut s = slots.lock().unwrap();
    let slot = &mut s[idx];
    match exited {
        Some(()) => {
            let took = Duration::from_millis(now_ms() - woken_at);
            fig.slowest_exit_after_wake = fig.slowest_exit_after_wake.max(Some(took));
        }
        None => fig.unexpected_exits.push(format!(
            "{frozen} did not exit within 30 s of being resumed without the Lease:\n{}",
            last_lines(&slot.op.log_text(), 20)
        )),
    }
    for call in slot.op.calls().iter().filter(|c| c.ms >= woken_at) {
        if matches!(
            call.op.as_str(),
            "CreateIntegration" | "UpdateIntegration" | "DeleteIntegration"
        ) {
            fig.writes_after_wake.push(format!(
                "{frozen}: {} at {} ({})",
                call.op, call.ms, call.outcome
            ));
        }
    }
    // A new life: the call log's rate windows restart here.
    slot.kills.push(now_ms());
    slot.op.restart();
}

fn lease_holder(ns: &str, lease: &str) -> Option<String> {
    let out = kubectl(&[
        "get",
        "lease",
        lease,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
        "--request-timeout=3s",
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Applies the resources' manifests in one List (server-side). The API server may be slow under the
/// storm's load, so a refused apply is tried again a few times: this is the test's client, not the
/// operator under test.
fn apply_all(ns: &str, resources: &[Resource], id_apis: &[String]) {
    let items: Vec<Value> = resources.iter().map(|r| r.manifest(id_apis)).collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let mut last = String::new();
    for _ in 0..5 {
        let out = kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-n",
                ns,
                "-f",
                "-",
            ],
            &list,
        );
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("kubectl apply kept failing: {last}");
}

fn delete_some(ns: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let mut args = vec![
        "delete",
        "apiintegrations",
        "-n",
        ns,
        "--wait=false",
        "--ignore-not-found",
    ];
    args.extend(names.iter().map(String::as_str));
    let out = kubectl(&args);
    assert!(
        out.status.success(),
        "kubectl delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn list_objects(ns: &str) -> HashMap<String, Value> {
    let out = kubectl(&[
        "get",
        "apiintegrations",
        "-n",
        ns,
        "-o",
        "json",
        "--request-timeout=10s",
    ]);
    if !out.status.success() {
        return HashMap::new();
    }
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["metadata"]["name"].as_str()?.to_string(), o.clone())))
        .collect()
}

/// (status, reason) of the Ready condition.
fn reason_of(objs: &HashMap<String, Value>, name: &str) -> Option<(String, String)> {
    let o = objs.get(name)?;
    let c = o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Looks at both sides: each live resource Ready at its generation and equal to the integration its
/// status names; every integration in moto owned by exactly one live resource; deleted resources gone
/// from the cluster and from moto.
fn check(ns: &str, moto: &Moto, resources: &[Resource], apis: &[String]) -> Check {
    let objs = list_objects(ns);
    let mut c = Check::default();
    // Every integration in moto, by ID: (api, uri).
    let mut held: HashMap<String, (String, Value)> = HashMap::new();
    for api in apis {
        for integ in moto.integrations(api) {
            let id = integ["integrationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            held.insert(id, (api.clone(), integ));
        }
    }
    c.integrations_in_moto = held.len();
    let mut owned: HashSet<String> = HashSet::new();
    for r in resources.iter().filter(|r| !r.deleted) {
        c.live += 1;
        let Some(o) = objs.get(&r.name) else {
            c.without_reason
                .push(format!("{}: missing from the cluster", r.name));
            continue;
        };
        match reason_of(&objs, &r.name) {
            Some((s, _))
                if s == "True"
                    && o["status"]["observedGeneration"] == o["metadata"]["generation"] =>
            {
                c.ready += 1;
            }
            Some((s, why)) if !why.is_empty() => {
                *c.not_ready.entry(format!("{s}/{why}")).or_default() += 1;
            }
            _ => c.without_reason.push(r.name.clone()),
        }
        let id = o["status"]["integrationId"].as_str().unwrap_or_default();
        if id.is_empty() {
            continue;
        }
        if !owned.insert(id.to_string()) {
            c.duplicates
                .push(format!("{id} claimed twice (second: {})", r.name));
        }
        let Some((_, integ)) = held.get(id) else {
            c.mismatched.push(format!("{}: {id} not in moto", r.name));
            continue;
        };
        let mut spec = o["spec"].clone();
        spec.as_object_mut().unwrap().remove("apiRef");
        let mut diff = mismatches(&spec, integ);
        // The cluster must also hold the version this program applied last.
        let uri = format!("https://example.com/{}/v{}", r.name, r.version);
        if o["spec"]["integrationUri"] != json!(uri) {
            diff.push(format!("the cluster's spec is not v{}", r.version));
        }
        if diff.is_empty() {
            c.equal += 1;
        } else {
            c.mismatched
                .push(format!("{}: {}", r.name, diff.join("; ")));
        }
    }
    let deleted: HashSet<&str> = resources
        .iter()
        .filter(|r| r.deleted)
        .map(|r| r.name.as_str())
        .collect();
    let live: HashSet<&str> = resources
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| r.name.as_str())
        .collect();
    for name in &deleted {
        if objs.contains_key(*name) {
            c.deleted_in_kube.push(name.to_string());
        }
    }
    for (id, (api, integ)) in &held {
        if owned.contains(id) {
            continue;
        }
        let uri = integ["integrationUri"].as_str().unwrap_or_default();
        let name = uri
            .trim_start_matches("https://example.com/")
            .split('/')
            .next()
            .unwrap_or_default();
        let what = format!("{id} on {api} ({uri})");
        if live.contains(name) {
            c.duplicates.push(what);
        } else if deleted.contains(name) {
            c.deleted_in_moto.push(what);
        } else {
            c.leaks.push(what);
        }
    }
    c
}

/// Checks every 3 s until clean or `within`; returns (clean, the last check).
fn poll_check(
    ns: &str,
    moto: &Moto,
    resources: &[Resource],
    apis: &[String],
    within: Duration,
) -> (bool, Check) {
    let start = Instant::now();
    loop {
        let c = check(ns, moto, resources, apis);
        if c.clean() {
            return (true, c);
        }
        if start.elapsed() > within {
            return (false, c);
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn wait_opt<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_for(what: &str, within: Duration, f: impl FnMut() -> Option<()>) {
    assert!(
        wait_opt(within, f).is_some(),
        "timed out after {within:?} waiting for {what}"
    );
}

/// Watches that ended with 410 Gone, as kube-runtime's watcher logs them at debug level.
fn count_410(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("kube_runtime::watcher") && l.contains("code: 410"))
        .count()
}

/// An operator's calls split into process lives (a SIGKILL ends one), each sorted by time.
fn lives(slot: &Slot) -> Vec<Vec<u64>> {
    let mut times: Vec<u64> = slot.op.calls().iter().map(|c: &Call| c.ms).collect();
    times.sort_unstable();
    let mut out = Vec::new();
    let mut rest = times.as_slice();
    for kill in &slot.kills {
        let cut = rest.partition_point(|t| t <= kill);
        out.push(rest[..cut].to_vec());
        rest = &rest[cut..];
    }
    out.push(rest.to_vec());
    out
}

/// The most calls in any window of `window_ms`.
fn max_in_window(times: &[u64], window_ms: u64) -> usize {
    let (mut best, mut start) = (0, 0);
    for end in 0..times.len() {
        while times[end] - times[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Every window (1, 2, 5, 10, 30 s) of the whole run's calls, every process life and replica together,
/// holds at most burst + rate × window (+1 for the log's millisecond resolution): the token bucket's
/// promise, kept across restarts because a new process starts with an empty bucket. Each life alone is
/// checked too, so a failure says which it is.
fn rate_check(lives: &[Vec<u64>], fig: &mut Figures) {
    let mut all: Vec<u64> = lives.iter().flatten().copied().collect();
    all.sort_unstable();
    let whole_run = std::iter::once(("the whole run".to_string(), &all));
    let each_life = lives
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("life {i}"), l));
    for (what, times) in whole_run.chain(each_life) {
        for window_s in [1u64, 2, 5, 10, 30] {
            let most = max_in_window(times, window_s * 1000);
            let bound = BURST + (RATE * window_s as f64) as usize + 1;
            fig.rate_worst_ratio = fig.rate_worst_ratio.max(most as f64 / bound as f64);
            if most > bound {
                fig.rate_violations.push(format!(
                    "{what}: {most} calls in a {window_s} s window (bound {bound})"
                ));
            }
        }
    }
    fig.busiest_second = max_in_window(&all, 1000);
}

/// Whether `quota` admits everything the operator's own bucket lets out (its rate and burst).
fn quota_holds_ours(quota: Quota) -> bool {
    quota.rate >= RATE && quota.burst as usize >= BURST
}

/// The same windows against API Gateway's quota, which every operator process on the account shares:
/// the operator's calls (by its call log's send stamps, every life and replica together) and the API
/// Gateway calls the proxy admitted (by arrival) each stay within burst + rate × window (+1 for the
/// log's millisecond resolution). The second checks the proxy's own bucket; the first is the promise
/// that the operator alone never asks more of the account than the quota allows.
fn quota_check(quota: Quota, lives: &[Vec<u64>], calls: &[ProxyCall], fig: &mut Figures) {
    let mut ours: Vec<u64> = lives.iter().flatten().copied().collect();
    ours.sort_unstable();
    let t0 = calls.iter().map(|c| c.arrived).min();
    let mut admitted: Vec<u64> = calls
        .iter()
        .filter(|c| !c.op.starts_with("sts:") && !c.over_quota)
        .map(|c| c.arrived.duration_since(t0.unwrap()).as_millis() as u64)
        .collect();
    admitted.sort_unstable();
    fig.quota_admitted = admitted.len();
    fig.quota_throttled = calls.iter().filter(|c| c.over_quota).count();
    // Under a quota smaller than the operator's own bucket only the adaptive budget holds it back, and
    // its sends may pass the quota's bound (the quota then refuses them): the admitted calls are checked.
    let inside = quota_holds_ours(quota);
    let series = [
        ("the operator's calls", &ours, &mut fig.quota_worst_ratio.0),
        (
            "calls the quota admitted",
            &admitted,
            &mut fig.quota_worst_ratio.1,
        ),
    ];
    for (what, times, worst) in series.into_iter().skip(usize::from(!inside)) {
        for window_s in [1u64, 2, 5, 10, 30] {
            let most = max_in_window(times, window_s * 1000);
            let bound = quota.most_in(window_s as f64).floor() as usize + 1;
            *worst = worst.max(most as f64 / bound as f64);
            if most > bound {
                fig.quota_violations.push(format!(
                    "{what}: {most} in a {window_s} s window (quota {quota}: bound {bound})"
                ));
            }
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} s", d.as_secs_f64()))
        .unwrap_or_else(|| "NOT REACHED".into())
}

fn print_table(cfg: &Config, f: &Figures) {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row(
        "seed / rounds / resources per round",
        format!("{} / {} / {}", cfg.seed, cfg.rounds, cfg.resources),
    );
    row(
        "resources created / updates / deleted",
        format!("{} / {} / {}", f.created, f.updates, f.deleted),
    );
    row(
        "SIGKILLs: single operator / with leader election",
        format!("{} / {}", f.kills_single, f.kills_handover),
    );
    row(
        "SIGKILLs with an AWS call / an AWS write in flight",
        format!("{} / {}", f.kills_mid_call, f.kills_mid_write),
    );
    row(
        "leaders frozen past the lease (mid-write) / AWS writes after waking / slowest exit",
        format!(
            "{} ({}) / {} / {}",
            f.freezes,
            f.freezes_mid_write,
            f.writes_after_wake.len(),
            secs(f.slowest_exit_after_wake)
        ),
    );
    row("times a replica became leader", f.leaderships.to_string());
    let total: usize = f.faults.values().sum();
    let faulted: usize = f
        .faults
        .iter()
        .filter(|(k, _)| **k != StormFault::None)
        .map(|(_, v)| v)
        .sum();
    row(
        "AWS requests through the proxy during the storm / faulted",
        format!(
            "{total} / {faulted} ({:.0} %)",
            100.0 * faulted as f64 / total.max(1) as f64
        ),
    );
    for kind in StormFault::FAULTS {
        row(
            &format!("  {}", kind.label()),
            f.faults.get(&kind).copied().unwrap_or(0).to_string(),
        );
    }
    row(
        "kube-apiserver restarts / etcd restarts / etcd compactions",
        format!(
            "{} / {} / {}",
            f.apiserver_restarts, f.etcd_restarts, f.compactions
        ),
    );
    row(
        "watches ended 410 Gone (operator's log)",
        f.watch_410s.to_string(),
    );
    row(
        "operator kept its pid through the control-plane faults",
        if f.pid_kept_through_control_plane {
            "yes"
        } else {
            "NO"
        }
        .into(),
    );
    row(
        "unexpected operator exits",
        f.unexpected_exits.len().to_string(),
    );
    row(
        "time to converge after the last fault",
        secs(f.converge_after_last_fault),
    );
    let c = &f.check1;
    row(
        "check 1: live / Ready / equal to moto",
        format!("{} / {} / {}", c.live, c.ready, c.equal),
    );
    row(
        "check 1: duplicates / leaks / deleted but in moto / deleted but in cluster",
        format!(
            "{} / {} / {} / {}",
            c.duplicates.len(),
            c.leaks.len(),
            c.deleted_in_moto.len(),
            c.deleted_in_kube.len()
        ),
    );
    row(
        "check 1: not Ready without a reason",
        c.without_reason.len().to_string(),
    );
    row(
        "AWS calls (all replicas, whole run)",
        f.calls_total.to_string(),
    );
    row(
        "busiest window / bucket bound, whole run and each life",
        format!(
            "{:.2} ({} windows over)",
            f.rate_worst_ratio,
            f.rate_violations.len()
        ),
    );
    row(
        "busiest 1 s of the whole run (bound burst + rate + 1)",
        format!("{} ({})", f.busiest_second, BURST + RATE as usize + 1),
    );
    match cfg.quota {
        Some(quota) => {
            row(
                "quota per account (rate/burst) / API Gateway calls admitted / refused 429",
                format!("{quota} / {} / {}", f.quota_admitted, f.quota_throttled),
            );
            row(
                "busiest window / quota bound: operator's calls, admitted calls",
                format!(
                    "{:.2}, {:.2} ({} windows over)",
                    f.quota_worst_ratio.0,
                    f.quota_worst_ratio.1,
                    f.quota_violations.len()
                ),
            );
        }
        None => row("quota per account", "off (moto unlimited)".into()),
    }
    row(
        "moto restart: all ApiNotFound after",
        secs(f.moto_restart_api_not_found_in),
    );
    let (n, rate, bound) = f.calls_while_api_not_found;
    row(
        "moto restart: calls in 20 s of ApiNotFound / bound",
        format!("{n} ({rate:.2}/s) / {bound}"),
    );
    row(
        "moto restart: apiRef resources healed / of",
        format!(
            "{} / {} in {}",
            f.healed_by_ref.0,
            f.healed_by_ref.1,
            secs(f.healed_in)
        ),
    );
    row(
        "moto restart: apiId resources ApiNotFound / of",
        format!("{} / {}", f.by_id_api_not_found.0, f.by_id_api_not_found.1),
    );
    let c = &f.check2;
    row(
        "check 2: live / Ready / equal / duplicates / leaks / deletions pending",
        format!(
            "{} / {} / {} / {} / {} / {}",
            c.live,
            c.ready,
            c.equal,
            c.duplicates.len(),
            c.leaks.len(),
            c.deleted_in_kube.len() + c.deleted_in_moto.len()
        ),
    );
    row(
        "integrations left in moto after deleting everything",
        f.left_in_moto_after_delete_all.to_string(),
    );
    row("wall time", format!("{:.0} s", f.wall.as_secs_f64()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("\nchaos run (seed {}):", cfg.seed);
    println!("  {:<width$}  figure", "what");
    println!("  {:-<width$}  ------", "");
    for (k, v) in &rows {
        println!("  {k:<width$}  {v}");
    }
    for (what, list) in [
        ("check 1 mismatched", &f.check1.mismatched),
        ("check 1 duplicates", &f.check1.duplicates),
        ("check 1 leaks", &f.check1.leaks),
        ("check 1 without reason", &f.check1.without_reason),
        ("check 2 mismatched", &f.check2.mismatched),
        ("check 2 duplicates", &f.check2.duplicates),
        ("check 2 leaks", &f.check2.leaks),
        ("rate violations", &f.rate_violations),
        ("quota violations", &f.quota_violations),
        ("unexpected exits", &f.unexpected_exits),
        ("writes after waking", &f.writes_after_wake),
    ] {
        for item in list.iter().take(10) {
            println!("  {what}: {item}");
        }
    }
    if !f.check1.not_ready.is_empty() {
        println!("  check 1 not Ready by reason: {:?}", f.check1.not_ready);
    }
}

impl Figures {
    /// Every promise held: the tests assert this, after the table is printed.
    pub fn failures(&self, cfg: &Config) -> Vec<String> {
        let mut bad = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                bad.push(what.to_string());
            }
        };
        need(
            self.kills_single >= cfg.kills_single,
            "fewer single-operator kills than asked",
        );
        need(
            self.kills_handover >= cfg.kills_handover,
            "fewer replica kills than asked",
        );
        need(
            self.kills_mid_write > 0,
            "no kill landed while an AWS write was in flight",
        );
        need(
            StormFault::FAULTS
                .iter()
                .all(|k| self.faults.get(k).copied().unwrap_or(0) > 0),
            "some fault kind never happened",
        );
        need(self.watch_410s > 0, "no watch ended 410 Gone");
        need(
            self.pid_kept_through_control_plane,
            "the operator did not live through the control-plane faults",
        );
        need(
            self.freezes >= cfg.freezes,
            "fewer leader freezes than asked",
        );
        need(
            self.freezes_mid_write > 0,
            "no freeze landed while an AWS write was in flight",
        );
        need(
            self.writes_after_wake.is_empty(),
            "a frozen leader sent AWS writes after it was resumed",
        );
        need(
            self.unexpected_exits.is_empty(),
            "an operator exited by itself",
        );
        need(
            self.converge_after_last_fault.is_some(),
            "no convergence after the last fault",
        );
        need(
            self.check1.clean() && self.check1.mismatched.is_empty(),
            "check 1 not clean",
        );
        need(
            self.rate_violations.is_empty(),
            "the rate limit was exceeded in some window",
        );
        need(
            self.quota_violations.is_empty(),
            "the calls exceeded API Gateway's quota in some window",
        );
        // The operator's own bucket (burst 40, at most 10/s) sits inside the quota (burst 40, 10/s), so
        // an operator that keeps its own bound is never refused by the quota.
        need(
            !cfg.quota.is_some_and(quota_holds_ours) || self.quota_throttled == 0,
            "the quota refused some of the operator's calls",
        );
        need(
            self.moto_restart_api_not_found_in.is_some(),
            "not every resource said ApiNotFound after moto's restart",
        );
        need(
            self.calls_while_api_not_found.0 <= self.calls_while_api_not_found.2,
            "calls while ApiNotFound above the bound",
        );
        need(
            self.healed_in.is_some(),
            "apiRef resources did not heal after moto's restart",
        );
        need(
            self.by_id_api_not_found.0 == self.by_id_api_not_found.1,
            "an apiId resource did not say ApiNotFound",
        );
        need(
            self.by_id_deleted,
            "apiId resources whose API is gone could not be deleted",
        );
        need(
            self.check2.clean() && self.check2.mismatched.is_empty(),
            "check 2 not clean",
        );
        need(
            self.left_in_moto_after_delete_all == 0,
            "integrations left in moto after deleting everything",
        );
        bad
    }
}
