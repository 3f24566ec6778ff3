# OCI Bastion to PostgreSQL: how the release pipeline's schema migrations and the operators'
# restores (and psql sessions) reach the private database, which has no public endpoint.
#
#   - a STANDARD bastion whose private endpoint sits in the db subnet (target_subnet_id);
#     sessions may be opened only from client_cidrs (root variable bastion_client_cidrs: the
#     release pipeline's runner and the operators' networks; 0.0.0.0/0 is refused) and live at
#     most one hour (max_session_ttl_in_seconds = 3600);
#   - the db NSG admits PostgreSQL (5432, stateful) from the bastion's private endpoint address
#     only (below): oci_bastion_bastion takes no NSG, so the rule names its address (/32); the
#     endpoint's own egress is the db subnet's security list (module network, 5432 to the db
#     subnet only).
#
# The release pipeline, before switching live_color (GUD-002): it opens a port-forwarding
# session (`oci bastion session create-port-forwarding --bastion-id <bastion_id>
# --target-private-ip <database_endpoint_ip> --target-port 5432 ...`), then runs the
# alarm-migrate image on its own runner against the forwarded local port:
#   alarm-migrate up               applies the pending migrations;
#   alarm-migrate status --check   exits 1 while any migration is pending: the switch waits.
# Operators use the same path for `alarm-migrate restore` (and any psql session). Sessions and
# their use are recorded by OCI Audit.

resource "oci_bastion_bastion" "this" {
  compartment_id               = var.compartment_id
  name                         = replace("${var.name_prefix}-db", "-", "")
  bastion_type                 = "STANDARD"
  target_subnet_id             = var.target_subnet_id
  client_cidr_block_allow_list = var.client_cidrs
  max_session_ttl_in_seconds   = 3600
  freeform_tags                = var.freeform_tags
}

# PostgreSQL from the bastion's private endpoint only (the db NSG's third and last ingress,
# beside the api and worker NSGs of module network). Here because the address exists only once
# the bastion does.
resource "oci_core_network_security_group_security_rule" "db_in_bastion" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose (SEC-007): a stateless ingress rule needs a mirror egress rule open to every ephemeral port of the peer, a wider rule set than the one stateful rule
  network_security_group_id = var.db_nsg_id
  description               = "PostgreSQL from the bastion's private endpoint only (migrations, restores)"
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = "${oci_bastion_bastion.this.private_endpoint_ip_address}/32"
  source_type               = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 5432
      max = 5432
    }
  }
}
