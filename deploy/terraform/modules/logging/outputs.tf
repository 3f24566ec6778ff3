# What the logging module hands on (to the root module, or as terraform output).

output "log_group_id" {
  value = oci_logging_log_group.this.id
}

output "log_ids" {
  value = { for k, log in oci_logging_log.service : k => log.id }
}
