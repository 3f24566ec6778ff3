# What the functions module hands on (to the root module, or as terraform output).

output "application_id" {
  value = oci_functions_application.this.id
}

output "function_ids" {
  description = "alarm-http function OCIDs by color (blue, green)."
  value       = { for color, f in oci_functions_function.alarm_http : color => f.id }
}
