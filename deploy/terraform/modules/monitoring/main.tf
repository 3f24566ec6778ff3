# Monitoring (the seed's REQ-007, GUD-004, AC-006): two notification topics, one per severity
# of deploy/observability/alerts.rules.yml (critical, warning), e-mail subscriptions, and OCI
# Monitoring alarms on the service metrics OCI itself collects.
#
# OCI Monitoring does NOT scrape the apps' Prometheus endpoint (/metrics on OPS_LISTEN_ADDR),
# so only what the platform's own namespaces express is mapped here:
#
#   app alert (alerts.rules.yml)      OCI alarm here (namespace: metric)
#   --------------------------------  -------------------------------------------------------
#   TargetDown                        worker-down-N: oci_computecontainerinstance CpuUtilization
#                                     absent for 5 min, per worker (critical);
#                                     lb-unhealthy-backends: oci_lbaas UnHealthyBackendServers
#                                     (containers mode, critical); the function has no target
#                                     to scrape (its failures are function-errors below)
#   ApiErrorRateHigh                  api-5xx: oci_apigateway HttpResponses{5xx} count, or
#                                     oci_lbaas HttpResponses5xx count (critical);
#                                     function-errors-<color>: oci_faas FunctionResponseCount
#                                     {Error} per color (critical live, warning idle).
#                                     A count, not the 1% ratio: the ratio stays in Prometheus
#   ApiLatencyP95High / Critical      api-latency-p95-high / -critical: oci_apigateway Latency
#                                     p95 > 200 ms for 10 min (warning) / > 2 s for 5 min
#                                     (critical); functions mode only (oci_lbaas has no latency
#                                     percentile: in containers mode it stays in Prometheus)
#   MemoryHigh                        memory-high: oci_computecontainerinstance MemoryUsed
#                                     > 512 MiB for 10 min, per worker (warning; the instance's
#                                     figure, a little above the process's RSS)
#   DbPoolSaturated (partly)          db-connections-high: oci_postgresql Connections above
#                                     db_connections_warning (warning); the pool's own
#                                     saturation stays in Prometheus
#   (no app rule; database health)    db-cpu-high, db-memory-high: oci_postgresql
#                                     CpuUtilization / MemoryUtilization > 80 % / 90 %
#                                     (warning); db-down: CpuUtilization absent (critical)
#   (no app rule; platform limit)     function-throttled-<color>: oci_faas FunctionResponseCount
#                                     {Throttled} > 0 (warning); api-throttled is not alarmed:
#                                     429s from the per-IP limit are expected behaviour
#
# These app-metric alerts stay in Prometheus/Alertmanager (deploy/observability/, routed by
# alertmanager routes there), because OCI Monitoring cannot see the metrics they read:
#   FireLatenessHigh, AlarmsMissed, EngineDown, TriggerBacklogHigh, OutboxPendingHigh,
#   WebhookDeadLetters, WebhookBreakerOpen, DbPoolSaturated, SecretsStale, StorageSpoolBacklog,
#   CertificateExpiresSoon (a blackbox probe), the API's 5xx *ratio* and, in containers mode,
#   its latency percentiles, and the SLO recording rules. A Prometheus must therefore scrape
#   the workers' ops port 9090 (and 9091 of alarm-http in containers mode): set
#   ops_scrape_cidrs so that the NSGs let it in.

