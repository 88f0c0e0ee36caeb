//! `cargo deny --offline check advisories licenses bans sources` with the committed deny.toml, for
//! `cargo xtask test`. No machine of ours reaches the advisory database's git host, so the RustSec
//! database comes from a snapshot on disk: `$APIGW_ADVISORY_DB`, by default
//! `../shared/reference/advisory-db` beside the repository (where CI's clone finds it too). cargo-deny
//! reads a database only as a git repository under its `db-path`, in a directory named after the
//! database's URL, so the snapshot is copied there and committed once with its own date. Without a
//! snapshot on disk the other three checks still run and a warning says advisories were not checked.

use crate::paths::{repo_root, target_dir};
use crate::proc::run;
use crate::tools;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The environment variable naming the advisory database snapshot.
pub const DB_ENV: &str = "APIGW_ADVISORY_DB";
/// The environment variable deny.toml's `db-path` reads: where the prepared git repository lives.
const DB_ROOT_ENV: &str = "APIGW_DENY_DB_ROOT";
/// The directory cargo-deny 0.20 derives from the default advisory database URL (a hash of the URL).
const DB_DIR_NAME: &str = "advisory-db-3157b0e258782691";
/// Where the snapshot is, relative to the repository, when `$APIGW_ADVISORY_DB` is not set.
const DEFAULT_DB: &str = "../shared/reference/advisory-db";

