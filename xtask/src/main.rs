//! Project automation behind `cargo xtask`: the CI gate, the architecture check, container images and benchmarks.

use std::env;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod deploy;
mod image;

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  ci                      start/install the test servers (PostgreSQL, Redis, aiosmtpd), then fmt, clippy,
                          tests, cargo-deny, the architecture check and the alert rules and
                          routes (promtool and amtool, installed from Debian's `prometheus` and
                          `prometheus-alertmanager` packages when missing), and last the
                          container images under the smoke test (`image --profile dev
                          --check`), in order
  arch                    only the architecture check: alarm-domain must not pull in I/O crates
  alerts                  only the Prometheus rules' and Alertmanager routes' checks and tests
  codegen                 write the OpenAPI document to docs/openapi.json
  bench <target> [--baseline <rev>] [-- args]
                          run a benchmark program; extra args go to the bench binary; with
                          --baseline, first build and run <rev> from a git worktree, then
                          this tree, in one session
  image [--profile release|dev] [--check]
                          build the images of deploy/images/Containerfile with buildah from
                          binaries built here (no registry needed: local bases from the host's
                          libraries), print their compressed sizes, write CycloneDX SBOMs to
                          target/images/; --check also runs hadolint and the alarm-http image
                          read-only on SQLite and on PostgreSQL under deploy/smoke.sh, then
                          stops it with SIGTERM (exit 0 expected)
  deploy-check            the deployment files without a cloud: shellcheck (scripts and the
                          workflow's run blocks), deploy/release.test.sh, actionlint on
                          .github/workflows, deploy/terraform/check.sh (fmt, provider schema,
                          checkov, the seed's promises)
  help                    this text
";

/// Crates that mean I/O or a runtime. The domain is pure, so none of them may appear anywhere in
/// its normal dependency tree, not even transitively, which `deny.toml` cannot express.
const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "tokio",
    "hyper",
    "sqlx",
    "sea-orm",
    "poem",
    "object_store",
    "reqwest",
    "lettre",
    "vaultrs",
];

/// A benchmark program that `cargo xtask bench <name>` knows how to run.
struct Bench {
    name: &'static str,
    package: &'static str,
    bench: &'static str,
    /// Arguments the program always gets (a mode of a shared program).
    args: &'static [&'static str],
}

/// Benchmarks print figures instead of asserting on timings, so each one is a separate program;
/// adding a new one (store, worker) is one entry here.
const BENCHES: &[Bench] = &[
    Bench {
        name: "schedule",
        package: "alarm-domain",
        bench: "schedule",
        args: &[],
    },
    Bench {
        name: "store",
        package: "alarm-sql",
        bench: "store",
        args: &[],
    },
    Bench {
        name: "api",
        package: "alarm-http",
        bench: "api",
        args: &[],
    },
    Bench {
        name: "worker",
        package: "alarm-worker",
        bench: "worker",
        args: &[],
    },
    Bench {
        name: "peer",
        package: "alarm-worker",
        bench: "worker",
        args: &["--peer"],
    },
    Bench {
        name: "abuse",
        package: "alarm-http",
        bench: "abuse",
        args: &[],
    },
    Bench {
        name: "storage",
        package: "alarm-storage",
        bench: "storage",
        args: &[],
    },
    Bench {
        name: "upload",
        package: "alarm-http",
        bench: "upload",
        args: &[],
    },
    Bench {
        name: "function",
        package: "alarm-http",
        bench: "function",
        args: &[],
    },
];

