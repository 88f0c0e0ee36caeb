//! The bench under API Gateway's quota (issue 24 item 4): the fault proxy keeps the quota per account
//! (10/s, burst 40 unless told otherwise), and each row runs its contenders at the same time, all on one
//! account (the stack's one access key), through create, update and delete of N integrations in all.
//! Rows: ours alone; two of our operators (two clusters: two namespaces, two processes, one key), each
//! with N/2 objects; ACK with 4 workers alone; ACK beside ours, each with N/2.
//!
//! No contender can beat the quota: a phase that needed C admitted calls takes at least
//! (C − burst) / rate seconds (the bucket starts full, then refills at the rate). That is the bound each
//! phase's time is compared with. A refused call costs no token, so C counts the admitted calls only.

use super::procs::Controller;
use super::run::{
    Config, Item, Kind, apigw_client, controller, install_ack_crd, item, kube_client, started,
    strip_finalizers, updated_uri,
};
use super::watch::Watch;
use crate::proxy::{FaultProxy, ProxyCall};
use crate::quota::Quota;
use anyhow::{Context, Result, bail};
use aws_sdk_apigatewayv2 as apigw;
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The drift period every contender gets in these rows: longer than any phase, so that what is measured
/// is the work of creating, changing and deleting, not a periodic re-read (the unlimited rows measure that).
pub const DRIFT_S: u64 = 3600;

/// A row of the bench under the quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    /// (a) ours alone.
    Ours,
    /// (b) two of our operators on one account, each with half the objects.
    OursTwice,
    /// (c) ACK with 4 workers alone.
    Ack4,
    /// (d) ACK with 4 workers beside ours, each with half the objects.
    AckBesideOurs,
    /// (e) as (d), ours keeping half the quota (`--aws-min-rate` at half its ceiling).
    AckBesideOursKeepingHalf,
}

impl Row {
    pub const ALL: [Row; 5] = [
        Row::Ours,
        Row::OursTwice,
        Row::Ack4,
        Row::AckBesideOurs,
        Row::AckBesideOursKeepingHalf,
    ];

    /// `--aws-min-rate` of ours in the row (e): half of its default ceiling.
    pub const KEPT_RATE: &str = "5";