locals {
  functions = var.api_mode == "functions"

  alarms = merge(
    local.functions ? {
      "api-5xx" = {
        namespace = "oci_apigateway", severity = "CRITICAL", pending = "PT5M"
        query     = "HttpResponses[5m]{deploymentId = \"${var.api_deployment_id}\", httpStatusCategory = \"5xx\"}.sum() > ${var.api_5xx_per_5m}"
        summary   = "The API answered more than ${var.api_5xx_per_5m} 5xx in 5 minutes (ApiErrorRateHigh)"
      }
      "api-latency-p95-high" = {
        namespace = "oci_apigateway", severity = "WARNING", pending = "PT10M"
        query     = "Latency[5m]{deploymentId = \"${var.api_deployment_id}\"}.percentile(0.95) > 200"
        summary   = "API p95 is above the 200 ms target (ApiLatencyP95High)"
      }
      "api-latency-p95-critical" = {
        namespace = "oci_apigateway", severity = "CRITICAL", pending = "PT5M"
        query     = "Latency[5m]{deploymentId = \"${var.api_deployment_id}\"}.percentile(0.95) > 2000"
        summary   = "API p95 is above 2 s (ApiLatencyP95Critical)"
      }
    } : {},
    # One pair per alarm-http function (blue-green, GUD-002): the live color's errors are
    # critical, the idle color's (a candidate under smoke test, or the previous release) a
    # warning.
    local.functions ? merge([for color in ["blue", "green"] : {
      "function-errors-${color}" = {
        namespace = "oci_faas", severity = color == var.live_color ? "CRITICAL" : "WARNING", pending = "PT5M"
        query     = "FunctionResponseCount[5m]{resourceId = \"${var.function_ids[color]}\", responseType = \"Error\"}.sum() > 0"
        summary   = "alarm-http-${color} function invocations fail (crash, deadline kill or a 502 to the agent)"
      }
      "function-throttled-${color}" = {
        namespace = "oci_faas", severity = "WARNING", pending = "PT5M"
        query     = "FunctionResponseCount[5m]{resourceId = \"${var.function_ids[color]}\", responseType = \"Throttled\"}.sum() > 0"
        summary   = "OCI Functions throttles alarm-http-${color} (tenancy concurrency limit)"
      }
    }]...) : {},
    local.functions ? {} : {
      "api-5xx" = {
        namespace = "oci_lbaas", severity = "CRITICAL", pending = "PT5M"
        query     = "HttpResponses5xx[5m]{resourceId = \"${var.load_balancer_id}\"}.sum() > ${var.api_5xx_per_5m}"
        summary   = "The API answered more than ${var.api_5xx_per_5m} 5xx in 5 minutes (ApiErrorRateHigh)"
      }
      "lb-unhealthy-backends" = {
        namespace = "oci_lbaas", severity = "CRITICAL", pending = "PT2M"
        query     = "UnHealthyBackendServers[1m]{resourceId = \"${var.load_balancer_id}\"}.max() > 0"
        summary   = "An alarm-http instance fails /health/ready (TargetDown)"
      }
    },
    {
      "db-down" = {
        namespace = "oci_postgresql", severity = "CRITICAL", pending = "PT5M"
        query     = "CpuUtilization[1m]{resourceId = \"${var.db_system_id}\"}.absent()"
        summary   = "The PostgreSQL database system reports no metrics"
      }
      "db-cpu-high" = {
        namespace = "oci_postgresql", severity = "WARNING", pending = "PT15M"
        query     = "CpuUtilization[5m]{resourceId = \"${var.db_system_id}\"}.mean() > 80"
        summary   = "PostgreSQL CPU above 80 %"
      }
      "db-memory-high" = {
        namespace = "oci_postgresql", severity = "WARNING", pending = "PT15M"
        query     = "MemoryUtilization[5m]{resourceId = \"${var.db_system_id}\"}.mean() > 90"
        summary   = "PostgreSQL memory above 90 %"
      }
      "db-connections-high" = {
        namespace = "oci_postgresql", severity = "WARNING", pending = "PT5M"
        query     = "Connections[5m]{resourceId = \"${var.db_system_id}\"}.max() > ${var.db_connections_warning}"
        summary   = "PostgreSQL connections above ${var.db_connections_warning} (see DbPoolSaturated)"
      }
    },
    { for i in range(var.worker_count) : "worker-down-${i}" => {
      namespace = "oci_computecontainerinstance", severity = "CRITICAL", pending = "PT5M"
      query     = "CpuUtilization[1m]{resourceId = \"${var.worker_instance_ids[i]}\"}.absent()"
      summary   = "alarm-worker ${i} reports no metrics: fewer workers ring alarms (TargetDown/EngineDown)"
    } },
    { for i in range(var.worker_count) : "worker-memory-high-${i}" => {
      namespace = "oci_computecontainerinstance", severity = "WARNING", pending = "PT10M"
      query     = "MemoryUsed[5m]{resourceId = \"${var.worker_instance_ids[i]}\"}.max() > ${512 * 1024 * 1024}"
      summary   = "alarm-worker ${i} uses more than 512 MiB of memory (MemoryHigh)"
    } },
  )
}

resource "oci_ons_notification_topic" "this" {
  for_each = toset(["critical", "warning"])

  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-${each.key}"
  description    = "Smart Alarm ${each.key} alerts (OCI Monitoring alarms)"
  freeform_tags  = var.freeform_tags
}

resource "oci_ons_subscription" "email" {
  for_each = { for pair in setproduct(["critical", "warning"], var.alert_emails) : "${pair[0]}-${pair[1]}" => { topic = pair[0], email = pair[1] } }

  compartment_id = var.compartment_id
  topic_id       = oci_ons_notification_topic.this[each.value.topic].id
  protocol       = "EMAIL"
  endpoint       = each.value.email
  freeform_tags  = var.freeform_tags
}

resource "oci_monitoring_alarm" "this" {
  for_each = local.alarms

  compartment_id        = var.compartment_id
  metric_compartment_id = var.compartment_id
  display_name          = "${var.name_prefix}-${each.key}"
  namespace             = each.value.namespace
  query                 = each.value.query
  severity              = each.value.severity
  pending_duration      = each.value.pending
  resolution            = "1m"
  body                  = "${each.value.summary}. Runbook: deploy/observability/RUNBOOK.md"
  alarm_summary         = each.value.summary
  message_format        = "ONS_OPTIMIZED"
  is_enabled            = true
  freeform_tags         = var.freeform_tags

  destinations                 = [oci_ons_notification_topic.this[each.value.severity == "CRITICAL" ? "critical" : "warning"].id]
  repeat_notification_duration = each.value.severity == "CRITICAL" ? "PT1H" : "PT4H"
}
