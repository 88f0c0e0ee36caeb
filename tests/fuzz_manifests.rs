//! Fuzzed manifests (issue 14, item 3). proptest makes ApiIntegration manifests: valid ones of every
//! shape, nearly valid ones (one thing changed), and hostile ones (huge maps, long and unicode strings,
//! nulls, wrong types, missing fields, numbers out of range, unknown enum values, unknown fields, a spec
//! that is not an object, bad metadata). Each goes to the real API server. Needs `cargo xtask stack up`.
//!
//! Phase 1, one proptest case per manifest (server-side dry run, strict field validation as kubectl
//! uses it): a refusal must name the field it is about; an admitted manifest must be readable by the
//! operator's own types, and must not be one that API Gateway refuses whatever API it is sent to
//! (design §3): that would be a CEL rule missing from the CRD. These failures shrink to a small
//! manifest and are kept in tests/fuzz_manifests.proptest-regressions.
//!
//! Phase 2: every admitted manifest is created for real, in parallel, with the operator running against
//! moto. moto checks almost nothing, so the fault proxy in front of it plays API Gateway's §3 rules
//! for CreateIntegration (400 BadRequestException). Every resource must settle on what those rules and
//! moto's contents predict: Ready (and moto holds the spec), InvalidSpec, ApiNotFound, VpcLinkNotFound
//! or AmbiguousReference; none may stay without a reason, no integration may be made twice, and the
//! operator must neither exit nor panic. Then all are deleted: none may be left behind, and moto keeps
//! only the integrations of deletionPolicy Retain.
//!
//! Seeded, so a run is the same every time: `PROPTEST_CASES` (default 300) sets how many manifests,
//! `PROPTEST_RNG_SEED` another seed. Counts are printed at the end (`-- --nocapture`).

mod common;
mod e2e;
mod specgen;

use apigw_operator::api::ApiIntegration;
use common::{TempNamespace, stack_env};
use e2e::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngSeed, TestCaseError, TestError, TestRunner,
};
use serde_json::{Map, Value, json};
use specgen::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_CASES: u32 = 300;
const DEFAULT_SEED: u64 = 0x00f0_2214_0003;

