# api_mode = containers: alarm-http as Container Instances behind the flexible load balancer
# (the seed's REQ-006 / INF-006: SSL termination and health checks).
#
#   - listener: HTTPS 443 only, TLS 1.2 and 1.3 (SEC-001), the certificate of api_hostname from
#     the OCI Certificates service (its private key never passes through Terraform);
#   - backends: each alarm-http container instance's private IP on the app port (8080); the LB
#     NSG may reach only that port of the api NSG (module network, SEC-007);
#   - health check: HTTP GET /health/ready, 200 expected (the same probe as the image's
#     HEALTHCHECK); a backend that fails it leaves the rotation;
#   - the instances run with --no-worker semantics (NO_WORKER=true): the trigger engine is
#     module worker's alone.
#
# Blue-green (GUD-002): two sets of alarm-http instances, blue and green (instance_count each,
# each color with its image from var.images), and two backend sets, http-blue and http-green.
# The HTTPS listener's default backend set is the live color's (var.live_color); its routing
# policy sends a request whose X-Deploy-Color header is "blue:<preview_token>" or
# "green:<preview_token>" to that color's backend set, so the release pipeline can smoke-test
# the idle color through the real public endpoint. A release: candidate image into the idle
# color's slot -> apply -> smoke test with X-Deploy-Color: <idle>:<preview_token> -> flip
# live_color -> apply (only the listener's default changes); rollback: flip live_color back ->
# apply. The idle color is reachable only with the preview token: after a release it runs the
# previous version, which may carry a security bug the release fixed. The release pipeline holds
# the token (TF_VAR_preview_token); it is also readable by anyone with read access to this load
# balancer's routing policy (its rule conditions) and in the Terraform state.

resource "oci_load_balancer_load_balancer" "this" {
  compartment_id             = var.compartment_id
  display_name               = "${var.name_prefix}-lb"
  shape                      = "flexible"
  subnet_ids                 = [var.public_subnet_id]
  network_security_group_ids = var.lb_nsg_ids
  is_private                 = false
  freeform_tags              = var.freeform_tags

  shape_details {
    minimum_bandwidth_in_mbps = var.min_bandwidth_mbps
    maximum_bandwidth_in_mbps = var.max_bandwidth_mbps
  }
}

locals {
  colors = toset(["blue", "green"])
  # One entry per instance: "blue-0", "blue-1", ..., "green-0", ...
  http_instances = {
    for pair in setproduct(sort(local.colors), range(var.instance_count)) : "${pair[0]}-${pair[1]}" => {
      color = pair[0]
      index = pair[1]
    }
  }
}

resource "oci_load_balancer_backend_set" "http" {
  for_each = local.colors

  load_balancer_id = oci_load_balancer_load_balancer.this.id
  name             = "http-${each.key}"
  policy           = "LEAST_CONNECTIONS"

  health_checker {
    protocol          = "HTTP"
    port              = var.app_port
    url_path          = "/health/ready"
    return_code       = 200
    interval_ms       = 10000
    timeout_in_millis = 3000
    retries           = 3
  }
}

# Preview: X-Deploy-Color: blue:<preview_token> / green:<preview_token> reaches that color's
# backend set; a request without the header, with a bare color or with a wrong token matches no
# rule and goes to the listener's default backend set, the live color's. Rules are evaluated in
# order, the first match wins. The rule names are the colors only; the token is in the
# conditions (validated to [A-Za-z0-9_-], so it cannot break out of the quoted string).
# Assumption (OCI routing policy language V1, not checkable offline): headers are addressed as
# http.request.headers[(i '<name>')] (case-insensitive name) and compared with eq against a
# plain, case-sensitive string literal '<value>' (the token is compared exactly).
resource "oci_load_balancer_load_balancer_routing_policy" "deploy_color" {
  load_balancer_id           = oci_load_balancer_load_balancer.this.id
  name                       = "deploy_color"
  condition_language_version = "V1"

  rules {
    name      = "preview_blue"
    condition = "all(http.request.headers[(i 'X-Deploy-Color')] eq 'blue:${var.preview_token}')"

    actions {
      name             = "FORWARD_TO_BACKENDSET"
      backend_set_name = oci_load_balancer_backend_set.http["blue"].name
    }
  }

  rules {
    name      = "preview_green"
    condition = "all(http.request.headers[(i 'X-Deploy-Color')] eq 'green:${var.preview_token}')"

    actions {
      name             = "FORWARD_TO_BACKENDSET"
      backend_set_name = oci_load_balancer_backend_set.http["green"].name
    }
  }
}

