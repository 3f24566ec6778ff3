# What the database module hands on (to the root module, or as terraform output).

output "db_system_id" {
  value = oci_psql_db_system.this.id
}

output "endpoint_ip" {
  description = "The primary endpoint's private IP (no public endpoint exists)."
  value       = oci_psql_db_system.this.network_details[0].primary_db_endpoint_private_ip
}