/// One change that makes a manifest nearly valid or hostile.
#[derive(Clone, Debug)]
enum Mutation {
    /// Drops a spec field (required ones included).
    Remove(&'static str),
    /// Sets a spec field (or an unknown one) to any value: null, a wrong type, a bad enum value, a number
    /// out of range, a long or unicode string, a huge map.
    Set(&'static str, Value),
    /// Sets a field inside an object field (apiRef.name, tlsConfig.serverNameToVerify, ...).
    SetInner(&'static str, &'static str, Value),
    /// Adds a field the API of the other protocol would want.
    Borrow(&'static str, Value),
    /// Aims the manifest at another API (or at none).
    Retarget(Value),
    /// The whole spec is not an object (or is missing).
    Spec(Value),
    /// metadata: a name Kubernetes refuses, a label, or an annotation (huge ones included).
    Name(String),
    Label(String, String),
    Annotation(String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = proptest::sample::select(spec_fields());
    let unknown = proptest::sample::select(vec!["integrationURI", "foo", "status", "apiID"]);
    let borrowed = prop_oneof![
        Just(("requestTemplates", json!({"application/json": "{}"}))),
        Just(("templateSelectionExpression", json!("$request.body.action"))),
        Just(("contentHandlingStrategy", json!("CONVERT_TO_TEXT"))),
        Just(("passthroughBehavior", json!("NEVER"))),
        Just((
            "responseParameters",
            json!({"200": {"overwrite:statuscode": "204"}})
        )),
        Just((
            "tlsConfig",
            json!({"serverNameToVerify": "backend.example.com"})
        )),
        Just(("integrationSubtype", json!("SQS-PurgeQueue"))),
        Just(("payloadFormatVersion", json!("2.0"))),
        Just(("timeoutInMillis", json!(29500))),
        Just(("integrationType", json!("MOCK"))),
        Just(("connectionType", json!("VPC_LINK"))),
    ];
    let inner = prop_oneof![
        Just(("apiRef", "name")),
        Just(("apiRef", "tags")),
        Just(("apiRef", "protocolType")),
        Just(("connectionRef", "name")),
        Just(("connectionRef", "tags")),
        Just(("tlsConfig", "serverNameToVerify")),
        Just(("requestParameters", "QueueUrl")),
        Just(("responseParameters", "200")),
        Just(("responseParameters", "404")),
    ];
    let value = prop_oneof![
        3 => any_json(),
        2 => hostile_string().prop_map(Value::from),
        2 => pick(ENUMISH),
        1 => big_map(),
    ]
    .boxed();
    prop_oneof![
        3 => field.clone().prop_map(Mutation::Remove),
        6 => (field.clone(), value.clone()).prop_map(|(f, v)| Mutation::Set(f, v)),
        1 => (unknown, any_json()).prop_map(|(f, v)| Mutation::Set(f, v)),
        1 => (field, Just(Value::Null)).prop_map(|(f, v)| Mutation::Set(f, v)),
        2 => (inner, value.clone()).prop_map(|((o, f), v)| Mutation::SetInner(o, f, v)),
        3 => borrowed.prop_map(|(f, v)| Mutation::Borrow(f, v)),
        2 => target(None).prop_map(Mutation::Retarget),
        1 => prop_oneof![Just(Value::Null), Just(json!("spec")), Just(json!([])), Just(json!(7)),
                         Just(json!({}))].prop_map(Mutation::Spec),
        1 => prop_oneof![Just("Fuzz_Upper".to_string()), Just("-dash".to_string()),
                         Just("x".repeat(254)), Just("ünï".to_string())].prop_map(Mutation::Name),
        1 => (prop_oneof![Just("app".to_string()), Just("bad key!".to_string())],
              hostile_string()).prop_map(|(k, v)| Mutation::Label(k, v)),
        1 => (Just("apigw.dev/note".to_string()),
              prop_oneof![hostile_string(), Just("a".repeat(300 * 1024))])
            .prop_map(|(k, v)| Mutation::Annotation(k, v)),
    ]
}

/// A generated manifest: a valid spec, then the mutations in order.
#[derive(Clone, Debug)]
struct Case {
    spec: Value,
    mutations: Vec<Mutation>,
}

fn case() -> impl Strategy<Value = Case> {
    let mutations = prop_oneof![
        3 => Just(vec![]),
        3 => vec(mutation(), 1..=1),
        3 => vec(mutation(), 2..=4),
    ];
    (valid_spec(), mutations).prop_map(|(spec, mutations)| Case { spec, mutations })
}

impl Case {
    /// valid (no change), nearly valid (one), hostile (several).
    fn kind(&self) -> &'static str {
        match self.mutations.len() {
            0 => "valid",
            1 => "nearly valid",
            _ => "hostile",
        }
    }

    /// The manifest as sent, placeholders replaced by this run's names.
    fn manifest(&self, name: &str, run: &Run, shard: usize) -> Value {
        let mut doc = json!({"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiIntegration",
                             "metadata": {"name": name}, "spec": self.spec.clone()});
        for m in &self.mutations {
            let spec = &mut doc["spec"];
            match m {
                Mutation::Remove(f) => {
                    if let Some(o) = spec.as_object_mut() {
                        o.remove(*f);
                    }
                }
                Mutation::Set(f, v) | Mutation::Borrow(f, v) => {
                    if spec.is_object() {
                        spec[*f] = v.clone();
                    }
                }
                Mutation::SetInner(o, f, v) => {
                    if spec.is_object() {
                        if !spec[*o].is_object() {
                            spec[*o] = json!({});
                        }
                        spec[*o][*f] = v.clone();
                    }
                }
                Mutation::Retarget(t) => {
                    if let Some(o) = spec.as_object_mut() {
                        o.remove("apiId");
                        o.remove("apiRef");
                        o.extend(t.as_object().unwrap().clone());
                    }
                }
                Mutation::Spec(v) => match v {
                    Value::Null => {
                        doc.as_object_mut().unwrap().remove("spec");
                    }
                    v => *spec = v.clone(),
                },
                Mutation::Name(n) => doc["metadata"]["name"] = json!(n),
                Mutation::Label(k, v) => doc["metadata"]["labels"][k] = json!(v),
                Mutation::Annotation(k, v) => doc["metadata"]["annotations"][k] = json!(v),
            }
        }
        run.fill(&mut doc, shard);
        doc
    }
}

// ---------------------------------------------------------------------------------------------------
// The run: this run's APIs and VPC link in moto, and the API server.

/// One of this run's APIs in moto.
struct TestApi {
    id: String,
    name: String,
    proto: Proto,
    tags: BTreeMap<String, String>,
}

struct Run {
    client: kube::Client,
    ns: String,
    /// Shards of one HTTP and one WebSocket API each (`[http, ws]`), so that no API holds more than a
    /// couple of hundred integrations (API Gateway allows 300 per API). Only shard 0's APIs carry the
    /// tags that references by tag look for.
    shards: Vec<[TestApi; 2]>,
    tag: String,
    link_id: String,
    link_name: String,
}

impl Run {
    /// Replaces every placeholder string in `v` with this run's value, in shard `shard`.
    fn fill(&self, v: &mut Value, shard: usize) {
        let [http, ws] = &self.shards[shard % self.shards.len()];
        match v {
            Value::String(s) => {
                let real = match s.as_str() {
                    HTTP_ID => &http.id,
                    WS_ID => &ws.id,
                    HTTP_NAME => &http.name,
                    WS_NAME => &ws.name,
                    RUN_TAG => &self.tag,
                    LINK_ID => &self.link_id,
                    LINK_NAME => &self.link_name,
                    _ => return,
                };
                *s = real.clone();
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.fill(v, shard)),
            Value::Object(o) => o.values_mut().for_each(|v| self.fill(v, shard)),
            _ => {}
        }
    }

    fn apis(&self) -> impl Iterator<Item = &TestApi> {
        self.shards.iter().flatten()
    }

    fn protocol_of_id(&self, id: &str) -> Option<Proto> {
        self.apis().find(|a| a.id == id).map(|a| a.proto)
    }

    /// The API a spec names, as the operator should resolve it, or the reason it cannot.
    fn resolve(&self, spec: &Value) -> Result<Proto, &'static str> {
        if spec["region"].as_str().is_some_and(|r| r != stack_region()) {
            // This run's APIs live in the stack's region only.
            return Err("ApiNotFound");
        }
        if let Some(id) = spec["apiId"].as_str() {
            return self.protocol_of_id(id).ok_or("ApiNotFound");
        }
        let r = &spec["apiRef"];
        let matching: Vec<Proto> = self
            .apis()
            .filter(|api| {
                let protocol = match api.proto {
                    Proto::Http => "HTTP",
                    Proto::Ws => "WEBSOCKET",
                };
                r["name"].as_str().is_none_or(|n| n == api.name)
                    && r["protocolType"].as_str().is_none_or(|p| p == protocol)
                    && r["tags"].as_object().is_none_or(|tags| {
                        tags.iter()
                            .all(|(k, v)| api.tags.get(k).is_some_and(|t| v == t.as_str()))
                    })
            })
            .map(|api| api.proto)
            .collect();
        match matching[..] {
            [p] => Ok(p),
            [] => Err("ApiNotFound"),
            _ => Err("AmbiguousReference"),
        }
    }

    /// What the resource must settle on: the Ready reasons allowed, and why.
    fn expected(&self, spec: &Value) -> (Vec<&'static str>, String) {
        let proto = self.resolve(spec);
        let mut reasons: Vec<&'static str> = proto.err().into_iter().collect();
        let mut link_may_resolve = true;
        let link = &spec["connectionRef"];
        if link.is_object() {
            let tags = link["tags"].as_object().map_or(0, Map::len);
            match link["name"].as_str() {
                Some(n) if n == self.link_name && tags == 0 => {}
                // Empty tags and no name: every VPC link in moto matches, this run's among them.
                None if tags == 0 => reasons.push("AmbiguousReference"),
                _ => {
                    reasons.push("VpcLinkNotFound");
                    link_may_resolve = false;
                }
            }
        }
        let mut why = "the API or the VPC link does not resolve to one".to_string();
        if let Ok(proto) = proto
            && link_may_resolve
        {
            match aws_refusal(proto, &create_body(spec)) {
                Some(refusal) => {
                    reasons.push("InvalidSpec");
                    why = refusal;
                }
                None => {
                    reasons.push("Synced");
                    why = "API Gateway takes it".into();
                }
            }
        }
        (reasons, why)
    }
}

/// The API server's answer to a create.
enum Answer {
    Admitted(Value),
    Refused(Box<kube::core::Status>),
}

async fn create(client: &kube::Client, ns: &str, doc: &Value, dry_run: bool) -> Answer {
    let mut url = format!(
        "/apis/apigw.dev/v1alpha1/namespaces/{ns}/apiintegrations?fieldValidation=Strict&fieldManager=fuzz"
    );
    if dry_run {
        url.push_str("&dryRun=All");
    }
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(doc).unwrap())
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => Answer::Admitted(serde_json::from_str(&text).expect("the object comes back")),
        Err(kube::Error::Api(status)) => Answer::Refused(status),
        Err(e) => panic!("the API server did not answer: {e}"),
    }
}

