# Remote state in OCI Object Storage (the seed's "state stored in OCI Object Storage").
#
# The "s3" backend against Object Storage's S3 compatibility endpoint is used, not the native
# `backend "oci"`: the native backend exists only from Terraform 1.12, and this configuration
# is kept usable with Terraform 1.6 to 1.11 (1.6: the s3 backend's `endpoints` and
# `use_path_style` settings of backend.hcl.example). Everything that differs per
# tenancy is given at init time, never written here:
#
#   terraform init -backend-config=backend.hcl      # from backend.hcl.example
#
# with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set to a Customer Secret Key of the operator
# (never the apps' key). State holds secret values (the vault secrets' contents): the state
# bucket must be private, versioned and readable by the operators' group only.
terraform {
  backend "s3" {}
}