/// A CI step: its name for the banner and the summary, and the work itself.
type Step = (&'static str, fn() -> Result<(), String>);

/// Cheap, local checks come first so that a formatting slip fails in seconds, not minutes.
const CI_STEPS: &[Step] = &[
    ("services", services),
    ("fmt", fmt),
    ("clippy", clippy),
    ("test", test),
    ("deny", deny),
    ("arch", arch),
    ("alerts", alerts),
    ("deploy", deploy::deploy_check),
    ("image", image_check),
];

/// The images built from the tests' own (dev) binaries and run under the smoke test: the
/// Containerfile, the local bases and the image's read-only, non-root run are what it checks;
/// sizes are `cargo xtask image`'s (release) to report.
fn image_check() -> Result<(), String> {
    image::image(&[
        "--profile".to_owned(),
        "dev".to_owned(),
        "--check".to_owned(),
    ])
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("ci") => ci(),
        Some("image") => image::image(&args[1..]),
        Some("deploy-check") => deploy::deploy_check(),
        Some("arch") => arch(),
        Some("alerts") => alerts(),
        Some("codegen") => codegen(),
        Some("bench") => bench(&args[1..]),
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    let mut timings = Vec::with_capacity(CI_STEPS.len());
    for &(name, step) in CI_STEPS {
        println!("==> xtask ci: {name}");
        let started = Instant::now();
        step().map_err(|e| format!("xtask ci: step `{name}` failed: {e}"))?;
        timings.push(format!("{name} {:.1}s", started.elapsed().as_secs_f64()));
    }
    println!(
        "==> xtask ci: all {} steps passed ({})",
        CI_STEPS.len(),
        timings.join(", ")
    );
    Ok(())
}

/// The tests talk to real servers: PostgreSQL on 127.0.0.1:5432 (started here when this
/// machine's local cluster is stopped), Redis on 127.0.0.1:6379 (started here when it does
/// not answer) and aiosmtpd, a real SMTP server that the e-mail tests
/// start themselves, Oracle's Python SDK `oci` (the OCI signer's reference) and tuspy (a real
/// tus client for the upload tests), installed here
/// with pip when missing, and s3s-fs (a real S3 server) installed with cargo when missing.
/// Tests never install anything.
fn services() -> Result<(), String> {
    if succeeds(command(
        "pg_isready",
        ["-q", "-h", "127.0.0.1", "-p", "5432"],
    )) {
        println!("    PostgreSQL is accepting connections on 127.0.0.1:5432");
    } else if env::var("ALARM_TEST_PG_URL").is_ok() {
        println!("    ALARM_TEST_PG_URL is set: its server is not started here");
    } else {
        let versions = std::fs::read_dir("/etc/postgresql")
            .map_err(|e| format!("PostgreSQL is down and no local cluster is installed: {e}"))?;
        let mut versions: Vec<String> = versions
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        // Numeric order: 9.6 < 15 < 17.
        versions.sort_by_key(|v| {
            v.split('.')
                .map(|part| part.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        });
        let version = versions
            .last()
            .ok_or("PostgreSQL is down and /etc/postgresql names no cluster")?;
        println!("    starting the local PostgreSQL {version} cluster");
        run(command(
            "pg_ctlcluster",
            [
                "--skip-systemctl-redirect",
                version.as_str(),
                "main",
                "start",
            ],
        ))?;
        run(command(
            "pg_isready",
            ["-h", "127.0.0.1", "-p", "5432", "-t", "30"],
        ))?;
    }
    if env::var("ALARM_TEST_REDIS_URL").is_ok() {
        println!("    ALARM_TEST_REDIS_URL is set: its server is not started here");
    } else if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() {
        println!("    Redis is accepting connections on 127.0.0.1:6379");
    } else {
        // The shared rate-limit tests need a real Redis; this machine kind
        // has redis-server installed. It keeps nothing on disk.
        println!("    starting a local Redis on 127.0.0.1:6379");
        run(command(
            "redis-server",
            [
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ],
        ))?;
        let ready = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::net::TcpStream::connect("127.0.0.1:6379").is_ok()
        });
        if !ready {
            return Err("redis-server started but 127.0.0.1:6379 does not answer".to_owned());
        }
    }
    for (module, package, why) in [
        ("aiosmtpd", "aiosmtpd", "the e-mail tests' SMTP server"),
        (
            "tusclient",
            "tuspy==1.1.0",
            "a real tus client: the upload tests drive the API with it",
        ),
        (
            "oci",
            "oci",
            "Oracle's Python SDK: alarm-secrets compares its request signer with the SDK's",
        ),
    ] {
        if succeeds(command("python3", ["-c", &format!("import {module}")])) {
            println!("    {package} is installed");
        } else {
            println!("    installing {package} ({why})");
            pip_install(&[package])?;
        }
    }
    s3_server()
}

/// The S3-compatible server the storage tests start themselves (`alarm_storage::testing`):
/// s3s-fs at the pinned release, the newest that builds with the workspace's toolchain
/// (0.15 and later want Rust 1.96), installed when missing or another release.
fn s3_server() -> Result<(), String> {
    const VERSION: &str = "0.14.1";
    let installed = Command::new("s3s-fs")
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("s3s-fs {VERSION}")) {
        println!("    s3s-fs {VERSION} is installed");
        return Ok(());
    }
    println!("    installing s3s-fs {VERSION} (the storage tests' S3 server)");
    run(cargo([
        "install",
        "s3s-fs",
        "--version",
        VERSION,
        "--features",
        "binary",
        "--locked",
    ]))
}

