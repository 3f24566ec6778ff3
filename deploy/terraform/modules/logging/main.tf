# Logging (the seed's GUD-005: log aggregation): one log group and the service logs of each
# piece that runs, kept retention_days.
#   functions mode:  functions / invoke (the function's stdout and stderr, with the log frames
#                    the app writes per call), apigateway / access and execution
#   containers mode: loadbalancer / access and error
# alarm-worker's and alarm-http-in-containers' own output is collected by Container Instances
# (its console logs); OCI Audit records every administrative API call on these resources by
# itself (SEC-006, COM-003: always on, retention set at the tenancy).
# `enable_*` drive count (known at plan) rather than the ids (known only after apply).

resource "oci_logging_log_group" "this" {
  compartment_id = var.compartment_id
  display_name   = "${var.name_prefix}-logs"
  description    = "Smart Alarm service logs"
  freeform_tags  = var.freeform_tags
}

locals {
  service_logs = merge(
    var.enable_functions ? { "functions-invoke" = { service = "functions", category = "invoke", resource = var.function_app_id } } : {},
    var.enable_gateway ? {
      "apigateway-access"    = { service = "apigateway", category = "access", resource = var.api_deployment_id }
      "apigateway-execution" = { service = "apigateway", category = "execution", resource = var.api_deployment_id }
    } : {},
    var.enable_lb ? {
      "lb-access" = { service = "loadbalancer", category = "access", resource = var.load_balancer_id }
      "lb-error"  = { service = "loadbalancer", category = "error", resource = var.load_balancer_id }
    } : {},
  )
}

resource "oci_logging_log" "service" {
  for_each = toset(keys(local.service_logs))

  display_name       = "${var.name_prefix}-${each.key}"
  log_group_id       = oci_logging_log_group.this.id
  log_type           = "SERVICE"
  is_enabled         = true
  retention_duration = var.retention_days
  freeform_tags      = var.freeform_tags

  configuration {
    compartment_id = var.compartment_id

    source {
      source_type = "OCISERVICE"
      service     = local.service_logs[each.key].service
      category    = local.service_logs[each.key].category
      resource    = local.service_logs[each.key].resource
    }
  }
}
