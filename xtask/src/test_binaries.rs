//! The test executables of one `cargo xtask test`, run side by side.
//!
//! `cargo test` runs its test executables one after another. Most of ours spend their time waiting on
//! the stack (an operator reconciling, a rate limit, a lease running out), not on the CPU, and each works
//! in namespaces, APIs and operator processes of its own, so several can share the stack at once. The one
//! that cannot is the chaos storm: it restarts etcd and the API server, which every other test would see
//! as a failure. So the run has two phases: the shared executables in a few lanes (longest first, from the
//! durations of the last run), then the ones that need the stack to themselves, one at a time.
//!
//! Each executable's output is kept in `target/test-logs/<name>.log` and printed whole when it ends, so a
//! CI log reads like `cargo test`'s, one executable at a time, with a table of durations at the end.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Test executables that restart processes of the stack everyone shares (etcd, the API server), so they
/// run with no other test using the stack.
const NEED_THE_STACK_ALONE: &[&str] = &["chaos"];

/// The executables known to take longest (a minute or more on two cores), started first when there is
/// no record of a last run (a fresh clone, as in CI), so that none of them is left running alone at the
/// end. Longest first.
const KNOWN_TO_BE_LONG: &[&str] = &[
    "rate_limit",
    "node_e2e",
    "references",
    "import",
    "bench_smoke",
    "reconcile",
    "fencing",
];

/// One test executable cargo built.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBinary {
    /// The package's name (`apigw-operator`, `testkit`, `xtask`).
    pub package: String,
    /// The target's name: the test file's stem for `tests/*.rs`, the crate's name for unit tests.
    pub target: String,
    /// The source the target is built from (shown like `cargo test` does).
    pub src: PathBuf,
    /// The package's directory: cargo runs each test executable there.
    pub manifest_dir: PathBuf,
    pub exe: PathBuf,
}

impl TestBinary {
    /// A name unique within one workspace, for logs and the durations file.
    pub fn key(&self) -> String {
        format!("{}/{}-{}", self.package, self.target, self.kind())
    }

    fn kind(&self) -> &'static str {
        if self.src.components().any(|c| c.as_os_str() == "tests") {
            "test"
        } else {
            "unit"
        }
    }

    pub fn needs_the_stack_alone(&self) -> bool {
        self.package == "apigw-operator" && NEED_THE_STACK_ALONE.contains(&self.target.as_str())
    }
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    package_id: Option<String>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    src_path: PathBuf,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

/// The package's name from a cargo package ID (`path+file:///work/main#apigw-operator@0.1.0`,
/// `path+file:///work/main/xtask#0.1.0` when the directory is the name, or the older
/// `name 0.1.0 (path+file://…)` form).
fn package_name(id: &str) -> Option<String> {
    if let Some((url, fragment)) = id.rsplit_once('#') {
        return match fragment.split_once('@') {
            Some((name, _)) => Some(name.to_string()),
            None => url.rsplit('/').next().map(str::to_string),
        };
    }
    id.split_whitespace().next().map(str::to_string)
}

/// The test executables in the JSON messages of `cargo test --no-run --message-format=json…` (one per
/// line; other lines are ignored), in the order cargo reported them.
pub fn parse_cargo_messages(lines: &str) -> Result<Vec<TestBinary>> {
    let mut found = Vec::new();
    for line in lines.lines().filter(|l| l.starts_with('{')) {
        let msg: Message =
            serde_json::from_str(line).with_context(|| format!("a cargo message: {line}"))?;
        if msg.reason != "compiler-artifact" || !msg.profile.as_ref().is_some_and(|p| p.test) {
            continue;
        }
        let (Some(exe), Some(target), Some(manifest), Some(id)) = (
            msg.executable,
            msg.target,
            msg.manifest_path,
            msg.package_id,
        ) else {
            continue;
        };
        let package = package_name(&id).with_context(|| format!("a package ID: {id}"))?;
        found.push(TestBinary {
            package,
            target: target.name,
            src: target.src_path,
            manifest_dir: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
            exe,
        });
    }
    Ok(found)
}