/// Any program, with arguments.
fn command<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    command
}

fn fmt() -> Result<(), String> {
    run(cargo(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<(), String> {
    run(cargo([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

fn test() -> Result<(), String> {
    // nextest cannot run doctests, and they are the examples readers copy, so they get their own
    // pass. It goes first so that the main runner's summary is the last word of the log.
    run(cargo(["test", "--workspace", "--doc", "--locked"]))?;
    if succeeds(cargo(["nextest", "--version"])) {
        run(cargo(["nextest", "run", "--workspace", "--locked"]))
    } else {
        println!("    cargo-nextest not found, falling back to cargo test");
        run(cargo([
            "test",
            "--workspace",
            "--locked",
            "--lib",
            "--bins",
            "--tests",
        ]))
    }
}

/// The shipped Prometheus and Alertmanager files: `promtool check rules` (syntax, PromQL),
/// `promtool test rules` (each alert fires from synthetic series, the SLO recordings give known
/// ratios), `amtool check-config` and the routes critical and other alerts take.
fn alerts() -> Result<(), String> {
    for (tool, package) in [
        ("promtool", "prometheus"),
        ("amtool", "prometheus-alertmanager"),
    ] {
        if !succeeds(command(tool, ["--version"])) {
            println!("    {tool} not found, installing Debian's {package} package");
            apt_install(package)?;
            // Only the tool is wanted: a server the package may have started
            // (on a host with systemd) would hold ports the apps use.
            let _ = succeeds(command("systemctl", ["disable", "--now", package]));
        }
    }
    let dir = workspace_root().join("deploy/observability");
    let route = |receivers: &str, labels: &[&str]| {
        let mut args = vec![
            "config".to_owned(),
            "routes".to_owned(),
            "test".to_owned(),
            "--config.file=alertmanager.yml".to_owned(),
            format!("--verify.receivers={receivers}"),
        ];
        args.extend(labels.iter().map(|l| (*l).to_owned()));
        command("amtool", args)
    };
    for mut step in [
        command("promtool", ["check", "rules", "alerts.rules.yml"]),
        command("promtool", ["test", "rules", "alerts.test.yml"]),
        command("amtool", ["check-config", "alertmanager.yml"]),
        route(
            "operators-page,operators-email",
            &["severity=critical", "alertname=EngineDown"],
        ),
        route(
            "operators-email",
            &["severity=warning", "alertname=MemoryHigh"],
        ),
    ] {
        step.current_dir(&dir);
        run(step)?;
    }
    Ok(())
}

fn deny() -> Result<(), String> {
    if !succeeds(cargo(["deny", "--version"])) {
        println!("    cargo-deny not found, installing it");
        run(cargo(["install", "cargo-deny", "--locked"]))?;
    }
    // Advisories are left out: they need the network and would make the gate flaky offline.
    // `unused-wrapper` is allowed because deny.toml already names the crates later issues add.
    run(cargo([
        "deny",
        "--all-features",
        "check",
        "--allow",
        "unused-wrapper",
        "bans",
        "licenses",
        "sources",
    ]))
}

fn arch() -> Result<(), String> {
    let mut tree = cargo([
        "tree",
        "-p",
        "alarm-domain",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    let output = tree
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&tree)))?;
    if !output.status.success() {
        return Err(format!(
            "`{}` exited with {}",
            describe(&tree),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut offending: Vec<&str> = stdout
        .lines()
        // `(*)` only marks a repeated subtree; without it each crate is reported once.
        .map(|line| line.trim_end_matches(" (*)"))
        .filter(|line| {
            // Compare the whole name: `tokio-util` or `hyper-util` alone are not the violation.
            let name = line.split_whitespace().next().unwrap_or_default();
            FORBIDDEN_IN_DOMAIN.contains(&name)
        })
        .collect();
    offending.sort_unstable();
    offending.dedup();
    if offending.is_empty() {
        println!("    alarm-domain's normal dependency tree is free of I/O crates");
        return Ok(());
    }
    for line in &offending {
        eprintln!("    forbidden in alarm-domain: {line}");
    }
    Err(format!(
        "alarm-domain must stay pure, but its dependency tree contains {} forbidden crate(s); \
         see `cargo tree -p alarm-domain -e normal -i <crate>` for the path",
        offending.len()
    ))
}

/// The spec comes from the server binary itself (`alarm-http --openapi`), so
/// xtask needs no dependency on the API crate; a test in alarm-it fails when
/// the committed file drifts from the code.
fn codegen() -> Result<(), String> {
    let mut command = cargo(["run", "--quiet", "-p", "alarm-http", "--", "--openapi"]);
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&command)))?;
    if !output.status.success() {
        return Err(format!(
            "`{}` exited with {}",
            describe(&command),
            output.status
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root");
    let target = root.join("docs").join("openapi.json");
    std::fs::write(&target, &output.stdout)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    println!("wrote {} ({} bytes)", target.display(), output.stdout.len());
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let known = BENCHES
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ");
    let Some((target, rest)) = args.split_first() else {
        return Err(format!("missing bench target; known targets: {known}"));
    };
    let Some(bench) = BENCHES.iter().find(|b| b.name == target) else {
        return Err(format!(
            "unknown bench target `{target}`; known targets: {known}"
        ));
    };
    let (baseline, extra) = match rest {
        [flag, rev, extra @ ..] if flag == "--baseline" => (Some(rev.as_str()), extra),
        [flag] if flag == "--baseline" => {
            return Err("--baseline takes a git revision, e.g. --baseline HEAD~3".to_owned());
        }
        extra => (None, extra),
    };
    let command = |root: &Path| {
        let mut c = cargo(["bench", "-p", bench.package, "--bench", bench.bench]);
        c.current_dir(root);
        // Each tree builds into its own `target` folder (the benches find
        // the apps they start there), whatever the caller's environment says.
        c.env_remove("CARGO_TARGET_DIR");
        let extra: Vec<&str> = bench
            .args
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str).filter(|a| *a != "--"))
            .collect();
        if !extra.is_empty() {
            c.arg("--").args(extra);
        }
        c
    };
    let root = workspace_root();
    let Some(rev) = baseline else {
        return run(command(&root));
    };
    // The base revision is built in a worktree of its own, into that
    // worktree's own target folder (its crates share names with ours), then
    // both run one after the other in this session, so their figures are
    // compared on the same machine state.
    let resolved = git_output(&root, &["rev-parse", "--short", rev])?;
    let base = root.join("target").join("baseline").join(&resolved);
    let tree = base.join("tree");
    if !tree.join("Cargo.toml").exists() {
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        run({
            let mut c = Command::new("git");
            c.current_dir(&root).args([
                "worktree",
                "add",
                "--detach",
                &tree.display().to_string(),
                &resolved,
            ]);
            c
        })?;
    }
    println!(
        "==> bench {target}: baseline {resolved} (worktree {})",
        tree.display()
    );
    run(command(&tree))?;
    println!("==> bench {target}: this tree");
    run(command(&root))?;
    println!(
        "==> bench {target}: compare the two reports above (baseline {resolved} first); remove the worktree with `git worktree remove {}`",
        tree.display()
    );
    Ok(())
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// What a git command prints, trimmed.
fn git_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`git {}` exited with {}",
            args.join(" "),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A cargo invocation rooted at the workspace, so that xtask behaves the same from any directory.
/// `CARGO` is honoured because it names the toolchain that is running us.
fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root");
    let mut command = Command::new(program);
    command.args(args).current_dir(root);
    command
}

fn run(mut command: Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", describe(&command)))
    }
}

/// Installs from PyPI into the machine's Python (`args` after `pip install --quiet`).
fn pip_install(args: &[&str]) -> Result<(), String> {
    let mut pip = command("python3", ["-m", "pip", "install", "--quiet"]);
    pip.args(args);
    run(pip)
}

/// Installs a Debian package, refreshing stale package lists once if the first try fails.
fn apt_install(package: &str) -> Result<(), String> {
    let install = || {
        let mut apt = command(
            "apt-get",
            [
                "install",
                "-y",
                "--no-install-recommends",
                "-o",
                "Dpkg::Use-Pty=0",
                package,
            ],
        );
        apt.env("DEBIAN_FRONTEND", "noninteractive");
        apt
    };
    if run(install()).is_err() {
        run(command("apt-get", ["update", "-qq"]))?;
        run(install())?;
    }
    Ok(())
}

/// Probes whether a tool works without letting its output clutter the log.
fn succeeds(mut command: Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn describe(command: &Command) -> String {
    // Show `cargo`, not the toolchain's absolute path, so the message reads like the command a
    // person would type to reproduce the failure.
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    command
        .get_args()
        .map(|arg| arg.to_string_lossy())
        .fold(program, |line, arg| line + " " + &arg)
}
