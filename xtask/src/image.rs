//! The operator's container image, built from the repository's Dockerfile with podman and no registry.
//!
//! Everything comes from this machine: podman, buildah, runc and skopeo from Debian's packages (installed
//! here when missing), a local stand-in for the Dockerfile's runtime base `gcr.io/distroless/cc-debian12:nonroot`
//! assembled with `buildah from scratch` from Debian packages, and the binary from the same `cargo build
//! --release --locked --bin apigw-operator` the Dockerfile's compile stage runs, given to the Dockerfile's
//! `from-prebuilt` target (see the Dockerfile's comments). The node helper calls [`build`], [`save_oci_archive`]
//! and [`build_pause`]; [`ensure_debian_packages`] is shared with it.

use crate::paths::{cache_dir, repo_root, target_dir};
use crate::proc::{describe, output, run};
use anyhow::{Context, Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian packages the image build needs: the engine, the builder of the stand-ins, the OCI runtime
/// (runc: crun cannot run on this machine's hybrid cgroup layout) and skopeo for inspecting archives.
pub const ENGINE_PACKAGES: [&str; 4] = ["podman", "buildah", "runc", "skopeo"];

/// The runtime base image the Dockerfile names, for which a local stand-in is made.
pub const DISTROLESS: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// What distroless' cc-debian12 holds, as Debian packages: glibc, libgcc, OpenSSL 3, time zones,
/// /etc/services and /etc/protocols, /etc/os-release, and the CA certificates.
const DISTROLESS_PACKAGES: [&str; 7] = [
    "libc6",
    "libgcc-s1",
    "libssl3",
    "tzdata",
    "netbase",
    "base-files",
    "ca-certificates",
];

/// The version of how [`ensure_distroless`] assembles the stand-in: raised when that changes, so that a
/// stand-in made the old way is made again.
const DISTROLESS_RECIPE: u32 = 2;

/// The user distroless' `:nonroot` images run as.
const NONROOT_UID: u32 = 65532;

/// The repository the built image is tagged in; its tag is the crate's version (see [`default_ref`]).
pub const IMAGE_REPOSITORY: &str = "localhost/apigw-operator";

/// The pause image's repository in Kubernetes' registry; the tag is the one in pause's Makefile.
const PAUSE_REPOSITORY: &str = "registry.k8s.io/pause";

/// podman's settings for this project, used through `CONTAINERS_CONF` so the machine's own
/// /etc/containers/containers.conf is never rewritten. runc and cgroupfs (crun and systemd are not usable
/// here), events to a file (no journald), rlimits a root without CAP_SYS_RESOURCE may set (podman's
/// defaults fail with "error setting rlimit type 7: operation not permitted"), and host networking by
/// default so podman never makes a bridge of its own.
const CONTAINERS_CONF: &str = "\
# Written by `cargo xtask image`; podman reads it through CONTAINERS_CONF.
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"

[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=8192:8192\"]
netns = \"host\"
";

/// A fully qualified image reference (`registry/repository:tag`), as podman and containerd name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(String);

impl ImageRef {
    pub fn new(repository: &str, tag: &str) -> ImageRef {
        ImageRef(format!("{repository}:{tag}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `cargo xtask image [--tag TAG] [--save PATH] [--pause]`.
pub const USAGE: &str = "  image          build the operator's image from the Dockerfile with podman, no registry (installs
                 podman, buildah, runc and skopeo from Debian's packages if missing; makes local stand-ins
                 for the base images); prints the image reference
                 [--tag TAG]      tag of localhost/apigw-operator (default the crate's version)
                 [--save PATH]    also write the image as an OCI archive (for `ctr images import`)
                 [--pause]        also build registry.k8s.io/pause from Kubernetes' pause.c";

#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    tag: Option<String>,
    save: Option<PathBuf>,
    pause: bool,
}

fn parse_options(args: &[&str]) -> Result<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--tag" => {
                let tag = args.next().context("--tag needs a value")?;
                if !valid_tag(tag) {
                    bail!("`{tag}` is not an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})");
                }
                options.tag = Some(tag.to_string());
            }
            "--save" => options.save = Some(args.next().context("--save needs a path")?.into()),
            "--pause" => options.pause = true,
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}

/// A tag as the OCI distribution spec allows it.
fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The command: builds the image (and the pause image with `--pause`), saves it when asked, and prints
/// the reference as the last line of stdout (the image test reads it from there).
pub fn run_cmd(args: &[&str]) -> Result<()> {
    let options = parse_options(args)?;
    if options.pause {
        let pause = build_pause()?;
        eprintln!("image: pause image {pause}");
    }
    let image = build(options.tag.as_deref())?;
    if let Some(path) = &options.save {
        save_oci_archive(&image, path)?;
        eprintln!("image: saved {image} to {}", path.display());
    }
    eprintln!(
        "image: run it with  CONTAINERS_CONF={} podman run --rm --read-only --read-only-tmpfs=false {image} --version",
        engine()?.containers_conf().display()
    );
    println!("{image}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Debian packages

/// Installs whichever of `packages` dpkg does not list as installed, with apt-get (`apt-get update` first
/// only when the package lists do not know one of them). Waits for the dpkg and apt locks when another
/// process (another helper, unattended-upgrades) holds them. Idempotent and silent when all are there.
pub fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let missing = missing_packages(packages)?;
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages {}", missing.join(" "));
    let started = Instant::now();
    let install = |missing: &[String]| {
        apt_get(
            &["install", "-y", "--no-install-recommends"]
                .into_iter()
                .map(String::from)
                .chain(missing.iter().cloned())
                .collect::<Vec<_>>(),
        )
    };
    if install(&missing).is_err() {
        // A fresh machine (or a CI image) may have no or stale package lists.
        apt_get(&["update".to_string()])?;
        install(&missing)?;
    }
    let still = missing_packages(packages)?;
    if !still.is_empty() {
        bail!("apt-get install left {} uninstalled", still.join(" "));
    }
    eprintln!(
        "xtask: installed {} in {:.0?}",
        missing.join(" "),
        started.elapsed()
    );
    Ok(())
}

/// The packages of `packages` that dpkg does not list as installed.
fn missing_packages(packages: &[&str]) -> Result<Vec<String>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
        .args(packages)
        .output()
        .context("cannot run dpkg-query (is this a Debian machine?)")?;
    // dpkg-query exits 1 when one of the names is unknown to it; its stdout still lists the others.
    let listed = String::from_utf8_lossy(&out.stdout);
    Ok(packages
        .iter()
        .filter(|p| !installed_in(&listed, p))
        .map(|p| p.to_string())
        .collect())
}

/// Whether dpkg-query's `${Package} ${db:Status-Abbrev}` lines say `package` is installed (`ii`).
fn installed_in(listing: &str, package: &str) -> bool {
    listing.lines().any(|line| {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        // Multi-arch names come back as `name:arch`.
        let name = name.split(':').next().unwrap_or(name);
        name == package && words.next() == Some("ii")
    })
}

/// The longest this waits for another process's apt or dpkg lock, in total.
const APT_LOCK_WAIT: Duration = Duration::from_secs(15 * 60);

/// apt-get with `args`, non-interactive. dpkg's frontend lock is waited for by apt itself
/// (`DPkg::Lock::Timeout`); the package lists' lock is not, so a lock message means: wait and retry.
fn apt_get(args: &[String]) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-q", "-o", "DPkg::Lock::Timeout=300"])
            .args(args);
        let shown = describe(&cmd);
        let out = cmd
            .output()
            .with_context(|| format!("cannot start {shown}"))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if is_lock_busy(&stderr) && started.elapsed() < APT_LOCK_WAIT {
            eprintln!("xtask: {shown}: another process holds the apt/dpkg lock; retrying in 10 s");
            std::thread::sleep(Duration::from_secs(10));
            continue;
        }
        bail!(
            "{shown} failed: {}\n{}{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Whether apt-get's error output says a lock is held by another process (as opposed to a real failure).
fn is_lock_busy(stderr: &str) -> bool {
    stderr.contains("Could not get lock")
        || stderr.contains("Unable to acquire the dpkg frontend lock")
}

// ---------------------------------------------------------------------------------------------------
// The engine

/// podman and buildah with this project's containers.conf.
pub struct Engine {
    conf: PathBuf,
}

/// The engine, installed if missing, with its containers.conf written to the cache (idempotent).
pub fn engine() -> Result<Engine> {
    ensure_debian_packages(&ENGINE_PACKAGES)?;
    let conf = cache_dir().join("containers").join("containers.conf");
    if std::fs::read_to_string(&conf).ok().as_deref() != Some(CONTAINERS_CONF) {
        std::fs::create_dir_all(conf.parent().expect("a file in a directory"))?;
        std::fs::write(&conf, CONTAINERS_CONF)?;
    }
    Ok(Engine { conf })
}

impl Engine {
    /// The containers.conf to put in `CONTAINERS_CONF` for podman run by hand or by another tool.
    pub fn containers_conf(&self) -> &Path {
        &self.conf
    }

    pub fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf);
        cmd
    }

    pub fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.env("CONTAINERS_CONF", &self.conf);
        cmd
    }

    /// Whether local storage holds `image`.
    pub fn has_image(&self, image: &str) -> bool {
        self.podman()
            .args(["image", "exists", image])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A label of a local image, if it has it.
    fn label(&self, image: &str, label: &str) -> Option<String> {
        let format = format!("{{{{index .Labels \"{label}\"}}}}");
        output(
            self.podman()
                .args(["image", "inspect", "--format", &format, image]),
        )
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "<no value>")
    }
}

// ---------------------------------------------------------------------------------------------------
// Stand-ins for the base images

/// The label on a stand-in recording what it was made from (package versions, source digests), so a
/// change in those remakes it and nothing else does.
const STANDIN_LABEL: &str = "dev.apigw.standin-of";

/// The distroless stand-in: if local storage has one made from the same package versions it is kept,
/// else the packages are downloaded (cached under the cache dir) and unpacked into a fresh rootfs.
fn ensure_distroless(engine: &Engine) -> Result<()> {
    let versions = candidate_versions(&DISTROLESS_PACKAGES)?;
    let made_of = format!("recipe {DISTROLESS_RECIPE}: {}", versions.join(" "));
    if engine.has_image(DISTROLESS)
        && engine.label(DISTROLESS, STANDIN_LABEL).as_deref() == Some(made_of.as_str())
    {
        return Ok(());
    }
    eprintln!("xtask: making a local stand-in for {DISTROLESS} from Debian's {made_of}");
    let started = Instant::now();
    let debs = cache_dir().join("image").join("debs");
    std::fs::create_dir_all(&debs)?;
    let pinned: Vec<String> = versions.iter().map(|v| v.replace(' ', "=")).collect();
    // apt-get download writes into the current directory and keeps already downloaded files.
    let missing: Vec<&String> = pinned
        .iter()
        .filter(|p| !deb_downloaded(&debs, p))
        .collect();
    if !missing.is_empty() {
        run(Command::new("apt-get")
            .current_dir(&debs)
            .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
            .args(missing.iter().map(|s| s.as_str())))?;
    }
    let rootfs = cache_dir().join("image").join("distroless-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    std::fs::create_dir_all(&rootfs)?;
    for deb in std::fs::read_dir(&debs)? {
        let deb = deb?.path();
        let name = deb
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if pinned.iter().any(|p| deb_file_matches(&name, p)) {
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&rootfs))?;
        }
    }
    write_distroless_files(&rootfs)?;

    let container = output(engine.buildah().args(["from", "scratch"]))?
        .trim()
        .to_string();
    let user = format!("{NONROOT_UID}:{NONROOT_UID}");
    let made = (|| -> Result<()> {
        // `buildah copy` keeps modes (/tmp 1777, /root 0700) but makes everything root's, as the
        // package files are.
        run(engine
            .buildah()
            .args(["copy", &container])
            .arg(format!("{}/", rootfs.display()))
            .arg("/"))?;
        // nonroot's home is nonroot's, as in distroless (else the AWS SDK's look for ~/.aws/config is
        // refused and logged as a warning): set on the container's mounted root.
        let mounted = PathBuf::from(output(engine.buildah().args(["mount", &container]))?.trim());
        let home = mounted.join("home/nonroot");
        let owned = std::os::unix::fs::chown(&home, Some(NONROOT_UID), Some(NONROOT_UID))
            .with_context(|| format!("chown {}", home.display()));
        run(engine.buildah().args(["unmount", &container]))?;
        owned?;
        run(engine.buildah().args([
            "config",
            "--user",
            &user,
            "--workingdir",
            "/home/nonroot",
            "--env",
            "PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin",
            "--env",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "--label",
            &format!("{STANDIN_LABEL}={made_of}"),
            "--label",
            "org.opencontainers.image.description=local stand-in for gcr.io/distroless/cc-debian12:nonroot made from Debian packages by cargo xtask image",
            &container,
        ]))?;
        run(engine
            .buildah()
            .args(["commit", "--quiet", &container, DISTROLESS]))?;
        Ok(())
    })();
    let _ = engine.buildah().args(["rm", &container]).output();
    made?;
    std::fs::remove_dir_all(&rootfs)?;
    eprintln!("xtask: made {DISTROLESS} in {:.0?}", started.elapsed());
    Ok(())
}

