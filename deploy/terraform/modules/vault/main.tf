# OCI Vault (REQ-004, SEC-003): a vault, an AES-256 master key (HSM-protected) and one secret
# per app secret. Contents come only from sensitive input variables (or, for the storage key,
# from the Customer Secret Key resource); none is ever written in this repository or output.
# The apps read them by OCID ({vault:oci:<OCID>}) with their resource principal, and re-read
# them every SECRETS_REFRESH_SECONDS, so a new secret version is taken without a redeploy
# (README: which settings rotate live).

resource "oci_kms_vault" "this" {
  compartment_id = var.compartment_id
  display_name   = "${var.name_prefix}-vault"
  vault_type     = var.vault_type
  freeform_tags  = var.freeform_tags
}

resource "oci_kms_key" "master" {
  compartment_id      = var.compartment_id
  display_name        = "${var.name_prefix}-master-key"
  management_endpoint = oci_kms_vault.this.management_endpoint
  protection_mode     = "HSM"
  freeform_tags       = var.freeform_tags

  key_shape {
    algorithm = "AES"
    length    = 32
  }

  # Automatic rotation (yearly) exists for keys of a VIRTUAL_PRIVATE vault only; in a DEFAULT
  # vault the key is rotated by the operator (`oci kms management key rotate`, README). New
  # versions encrypt; old ones still decrypt.
  is_auto_rotation_enabled = var.vault_type == "VIRTUAL_PRIVATE"

  dynamic "auto_key_rotation_details" {
    for_each = var.vault_type == "VIRTUAL_PRIVATE" ? [1] : []
    content {
      rotation_interval_in_days = 365
    }
  }
}

# Kept apart from the others: the database system reads it at creation, and the database URL
# secret needs the database's address (one for_each resource would be a cycle).
resource "oci_vault_secret" "db_admin_password" {
  compartment_id = var.compartment_id
  vault_id       = oci_kms_vault.this.id
  key_id         = oci_kms_key.master.id
  secret_name    = "${var.name_prefix}-db-admin-password"
  description    = "PostgreSQL administrator password"
  freeform_tags  = var.freeform_tags

  secret_content {
    content_type = "BASE64"
    content      = base64encode(var.db_admin_password)
  }
}

resource "oci_vault_secret" "app" {
  for_each = toset(var.secret_names)

  compartment_id = var.compartment_id
  vault_id       = oci_kms_vault.this.id
  key_id         = oci_kms_key.master.id
  secret_name    = "${var.name_prefix}-${each.key}"
  description    = "Smart Alarm ${each.key}"
  freeform_tags  = var.freeform_tags

  secret_content {
    content_type = "BASE64"
    content      = base64encode(var.secret_values[each.key])
  }
}
