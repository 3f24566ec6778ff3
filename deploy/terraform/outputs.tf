# What an apply reports: the endpoint, and the state deploy/release.sh reads (colors, images, bastion).

output "api_endpoint" {
  description = "Where clients reach the API (point api_hostname's DNS record here)."
  value       = local.functions_mode ? module.api_gateway[0].hostname : module.load_balancer[0].ip_address
}

output "jwks_url" {
  description = "The JWKS the gateway verifies RS256 tokens against."
  value       = "https://${var.api_hostname}/.well-known/jwks.json"
}

output "database_endpoint_ip" {
  description = "The PostgreSQL primary endpoint (private): the target of the bastion's port-forwarding sessions (port 5432)."
  value       = module.database.endpoint_ip
}

output "bastion_id" {
  description = "The OCI Bastion the pipeline opens port-forwarding sessions on (alarm-migrate up / status --check; operators: restore)."
  value       = module.bastion.bastion_id
}

output "live_color" {
  description = "The alarm-http color that takes the public traffic; the other answers only X-Deploy-Color: <color>:<preview_token>."
  value       = var.live_color
}

output "http_images" {
  description = "The alarm-http image of each color (deploy/release.sh reads it to plan the next release)."
  value       = var.http_images
}

output "images" {
  description = "The other images (worker, tools, backup uploader) as applied (deploy/release.sh)."
  value       = var.images
}

output "region" {
  description = "The region everything runs in (the bastion's SSH host name is derived from it)."
  value       = var.region
}

output "http_function_ids" {
  description = "api_mode = functions: alarm-http function OCIDs by color (null in containers mode)."
  value       = local.functions_mode ? module.functions[0].function_ids : null
}

output "secret_ids" {
  description = "OCIDs of the vault secrets (not their contents)."
  value       = module.vault.secret_ids
}

output "sounds_bucket" {
  value = local.sounds_bucket
}

output "backups_bucket" {
  value = local.backups_bucket
}

output "storage_access_key_id" {
  description = "The access key id of the apps' Customer Secret Key (its secret is only in the vault)."
  value       = module.storage.access_key_id
}

output "notification_topic_ids" {
  description = "Notification topics by severity (critical, warning): subscribe on-call tools here."
  value       = module.monitoring.topic_ids
}