/// `package version` for each package: the version apt would install, so the stand-in follows the
/// machine's package lists (security updates included).
fn candidate_versions(packages: &[&str]) -> Result<Vec<String>> {
    let policy = output(
        Command::new("apt-cache")
            .env("LC_ALL", "C")
            .arg("policy")
            .args(packages),
    )?;
    let versions = candidates_in_policy(&policy);
    for p in packages {
        if !versions.iter().any(|(name, _)| name == p) {
            bail!("apt-cache policy gives no candidate version of {p} (run apt-get update?)");
        }
    }
    Ok(versions
        .into_iter()
        .map(|(name, version)| format!("{name} {version}"))
        .collect())
}

/// The (package, candidate version) pairs of `apt-cache policy`'s output.
fn candidates_in_policy(policy: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in policy.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            current = Some(line.trim_end_matches(':').to_string());
        } else if let Some(version) = line.trim().strip_prefix("Candidate:") {
            let version = version.trim();
            if let Some(name) = current.take()
                && version != "(none)"
            {
                found.push((name, version.to_string()));
            }
        }
    }
    found
}

/// Whether a .deb file name (`name_version_arch.deb`, the version's `:` written `%3a`) is `name=version`.
fn deb_file_matches(file: &str, pinned: &str) -> bool {
    let Some((name, version)) = pinned.split_once('=') else {
        return false;
    };
    let mut parts = file.trim_end_matches(".deb").splitn(3, '_');
    parts.next() == Some(name)
        && parts.next().map(|v| v.replace("%3a", ":")).as_deref() == Some(version)
}