/// The fields a refusal names, each cut to the field itself (`spec.requestParameters[x]` →
/// `spec.requestParameters`); empty when it names none. Kubernetes puts the field in the causes or at
/// the start of the message; a rule about the spec as a whole names its fields in its words.
fn fields_named(status: &kube::core::Status) -> Vec<String> {
    let cut = |f: &str| -> String {
        let f = f.trim_start_matches('.').trim_end_matches(['.', ':']);
        let end = f.find('[').unwrap_or(f.len());
        f[..end].to_string()
    };
    let message = &status.message;
    let mut fields: Vec<String> = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .map(|c| cut(&c.field))
        .chain(
            message
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '(')
                .map(cut),
        )
        .filter(|f| f == "spec" || f.starts_with("spec.") || f.starts_with("metadata."))
        .collect();
    fields.sort();
    fields.dedup();
    if fields.iter().any(|f| f != "spec") {
        fields.retain(|f| f != "spec");
        return fields;
    }
    let named: Vec<String> = spec_fields()
        .into_iter()
        .filter(|f| message.contains(*f))
        .map(|f| format!("spec.{f}"))
        .collect();
    if !named.is_empty() {
        return named;
    }
    // Only the spec itself: right when the spec is missing or not an object.
    let whole =
        message.contains("spec: Required value") || message.contains("must be of type object");
    if whole { fields } else { vec![] }
}