/// Runs the check; fails if cargo-deny finds an error. Without an advisory database on disk the
/// advisories are not checked, and it says so loudly: licenses, bans and sources need no database, and a
/// clone that finds no snapshot beside it must not fail for that alone (the clone is right, the machine
/// lacks the snapshot).
pub fn check() -> Result<()> {
    let source = db_source(std::env::var_os(DB_ENV).map(PathBuf::from), &repo_root());
    let snapshot = match find_snapshot(&source) {
        Ok(snapshot) => Some(snapshot),
        Err(missing) => {
            eprintln!(
                "xtask: WARNING: advisories NOT checked: {missing:#}. Licenses, bans and sources are \
                 checked."
            );
            None
        }
    };
    let deny = tools::ensure_cargo_deny()?;
    let root = target_dir().join("advisory-dbs");
    let checks: &[&str] = match &snapshot {
        Some(snapshot) => {
            prepare(snapshot, &root.join(DB_DIR_NAME))?;
            println!(
                "xtask: cargo deny {} with the advisory database {} ({})",
                tools::CARGO_DENY,
                std::fs::canonicalize(&source)
                    .unwrap_or(source.clone())
                    .display(),
                snapshot.describe()
            );
            &["advisories", "licenses", "bans", "sources"]
        }
        None => &["licenses", "bans", "sources"],
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // --offline reads every crate's manifest and license files from cargo's cache: fetch what the lock
    // names for every platform (a build fetches only this one's).
    run(Command::new(&cargo)
        .current_dir(repo_root())
        .args(["fetch", "--locked", "--quiet"]))?;
    let started = Instant::now();
    run(Command::new(&deny)
        .current_dir(repo_root())
        .env(DB_ROOT_ENV, &root)
        .args(["--offline", "check"])
        // Without this, each duplicate-version warning prints its whole inclusion tree (~1000 lines);
        // run cargo-deny by hand without it to see why a crate is in the graph.
        .arg("--hide-inclusion-graph")
        .args(checks))
    .context("cargo deny found a problem (deny.toml says what is allowed)")?;
    println!(
        "xtask: cargo deny ({}) passed in {:.1?}",
        checks.join(", "),
        started.elapsed()
    );
    Ok(())
}

/// `$APIGW_ADVISORY_DB` if set (relative to the repository if relative), else the default beside it.
fn db_source(from_env: Option<PathBuf>, repo: &Path) -> PathBuf {
    match from_env {
        Some(path) if !path.as_os_str().is_empty() => repo.join(path),
        _ => repo.join(DEFAULT_DB),
    }
}

/// A copy of the RustSec advisory database.
#[derive(Debug, PartialEq, Eq)]
enum Snapshot {
    /// A plain copy with a SNAPSHOT file that says which commit it is and when that was committed.
    Files { dir: PathBuf, committed: String },
    /// A git clone, used as it is.
    Clone { dir: PathBuf },
}

impl Snapshot {
    fn describe(&self) -> String {
        match self {
            Snapshot::Files { committed, .. } => format!("snapshot committed {committed}"),
            Snapshot::Clone { .. } => "a git clone".into(),
        }
    }
}

fn find_snapshot(dir: &Path) -> Result<Snapshot> {
    if !dir.join("crates").is_dir() {
        bail!(
            "no RustSec advisory database at {} (it needs its crates/ folder): cargo deny cannot check \
             advisories without one. Set {DB_ENV} to a copy of the advisory database (a git clone, or a \
             snapshot with a SNAPSHOT file), or put the snapshot at {DEFAULT_DB} beside the repository",
            dir.display()
        );
    }
    if dir.join(".git").exists() {
        return Ok(Snapshot::Clone {
            dir: dir.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(dir.join("SNAPSHOT")).with_context(|| {
        format!(
            "{} is neither a git clone nor a snapshot with a SNAPSHOT file saying when it was committed",
            dir.display()
        )
    })?;
    let committed = committed_date(&text)
        .with_context(|| format!("{}/SNAPSHOT does not say `committed <date>`", dir.display()))?;
    Ok(Snapshot::Files {
        dir: dir.to_path_buf(),
        committed,
    })
}

/// The commit date in a SNAPSHOT file: the word after `committed`, without a trailing comma or period.
fn committed_date(snapshot: &str) -> Option<String> {
    let mut words = snapshot.split_whitespace();
    words.find(|w| *w == "committed")?;
    let date = words.next()?.trim_end_matches([',', '.']);
    // An ISO-8601 date and time, e.g. 2026-08-21T08:28:40+02:00.
    let looks_right = date.len() >= 19
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[10] == b'T'
        && date[..4].bytes().all(|b| b.is_ascii_digit());
    looks_right.then(|| date.to_string())
}

/// Makes `dest` the git repository cargo-deny opens: a link to a clone, or a fresh copy of a snapshot
/// committed with the snapshot's date. Redone on every run (a second or two), so it always matches the
/// snapshot; cargo-deny judges freshness by the later of that commit and the moment it was made.
fn prepare(snapshot: &Snapshot, dest: &Path) -> Result<()> {
    if dest.symlink_metadata().is_ok() {
        if dest.is_symlink() || dest.is_file() {
            std::fs::remove_file(dest)?;
        } else {
            std::fs::remove_dir_all(dest)?;
        }
    }
    std::fs::create_dir_all(
        dest.parent()
            .context("the database has a parent directory")?,
    )?;
    match snapshot {
        Snapshot::Clone { dir } => {
            std::os::unix::fs::symlink(dir, dest)?;
        }
        Snapshot::Files { dir, committed } => {
            run(Command::new("cp").arg("-r").arg(dir).arg(dest))?;
            // The snapshot may be read-only; the copy must take a .git folder.
            run(Command::new("chmod").args(["-R", "u+w"]).arg(dest))?;
            let git = || {
                let mut cmd = Command::new("git");
                cmd.current_dir(dest)
                    .env("GIT_AUTHOR_DATE", committed)
                    .env("GIT_COMMITTER_DATE", committed)
                    .args([
                        "-c",
                        "user.name=apigw-xtask",
                        "-c",
                        "user.email=xtask@invalid",
                    ])
                    .args(["-c", "commit.gpgsign=false"]);
                cmd
            };
            run(git().args(["init", "--quiet"]))?;
            run(git().args(["add", "--all"]))?;
            run(git().args([
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                "advisory database snapshot",
            ]))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_beside_the_repository_unless_the_environment_says_otherwise() {
        let repo = Path::new("/ci/clone");
        assert_eq!(
            db_source(None, repo),
            Path::new("/ci/clone/../shared/reference/advisory-db")
        );
        assert_eq!(
            db_source(Some(PathBuf::new()), repo),
            Path::new("/ci/clone/../shared/reference/advisory-db")
        );
        assert_eq!(
            db_source(Some("/srv/advisory-db".into()), repo),
            Path::new("/srv/advisory-db")
        );
        assert_eq!(
            db_source(Some("db".into()), repo),
            Path::new("/ci/clone/db")
        );
    }

    #[test]
    fn the_commit_date_is_read_from_the_snapshot_file() {
        let text = "RustSec advisory database (CC0-1.0), snapshot of commit\nbf5c0d2, committed \
                    2026-08-21T08:28:40+02:00.\nOnly crates/ are kept.";
        assert_eq!(
            committed_date(text).as_deref(),
            Some("2026-08-21T08:28:40+02:00")
        );
        assert_eq!(committed_date("snapshot of commit bf5c0d2"), None);
        assert_eq!(committed_date("committed yesterday"), None);
    }

    #[test]
    fn a_missing_database_is_an_error_that_says_how_to_point_at_one() {
        let dir = std::env::temp_dir().join(format!("xtask-no-db-{}", std::process::id()));
        let err = find_snapshot(&dir).unwrap_err().to_string();
        assert!(err.contains(DB_ENV), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
    }

    #[test]
    fn a_snapshot_without_a_date_is_refused_and_one_with_a_date_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-db-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("crates")).unwrap();
        assert!(find_snapshot(&dir).is_err(), "no SNAPSHOT file");
        std::fs::write(
            dir.join("SNAPSHOT"),
            "committed 2026-08-21T08:28:40+02:00.\n",
        )
        .unwrap();
        let found = find_snapshot(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found.unwrap(),
            Snapshot::Files {
                dir: dir.clone(),
                committed: "2026-08-21T08:28:40+02:00".into()
            }
        );
    }
}