fn deb_downloaded(dir: &Path, pinned: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| deb_file_matches(&e.file_name().to_string_lossy(), pinned))
    })
}

/// What distroless adds to its packages: users root, nobody and nonroot (65532) with their home
/// directories, /tmp (1777), and the CA bundle ca-certificates' maintainer script would have generated
/// (the package's certificates, concatenated as update-ca-certificates does).
fn write_distroless_files(rootfs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
        ),
    )?;
    std::fs::write(
        etc.join("group"),
        format!("root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:{NONROOT_UID}:\n"),
    )?;
    std::fs::write(
        etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    for dir in ["root", "home/nonroot", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::set_permissions(rootfs.join("root"), std::fs::Permissions::from_mode(0o700))?;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    // /home/nonroot belongs to nonroot; chown needs the numeric ids (the rootfs is only files here).
    std::os::unix::fs::chown(
        rootfs.join("home/nonroot"),
        Some(NONROOT_UID),
        Some(NONROOT_UID),
    )?;
    std::fs::set_permissions(
        rootfs.join("home/nonroot"),
        std::fs::Permissions::from_mode(0o700),
    )?;

    let mozilla = rootfs.join("usr/share/ca-certificates/mozilla");
    let mut certs: Vec<PathBuf> = std::fs::read_dir(&mozilla)
        .with_context(|| format!("ca-certificates unpacked no {}", mozilla.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    certs.sort();
    if certs.is_empty() {
        bail!("no certificates in {}", mozilla.display());
    }
    let mut bundle = String::new();
    for cert in &certs {
        let text = std::fs::read_to_string(cert)?;
        bundle.push_str(text.trim_end());
        bundle.push('\n');
    }
    let ssl = etc.join("ssl/certs");
    std::fs::create_dir_all(&ssl)?;
    std::fs::write(ssl.join("ca-certificates.crt"), bundle)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The operator's image

/// `localhost/apigw-operator:<version>`, the version read from the repository's Cargo.toml.
pub fn default_ref() -> Result<ImageRef> {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml"))?;
    let version = package_version(&manifest).context("Cargo.toml has no [package] version")?;
    Ok(ImageRef::new(IMAGE_REPOSITORY, &version))
}

/// The `version` of the `[package]` table of a Cargo.toml.
fn package_version(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(value) = line.strip_prefix("version")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Builds the operator's image from the repository's Dockerfile and returns its reference
/// (`localhost/apigw-operator:<tag>`, the tag defaulting to the crate's version). The binary is built
/// on this machine with the Dockerfile's own cargo command and given to its `from-prebuilt` target; the
/// runtime base is the local distroless stand-in. Nothing is pulled; podman's layer cache makes a
/// rebuild with the same binary a matter of seconds.
pub fn build(tag: Option<&str>) -> Result<ImageRef> {
    let started = Instant::now();
    let image = match tag {
        Some(tag) => ImageRef::new(IMAGE_REPOSITORY, tag),
        None => default_ref()?,
    };
    // The engine and the base first: they fail fast, the release build takes minutes.
    ensure_distroless(&engine()?)?;
    eprintln!(
        "xtask: cargo build --release --locked --bin apigw-operator (the Dockerfile's command)"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(repo_root()).args([
        "build",
        "--release",
        "--locked",
        "--bin",
        "apigw-operator",
    ]))?;
    build_from_binary(&target_dir().join("release").join("apigw-operator"), &image)?;
    eprintln!("xtask: built {image} in {:.0?}", started.elapsed());
    Ok(image)
}

/// The image of `cargo xtask test`: `<version>-release-check`, holding the binary `cargo xtask
/// release-check` has just built (the release command with optimisation turned down, see
/// release_check.rs), so the tests check the Dockerfile, the base and how the image runs without a
/// second, optimised build of every dependency. `cargo xtask image` builds the optimised one.
pub fn build_for_tests() -> Result<ImageRef> {
    let version = default_ref()?;
    let image = ImageRef(format!("{version}-release-check"));
    build_from_binary(&target_dir().join("release").join("apigw-operator"), &image)?;
    Ok(image)
}

/// `podman build --target from-prebuilt` of the repository's Dockerfile with `binary` as the context's
/// apigw-operator, tagged `image`. Makes the engine and the distroless stand-in first when missing.
fn build_from_binary(binary: &Path, image: &ImageRef) -> Result<()> {
    let engine = engine()?;
    ensure_distroless(&engine)?;
    // The build context: just the binary (the repository as context would send the whole source tree for
    // nothing, and its .dockerignore leaves target/ out).
    let context = target_dir().join("image-context");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&context)?;
    std::fs::copy(binary, context.join("apigw-operator"))
        .with_context(|| format!("copying {}", binary.display()))?;
    let built = run(engine
        .podman()
        .args([
            "build",
            "--quiet",
            "--pull=never",
            "--network",
            "host",
            "--target",
            "from-prebuilt",
            "--tag",
            image.as_str(),
            "--file",
        ])
        .arg(repo_root().join("Dockerfile"))
        .arg(&context));
    std::fs::remove_dir_all(&context)?;
    built
}

/// Writes `image` from local storage to `path` as an OCI archive (`ctr -n k8s.io images import` reads it).
pub fn save_oci_archive(image: &ImageRef, path: &Path) -> Result<()> {
    let engine = engine()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    run(engine
        .podman()
        .args(["save", "--quiet", "--format", "oci-archive", "--output"])
        .arg(path)
        .arg(image.as_str()))
}

// ---------------------------------------------------------------------------------------------------
// The pause image

/// `registry.k8s.io/pause:<TAG>` made from k8s.io/kubernetes' build/pause/linux/pause.c at the pinned
/// Kubernetes version (from the Go module cache): compiled statically with the machine's gcc as pause's
/// Makefile does, in an image from scratch that runs as 65535. Kept when local storage has one made from
/// the same source.
pub fn build_pause() -> Result<ImageRef> {
    let engine = engine()?;
    ensure_debian_packages(&["gcc", "libc6-dev"])?;
    let module = kubernetes_module_dir()?;
    let pause_dir = module.join("build").join("pause");
    let makefile = std::fs::read_to_string(pause_dir.join("Makefile"))?;
    let tag = pause_tag(&makefile).context("pause's Makefile sets no TAG")?;
    let image = ImageRef::new(PAUSE_REPOSITORY, &tag);
    let made_of = format!(
        "k8s.io/kubernetes@{} build/pause/linux/pause.c",
        crate::tools::KUBERNETES
    );
    if engine.has_image(image.as_str())
        && engine.label(image.as_str(), STANDIN_LABEL).as_deref() == Some(made_of.as_str())
    {
        return Ok(image);
    }
    let work = cache_dir().join("image").join("pause");
    std::fs::create_dir_all(&work)?;
    let bin = work.join("pause");
    // The Makefile's CFLAGS: -Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV), REV being a git
    // describe of the checkout; the module has no git history, so the Kubernetes version stands in.
    run(Command::new("gcc")
        .args(["-Os", "-Wall", "-Werror", "-static"])
        .arg(format!("-DVERSION=v{tag}-{}", crate::tools::KUBERNETES))
        .arg("-o")
        .arg(&bin)
        .arg(pause_dir.join("linux").join("pause.c")))?;
    let container = output(engine.buildah().args(["from", "scratch"]))?
        .trim()
        .to_string();
    let made = (|| -> Result<()> {
        run(engine
            .buildah()
            .args(["copy", "--chmod", "0755", &container])
            .arg(&bin)
            .arg("/pause"))?;
        run(engine.buildah().args([
            "config",
            "--user",
            "65535:65535",
            "--entrypoint",
            "[\"/pause\"]",
            "--label",
            &format!("{STANDIN_LABEL}={made_of}"),
            &container,
        ]))?;
        run(engine
            .buildah()
            .args(["commit", "--quiet", &container, image.as_str()]))?;
        Ok(())
    })();
    let _ = engine.buildah().args(["rm", &container]).output();
    made?;
    eprintln!("xtask: made {image} from {made_of}");
    Ok(image)
}

/// The `TAG ?= x.y.z` of pause's Makefile.
fn pause_tag(makefile: &str) -> Option<String> {
    makefile.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("TAG")?.trim_start();
        let value = rest.strip_prefix("?=").or_else(|| rest.strip_prefix('='))?;
        Some(value.trim().to_string()).filter(|v| !v.is_empty())
    })
}

/// k8s.io/kubernetes at the pinned version in the Go module cache, downloaded if missing.
fn kubernetes_module_dir() -> Result<PathBuf> {
    let info = output(
        Command::new("go")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .current_dir(std::env::temp_dir())
            .args([
                "mod",
                "download",
                "-json",
                &format!("k8s.io/kubernetes@{}", crate::tools::KUBERNETES),
            ]),
    )?;
    let info: serde_json::Value = serde_json::from_str(&info)?;
    let dir = info["Dir"]
        .as_str()
        .context("go mod download -json gave no Dir")?;
    Ok(PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_strays_refused() {
        assert_eq!(parse_options(&[]).unwrap(), Options::default());
        assert_eq!(
            parse_options(&["--tag", "v2", "--save", "/tmp/x.tar", "--pause"]).unwrap(),
            Options {
                tag: Some("v2".into()),
                save: Some("/tmp/x.tar".into()),
                pause: true
            }
        );
        assert!(parse_options(&["--tag"]).is_err());
        assert!(parse_options(&["--tag", "a:b"]).is_err());
        assert!(parse_options(&["--tag", ".x"]).is_err());
        assert!(parse_options(&["--fast"]).is_err());
    }

    #[test]
    fn dpkg_listing_counts_only_installed_packages() {
        let listing = "podman ii \nbuildah rc \nlibc6:amd64 ii \n";
        assert!(installed_in(listing, "podman"));
        assert!(
            !installed_in(listing, "buildah"),
            "config-files only is not installed"
        );
        assert!(installed_in(listing, "libc6"));
        assert!(!installed_in(listing, "runc"));
        assert!(!installed_in(listing, "podma"));
    }

    #[test]
    fn lock_messages_are_told_from_failures() {
        assert!(is_lock_busy(
            "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)"
        ));
        assert!(is_lock_busy(
            "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?"
        ));
        assert!(!is_lock_busy("E: Unable to locate package podmann"));
    }

    #[test]
    fn candidates_come_from_apt_cache_policy() {
        let policy = "libc6:\n  Installed: 2.36-9+deb12u13\n  Candidate: 2.36-9+deb12u13\n  Version table:\n *** 2.36-9+deb12u13 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\ntzdata:\n  Installed: (none)\n  Candidate: 2025b-0+deb12u2\nghost:\n  Installed: (none)\n  Candidate: (none)\n";
        assert_eq!(
            candidates_in_policy(policy),
            vec![
                ("libc6".to_string(), "2.36-9+deb12u13".to_string()),
                ("tzdata".to_string(), "2025b-0+deb12u2".to_string())
            ]
        );
    }

    #[test]
    fn deb_files_match_their_pinned_version_only() {
        assert!(deb_file_matches(
            "libc6_2.36-9+deb12u13_amd64.deb",
            "libc6=2.36-9+deb12u13"
        ));
        assert!(deb_file_matches(
            "base-files_12.4+deb12u13_amd64.deb",
            "base-files=12.4+deb12u13"
        ));
        assert!(deb_file_matches("foo_1%3a2.0-1_all.deb", "foo=1:2.0-1"));
        assert!(!deb_file_matches(
            "libc6_2.36-9+deb12u12_amd64.deb",
            "libc6=2.36-9+deb12u13"
        ));
        assert!(!deb_file_matches(
            "libc6-dev_2.36-9+deb12u13_amd64.deb",
            "libc6=2.36-9+deb12u13"
        ));
    }

    #[test]
    fn the_version_is_the_package_tables() {
        let manifest = "[workspace]\nmembers = [\"xtask\"]\n\n[package]\nname = \"apigw-operator\"\nversion = \"0.4.1\"\n\n[dependencies]\nversion = \"9\"\n";
        assert_eq!(package_version(manifest).as_deref(), Some("0.4.1"));
        assert_eq!(package_version("[dependencies]\nversion = \"1\"\n"), None);
    }

    #[test]
    fn pause_tag_is_the_makefiles() {
        let makefile = "IMAGE = $(REGISTRY)/pause\nTAG ?= 3.10.2\nREV = $(shell git describe)\n";
        assert_eq!(pause_tag(makefile).as_deref(), Some("3.10.2"));
        assert_eq!(pause_tag("TAGS = x\n"), None);
    }

    #[test]
    fn image_refs_are_repository_and_tag() {
        let image = ImageRef::new(IMAGE_REPOSITORY, "0.1.0");
        assert_eq!(image.as_str(), "localhost/apigw-operator:0.1.0");
    }
}
