//! The contenders and the phases each goes through, one contender after the other on the same stack.

use super::procs::{Controller, StackPids};
use super::watch::{ReadyRule, Watch};
use crate::proxy::{FaultProxy, ProxyCall};
use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_apigatewayv2 as apigw;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// AWS allows 300 integrations per API; the bench spreads resources so that no API holds more.
pub const PER_API: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    Limit,
    OursUnlimited,
    Ours,
    Ack1,
    Ack4,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Limit,
        Kind::OursUnlimited,
        Kind::Ours,
        Kind::Ack1,
        Kind::Ack4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Limit => "limit",
            Kind::OursUnlimited => "ours-unlimited",
            Kind::Ours => "ours",
            Kind::Ack1 => "ack-1",
            Kind::Ack4 => "ack-4",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::Limit => "emulator limit (SDK, 4 at a time)",
            Kind::OursUnlimited => "ours, limiter off",
            Kind::Ours => "ours, defaults (adaptive, at most 10/s, burst 40)",
            Kind::Ack1 => "ACK, 1 worker",
            Kind::Ack4 => "ACK, 4 workers",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn is_ack(self) -> bool {
        matches!(self, Kind::Ack1 | Kind::Ack4)
    }

    pub(super) fn rule(self) -> ReadyRule {
        if self.is_ack() {
            ReadyRule::AckSynced
        } else {
            ReadyRule::ReadyAtGeneration
        }
    }

    /// The kind of object this contender reconciles.
    pub(super) fn resource(self) -> ApiResource {
        let (group, kind, plural) = if self.is_ack() {
            (
                "apigatewayv2.services.k8s.aws",
                "Integration",
                "integrations",
            )
        } else {
            ("apigw.dev", "ApiIntegration", "apiintegrations")
        };
        ApiResource {
            group: group.into(),
            version: "v1alpha1".into(),
            api_version: format!("{group}/v1alpha1"),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// The spec field that holds the URI (ACK spells it integrationURI).
    pub(super) fn uri_field(self) -> &'static str {
        if self.is_ack() {
            "integrationURI"
        } else {
            "integrationUri"
        }
    }

    pub(super) fn manifest(self, item: &Item) -> DynamicObject {
        let spec = if self.is_ack() {
            json!({"apiID": item.api, "integrationType": "HTTP_PROXY", "integrationMethod": "GET",
                   "integrationURI": item.uri, "payloadFormatVersion": "1.0"})
        } else {
            json!({"apiId": item.api, "integrationType": "HTTP_PROXY", "integrationMethod": "GET",
                   "integrationUri": item.uri, "payloadFormatVersion": "1.0"})
        };
        let ar = self.resource();
        let mut obj = DynamicObject::new(&item.name, &ar);
        obj.data = json!({ "spec": spec });
        obj
    }
}

/// ACK's controller binary and its CRDs.
#[derive(Clone, Debug)]
pub struct AckSetup {
    pub bin: PathBuf,
    pub crds: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub resources: usize,
    pub contenders: Vec<Kind>,
    /// The drift period given to ours (--resync-seconds) and ACK (--reconcile-resource-resync-seconds).
    pub drift_s: u64,
    /// How long the idle phase lasts (at least two drift periods).
    pub idle_s: u64,
    /// "Caught up" and "settled" mean this long without an AWS call or a write to the contender's objects.
    pub quiet_s: f64,
    /// Between phases the bench waits for that quiet, at most this long.
    pub settle_max_s: u64,
    pub ack: Option<AckSetup>,
    pub operator_bin: PathBuf,
    /// Objects the bench creates, changes or deletes at once (a user's apply).
    pub apply_concurrency: usize,
    pub kubeconfig: PathBuf,
    pub moto_endpoint: String,
    pub stack_env: Vec<(String, String)>,
    pub stack_dir: PathBuf,
    pub region: String,
    pub log_dir: PathBuf,
}

impl Config {
    /// The drift period the bench uses for N resources unless told otherwise: at least 30 s, longer for
    /// large N so that a contender that re-reads every resource each period can finish one pass.
    pub fn default_drift_s(n: usize) -> u64 {
        (n as u64 / 50).max(30)
    }

    /// A phase's time limit: generous, and growing with N (the rate-limited contender needs N/8 s per
    /// AWS call per resource).
    pub fn phase_timeout(&self) -> Duration {
        Duration::from_secs(180 + self.resources as u64 * 3 / 5)
    }

    /// How long a restarted contender may take to fall quiet: three drift periods (at least a minute).
    /// One that re-reads every resource for longer than that, or keeps writing, is reported as not caught
    /// up (with what it did meanwhile) rather than waited for.
    pub fn restart_timeout(&self) -> Duration {
        Duration::from_secs((3 * self.drift_s).max(60))
    }