/// The order of one run: the shared executables longest first (a longest-first start keeps the lanes
/// ending close together), executables with no recorded duration first of all (their length is
/// unknown, so they should not be the one left running at the end; among them, those known to be long
/// lead); then those that need the stack alone.
pub fn order(
    binaries: Vec<TestBinary>,
    last_durations: &HashMap<String, f64>,
) -> (Vec<TestBinary>, Vec<TestBinary>) {
    let (mut alone, mut shared): (Vec<_>, Vec<_>) = binaries
        .into_iter()
        .partition(TestBinary::needs_the_stack_alone);
    // Sorted ascending: unrecorded before recorded; among unrecorded the known-long list's order;
    // among recorded the longest first.
    let key = |b: &TestBinary| match last_durations.get(&b.key()) {
        None => (
            0,
            KNOWN_TO_BE_LONG
                .iter()
                .position(|t| b.package == "apigw-operator" && *t == b.target)
                .unwrap_or(KNOWN_TO_BE_LONG.len()) as f64,
        ),
        Some(secs) => (1, -secs),
    };
    let by_key = |a: &TestBinary, b: &TestBinary| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    };
    shared.sort_by(by_key);
    alone.sort_by(by_key);
    (shared, alone)
}

/// How one executable ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub key: String,
    pub took: Duration,
    pub passed: bool,
    /// The `test result:` line of its output, if it printed one.
    pub result_line: Option<String>,
}

/// Where the logs and the durations of the last run are kept.
pub struct Records {
    pub dir: PathBuf,
}

impl Records {
    fn durations_path(&self) -> PathBuf {
        self.dir.join("durations.json")
    }

