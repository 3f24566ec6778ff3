# alarm-http as an OCI Function (the seed's REQ-001 / INF-001), behind API Gateway.
#
# The image is the alarm-http target of deploy/images/Containerfile, unchanged: OCI Functions
# sets FN_LISTENER, and the binary then serves Fn's http-stream contract on the unix socket
# (deploy/README.md, "The API as an OCI Function"). In that mode the app refuses the embedded
# SQLite database and local sound storage, so the configuration below always carries the
# network database (DATABASE_URL: a vault reference to the PostgreSQL URL, sslmode=require) and
# Object Storage (STORAGE_BACKEND=oci). No LISTEN_ADDR/OPS_LISTEN_ADDR/TRUSTED_PROXIES: a
# function has no ops listener, and the gateway is the only proxy in front of it.
#
# The function runs in the private app subnet with the api NSG (SEC-007): it reaches PostgreSQL
# on 5432 and OCI services (Vault, Object Storage) through the service gateway, nothing else
# but SMTP. It authenticates to Vault with its resource principal (OCI_AUTH=resource_principal,
# SEC-005: the functions dynamic group may only read this vault's secret bundles).
#
# Function configuration is limited by OCI to 4 KB (keys and values together); the settings
# here are OCIDs and vault references, about 2 KB.
#
# Blue-green (GUD-002): two functions, alarm-http-blue and alarm-http-green, in the one
# application, each with its color's image (var.images). Both always exist: the idle color
# holds the candidate before the switch, or the previous release for rollback. Which one takes
# the traffic is the API gateway's route (module api_gateway, var.live_color at the root); a
# release: candidate image into the idle color's slot -> apply -> smoke test through the public
# endpoint with the header X-Deploy-Color: <idle color> -> flip live_color -> apply; rollback:
# flip live_color back -> apply. The idle color is reachable by anyone who sends the header:
# it is the same app with the same configuration, auth and database, so it exposes nothing the
# live color does not (only possibly a newer or older version of it).

resource "oci_functions_application" "this" {
  compartment_id             = var.compartment_id
  display_name               = "${var.name_prefix}-app"
  subnet_ids                 = [var.subnet_id]
  network_security_group_ids = var.nsg_ids
  shape                      = "GENERIC_X86"
  freeform_tags              = var.freeform_tags
}

resource "oci_functions_function" "alarm_http" {
  for_each = var.images

  application_id     = oci_functions_application.this.id
  display_name       = "alarm-http-${each.key}"
  image              = each.value
  memory_in_mbs      = var.memory_mb
  timeout_in_seconds = var.timeout_seconds
  config             = var.config
  freeform_tags      = merge(var.freeform_tags, { "deploy-color" = each.key })

  trace_config {
    is_enabled = false
  }
}