    pub fn apis(&self) -> usize {
        (self.resources + 1).div_ceil(PER_API)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// What the per-resource figures are divided by.
    pub resources: usize,
    /// Wall time of the phase (None where it does not apply, e.g. idle).
    pub wall_s: Option<f64>,
    /// Length of the measured window (for idle: the idle time).
    pub window_s: f64,
    /// Every AWS call in the phase up to its end, by operation (failures included).
    pub aws: BTreeMap<String, usize>,
    pub aws_failed: usize,
    /// AWS calls after the phase's end (e.g. after all said Ready or Synced) until the bench saw quiet,
    /// by operation.
    pub aws_after: BTreeMap<String, usize>,
    /// New resourceVersions of the contender's objects in the phase, not made by the bench itself.
    pub k8s_writes: i64,
    /// New resourceVersions after the phase's end until quiet.
    pub k8s_writes_after: i64,
    /// Kubernetes Events written in the namespace (in the phase and until quiet).
    pub events: usize,
    /// CPU seconds of the contender's process (None for `limit`, which has none).
    pub cpu_s: Option<f64>,
    /// CPU seconds of kube-apiserver + etcd, and of moto, in the phase.
    pub apiserver_cpu_s: f64,
    pub moto_cpu_s: f64,
    /// How long the bench waited for quiet after the phase (not part of wall_s).
    pub settle_s: f64,
    pub note: Option<String>,
}

impl Phase {
    pub fn aws_total(&self) -> usize {
        self.aws.values().sum()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContenderResult {
    pub name: String,
    pub title: String,
    /// Why it did not run, when it did not.
    pub not_run: Option<String>,
    /// Why it stopped early, when it did.
    pub failure: Option<String>,
    pub phases: Vec<Phase>,
    pub peak_rss_mib: Option<f64>,
    pub cpu_total_s: Option<f64>,
    /// CreateIntegration calls moto answered with success, over the whole run.
    pub creates_ok: usize,
    /// Integrations moto held for the contender's resources after the create phase, and how many URIs
    /// appeared more than once (a resource made twice).
    pub held_after_create: usize,
    pub duplicates: usize,
    /// Integrations left in moto on the contender's APIs after the delete phase.
    pub leftovers: usize,
    /// (seconds since the create phase began, Ready resources).
    pub ready_curve: Vec<(f64, usize)>,
    pub watch_relists: usize,
}

impl ContenderResult {
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub resources: usize,
    pub apis: usize,
    pub drift_s: u64,
    pub idle_s: u64,
    pub quiet_s: f64,
    pub contenders: Vec<ContenderResult>,
}

#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) name: String,
    pub(super) api: String,
    pub(super) uri: String,
}

fn log(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

pub async fn kube_client(kubeconfig: &std::path::Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

pub fn apigw_client(cfg: &Config, endpoint: &str) -> apigw::Client {
    let env: HashMap<_, _> = cfg.stack_env.iter().cloned().collect();
    let config = apigw::Config::builder()
        .behavior_version_latest()
        .region(apigw::config::Region::new(cfg.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(apigw::config::Credentials::new(
            env.get("AWS_ACCESS_KEY_ID").cloned().unwrap_or_default(),
            env.get("AWS_SECRET_ACCESS_KEY")
                .cloned()
                .unwrap_or_default(),
            None,
            None,
            "bench",
        ))
        .build();
    apigw::Client::from_conf(config)
}

/// Runs every contender of `cfg` in turn.
pub async fn run(cfg: &Config) -> Result<RunResult> {
    let kube = kube_client(&cfg.kubeconfig).await?;
    let moto = apigw_client(cfg, &cfg.moto_endpoint);
    let pids = StackPids::read(&cfg.stack_dir);
    if cfg.contenders.iter().any(|k| k.is_ack())
        && let Some(ack) = &cfg.ack
    {
        install_ack_crd(cfg, ack)?;
    }
    let mut out = RunResult {
        resources: cfg.resources,
        apis: cfg.apis(),
        drift_s: cfg.drift_s,
        idle_s: cfg.idle_s,
        quiet_s: cfg.quiet_s,
        contenders: Vec::new(),
    };
    for &kind in &cfg.contenders {
        let mut result = ContenderResult {
            name: kind.name().into(),
            title: kind.title().into(),
            ..Default::default()
        };
        if kind.is_ack() && cfg.ack.is_none() {
            result.not_run = Some("ACK's controller is neither cached nor buildable here".into());
            out.contenders.push(result);
            continue;
        }
        log(format!(
            "N={}: {} ({})",
            cfg.resources,
            kind.name(),
            kind.title()
        ));
        let started = Instant::now();
        if let Err(e) = run_contender(cfg, kind, &kube, &moto, &pids, &mut result).await {
            log(format!("{}: failed: {e:#}", kind.name()));
            result.failure = Some(format!("{e:#}"));
        }
        log(format!("{} done in {:.0?}", kind.name(), started.elapsed()));
        out.contenders.push(result);
    }
    Ok(out)
}

pub(super) fn install_ack_crd(cfg: &Config, ack: &AckSetup) -> Result<()> {
    let crd = ack
        .crds
        .join("apigatewayv2.services.k8s.aws_integrations.yaml");
    for args in [
        vec!["apply", "--server-side", "--force-conflicts", "-f"],
        vec!["wait", "--for=condition=Established", "--timeout=60s", "-f"],
    ] {
        let out = std::process::Command::new("kubectl")
            .envs(cfg.stack_env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .arg(&crd)
            .output()?;
        if !out.status.success() {
            bail!(
                "kubectl on {}: {}",
                crd.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// Where a phase started: indexes into the proxy's record, watch counters, CPU clocks.
struct Mark {
    at: Instant,
    calls: usize,
    cpu: f64,
    stack_cpu: (f64, f64),
}

/// Everything one contender's run holds.
struct Bench<'a> {
    cfg: &'a Config,
    kind: Kind,
    api: Api<DynamicObject>,
    moto: &'a apigw::Client,
    proxy: FaultProxy,
    watch: Watch,
    events: Watch,
    pids: &'a StackPids,
    controller: Option<Controller>,
    limit: Option<Limit>,
    items: Vec<Item>,
    apis: Vec<String>,
}

async fn run_contender(
    cfg: &Config,
    kind: Kind,
    kube: &kube::Client,
    moto: &apigw::Client,
    pids: &StackPids,
    result: &mut ContenderResult,
) -> Result<()> {
    let ns = format!("bench-{}-{:06x}", kind.name(), rand::random::<u32>() >> 8);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let mut apis = Vec::new();
    for i in 0..cfg.apis() {
        let out = moto
            .create_api()
            .name(format!("{ns}-{i}"))
            .protocol_type(apigw::types::ProtocolType::Http)
            .send()
            .await?;
        apis.push(out.api_id.context("moto gave no ApiId")?);
    }
    let items: Vec<Item> = (0..cfg.resources)
        .map(|i| item(kind, &format!("r-{i:05}"), &apis[i % apis.len()]))
        .collect();
    let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), &ns, &kind.resource());
    let events: Api<DynamicObject> = Api::namespaced_with(
        kube.clone(),
        &ns,
        &ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&()),
    );
    let proxy = FaultProxy::start_here(&cfg.moto_endpoint);
    let watch = Watch::start(api.clone(), kind.rule());
    let events = Watch::start(events, kind.rule());
    watch.synced().await;
    events.synced().await;
    let mut bench = Bench {
        cfg,
        kind,
        api: api.clone(),
        moto,
        controller: None,
        limit: None,
        proxy,
        watch,
        events,
        pids,
        items,
        apis,
    };
    let outcome = bench.phases(&ns, result).await;
    result.watch_relists = bench.watch.counts().relists;
    if let Some(c) = bench.controller.as_mut() {
        result.peak_rss_mib = Some(c.peak_kib() as f64 / 1024.0);
        c.stop(Duration::from_secs(10));
        result.cpu_total_s = Some(c.cpu_before_s);
    }
    result.creates_ok = bench
        .proxy
        .calls_since(0, None)
        .iter()
        .filter(|c| c.op == "CreateIntegration" && c.ok())
        .count();
    // Whatever happened, leave nothing behind: objects without their finalizers, the namespace, and
    // the APIs (with any integration still in them).
    if outcome.is_err() {
        result.leftovers = bench.held().await.map(|h| h.len()).unwrap_or(0);
        let _ = strip_finalizers(&api).await;
    }
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    for a in &bench.apis {
        let _ = moto.delete_api().api_id(a).send().await;
    }
    outcome
}

pub(super) fn item(kind: Kind, name: &str, api: &str) -> Item {
    Item {
        name: name.to_string(),
        api: api.to_string(),
        uri: format!("https://example.com/{}/{name}", kind.name()),
    }
}

pub(super) fn updated_uri(uri: &str) -> String {
    format!("{uri}/v2")
}

pub(super) async fn strip_finalizers(api: &Api<DynamicObject>) -> Result<()> {
    for obj in api.list(&Default::default()).await?.items {
        let name = obj.metadata.name.unwrap_or_default();
        let _ = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    Ok(())
}

impl Bench<'_> {
    async fn phases(&mut self, ns: &str, result: &mut ContenderResult) -> Result<()> {
        self.start_contender(ns).await?;
        let n = self.items.len();

        // Create: apply every object, until all are Ready (Synced) and moto holds each once.
        let mark = self.mark();
        let curve: Arc<Mutex<Vec<(f64, usize)>>> = Arc::default();
        let sampler = {
            let (curve, watch_state) = (curve.clone(), self.watch_sampler());
            let t0 = mark.at;
            tokio::spawn(async move {
                loop {
                    let ready = watch_state();
                    curve
                        .lock()
                        .unwrap()
                        .push((t0.elapsed().as_secs_f64(), ready));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let all: Vec<usize> = (0..n).collect();
        self.create(&all).await?;
        let wanted: HashMap<String, i64> = self.items.iter().map(|i| (i.name.clone(), 0)).collect();
        let ready_at = self.until_ready(&wanted, &mark).await;
        sampler.abort();
        let ready_at = ready_at?;
        let mut wall = ready_at.duration_since(mark.at);
        let expected: HashMap<String, usize> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.uri.clone(), i))
            .collect();
        let held = self.until_moto_holds(&expected, &mark).await?;
        if let Some(t) = held.1 {
            wall = wall.max(t.duration_since(mark.at));
        }
        result.held_after_create = held.0.values().map(Vec::len).sum();
        result.duplicates = held.0.values().map(|ids| ids.len().saturating_sub(1)).sum();
        {
            let mut c = curve.lock().unwrap();
            c.push((wall.as_secs_f64(), n));
            result.ready_curve = c.clone();
        }
        let ids: HashMap<String, String> = held
            .0
            .iter()
            .filter_map(|(uri, ids)| Some((uri.clone(), ids.first()?.clone())))
            .collect();
        let phase = self
            .finish("create", n, Some(wall), mark.at + wall, mark, n, 0)
            .await;
        result.phases.push(phase);

        // Update: change every URI, until moto holds every new URI and all are Ready again.
        let mark = self.mark();
        let generations = self.update(&all).await?;
        let ready_at = self.until_ready(&generations, &mark).await?;
        let updated: HashMap<String, usize> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (updated_uri(&it.uri), i))
            .collect();
        let want_ids: HashSet<String> = ids.values().cloned().collect();
        let aws_at = self
            .until_applied("UpdateIntegration", &want_ids, &updated, &mark)
            .await?;
        let wall = ready_at.max(aws_at).duration_since(mark.at);
        let phase = self
            .finish("update", n, Some(wall), mark.at + wall, mark, 0, n)
            .await;
        result.phases.push(phase);

        // Idle: nothing changes for a few drift periods.
        if self.controller.is_some() {
            let mark = self.mark();
            tokio::time::sleep(Duration::from_secs(self.cfg.idle_s)).await;
            self.alive()?;
            let phase = self
                .finish("idle", n, None, Instant::now(), mark, 0, 0)
                .await;
            result.phases.push(phase);
        }

        // Restart with N present: until the new process is caught up.
        if self.controller.is_some() {
            self.controller
                .as_mut()
                .unwrap()
                .stop(Duration::from_secs(10));
            let mark = self.mark();
            self.controller.as_mut().unwrap().spawn();
            let up_at = self.until_started().await?;
            let settled = self
                .quiet_for(
                    Duration::from_secs_f64(self.cfg.quiet_s),
                    self.cfg.restart_timeout(),
                    up_at,
                )
                .await;
            let up_after = up_at.duration_since(mark.at).as_secs_f64();
            let (wall, ended, note) = match settled {
                Ok(caught_up) => (
                    Some(caught_up.duration_since(mark.at)),
                    caught_up,
                    format!("process ready after {up_after:.1} s"),
                ),
                Err(e) => {
                    self.alive()?;
                    (
                        None,
                        Instant::now(),
                        format!("process ready after {up_after:.1} s; not caught up: {e}"),
                    )
                }
            };
            let mut phase = self.finish("restart", n, wall, ended, mark, 0, 0).await;
            phase.note = Some(note);
            result.phases.push(phase);
        }

        // One new resource with N present.
        let mark = self.mark();
        let extra = item(self.kind, "r-new", &self.apis[n % self.apis.len()]);
        self.items.push(extra.clone());
        self.create(&[n]).await?;
        let wanted: HashMap<String, i64> = [(extra.name.clone(), 0)].into();
        let ready_at = self.until_ready(&wanted, &mark).await?;
        let one: HashMap<String, usize> = [(extra.uri.clone(), n)].into();
        let held_new = self.until_moto_holds(&one, &mark).await?;
        let wall = ready_at
            .max(held_new.1.unwrap_or(ready_at))
            .duration_since(mark.at);
        result.duplicates += held_new
            .0
            .values()
            .map(|ids| ids.len().saturating_sub(1))
            .sum::<usize>();
        let phase = self
            .finish("one new", 1, Some(wall), mark.at + wall, mark, 1, 0)
            .await;
        result.phases.push(phase);

        // Delete all: until no object is left and moto holds none of them.
        let mark = self.mark();
        let mut all_ids: HashSet<String> = ids.values().cloned().collect();
        all_ids.extend(held_new.0.values().flatten().cloned());
        self.delete_all(&all_ids).await?;
        let gone_at = self.until_gone(&mark).await?;
        let aws_at = self
            .until_applied("DeleteIntegration", &all_ids, &HashMap::new(), &mark)
            .await?;
        let wall = gone_at.max(aws_at).duration_since(mark.at);
        let total = n + 1;
        let phase = self
            .finish("delete", total, Some(wall), mark.at + wall, mark, 0, total)
            .await;
        result.phases.push(phase);
        result.leftovers = self.held().await?.len();
        if let Some(c) = &self.controller {
            result.peak_rss_mib = Some(c.peak_kib() as f64 / 1024.0);
        }
        Ok(())
    }

    fn watch_sampler(&self) -> impl Fn() -> usize + Send + 'static {
        let state = self.watch.ready_handle();
        move || state()
    }

    async fn start_contender(&mut self, ns: &str) -> Result<()> {
        let cfg = self.cfg;
        let log = cfg
            .log_dir
            .join(format!("{}-{}.log", self.kind.name(), cfg.resources));
        let _ = std::fs::remove_file(&log);
        let endpoint = self.proxy.endpoint.clone();
        if self.kind == Kind::Limit {
            self.limit = Some(Limit::start(apigw_client(cfg, &endpoint), self.api.clone()));
            return Ok(());
        }
        self.controller = Some(controller(cfg, self.kind, ns, &endpoint, cfg.drift_s, log)?);
        self.controller.as_mut().unwrap().spawn();
        self.until_started().await?;
        Ok(())
    }

    /// Waits until the contender's process says it is working: ours answers /readyz, ACK logs that its
    /// workers started.
    async fn until_started(&mut self) -> Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let kind = self.kind;
        loop {
            let c = self.controller.as_mut().unwrap();
            if let Some(why) = c.exited() {
                bail!(why);
            }
            if started(kind, &c.log_since_start()) {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within 120 s; log tail:\n{}",
                    kind.name(),
                    c.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn alive(&mut self) -> Result<()> {
        match self.controller.as_mut().and_then(|c| c.exited()) {
            Some(why) => Err(anyhow!(why)),
            None => Ok(()),
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            calls: self.proxy.answered(),
            cpu: self.controller.as_ref().map(|c| c.cpu_now()).unwrap_or(0.0),
            stack_cpu: self.pids.cpu(),
        }
    }

    /// Waits for quiet after `ended` (bounded), then reads what the phase cost since `mark`: calls and
    /// writes that trail the phase count in it. `user_adds` and `user_changes` are the bench's own writes
    /// in the phase (creates; spec changes or deletes), which are not the contender's.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &mut self,
        name: &str,
        resources: usize,
        wall: Option<Duration>,
        ended: Instant,
        mark: Mark,
        user_adds: usize,
        user_changes: usize,
    ) -> Phase {
        let settle_started = Instant::now();
        if name != "idle" && wall.is_some() {
            let _ = self
                .quiet_for(
                    Duration::from_secs_f64(self.cfg.quiet_s),
                    Duration::from_secs(self.cfg.settle_max_s),
                    ended,
                )
                .await;
        }
        let settle = settle_started.elapsed();
        let settled = Instant::now();
        let calls = self.proxy.calls_since(mark.calls, None);
        let (inside, after): (Vec<&ProxyCall>, Vec<&ProxyCall>) =
            calls.iter().partition(|c| wall.is_none() || c.at <= ended);
        let by_op = |calls: &[&ProxyCall]| {
            let mut m = BTreeMap::new();
            for c in calls {
                *m.entry(c.op.clone()).or_insert(0) += 1;
            }
            m
        };
        if name == "idle" {
            // When each API was listed, so that a listing off its API's check time can be told apart.
            let mut by_api: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for c in inside.iter().filter(|c| c.op == "GetIntegrations") {
                by_api
                    .entry(c.api.as_deref().unwrap_or("?"))
                    .or_default()
                    .push(format!("{:.1}", c.at.duration_since(mark.at).as_secs_f64()));
            }
            log(format!(
                "  idle: listings (s after the phase began): {by_api:?}"
            ));
        }
        let w = self.watch.counts_between(mark.at, ended);
        let k8s_writes =
            (w.added + w.modified + w.deleted) as i64 - user_adds as i64 - user_changes as i64;
        let w_after = self.watch.counts_between(ended, settled);
        let k8s_writes_after = (w_after.added + w_after.modified + w_after.deleted) as i64;
        let e = self.events.counts_between(mark.at, settled);
        let events = e.added + e.modified;
        let stack = self.pids.cpu();
        // (A restart's mark is taken between the two processes, at 0.)
        let cpu = self.controller.as_ref().map(|c| c.cpu_now() - mark.cpu);
        let window = if name == "idle" {
            mark.at.elapsed()
        } else {
            wall.unwrap_or_default()
        };
        let phase = Phase {
            name: name.into(),
            resources,
            wall_s: wall.map(|w| w.as_secs_f64()),
            window_s: window.as_secs_f64(),
            aws_failed: calls.iter().filter(|c| !c.ok()).count(),
            aws: by_op(&inside),
            aws_after: by_op(&after),
            k8s_writes,
            k8s_writes_after,
            events,
            cpu_s: cpu,
            apiserver_cpu_s: stack.0 - mark.stack_cpu.0,
            moto_cpu_s: stack.1 - mark.stack_cpu.1,
            settle_s: settle.as_secs_f64(),
            note: None,
        };
        log(format!(
            "  {name}: wall {}, AWS {:?} then {:?}, k8s writes {} then {}, cpu {}, settled after {:.1} s",
            phase
                .wall_s
                .map_or("-".to_string(), |w| format!("{w:.2} s")),
            phase.aws,
            phase.aws_after,
            phase.k8s_writes,
            phase.k8s_writes_after,
            phase.cpu_s.map_or("-".to_string(), |c| format!("{c:.2} s")),
            phase.settle_s
        ));
        phase
    }

    /// Creates the objects `which` (indexes into items), `apply_concurrency` at a time; `limit` gets each
    /// as soon as it exists.
    async fn create(&self, which: &[usize]) -> Result<()> {
        let pp = PostParams::default();
        let results: Vec<Result<()>> = futures::stream::iter(which.iter().copied())
            .map(|i| {
                let obj = self.kind.manifest(&self.items[i]);
                let pp = &pp;
                async move {
                    let made = self.api.create(pp, &obj).await?;
                    if let Some(l) = &self.limit {
                        l.send(Job::Create {
                            name: self.items[i].name.clone(),
                            api: self.items[i].api.clone(),
                            uri: self.items[i].uri.clone(),
                            generation: made.metadata.generation.unwrap_or(1),
                        });
                    }
                    Ok(())
                }
            })
            .buffer_unordered(self.cfg.apply_concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Changes the URI of the objects `which`; returns the generation each change produced.
    async fn update(&self, which: &[usize]) -> Result<HashMap<String, i64>> {
        let field = self.kind.uri_field();
        let results: Vec<Result<(String, i64)>> = futures::stream::iter(which.iter().copied())
            .map(|i| {
                let it = &self.items[i];
                let patch = json!({"spec": {field: updated_uri(&it.uri)}});
                async move {
                    let changed = self
                        .api
                        .patch(&it.name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    let generation = changed.metadata.generation.unwrap_or(0);
                    if let Some(l) = &self.limit {
                        l.send(Job::Update {
                            name: it.name.clone(),
                            api: it.api.clone(),
                            uri: updated_uri(&it.uri),
                            generation,
                        });
                    }
                    Ok((it.name.clone(), generation))
                }
            })
            .buffer_unordered(self.cfg.apply_concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Deletes every object, as `kubectl delete --all` does; `limit` then deletes in AWS.
    async fn delete_all(&self, ids: &HashSet<String>) -> Result<()> {
        self.api
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await?;
        if let Some(l) = &self.limit {
            // limit knows each integration's API from its own creates.
            for (id, api) in l.ids_with_apis() {
                if ids.contains(&id) {
                    l.send(Job::Delete { api, id });
                }
            }
        }
        Ok(())
    }

    /// Waits until every object in `wanted` is Ready at (at least) the given generation; returns when.
    async fn until_ready(&mut self, wanted: &HashMap<String, i64>, mark: &Mark) -> Result<Instant> {
        let deadline = mark.at + self.cfg.phase_timeout();
        let mut checks = 0u32;
        loop {
            if self.watch.ready_among(wanted) == wanted.len() {
                // The watch event's time, not this poll's.
                return Ok(self
                    .watch
                    .all_ready_since(wanted)
                    .unwrap_or_else(Instant::now));
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {} Ready after {:?}",
                    self.watch.ready_among(wanted),
                    wanted.len(),
                    self.cfg.phase_timeout()
                );
            }
            checks += 1;
            if checks.is_multiple_of(20) {
                self.alive()?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no object is left.
    async fn until_gone(&mut self, mark: &Mark) -> Result<Instant> {
        let deadline = mark.at + self.cfg.phase_timeout();
        loop {
            let (present, _) = self.watch.ready();
            if present == 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!(
                    "{present} objects still present after {:?}",
                    self.cfg.phase_timeout()
                );
            }
            self.alive()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What moto holds on the contender's APIs: integration URI -> integration IDs.
    async fn held(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut held: HashMap<String, Vec<String>> = HashMap::new();
        for a in &self.apis {
            let out = self.moto.get_integrations().api_id(a).send().await?;
            for i in out.items() {
                held.entry(i.integration_uri().unwrap_or_default().to_string())
                    .or_default()
                    .push(i.integration_id().unwrap_or_default().to_string());
            }
        }
        Ok(held)
    }

    /// Checks moto holds every URI of `expected` (at least once); polls until it does. Returns what it
    /// holds for those URIs, and the time of the check that passed if it was not the first.
    async fn until_moto_holds(
        &self,
        expected: &HashMap<String, usize>,
        mark: &Mark,
    ) -> Result<(HashMap<String, Vec<String>>, Option<Instant>)> {
        let deadline = mark.at + self.cfg.phase_timeout();
        let mut first = true;
        loop {
            let held = self.held().await?;
            if expected.keys().all(|u| held.contains_key(u)) {
                let mine = held
                    .into_iter()
                    .filter(|(u, _)| expected.contains_key(u))
                    .collect();
                return Ok((mine, (!first).then(Instant::now)));
            }
            if Instant::now() > deadline {
                let missing = expected.keys().filter(|u| !held.contains_key(*u)).count();
                bail!("moto lacks {missing} of {} integrations", expected.len());
            }
            first = false;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until every ID in `ids` had a successful `op` since `mark`, then checks moto: for updates
    /// it must hold every URI in `uris`, for deletes none of `ids`. Returns when AWS held that: the
    /// latest of those first successful calls, or the time of a later check that passed.
    async fn until_applied(
        &self,
        op: &str,
        ids: &HashSet<String>,
        uris: &HashMap<String, usize>,
        mark: &Mark,
    ) -> Result<Instant> {
        let deadline = mark.at + self.cfg.phase_timeout();
        let mut first_ok: HashMap<String, Instant> = HashMap::new();
        let mut seen = mark.calls;
        loop {
            let calls = self.proxy.calls_since(seen, None);
            seen += calls.len();
            for c in calls.iter().filter(|c: &&ProxyCall| c.op == op && c.ok()) {
                if let Some(id) = &c.integration
                    && ids.contains(id)
                {
                    first_ok.entry(id.clone()).or_insert(c.at);
                }
            }
            if first_ok.len() == ids.len() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {} integrations saw a successful {op} within {:?}",
                    first_ok.len(),
                    ids.len(),
                    self.cfg.phase_timeout()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let calls_done = first_ok.values().max().copied().unwrap_or(mark.at);
        let mut first = true;
        loop {
            let held = self.held().await?;
            let ok = if op == "DeleteIntegration" {
                !held.values().flatten().any(|id| ids.contains(id))
            } else {
                uris.keys().all(|u| held.contains_key(u))
            };
            if ok {
                return Ok(if first { calls_done } else { Instant::now() });
            }
            if Instant::now() > deadline {
                bail!("moto does not hold what {op} should have left there");
            }
            first = false;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The latest AWS call or change to the contender's objects.
    fn last_activity(&self) -> Option<Instant> {
        match (self.proxy.last_answer_at(), self.watch.last_change()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits until `quiet` passed with no activity and every object is Ready; gives up after `limit`
    /// (then returns Err). Returns the end of the last activity (or `since` when there was none).
    async fn quiet_for(
        &mut self,
        quiet: Duration,
        limit: Duration,
        since: Instant,
    ) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let last = self.last_activity().map_or(since, |l| l.max(since));
            let (present, ready) = self.watch.ready();
            if last.elapsed() >= quiet && present == ready {
                return Ok(last);
            }
            if Instant::now() > deadline {
                bail!("no quiet stretch of {quiet:?} within {limit:?}");
            }
            self.alive()?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The process of contender `kind` (ours or ACK) watching `ns`, its AWS calls sent to `endpoint`, with
/// drift period `drift_s`, logging to `log`; not started yet.
pub(super) fn controller(
    cfg: &Config,
    kind: Kind,
    ns: &str,
    endpoint: &str,
    drift_s: u64,
    log: PathBuf,
) -> Result<Controller> {
    let drift = drift_s.to_string();
    let endpoint = endpoint.to_string();
    Ok(match kind {
        Kind::Limit => bail!("limit has no process"),
        Kind::Ours | Kind::OursUnlimited => {
            let mut args: Vec<String> = [
                "run",
                "--watch-namespace",
                ns,
                "--resync-seconds",
                &drift,
                "--http-addr",
                "127.0.0.1:0",
            ]
            .map(String::from)
            .to_vec();
            if kind == Kind::OursUnlimited {
                args.extend(["--aws-rate", "1000000", "--aws-burst", "1000000"].map(String::from));
            }
            let mut env = cfg.stack_env.clone();
            env.push(("AWS_ENDPOINT_URL".into(), endpoint));
            env.push(("APIGW_LOG".into(), "info".into()));
            Controller::new(cfg.operator_bin.clone(), args, env, vec![], log)
        }
        Kind::Ack1 | Kind::Ack4 => {
            let ack = cfg.ack.as_ref().context("no ACK binary")?;
            let workers = if kind == Kind::Ack4 { "4" } else { "1" };
            let args: Vec<String> = vec![
                format!("--aws-endpoint-url={endpoint}"),
                format!("--aws-identity-endpoint-url={endpoint}"),
                "--allow-unsafe-aws-endpoint-urls".into(),
                "--enable-carm=false".into(),
                "--enable-field-export-reconciler=false".into(),
                "--reconcile-resources=Integration".into(),
                format!("--watch-namespace={ns}"),
                format!("--reconcile-resource-resync-seconds=Integration={drift}"),
                format!("--reconcile-default-max-concurrent-syncs={workers}"),
                // Ports of their own (0: off), so stacks and contenders can run side by side.
                "--metrics-addr=0".into(),
                "--healthz-addr=0".into(),
            ];
            // With AWS_CA_BUNDLE set, ACK fails every reconcile ("unable to add custom RootCAs
            // HTTPClient", a known ACK bug); this machine kind sets it. The endpoint comes from the
            // flags above, not from AWS_ENDPOINT_URL.
            let unset = ["AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"].map(String::from);
            let env = cfg
                .stack_env
                .iter()
                .filter(|(k, _)| !unset.contains(k))
                .cloned()
                .collect();
            Controller::new(ack.bin.clone(), args, env, unset.to_vec(), log)
        }
    })
}

/// Whether a contender whose latest start logged `log` is working: ours answers /readyz, ACK logs that
/// its workers started.
pub(super) fn started(kind: Kind, log: &str) -> bool {
    if kind.is_ack() {
        log.contains("Starting workers")
    } else {
        // The latest start's address: "... serving /metrics, /healthz and /readyz addr=127.0.0.1:P".
        log.lines()
            .rev()
            .find(|l| l.contains("serving /metrics"))
            .and_then(|l| {
                let at = l.find("127.0.0.1:")?;
                let port: String = l[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                port.parse::<u16>().ok()
            })
            .is_some_and(readyz)
    }
}

fn readyz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace().nth(1) == Some("200")
}

/// What `limit` does for one object.
enum Job {
    Create {
        name: String,
        api: String,
        uri: String,
        generation: i64,
    },
    Update {
        name: String,
        api: String,
        uri: String,
        generation: i64,
    },
    Delete {
        api: String,
        id: String,
    },
}

/// The emulator's limit: the AWS calls any operator must make, 4 at a time, with the SDK, plus the one
/// status write that records each result on the object.
struct Limit {
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
    /// integration ID -> (object name, API).
    ids: Arc<Mutex<HashMap<String, (String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Limit {
    const AT_A_TIME: usize = 4;

    fn start(client: apigw::Client, api: Api<DynamicObject>) -> Limit {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let ids: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
        let by_name: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let shared = ids.clone();
        let task = tokio::spawn(async move {
            let jobs = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|job| (job, rx))
            });
            jobs.for_each_concurrent(Self::AT_A_TIME, |job| {
                let (client, api, ids, by_name) =
                    (client.clone(), api.clone(), shared.clone(), by_name.clone());
                async move {
                    if let Err(e) = Self::one(&client, &api, &ids, &by_name, job).await {
                        log(format!("limit: {e:#}"));
                    }
                }
            })
            .await;
        });
        Limit { tx, ids, task }
    }

    fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }

    fn ids_with_apis(&self) -> Vec<(String, String)> {
        self.ids
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (_, api))| (id.clone(), api.clone()))
            .collect()
    }

    async fn one(
        client: &apigw::Client,
        api: &Api<DynamicObject>,
        ids: &Mutex<HashMap<String, (String, String)>>,
        by_name: &Mutex<HashMap<String, String>>,
        job: Job,
    ) -> Result<()> {
        match job {
            Job::Create {
                name,
                api: api_id,
                uri,
                generation,
            } => {
                let out = client
                    .create_integration()
                    .api_id(&api_id)
                    .integration_type(apigw::types::IntegrationType::HttpProxy)
                    .integration_method("GET")
                    .integration_uri(uri)
                    .payload_format_version("1.0")
                    .send()
                    .await?;
                let id = out.integration_id.ok_or_else(|| anyhow!("no ID"))?;
                ids.lock()
                    .unwrap()
                    .insert(id.clone(), (name.clone(), api_id.clone()));
                by_name.lock().unwrap().insert(name.clone(), id.clone());
                Self::status(api, &name, &id, &api_id, generation).await
            }
            Job::Update {
                name,
                api: api_id,
                uri,
                generation,
            } => {
                let id = by_name
                    .lock()
                    .unwrap()
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| anyhow!("{name} has no integration ID"))?;
                client
                    .update_integration()
                    .api_id(&api_id)
                    .integration_id(&id)
                    .integration_uri(uri)
                    .send()
                    .await?;
                Self::status(api, &name, &id, &api_id, generation).await
            }
            Job::Delete { api: api_id, id } => {
                client
                    .delete_integration()
                    .api_id(api_id)
                    .integration_id(id)
                    .send()
                    .await?;
                Ok(())
            }
        }
    }

    /// The one status write: the ID, and Ready at this generation.
    async fn status(
        api: &Api<DynamicObject>,
        name: &str,
        id: &str,
        api_id: &str,
        generation: i64,
    ) -> Result<()> {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let status = json!({"status": {
            "integrationId": id, "apiId": api_id, "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "",
                            "lastTransitionTime": now, "observedGeneration": generation}],
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        self.task.abort();
    }
}