    pub fn name(self) -> &'static str {
        match self {
            Row::Ours => "quota-ours",
            Row::OursTwice => "quota-ours-x2",
            Row::Ack4 => "quota-ack-4",
            Row::AckBesideOurs => "quota-ack-4+ours",
            Row::AckBesideOursKeepingHalf => "quota-ack-4+ours-min-5",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Row::Ours => "(a) ours alone",
            Row::OursTwice => "(b) two of ours, one account, N/2 each",
            Row::Ack4 => "(c) ACK, 4 workers, alone",
            Row::AckBesideOurs => "(d) ACK (4 workers) beside ours, N/2 each",
            Row::AckBesideOursKeepingHalf => {
                "(e) as (d), ours with --aws-min-rate 5 (keeps half the quota)"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Row> {
        Row::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The contenders running at once in this row.
    pub fn contenders(self) -> Vec<Kind> {
        match self {
            Row::Ours => vec![Kind::Ours],
            Row::OursTwice => vec![Kind::Ours, Kind::Ours],
            Row::Ack4 => vec![Kind::Ack4],
            Row::AckBesideOurs | Row::AckBesideOursKeepingHalf => vec![Kind::Ack4, Kind::Ours],
        }
    }

    /// Arguments ours gets in this row beyond its defaults.
    pub fn our_args(self) -> Vec<String> {
        match self {
            Row::AckBesideOursKeepingHalf => vec!["--aws-min-rate".into(), Row::KEPT_RATE.into()],
            _ => vec![],
        }
    }
}

/// One contender's part of a phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Part {
    /// e.g. "ours-1", "ack-4".
    pub who: String,
    pub resources: usize,
    /// Seconds from the phase's start until all its objects were done (None: not within the limit).
    pub done_s: Option<f64>,
    /// API Gateway calls on its APIs in the phase: all, and of those refused by the quota.
    pub calls: usize,
    pub throttled: usize,
    /// Its calls the quota admitted that reached the proxy before the first contender was done: what
    /// it got while all were working.
    #[serde(default)]
    pub admitted_while_all_worked: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QPhase {
    pub name: String,
    pub resources: usize,
    /// Seconds until every contender's objects were done.
    pub wall_s: Option<f64>,
    /// API Gateway calls in the phase (until the bench saw quiet after it), all and refused.
    pub calls: usize,
    pub throttled: usize,
    pub parts: Vec<Part>,
}

impl QPhase {
    pub fn admitted(&self) -> usize {
        self.calls - self.throttled
    }

    /// The fastest the quota allows for the calls this phase needed: (admitted − burst) / rate.
    pub fn bound_s(&self, quota: Quota) -> f64 {
        (self.admitted() as f64 - f64::from(quota.burst)).max(0.0) / quota.rate
    }

    /// Each contender's share of the calls admitted while all were working (until the first was done);
    /// empty with one contender.
    pub fn shares_while_all_worked(&self) -> Vec<(String, f64)> {
        if self.parts.len() < 2 {
            return Vec::new();
        }
        let total: usize = self.parts.iter().map(|p| p.admitted_while_all_worked).sum();
        self.parts
            .iter()
            .map(|p| {
                let share = p.admitted_while_all_worked as f64 / total.max(1) as f64;
                (p.who.clone(), share)
            })
            .collect()
    }

    /// Time to done over the bound; None when not done, or when the calls fit in the burst (the quota
    /// did not bind: any time is within it).
    pub fn over_bound(&self, quota: Quota) -> Option<f64> {
        let bound = self.bound_s(quota);
        (bound > 0.0).then_some(self.wall_s? / bound)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RowResult {
    pub name: String,
    pub title: String,
    pub not_run: Option<String>,
    pub failure: Option<String>,
    pub phases: Vec<QPhase>,
}

impl RowResult {
    pub fn calls(&self) -> usize {
        self.phases.iter().map(|p| p.calls).sum()
    }

    pub fn throttled(&self) -> usize {
        self.phases.iter().map(|p| p.throttled).sum()
    }

    /// Share of the row's calls the quota refused.
    pub fn throttled_share(&self) -> f64 {
        self.throttled() as f64 / self.calls().max(1) as f64
    }

    /// Each contender's share of the calls the quota admitted, over the whole row.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let mut who: Vec<String> = Vec::new();
        for p in self.phases.iter().flat_map(|p| &p.parts) {
            if !who.contains(&p.who) {
                who.push(p.who.clone());
            }
        }
        let admitted = |w: &str| -> usize {
            self.phases
                .iter()
                .flat_map(|p| &p.parts)
                .filter(|p| p.who == w)
                .map(|p| p.calls - p.throttled)
                .sum()
        };
        let total: usize = who.iter().map(|w| admitted(w)).sum();
        who.iter()
            .map(|w| (w.clone(), admitted(w) as f64 / total.max(1) as f64))
            .collect()
    }

    /// The worst phase's time over its bound, among the phases the quota bound (None: it bound none,
    /// or one of them never finished; a failed row does not count as within).
    pub fn worst_over_bound(&self, quota: Quota) -> Option<f64> {
        if self.phases.iter().any(|p| p.wall_s.is_none()) {
            return None;
        }
        self.phases
            .iter()
            .filter_map(|p| p.over_bound(quota))
            .reduce(f64::max)
    }

    /// Total time to done over the three phases, for one contender (by the start of its name) or all.
    pub fn time_s(&self, who: Option<&str>) -> Option<f64> {
        self.phases
            .iter()
            .map(|p| match who {
                None => p.wall_s,
                Some(w) => p
                    .parts
                    .iter()
                    .filter(|x| x.who.starts_with(w))
                    .map(|x| x.done_s)
                    .try_fold(0.0f64, |m, d| d.map(|d| m.max(d))),
            })
            .sum()
    }

    /// Share of one contender's calls the quota refused.
    pub fn throttled_share_of(&self, who: &str) -> f64 {
        let parts = || {
            self.phases
                .iter()
                .flat_map(|p| &p.parts)
                .filter(|x| x.who.starts_with(who))
        };
        let calls: usize = parts().map(|x| x.calls).sum();
        parts().map(|x| x.throttled).sum::<usize>() as f64 / calls.max(1) as f64
    }

    fn ran(&self) -> bool {
        self.not_run.is_none() && self.failure.is_none() && !self.phases.is_empty()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuotaRun {
    pub resources: usize,
    pub quota: String,
    pub rows: Vec<RowResult>,
}

impl QuotaRun {
    pub fn quota(&self) -> Quota {
        self.quota.parse().unwrap_or(Quota::API_GATEWAY)
    }

    pub fn row(&self, row: Row) -> Option<&RowResult> {
        self.rows.iter().find(|r| r.name == row.name() && r.ran())
    }
}

/// One goal of issue 24 item 4, as the report shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal {
    pub what: String,
    pub figure: String,
    /// None: the row(s) it needs did not run.
    pub met: Option<bool>,
}

/// The goals, computed from the rows that ran.
pub fn goals(run: &QuotaRun) -> Vec<Goal> {
    let q = run.quota();
    let mut out = Vec::new();
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    let mut goal = |what: &str, figure: Option<(String, bool)>| {
        out.push(Goal {
            what: what.into(),
            figure: figure.as_ref().map_or("not run".into(), |f| f.0.clone()),
            met: figure.map(|f| f.1),
        })
    };
    // A row that ran but whose phases all fit in the burst (or one never finished) has no ratio: the
    // figure says so and the goal counts as not met.
    let within = |r: &RowResult, most: f64| match r.worst_over_bound(q) {
        Some(x) => (format!("worst {x:.2}×"), x <= most),
        None => ("no finished phase the quota bound".to_string(), false),
    };
    let a = run.row(Row::Ours);
    goal(
        "(a) ours alone: every phase within 1.05× its bound",
        a.map(|r| within(r, 1.05)),
    );
    goal(
        "(a) ours alone: at most 2 % of calls throttled",
        a.map(|r| (pct(r.throttled_share()), r.throttled_share() <= 0.02)),
    );
    let b = run.row(Row::OursTwice);
    goal(
        "(b) two of ours: every phase within 1.10× its bound",
        b.map(|r| within(r, 1.10)),
    );
    goal(
        "(b) two of ours: at most 5 % of calls throttled",
        b.map(|r| (pct(r.throttled_share()), r.throttled_share() <= 0.05)),
    );
    goal(
        "(b) two of ours: each operator's share of the calls between 40 % and 60 %",
        b.map(|r| {
            let shares = r.shares();
            let text = shares
                .iter()
                .map(|(w, s)| format!("{w} {}", pct(*s)))
                .collect::<Vec<_>>()
                .join(", ");
            let fair = shares.len() == 2 && shares.iter().all(|(_, s)| (0.4..=0.6).contains(s));
            (text, fair)
        }),
    );
    goal(
        "(b) two of ours: in every phase, each operator's share of the calls admitted while both worked between 40 % and 60 %",
        b.map(|r| {
            let phases: Vec<(String, f64)> = r
                .phases
                .iter()
                .filter_map(|p| {
                    let smallest = p
                        .shares_while_all_worked()
                        .into_iter()
                        .map(|(_, s)| s)
                        .reduce(f64::min)?;
                    Some((p.name.clone(), smallest))
                })
                .collect();
            match phases.iter().min_by(|x, y| x.1.total_cmp(&y.1)) {
                Some((name, smallest)) if phases.len() == r.phases.len() => (
                    format!("smallest {} ({name})", pct(*smallest)),
                    *smallest >= 0.4,
                ),
                _ => ("a phase without two operators".into(), false),
            }
        }),
    );
    let c = run.row(Row::Ack4);
    goal(
        "(a) vs (c): ours alone ahead of ACK alone on time",
        a.zip(c).and_then(|(a, c)| {
            let (ta, tc) = (a.time_s(None)?, c.time_s(None)?);
            Some((format!("{ta:.1} s vs {tc:.1} s"), ta < tc))
        }),
    );
    goal(
        "(a) vs (c): ours alone ahead of ACK alone on throttled calls",
        a.zip(c).map(|(a, c)| {
            let (sa, sc) = (a.throttled_share(), c.throttled_share());
            (format!("{} vs {}", pct(sa), pct(sc)), sa <= sc)
        }),
    );
    for (row, label) in [
        (Row::AckBesideOurs, "(d) beside ACK"),
        (
            Row::AckBesideOursKeepingHalf,
            "(e) beside ACK, --aws-min-rate 5",
        ),
    ] {
        let r = run.row(row);
        goal(
            &format!("{label}: ours done before ACK"),
            r.and_then(|r| {
                let (to, ta) = (r.time_s(Some("ours"))?, r.time_s(Some("ack"))?);
                Some((format!("{to:.1} s vs {ta:.1} s"), to < ta))
            }),
        );
        goal(
            &format!("{label}: ours throttled less than ACK"),
            r.map(|r| {
                let (so, sa) = (r.throttled_share_of("ours"), r.throttled_share_of("ack"));
                (format!("{} vs {}", pct(so), pct(sa)), so <= sa)
            }),
        );
    }
    out
}

fn log(msg: impl AsRef<str>) {
    eprintln!("bench (quota): {}", msg.as_ref());
}

/// One contender of a row: its namespace, APIs, objects, process and watch.
struct Seat {
    who: String,
    kind: Kind,
    ns: String,
    api: Api<DynamicObject>,
    apis: Vec<String>,
    items: Vec<Item>,
    controller: Controller,
    watch: Watch,
}

/// Runs `rows` under `quota` with `cfg.resources` objects per row (split among its contenders).
pub async fn run(cfg: &Config, quota: Quota, rows: &[Row]) -> Result<QuotaRun> {
    let kube = kube_client(&cfg.kubeconfig).await?;
    let moto = apigw_client(cfg, &cfg.moto_endpoint);
    if rows
        .iter()
        .any(|r| r.contenders().iter().any(|k| k.is_ack()))
        && let Some(ack) = &cfg.ack
    {
        install_ack_crd(cfg, ack)?;
    }
    let mut out = QuotaRun {
        resources: cfg.resources,
        quota: quota.to_string(),
        rows: Vec::new(),
    };
    for &row in rows {
        let mut result = RowResult {
            name: row.name().into(),
            title: row.title().into(),
            ..Default::default()
        };
        if row.contenders().iter().any(|k| k.is_ack()) && cfg.ack.is_none() {
            result.not_run = Some("ACK's controller is neither cached nor buildable here".into());
            out.rows.push(result);
            continue;
        }
        log(format!(
            "N={} quota {quota}: {}",
            cfg.resources,
            row.title()
        ));
        let started = Instant::now();
        if let Err(e) = run_row(cfg, quota, row, &kube, &moto, &mut result).await {
            log(format!("{}: failed: {e:#}", row.name()));
            result.failure = Some(format!("{e:#}"));
        }
        log(format!("{} done in {:.0?}", row.name(), started.elapsed()));
        out.rows.push(result);
    }
    Ok(out)
}

async fn run_row(
    cfg: &Config,
    quota: Quota,
    row: Row,
    kube: &kube::Client,
    moto: &apigw::Client,
    result: &mut RowResult,
) -> Result<()> {
    let proxy = FaultProxy::start_here(&cfg.moto_endpoint);
    proxy.keep_quota(quota);
    let kinds = row.contenders();
    let per = cfg.resources / kinds.len();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
    let mut seats: Vec<Seat> = Vec::new();
    let outcome = async {
        for (i, &kind) in kinds.iter().enumerate() {
            let who = match (kind, kinds.iter().filter(|k| **k == kind).count()) {
                (Kind::Ours, 1) => "ours".to_string(),
                (Kind::Ours, _) => format!("ours-{}", i + 1),
                (k, _) => k.name().to_string(),
            };
            let ns = format!("bench-q-{who}-{:06x}", rand::random::<u32>() >> 8);
            namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
                )
                .await?;
            let mut apis = Vec::new();
            for a in 0..per.div_ceil(super::run::PER_API) {
                let made = moto
                    .create_api()
                    .name(format!("{ns}-{a}"))
                    .protocol_type(apigw::types::ProtocolType::Http)
                    .send()
                    .await?;
                apis.push(made.api_id.context("moto gave no ApiId")?);
            }
            let items: Vec<Item> = (0..per)
                .map(|j| item(kind, &format!("r-{j:05}"), &apis[j % apis.len()]))
                .collect();
            let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), &ns, &kind.resource());
            let watch = Watch::start(api.clone(), kind.rule());
            watch.synced().await;
            let log = cfg
                .log_dir
                .join(format!("{}-{who}-{}.log", row.name(), cfg.resources));
            let _ = std::fs::remove_file(&log);
            let mut controller = controller(cfg, kind, &ns, &proxy.endpoint, DRIFT_S, log)?;
            if kind == Kind::Ours {
                controller.add_args(row.our_args());
            }
            controller.spawn();
            seats.push(Seat {
                who,
                kind,
                ns,
                api,
                apis,
                items,
                controller,
                watch,
            });
        }
        for seat in &mut seats {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !started(seat.kind, &seat.controller.log_since_start()) {
                if let Some(why) = seat.controller.exited() {
                    bail!("{}: {why}", seat.who);
                }
                if Instant::now() > deadline {
                    bail!("{} did not start within 120 s", seat.who);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Start with a full bucket: nothing called for burst/rate seconds.
        refilled(&proxy, quota).await;
        for name in ["create", "update", "delete"] {
            let phase = one_phase(cfg, name, &proxy, quota, moto, &mut seats).await?;
            log(format!(
                "  {name}: wall {}, calls {} ({} throttled), bound {:.1} s; {}",
                phase.wall_s.map_or("-".into(), |w| format!("{w:.1} s")),
                phase.calls,
                phase.throttled,
                phase.bound_s(quota),
                phase
                    .parts
                    .iter()
                    .map(|p| format!(
                        "{} done {} calls {} throttled {}",
                        p.who,
                        p.done_s.map_or("-".into(), |d| format!("{d:.1} s")),
                        p.calls,
                        p.throttled
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            let failed = phase.wall_s.is_none();
            result.phases.push(phase);
            if failed {
                bail!("{name} did not finish within {:?}", phase_limit(cfg, quota));
            }
        }
        Ok(())
    }
    .await;
    for seat in &mut seats {
        seat.controller.stop(Duration::from_secs(10));
        if outcome.is_err() {
            let _ = strip_finalizers(&seat.api).await;
        }
        let _ = namespaces.delete(&seat.ns, &DeleteParams::default()).await;
        for a in &seat.apis {
            let _ = moto.delete_api().api_id(a).send().await;
        }
    }
    outcome
}

/// How long a phase may take: three times what the quota allows for three calls per resource, and at
/// least three minutes.
fn phase_limit(cfg: &Config, quota: Quota) -> Duration {
    Duration::from_secs_f64((9.0 * cfg.resources as f64 / quota.rate).max(180.0))
}

/// Waits until the proxy saw no call for burst/rate seconds (the quota's bucket is full again), at most
/// a minute.
async fn refilled(proxy: &FaultProxy, quota: Quota) {
    let full_after = Duration::from_secs_f64(f64::from(quota.burst) / quota.rate + 0.5);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if proxy
            .last_answer_at()
            .is_none_or(|at| at.elapsed() >= full_after)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    log("no quiet stretch to refill the quota's bucket within 60 s");
}

/// What moto holds on `apis`: integration URI -> integration IDs.
async fn held(moto: &apigw::Client, apis: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut held: HashMap<String, Vec<String>> = HashMap::new();
    for a in apis {
        let out = moto.get_integrations().api_id(a).send().await?;
        for i in out.items() {
            held.entry(i.integration_uri().unwrap_or_default().to_string())
                .or_default()
                .push(i.integration_id().unwrap_or_default().to_string());
        }
    }
    Ok(held)
}

/// One phase for every seat at once: the bench applies the change to every object (8 at a time per
/// seat), then waits until each seat is done: its objects Ready (Synced) at the new generation and moto
/// holding exactly their URIs once (create, update), or its objects and integrations gone (delete).
async fn one_phase(
    cfg: &Config,
    name: &str,
    proxy: &FaultProxy,
    quota: Quota,
    moto: &apigw::Client,
    seats: &mut [Seat],
) -> Result<QPhase> {
    let t0 = Instant::now();
    let mark = proxy.answered();
    let limit = phase_limit(cfg, quota);
    let mut wanted: Vec<HashMap<String, i64>> = Vec::new();
    let applied = futures::future::join_all(seats.iter().map(|seat| apply(name, seat, cfg))).await;
    for w in applied {
        wanted.push(w?);
    }
    let mut done: Vec<Option<f64>> = vec![None; seats.len()];
    while done.iter().any(Option::is_none) && t0.elapsed() < limit {
        for (i, seat) in seats.iter_mut().enumerate() {
            if done[i].is_some() {
                continue;
            }
            if let Some(why) = seat.controller.exited() {
                bail!("{}: {why}", seat.who);
            }
            let k8s_done = if name == "delete" {
                seat.watch.ready().0 == 0
            } else {
                seat.watch.ready_among(&wanted[i]) == wanted[i].len()
            };
            if !k8s_done {
                continue;
            }
            let held = held(moto, &seat.apis).await?;
            let aws_done = match name {
                "delete" => held.is_empty(),
                _ => seat.items.iter().all(|it| {
                    let uri = if name == "update" {
                        updated_uri(&it.uri)
                    } else {
                        it.uri.clone()
                    };
                    held.get(&uri).is_some_and(|ids| ids.len() == 1)
                }),
            };
            if aws_done {
                done[i] = Some(t0.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall_s = done.iter().try_fold(0.0f64, |m, d| d.map(|d| m.max(d)));
    let first_done = done
        .iter()
        .flatten()
        .copied()
        .reduce(f64::min)
        .map(|d| t0 + Duration::from_secs_f64(d));
    // Calls that trail the phase belong to it: wait for the bucket to refill, which is also the next
    // phase's start.
    refilled(proxy, quota).await;
    let calls: Vec<ProxyCall> = proxy
        .calls_since(mark, None)
        .into_iter()
        .filter(|c| !c.op.starts_with("sts:"))
        .collect();
    let parts = seats
        .iter()
        .zip(&done)
        .map(|(seat, done_s)| {
            let apis: HashSet<&str> = seat.apis.iter().map(String::as_str).collect();
            let mine: Vec<&ProxyCall> = calls
                .iter()
                .filter(|c| c.api.as_deref().is_some_and(|a| apis.contains(a)))
                .collect();
            Part {
                who: seat.who.clone(),
                resources: seat.items.len(),
                done_s: *done_s,
                calls: mine.len(),
                throttled: mine.iter().filter(|c| c.over_quota).count(),
                admitted_while_all_worked: mine
                    .iter()
                    .filter(|c| !c.over_quota && first_done.is_none_or(|f| c.arrived < f))
                    .count(),
            }
        })
        .collect();
    Ok(QPhase {
        name: name.into(),
        resources: seats.iter().map(|s| s.items.len()).sum(),
        wall_s,
        calls: calls.len(),
        throttled: calls.iter().filter(|c| c.over_quota).count(),
        parts,
    })
}

/// The bench's own change for phase `name` on one seat; returns the generation each object must be
/// Ready at (empty for delete).
async fn apply(name: &str, seat: &Seat, cfg: &Config) -> Result<HashMap<String, i64>> {
    if name == "delete" {
        seat.api
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await?;
        return Ok(HashMap::new());
    }
    let field = seat.kind.uri_field();
    let results: Vec<Result<(String, i64)>> = futures::stream::iter(seat.items.iter())
        .map(|it| async move {
            let obj = if name == "create" {
                seat.api
                    .create(&PostParams::default(), &seat.kind.manifest(it))
                    .await?
            } else {
                let patch = json!({"spec": {field: updated_uri(&it.uri)}});
                seat.api
                    .patch(&it.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?
            };
            Ok((it.name.clone(), obj.metadata.generation.unwrap_or(0)))
        })
        .buffer_unordered(cfg.apply_concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, wall: f64, parts: &[(&str, f64, usize, usize)]) -> QPhase {
        let parts: Vec<Part> = parts
            .iter()
            .map(|&(who, done, calls, throttled)| Part {
                who: who.into(),
                resources: 100,
                done_s: Some(done),
                calls,
                throttled,
                admitted_while_all_worked: calls - throttled,
            })
            .collect();
        QPhase {
            name: name.into(),
            resources: 100 * parts.len(),
            wall_s: Some(wall),
            calls: parts.iter().map(|p| p.calls).sum(),
            throttled: parts.iter().map(|p| p.throttled).sum(),
            parts,
        }
    }

    fn row(row: Row, phases: Vec<QPhase>) -> RowResult {
        RowResult {
            name: row.name().into(),
            title: row.title().into(),
            phases,
            ..Default::default()
        }
    }

    #[test]
    fn the_bound_is_admitted_calls_less_the_burst_over_the_rate() {
        let p = phase("create", 20.0, &[("ours", 20.0, 250, 10)]);
        // 240 admitted, 40 of them from the full bucket, 200 at 10/s.
        assert_eq!(p.bound_s(Quota::API_GATEWAY), 20.0);
        // Fewer calls than the burst: no time needed at all.
        let small = phase("x", 1.0, &[("ours", 1.0, 30, 0)]);
        assert_eq!(small.bound_s(Quota::API_GATEWAY), 0.0);
        assert_eq!(
            small.over_bound(Quota::API_GATEWAY),
            None,
            "the quota did not bind"
        );
        assert_eq!(p.over_bound(Quota::API_GATEWAY), Some(1.0));
    }

    /// The goals of a run with only row (b), made of `phases`.
    fn goals_of_two_of_ours(phases: Vec<QPhase>) -> Vec<Goal> {
        goals(&QuotaRun {
            resources: 200,
            quota: "10/40".into(),
            rows: vec![row(Row::OursTwice, phases)],
        })
    }

    fn goal<'a>(goals: &'a [Goal], prefix: &str) -> &'a Goal {
        goals
            .iter()
            .find(|x| x.what.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {goals:#?}"))
    }

    #[test]
    fn a_phase_where_one_operator_waited_fails_the_share_while_both_worked() {
        // Over the row, 50/50; in create, ours-2 took 90 % of the calls until it was done.
        let mut create = phase(
            "create",
            40.0,
            &[("ours-1", 40.0, 200, 0), ("ours-2", 20.0, 200, 0)],
        );
        create.parts[0].admitted_while_all_worked = 20;
        create.parts[1].admitted_while_all_worked = 180;
        let update = phase(
            "update",
            20.0,
            &[("ours-1", 20.0, 100, 0), ("ours-2", 19.0, 100, 0)],
        );
        let g = goals_of_two_of_ours(vec![create, update]);
        assert_eq!(
            goal(&g, "(b) two of ours: each operator's share").met,
            Some(true)
        );
        let per_phase = goal(&g, "(b) two of ours: in every phase");
        assert_eq!(per_phase.met, Some(false));
        assert_eq!(per_phase.figure, "smallest 10.0 % (create)");
        // Even in every phase: met.
        let even = phase(
            "create",
            20.0,
            &[("ours-1", 20.0, 100, 0), ("ours-2", 20.0, 100, 0)],
        );
        let g = goals_of_two_of_ours(vec![even]);
        let per_phase = goal(&g, "(b) two of ours: in every phase");
        assert_eq!(per_phase.met, Some(true), "{per_phase:?}");
    }

    #[test]
    fn the_goals_are_computed_from_the_rows() {
        let run = QuotaRun {
            resources: 200,
            quota: "10/40".into(),
            rows: vec![
                // Within 1.05 of the bound in every phase, 1 % throttled.
                row(
                    Row::Ours,
                    vec![
                        phase("create", 20.5, &[("ours", 20.5, 242, 2)]),
                        phase("update", 20.0, &[("ours", 20.0, 240, 0)]),
                        phase("delete", 20.9, &[("ours", 20.9, 244, 4)]),
                    ],
                ),
                // 1.2× in one phase; shares 30/70.
                row(
                    Row::OursTwice,
                    vec![
                        phase(
                            "create",
                            24.0,
                            &[("ours-1", 24.0, 72, 0), ("ours-2", 20.0, 168, 0)],
                        ),
                        phase(
                            "update",
                            20.0,
                            &[("ours-1", 20.0, 72, 0), ("ours-2", 19.0, 168, 0)],
                        ),
                    ],
                ),
                row(
                    Row::Ack4,
                    vec![phase("create", 90.0, &[("ack-4", 90.0, 900, 300)])],
                ),
                RowResult {
                    name: Row::AckBesideOurs.name().into(),
                    not_run: Some("no ACK".into()),
                    ..Default::default()
                },
            ],
        };
        let g = goals(&run);
        let met = |prefix: &str| {
            g.iter()
                .find(|x| x.what.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}: {g:#?}"))
                .met
        };
        assert_eq!(met("(a) ours alone: every phase"), Some(true));
        assert_eq!(met("(a) ours alone: at most 2 %"), Some(true));
        assert_eq!(met("(b) two of ours: every phase"), Some(false));
        assert_eq!(met("(b) two of ours: at most 5 %"), Some(true));
        assert_eq!(met("(b) two of ours: each operator's share"), Some(false));
        assert_eq!(met("(b) two of ours: in every phase"), Some(false));
        assert_eq!(
            met("(a) vs (c): ours alone ahead of ACK alone on time"),
            Some(true)
        );
        assert_eq!(
            met("(a) vs (c): ours alone ahead of ACK alone on throttled"),
            Some(true)
        );
        assert_eq!(met("(d) beside ACK: ours done"), None, "(d) did not run");
        let shares = run.row(Row::OursTwice).unwrap().shares();
        assert_eq!(shares, vec![("ours-1".into(), 0.3), ("ours-2".into(), 0.7)]);
    }
}
