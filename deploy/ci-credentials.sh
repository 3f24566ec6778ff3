#!/usr/bin/env bash
# Writes what a CI job of .github/workflows/release.yml needs from its secrets, owner-only and
# never echoed: ~/.oci/config and its key (the OCI CLI and Terraform's OCI provider read the
# DEFAULT profile), deploy/terraform/backend.hcl, and the deployment's tfvars at $TF_VAR_FILE.
set -euo pipefail
umask 077

: "${OCI_USER_OCID:?}" "${OCI_TENANCY_OCID:?}" "${OCI_FINGERPRINT:?}" "${OCI_PRIVATE_KEY:?}"
: "${TF_BACKEND_HCL:?}" "${TF_VARS:?}" "${TF_VAR_FILE:?}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tf_dir=${TF_DIR:-$here/terraform}

mkdir -p "$HOME/.oci"
printf '%s\n' "$OCI_PRIVATE_KEY" >"$HOME/.oci/deployer.pem"
cat >"$HOME/.oci/config" <<CONFIG
[DEFAULT]
user=${OCI_USER_OCID}
tenancy=${OCI_TENANCY_OCID}
fingerprint=${OCI_FINGERPRINT}
key_file=${HOME}/.oci/deployer.pem
region=sa-saopaulo-1
CONFIG
printf '%s\n' "$TF_BACKEND_HCL" >"$tf_dir/backend.hcl"
printf '%s\n' "$TF_VARS" >"$TF_VAR_FILE"
# The release sets these itself (deploy/release.sh plan); a copy in the tfvars would be a
# second source of truth, so it is refused rather than silently overridden.
if grep -Eq '^[[:space:]]*(live_color|http_images|images)[[:space:]]*=' "$TF_VAR_FILE"; then
    echo "TF_VARS sets live_color, http_images or images: the release owns them, remove them" >&2
    exit 1
fi
# umask covers new files only: a file an earlier run left keeps its mode otherwise.
chmod 600 "$HOME/.oci/deployer.pem" "$HOME/.oci/config" "$tf_dir/backend.hcl" "$TF_VAR_FILE"
echo "credentials and inputs written (owner-only)"