/// A named field as the report groups it: the spec or metadata field, and the field inside apiRef,
/// connectionRef or tlsConfig (not map keys, nor what a strict decoder found inside a wrong value).
fn field_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let depth = match parts[..] {
        [
            "spec",
            "apiRef" | "connectionRef" | "tlsConfig",
            "name" | "tags" | "protocolType" | "serverNameToVerify",
            ..,
        ] => 3,
        _ => 2,
    };
    parts[..depth.min(parts.len())].join(".")
}

/// Admission results, for the report.
#[derive(Default)]
struct Tally {
    by_kind: BTreeMap<(&'static str, &'static str), usize>,
    refused: BTreeMap<(String, String), usize>,
    admitted: Vec<(String, Value)>,
}

/// The fields the mutations pick from are the CRD's spec fields.
#[test]
fn spec_fields_are_the_crds() {
    let crd = apigw_operator::crd::crds()
        .into_iter()
        .find(|(file, _)| file.starts_with("apiintegrations."))
        .unwrap()
        .1;
    let crd: Value = serde_saphyr::from_str(&crd).unwrap();
    let properties = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties")
        .and_then(Value::as_object)
        .unwrap();
    let mut in_crd: Vec<&str> = properties.keys().map(String::as_str).collect();
    let mut ours = spec_fields();
    in_crd.sort();
    ours.sort();
    assert_eq!(ours, in_crd);
}