resource "oci_load_balancer_listener" "https" {
  load_balancer_id         = oci_load_balancer_load_balancer.this.id
  name                     = "https"
  default_backend_set_name = oci_load_balancer_backend_set.http[var.live_color].name
  routing_policy_name      = oci_load_balancer_load_balancer_routing_policy.deploy_color.name
  port                     = 443
  protocol                 = "HTTP"

  ssl_configuration {
    certificate_ids         = [var.certificate_id]
    protocols               = ["TLSv1.2", "TLSv1.3"]
    cipher_suite_name       = "oci-tls-12-13-wider-ssl-cipher-suite-v1"
    server_order_preference = "ENABLED"
    verify_peer_certificate = false
  }

  connection_configuration {
    idle_timeout_in_seconds = 120
  }
}

resource "oci_container_instances_container_instance" "http" {
  for_each = local.http_instances

  compartment_id           = var.compartment_id
  display_name             = "${var.name_prefix}-http-${each.key}"
  availability_domain      = var.ad_names[each.value.index % length(var.ad_names)]
  fault_domain             = "FAULT-DOMAIN-${(each.value.index % 3) + 1}"
  shape                    = var.shape.shape
  container_restart_policy = "ALWAYS"
  freeform_tags            = merge(var.freeform_tags, { "deploy-color" = each.value.color })

  graceful_shutdown_timeout_in_seconds = 30

  shape_config {
    ocpus         = var.shape.ocpus
    memory_in_gbs = var.shape.memory_in_gbs
  }

  vnics {
    subnet_id             = var.app_subnet_id
    nsg_ids               = var.app_nsg_ids
    is_public_ip_assigned = false
    display_name          = "${var.name_prefix}-http-${each.key}"
  }

  containers {
    display_name          = "alarm-http"
    image_url             = var.images[each.value.color]
    environment_variables = var.environment

    # Resource principal: the platform injects OCI_RESOURCE_PRINCIPAL_VERSION and the RPST
    # the app's OCI_AUTH=resource_principal reads (Vault secrets).
    is_resource_principal_disabled = false

    security_context {
      security_context_type          = "LINUX"
      run_as_user                    = 65532
      run_as_group                   = 65532
      is_non_root_user_check_enabled = true
      is_root_file_system_readonly   = true
    }

    volume_mounts {
      mount_path  = "/data"
      volume_name = "data"
    }

    health_checks {
      name                     = "ready"
      health_check_type        = "HTTP"
      port                     = var.app_port
      path                     = "/health/ready"
      initial_delay_in_seconds = 30
      interval_in_seconds      = 15
      timeout_in_seconds       = 5
      failure_threshold        = 3
      failure_action           = "KILL"
    }
  }

  # The image's VOLUME /data: scratch only (PostgreSQL and Object Storage hold the data).
  volumes {
    name          = "data"
    volume_type   = "EMPTYDIR"
    backing_store = "EPHEMERAL_STORAGE"
  }
}

resource "oci_load_balancer_backend" "http" {
  for_each = local.http_instances

  load_balancer_id = oci_load_balancer_load_balancer.this.id
  backendset_name  = oci_load_balancer_backend_set.http[each.value.color].name
  ip_address       = oci_container_instances_container_instance.http[each.key].vnics[0].private_ip
  port             = var.app_port
}

