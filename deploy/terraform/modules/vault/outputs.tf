# What the vault module hands on (to the root module, or as terraform output).

output "vault_id" {
  value = oci_kms_vault.this.id
}

output "key_id" {
  value = oci_kms_key.master.id
}

output "admin_password_secret_id" {
  value = oci_vault_secret.db_admin_password.id
}

output "secret_ids" {
  description = "Secret OCIDs by name (OCIDs only, never contents)."
  value       = { for name, s in oci_vault_secret.app : name => s.id }
}

output "references" {
  description = "The apps' setting values that name each secret: {vault:oci:<OCID>}."
  value       = { for name, s in oci_vault_secret.app : name => "{vault:oci:${s.id}}" }
}
