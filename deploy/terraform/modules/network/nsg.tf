# Network security groups (SEC-007). Stateful rules; every rule names the one peer and port it
# exists for:
#   internet -> gateway/LB : 443 (public_ingress_cidrs)
#   LB       -> api        : 8080 only (the app port)
#   gateway  -> OCI services (Functions invoke endpoint) : 443 via the service gateway
#   api      -> db         : 5432;  api -> OCI services : 443 (Object Storage, Vault, Functions)
#   worker   -> db         : 5432;  worker -> OCI services : 443
#   worker   -> internet   : egress_webhook_ports (webhooks) and smtp_port (e-mail), via NAT
#   api      -> internet   : smtp_port (registration / password-reset e-mail), via NAT
#   db       <- api, worker: 5432 only; the db starts nothing
#   db       <- the OCI Bastion's private endpoint: 5432 (that rule is in module bastion)
#   ops_scrape_cidrs -> api 9091, worker 9090 (Prometheus; empty by default)

locals {
  nsgs = toset(["lb", "gateway", "api", "worker", "db"])
}

resource "oci_core_network_security_group" "this" {
  for_each = local.nsgs

  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-${each.key}-nsg"
  freeform_tags  = var.freeform_tags
}

# --- load balancer ---------------------------------------------------------------------------
resource "oci_core_network_security_group_security_rule" "lb_in_https" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  for_each = toset(var.public_ingress_cidrs)

  network_security_group_id = oci_core_network_security_group.this["lb"].id
  description               = "clients to the LB listener (TLS)"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = each.value
  source_type               = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "lb_out_api" {
  network_security_group_id = oci_core_network_security_group.this["lb"].id
  description               = "LB to alarm-http's app port only"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = oci_core_network_security_group.this["api"].id
  destination_type          = "NETWORK_SECURITY_GROUP"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = var.app_port
      max = var.app_port
    }
  }
}

# --- API gateway -----------------------------------------------------------------------------
resource "oci_core_network_security_group_security_rule" "gateway_in_https" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  for_each = toset(var.public_ingress_cidrs)

  network_security_group_id = oci_core_network_security_group.this["gateway"].id
  description               = "clients to the API gateway (TLS)"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = each.value
  source_type               = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "gateway_out_services" {
  network_security_group_id = oci_core_network_security_group.this["gateway"].id
  description               = "gateway to the Functions invoke endpoint (OCI services)"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = local.service_cidr
  destination_type          = "SERVICE_CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

# --- api (alarm-http) and worker (alarm-worker, backup job) -----------------------------------
resource "oci_core_network_security_group_security_rule" "api_in_lb" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  network_security_group_id = oci_core_network_security_group.this["api"].id
  description               = "from the LB on the app port only"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = oci_core_network_security_group.this["lb"].id
  source_type               = "NETWORK_SECURITY_GROUP"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = var.app_port
      max = var.app_port
    }
  }
}

resource "oci_core_network_security_group_security_rule" "app_out_db" {
  for_each = toset(["api", "worker"])

  network_security_group_id = oci_core_network_security_group.this[each.key].id
  description               = "${each.key} to PostgreSQL"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = oci_core_network_security_group.this["db"].id
  destination_type          = "NETWORK_SECURITY_GROUP"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 5432
      max = 5432
    }
  }
}

resource "oci_core_network_security_group_security_rule" "app_out_services" {
  for_each = toset(["api", "worker"])

  network_security_group_id = oci_core_network_security_group.this[each.key].id
  description               = "${each.key} to Object Storage, Vault, OCIR via the service gateway"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = local.service_cidr
  destination_type          = "SERVICE_CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "worker_out_webhooks" {
  for_each = toset([for p in var.egress_webhook_ports : tostring(p)])

  network_security_group_id = oci_core_network_security_group.this["worker"].id
  description               = "webhook deliveries to receivers on the internet (via NAT)"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = "0.0.0.0/0"
  destination_type          = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = tonumber(each.value)
      max = tonumber(each.value)
    }
  }
}

resource "oci_core_network_security_group_security_rule" "app_out_smtp" {
  for_each = var.smtp_port == 0 ? toset([]) : toset(["api", "worker"])

  network_security_group_id = oci_core_network_security_group.this[each.key].id
  description               = "${each.key} to the SMTP server (via NAT)"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = "0.0.0.0/0"
  destination_type          = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = var.smtp_port
      max = var.smtp_port
    }
  }
}

resource "oci_core_network_security_group_security_rule" "ops_scrape" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  for_each = {
    for pair in setproduct(["api", "worker"], var.ops_scrape_cidrs) : "${pair[0]}-${pair[1]}" => { nsg = pair[0], cidr = pair[1] }
  }

  network_security_group_id = oci_core_network_security_group.this[each.value.nsg].id
  description               = "Prometheus scrapes the ops port"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = each.value.cidr
  source_type               = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = each.value.nsg == "api" ? 9091 : 9090
      max = each.value.nsg == "api" ? 9091 : 9090
    }
  }
}

# --- database --------------------------------------------------------------------------------
resource "oci_core_network_security_group_security_rule" "db_in_app" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  for_each = toset(["api", "worker"])

  network_security_group_id = oci_core_network_security_group.this["db"].id
  description               = "PostgreSQL from ${each.key} only"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = oci_core_network_security_group.this[each.key].id
  source_type               = "NETWORK_SECURITY_GROUP"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 5432
      max = 5432
    }
  }
}
