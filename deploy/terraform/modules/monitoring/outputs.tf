# What the monitoring module hands on (to the root module, or as terraform output).

output "topic_ids" {
  description = "Notification topics by severity (critical, warning)."
  value       = { for k, t in oci_ons_notification_topic.this : k => t.id }
}

output "alarm_names" {
  value = sort(keys(local.alarms))
}