    pub fn last_durations(&self) -> HashMap<String, f64> {
        std::fs::read_to_string(self.durations_path())
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    fn save_durations(&self, finished: &[Finished]) -> Result<()> {
        let mut all = self.last_durations();
        for f in finished {
            all.insert(f.key.clone(), f.took.as_secs_f64());
        }
        std::fs::write(self.durations_path(), serde_json::to_string_pretty(&all)?)?;
        Ok(())
    }

    fn log_path(&self, b: &TestBinary) -> PathBuf {
        self.dir.join(format!("{}.log", b.key().replace('/', "-")))
    }
}

/// Runs `shared` in `lanes` lanes, then `alone` one by one, every executable with `env` and `args`;
/// prints each one's output when it ends and a table at the end. Fails when any executable failed (all
/// of them still run).
pub fn run(
    shared: Vec<TestBinary>,
    alone: Vec<TestBinary>,
    lanes: usize,
    env: &[(String, String)],
    records: &Records,
) -> Result<Vec<Finished>> {
    std::fs::create_dir_all(&records.dir)?;
    let started = Instant::now();
    let print = Mutex::new(());
    let mut finished = run_in_lanes(shared, lanes, env, records, &print);
    finished.extend(run_in_lanes(alone, 1, env, records, &print));
    records.save_durations(&finished)?;
    println!(
        "\nxtask: {} test executables in {:.1?} ({lanes} lanes, then {} alone):",
        finished.len(),
        started.elapsed(),
        NEED_THE_STACK_ALONE.join(", ")
    );
    for f in &finished {
        println!(
            "  {:>7.1}s  {}  {:<40} {}",
            f.took.as_secs_f64(),
            if f.passed { "ok  " } else { "FAIL" },
            f.key,
            f.result_line.as_deref().unwrap_or("")
        );
    }
    let failed: Vec<_> = finished.iter().filter(|f| !f.passed).collect();
    if !failed.is_empty() {
        bail!(
            "test executables failed: {}",
            failed
                .iter()
                .map(|f| f.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(finished)
}

fn run_in_lanes(
    binaries: Vec<TestBinary>,
    lanes: usize,
    env: &[(String, String)],
    records: &Records,
    print: &Mutex<()>,
) -> Vec<Finished> {
    let queue = Mutex::new(VecDeque::from(binaries));
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..lanes.max(1) {
            s.spawn(|| {
                while let Some(b) = queue.lock().unwrap().pop_front() {
                    let f = run_one(&b, env, records, print);
                    done.lock().unwrap().push(f);
                }
            });
        }
    });
    done.into_inner().unwrap()
}

fn run_one(
    b: &TestBinary,
    env: &[(String, String)],
    records: &Records,
    print: &Mutex<()>,
) -> Finished {
    let log = records.log_path(b);
    let started = Instant::now();
    let status = std::fs::File::create(&log).and_then(|out| {
        let err = out.try_clone()?;
        Command::new(&b.exe)
            .current_dir(&b.manifest_dir)
            .env("CARGO_MANIFEST_DIR", &b.manifest_dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
    });
    let took = started.elapsed();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let passed = matches!(&status, Ok(s) if s.success());
    let _shown = print.lock().unwrap();
    let src = b
        .src
        .strip_prefix(&b.manifest_dir)
        .unwrap_or(&b.src)
        .display();
    println!(
        "     Running {src} ({}) [{:.1?}]",
        b.exe.file_name().unwrap_or_default().to_string_lossy(),
        took
    );
    print!("{output}");
    if let Err(e) = &status {
        println!("xtask: cannot start {}: {e}", b.exe.display());
    }
    Finished {
        key: b.key(),
        took,
        passed,
        result_line: last_result_line(&output),
    }
}

/// The last `test result:` line of a test executable's output, without the trailing timing.
pub fn last_result_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|l| l.starts_with("test result:"))
        .map(|l| l.split(';').take(3).collect::<Vec<_>>().join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(id: &str, name: &str, src: &str, test: bool, exe: Option<&str>) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": id,
            "manifest_path": "/w/Cargo.toml",
            "target": {"kind": ["test"], "name": name, "src_path": src},
            "profile": {"test": test},
            "executable": exe,
        })
        .to_string()
    }

    #[test]
    fn only_test_executables_are_taken_from_cargos_messages() {
        let lines = [
            artifact(
                "path+file:///w#apigw-operator@0.1.0",
                "chaos",
                "/w/tests/chaos.rs",
                true,
                Some("/w/target/debug/deps/chaos-1"),
            ),
            // The operator binary itself: built for the tests, but not a test.
            artifact(
                "path+file:///w#apigw-operator@0.1.0",
                "apigw-operator",
                "/w/src/main.rs",
                false,
                Some("/w/target/debug/apigw-operator"),
            ),
            // A library: no executable.
            artifact(
                "path+file:///w/testkit#0.1.0",
                "testkit",
                "/w/testkit/src/lib.rs",
                false,
                None,
            ),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
            "not json at all".to_string(),
        ]
        .join("\n");
        let found = parse_cargo_messages(&lines).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].package, "apigw-operator");
        assert_eq!(found[0].target, "chaos");
        assert_eq!(found[0].manifest_dir, PathBuf::from("/w"));
        assert_eq!(found[0].exe, PathBuf::from("/w/target/debug/deps/chaos-1"));
        assert_eq!(found[0].key(), "apigw-operator/chaos-test");
        assert!(found[0].needs_the_stack_alone());
    }

    #[test]
    fn package_names_come_from_every_id_form() {
        assert_eq!(
            package_name("path+file:///w#apigw-operator@0.1.0").as_deref(),
            Some("apigw-operator")
        );
        assert_eq!(
            package_name("path+file:///w/testkit#0.1.0").as_deref(),
            Some("testkit")
        );
        assert_eq!(
            package_name("xtask 0.1.0 (path+file:///w/xtask)").as_deref(),
            Some("xtask")
        );
    }

    fn bin(package: &str, target: &str, src: &str) -> TestBinary {
        TestBinary {
            package: package.into(),
            target: target.into(),
            src: src.into(),
            manifest_dir: "/w".into(),
            exe: format!("/w/target/debug/deps/{target}-0").into(),
        }
    }

    #[test]
    fn the_storm_runs_alone_and_the_rest_longest_first_unknown_first_of_all() {
        let bins = vec![
            bin("apigw-operator", "reconcile", "/w/tests/reconcile.rs"),
            bin("apigw-operator", "chaos", "/w/tests/chaos.rs"),
            bin("apigw-operator", "rate_limit", "/w/tests/rate_limit.rs"),
            bin("apigw-operator", "brand_new", "/w/tests/brand_new.rs"),
            bin("apigw-operator", "apigw_operator", "/w/src/lib.rs"),
            // Another package's test of the same name does not need the stack alone.
            bin("testkit", "chaos", "/w/testkit/tests/chaos.rs"),
        ];
        let last = HashMap::from([
            ("apigw-operator/reconcile-test".to_string(), 50.0),
            ("apigw-operator/rate_limit-test".to_string(), 130.0),
            ("apigw-operator/apigw_operator-unit".to_string(), 0.5),
            ("apigw-operator/chaos-test".to_string(), 140.0),
            ("testkit/chaos-test".to_string(), 1.0),
        ]);
        let (shared, alone) = order(bins, &last);
        let names = |v: &[TestBinary]| v.iter().map(TestBinary::key).collect::<Vec<_>>();
        assert_eq!(
            names(&shared),
            [
                "apigw-operator/brand_new-test",
                "apigw-operator/rate_limit-test",
                "apigw-operator/reconcile-test",
                "testkit/chaos-test",
                "apigw-operator/apigw_operator-unit",
            ]
        );
        assert_eq!(names(&alone), ["apigw-operator/chaos-test"]);
    }

    #[test]
    fn with_no_record_the_executables_known_to_be_long_start_first() {
        let bins = vec![
            bin("apigw-operator", "crd_sync", "/w/tests/crd_sync.rs"),
            bin("apigw-operator", "reconcile", "/w/tests/reconcile.rs"),
            bin("apigw-operator", "rate_limit", "/w/tests/rate_limit.rs"),
        ];
        let (shared, _) = order(bins, &HashMap::new());
        let names: Vec<_> = shared.iter().map(|b| b.target.as_str()).collect();
        assert_eq!(names, ["rate_limit", "reconcile", "crd_sync"]);
    }

    #[test]
    fn the_result_line_is_the_last_one_without_its_timing() {
        let out = "running 2 tests\ntest a ... ok\n\
                   test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s\n";
        assert_eq!(
            last_result_line(out).as_deref(),
            Some("test result: ok. 2 passed; 0 failed; 0 ignored")
        );
        assert_eq!(last_result_line("panicked before any test"), None);
    }

    #[test]
    fn every_executable_runs_and_a_failure_is_reported_after_all_ran() {
        let dir = std::env::temp_dir().join(format!("xtask-lanes-{}", std::process::id()));
        let records = Records { dir: dir.clone() };
        let script = |name: &str, body: &str| {
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            TestBinary {
                package: "p".into(),
                target: name.into(),
                src: format!("/w/tests/{name}.rs").into(),
                manifest_dir: dir.clone(),
                exe: path,
            }
        };
        let ok = script(
            "ok",
            "echo \"test result: ok. 1 passed; 0 failed; 0 ignored; x\"; echo \"$XTASK_PROBE\" > probe",
        );
        let bad = script(
            "bad",
            "echo 'test result: FAILED. 0 passed; 1 failed; 0 ignored'; exit 101",
        );
        let err = run(
            vec![bad, ok],
            vec![],
            2,
            &[("XTASK_PROBE".into(), "seen".into())],
            &records,
        )
        .unwrap_err();
        assert!(err.to_string().contains("p/bad-test"), "{err}");
        assert!(!err.to_string().contains("p/ok-test"), "{err}");
        // The passing one ran in its package's directory with the environment it was given.
        assert_eq!(
            std::fs::read_to_string(dir.join("probe")).unwrap().trim(),
            "seen"
        );
        let durations = records.last_durations();
        assert!(durations.contains_key("p/ok-test") && durations.contains_key("p/bad-test"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
