# What the storage module hands on (to the root module, or as terraform output).

output "sounds_bucket" {
  value = oci_objectstorage_bucket.sounds.name
}

output "backups_bucket" {
  value = oci_objectstorage_bucket.backups.name
}

output "access_key_id" {
  description = "STORAGE_ACCESS_KEY_ID (not a secret)."
  value       = oci_identity_customer_secret_key.apps.id
}

output "secret_access_key" {
  description = "STORAGE_SECRET_ACCESS_KEY: only for module vault."
  value       = oci_identity_customer_secret_key.apps.key
  sensitive   = true
}
