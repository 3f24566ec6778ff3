# Credentials come from the operator's ~/.oci/config (or OCI_CLI_* / TF_VAR_* variables), never
# from this repository. Every resource is created in var.region, which is refused unless it is
# a Brazilian region (COM-002).
provider "oci" {
  region              = var.region
  config_file_profile = var.oci_config_profile
}