#[test]
fn fuzzed_manifests_are_refused_naming_a_field_or_settle_with_a_reason() {
    let started = Instant::now();
    let ns = TempNamespace::new("fuzz-manifests");
    let moto = Moto::new();
    let tag = format!("{:08x}", rand::random::<u32>());
    let shard_count = (cases_wanted() as usize).div_ceil(100);
    let shards: Vec<[TestApi; 2]> = (0..shard_count)
        .map(|i| {
            [
                (Proto::Http, "HTTP", "http"),
                (Proto::Ws, "WEBSOCKET", "websocket"),
            ]
            .map(|(proto, protocol, short)| {
                let name = format!("fuzz-{short}-{tag}-{i}");
                let run_tag = if i == 0 {
                    tag.clone()
                } else {
                    format!("{tag}-{i}")
                };
                let tags = BTreeMap::from([
                    ("fuzz-run".to_string(), run_tag),
                    ("proto".to_string(), short.to_string()),
                ]);
                let tag_list: Vec<(&str, &str)> =
                    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let id = moto.create_named_api(&name, protocol, &tag_list);
                TestApi {
                    id,
                    name,
                    proto,
                    tags,
                }
            })
        })
        .collect();
    let link_name = format!("fuzz-link-{tag}");
    let link_id = block_on(
        moto.client
            .create_vpc_link()
            .name(&link_name)
            .subnet_ids("subnet-0a1b2c3d")
            .send(),
    )
    .expect("moto creates the VPC link")
    .vpc_link_id
    .unwrap();
    let client = block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&stack_env()["KUBECONFIG"]).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let run = Arc::new(Run {
        client,
        ns: ns.name.clone(),
        shards,
        tag,
        link_id,
        link_name,
    });

    // Phase 1: admission, one proptest case per manifest.
    let defaults = Config::default();
    let config = Config {
        cases: cases_wanted(),
        // PROPTEST_RNG_SEED (read by Config::default) picks another seed; unset, every run is the same.
        rng_seed: match std::env::var_os("PROPTEST_RNG_SEED") {
            Some(_) => defaults.rng_seed,
            None => RngSeed::Fixed(DEFAULT_SEED),
        },
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz_manifests.proptest-regressions"
        )))),
        max_shrink_iters: 200,
        ..defaults.clone()
    };
    let cases = config.cases;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut runner = TestRunner::new(config);
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let (r, t) = (run.clone(), tally.clone());
    let result = runner.run(&case(), move |case| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("fuzz-{n:04}");
        let doc = case.manifest(&name, &r, n);
        let answer = block_on(create(&r.client, &r.ns, &doc, true));
        let shown = || {
            let mut s = doc.to_string();
            if s.len() > 1500 {
                s.truncate(1500);
                s.push_str("...");
            }
            s
        };
        let mut t = t.lock().unwrap();
        match answer {
            Answer::Refused(status) => {
                let fields = fields_named(&status);
                prop_assert!(
                    !fields.is_empty(),
                    "refused without naming a field ({}): {}\n{}",
                    status.reason,
                    status.message,
                    shown()
                );
                *t.by_kind.entry((case.kind(), "refused")).or_default() += 1;
                let field = field_of(&fields[0]);
                *t.refused.entry((field, status.reason.clone())).or_default() += 1;
            }
            Answer::Admitted(obj) => {
                let typed = serde_json::from_value::<ApiIntegration>(obj.clone());
                prop_assert!(
                    typed.is_ok(),
                    "admitted, but the operator cannot read it: {:?}\n{}",
                    typed.err(),
                    shown()
                );
                if let Some(why) = refused_on_every_api(&obj["spec"]) {
                    return Err(TestCaseError::fail(format!(
                        "admitted, but API Gateway refuses it on any API ({why}): a CEL rule is missing\n{}",
                        shown()
                    )));
                }
                *t.by_kind.entry((case.kind(), "admitted")).or_default() += 1;
                t.admitted.push((name, doc.clone()));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        match e {
            TestError::Fail(why, case) => panic!(
                "{why}\nminimal case: {case:#?}\n(kept in tests/fuzz_manifests.proptest-regressions)"
            ),
            TestError::Abort(why) => panic!("proptest aborted: {why}"),
        }
    }
    let phase1 = started.elapsed();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let admitted = tally.admitted;
    assert!(
        admitted.len() >= cases as usize / 5 && admitted.len() < cases as usize,
        "a mix of refused and admitted manifests: {} admitted of {cases}",
        admitted.len()
    );

    // Phase 2: the admitted ones for real, with the operator running against moto behind the proxy,
    // which refuses what API Gateway would.
    let proxy = FaultProxy::start();
    let judge_run = run.clone();
    proxy.judge(move |head, body| {
        let api = head
            .strip_prefix("POST /v2/apis/")?
            .strip_suffix("/integrations")?;
        let proto = judge_run.protocol_of_id(api)?;
        let body: Value = serde_json::from_slice(body).ok()?;
        let why = aws_refusal(proto, &body)?;
        Some(Fault::new("", 400, "BadRequestException", &why))
    });
    let mut op = Operator::start(
        &run.ns,
        &[
            // Settling once is what is checked: drift checks and slow retries as in production.
            "--resync-seconds",
            "600",
            "--slow-retry-seconds",
            "60",
            "--aws-rate",
            "200",
            "--aws-burst",
            "200",
            "--concurrency",
            "8",
        ],
        &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())],
    );
    let created = block_on(async {
        use futures::StreamExt;
        futures::stream::iter(admitted.iter())
            .map(|(name, doc)| {
                let run = run.clone();
                async move { (name, create(&run.client, &run.ns, doc, false).await) }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
    });
    let mut expected: HashMap<String, (Vec<&'static str>, String, Value)> = HashMap::new();
    for (name, answer) in created {
        match answer {
            Answer::Admitted(obj) => {
                let (reasons, why) = run.expected(&obj["spec"]);
                expected.insert(name.clone(), (reasons, why, obj["spec"].clone()));
            }
            Answer::Refused(s) => panic!(
                "{name} passed the dry run but its create was refused: {}",
                s.message
            ),
        }
    }

    // Every resource settles: Ready with the reason predicted, for the generation it has.
    let deadline = Instant::now() + Duration::from_secs(90.max(expected.len() as u64 / 2));
    let settled = loop {
        let list = block_on(async {
            let req = hyper::Request::get(format!(
                "/apis/apigw.dev/v1alpha1/namespaces/{}/apiintegrations",
                run.ns
            ))
            .body(vec![])
            .unwrap();
            run.client.request_text(req).await.unwrap()
        });
        let list: Value = serde_json::from_str(&list).unwrap();
        let now: BTreeMap<String, (String, String, String, bool)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let current = ready["observedGeneration"] == o["metadata"]["generation"];
                let s = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    (s("status"), s("reason"), s("message"), current),
                )
            })
            .collect();
        let done = expected.iter().all(|(name, (reasons, ..))| {
            now.get(name).is_some_and(|(_, reason, _, current)| {
                *current && reasons.contains(&reason.as_str())
            })
        });
        if done || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_secs(1));
    };

    let mut outcome: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut wrong = vec![];
    let mut without_reason = vec![];
    for (name, (reasons, why, _)) in &expected {
        let (status, reason, message, current) = settled
            .get(name)
            .cloned()
            .unwrap_or_else(|| ("".into(), "".into(), "".into(), false));
        *outcome.entry((status.clone(), reason.clone())).or_default() += 1;
        if reason.is_empty() || !current {
            without_reason.push(format!("{name}: no Ready condition for its generation yet"));
        } else if !reasons.contains(&reason.as_str()) {
            wrong.push(format!(
                "{name}: expected {reasons:?} ({why}), got {status} {reason}: {message:.300}"
            ));
        }
    }

    // moto holds one integration per resource that recorded one, each as its spec says.
    let mut held_count = 0;
    let mut mismatched = vec![];
    let ids: BTreeMap<String, (String, String)> = {
        let list = block_on(async {
            let req = hyper::Request::get(format!(
                "/apis/apigw.dev/v1alpha1/namespaces/{}/apiintegrations",
                run.ns
            ))
            .body(vec![])
            .unwrap();
            run.client.request_text(req).await.unwrap()
        });
        let list: Value = serde_json::from_str(&list).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| {
                Some((
                    o["status"]["integrationId"].as_str()?.to_string(),
                    (
                        o["metadata"]["name"].as_str()?.to_string(),
                        o["status"]["apiId"].as_str()?.to_string(),
                    ),
                ))
            })
            .collect()
    };
    for api in run.apis().map(|a| &a.id) {
        for held in moto.integrations(api) {
            held_count += 1;
            let id = held["integrationId"].as_str().unwrap_or_default();
            match ids.get(id) {
                None => mismatched.push(format!(
                    "{id} on {api} is in moto but no resource records it"
                )),
                Some((name, _)) => {
                    let mut spec = expected[name].2.clone();
                    // References are not integration fields; a null is a field left unset.
                    let fields = spec.as_object_mut().unwrap();
                    fields.remove("apiRef");
                    fields.remove("connectionRef");
                    fields.retain(|_, v| !v.is_null());
                    // An empty mapping for a status code is how a removal is written to API Gateway
                    // (design §2 rule 4), so it is held as nothing; likewise an empty map.
                    if let Some(codes) = fields
                        .get_mut("responseParameters")
                        .and_then(Value::as_object_mut)
                    {
                        codes.retain(|_, m| m.as_object().is_none_or(|m| !m.is_empty()));
                    }
                    // "" is how a request value is removed (rule 4): the operator, too, reads it
                    // as no entry.
                    for map in ["requestParameters", "requestTemplates"] {
                        if let Some(m) = fields.get_mut(map).and_then(Value::as_object_mut) {
                            m.retain(|_, v| v != "");
                        }
                    }
                    fields.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
                    let diff = mismatches(&spec, &held);
                    if !diff.is_empty() {
                        mismatched.push(format!("{name}: {diff:?}"));
                    }
                }
            }
        }
    }

    let phase2 = started.elapsed() - phase1;

    // Every admitted resource can be deleted: no finalizer left behind, and nothing left in moto but
    // what deletionPolicy Retain keeps.
    let retained = ids
        .values()
        .filter(|(name, _)| expected[name].2["deletionPolicy"] == "Retain")
        .count();
    // (kubectl's own wait takes the objects one by one: polling the list is much quicker.)
    let out = common::kubectl(&[
        "delete",
        "apiintegrations",
        "--all",
        "-n",
        &run.ns,
        "--wait=false",
    ]);
    let gone_by = Instant::now() + Duration::from_secs(60);
    let left = loop {
        let left = common::kubectl_ok(&["get", "apiintegrations", "-n", &run.ns, "-o", "name"]);
        if left.trim().is_empty() || Instant::now() > gone_by {
            break left;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let still_held: usize = run.apis().map(|api| moto.integrations(&api.id).len()).sum();
    let phase3 = started.elapsed() - phase1 - phase2;
    println!(
        "\nfuzzed manifests: {} generated ({cases} new, the rest replayed regressions)",
        counter_total(&tally.by_kind)
    );
    for ((kind, what), n) in &tally.by_kind {
        println!("  {kind:<13} {what:<9} {n:>4}");
    }
    println!("refused at admission, by field and reason:");
    for ((field, reason), n) in &tally.refused {
        println!("  {n:>4}  {field:<40} {reason}");
    }
    println!("admitted ({}), by Ready condition:", expected.len());
    for ((status, reason), n) in &outcome {
        println!("  {n:>4}  Ready={status:<6} {reason}");
    }
    println!(
        "integrations in moto: {held_count}; refused by the proxy as API Gateway would: {}",
        proxy.injected()
    );
    println!(
        "after deleting them all: {} resources left, {still_held} integrations left in moto ({retained} with deletionPolicy Retain)",
        left.lines().count()
    );
    println!(
        "phase 1 (admission) {phase1:.1?}, phase 2 (operator) {phase2:.1?}, deletion {phase3:.1?}"
    );

    assert!(
        without_reason.is_empty(),
        "stuck without a reason:\n{}",
        without_reason.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "{} settled on the wrong reason:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        mismatched.is_empty(),
        "moto disagrees:\n{}",
        mismatched.join("\n")
    );
    assert_eq!(
        held_count,
        ids.len(),
        "one integration per resource that recorded one"
    );
    assert!(
        out.status.success() && left.trim().is_empty(),
        "not every resource could be deleted: {}{left}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        still_held, retained,
        "only the retained integrations stay in moto"
    );
    assert!(op.is_running(), "the operator exited:\n{}", op.log_text());
    let log = op.log_text();
    assert!(!log.contains("panicked"), "a panic in the operator's log");
    let panics = metric(
        &op.metrics_text(),
        "apigw_operator_reconciles_total{result=\"panic\"}",
    );
    assert!(panics.unwrap_or(0.0) == 0.0, "panics counted: {panics:?}");
}

/// `PROPTEST_CASES`, or the CI default.
fn cases_wanted() -> u32 {
    match std::env::var("PROPTEST_CASES") {
        Ok(n) => n.parse().expect("PROPTEST_CASES is a number"),
        Err(_) => DEFAULT_CASES,
    }
}

fn counter_total(by_kind: &BTreeMap<(&'static str, &'static str), usize>) -> usize {
    by_kind.values().sum()
}
