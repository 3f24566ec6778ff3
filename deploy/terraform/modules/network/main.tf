# VCN with three subnets (SEC-007):
#   public  - the API gateway or the load balancer (the only internet-facing pieces)
#   app     - private: alarm-http (function or containers), alarm-worker, the backup job
#   db      - private: PostgreSQL
# Private subnets have no internet gateway route and no public IPs. The app subnet reaches
# OCI services (Object Storage, Vault, OCIR, Functions, Logging) through the service gateway
# and the internet (webhook receivers, SMTP) through the NAT gateway only on the ports the NSGs
# allow. The db subnet has no route out at all. All filtering is done by NSGs; the subnets'
# security lists are empty, but for one egress rule of the db subnet's: the OCI Bastion's
# private endpoint (module bastion) lives in the db subnet and takes no NSG, so its one way out
# (PostgreSQL, 5432, to the db subnet only) is a security list rule.

data "oci_core_services" "all" {
  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

locals {
  public_cidr  = cidrsubnet(var.vcn_cidr, 8, 0)
  app_cidr     = cidrsubnet(var.vcn_cidr, 8, 1)
  db_cidr      = cidrsubnet(var.vcn_cidr, 8, 2)
  service_id   = data.oci_core_services.all.services[0].id
  service_cidr = data.oci_core_services.all.services[0].cidr_block
}

resource "oci_core_vcn" "this" {
  compartment_id = var.compartment_id
  cidr_blocks    = [var.vcn_cidr]
  display_name   = "${var.name_prefix}-vcn"
  dns_label      = "smartalarm"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_internet_gateway" "this" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-igw"
  enabled        = true
  freeform_tags  = var.freeform_tags
}

resource "oci_core_nat_gateway" "this" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-nat"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_service_gateway" "this" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-sgw"
  freeform_tags  = var.freeform_tags

  services {
    service_id = local.service_id
  }
}

# Empty security lists replace the VCN's default one (which would allow SSH from anywhere).
resource "oci_core_default_security_list" "default" {
  manage_default_resource_id = oci_core_vcn.this.default_security_list_id
  display_name               = "${var.name_prefix}-default-empty"
}

resource "oci_core_security_list" "empty" {
  #checkov:skip=CKV_OCI_19:This list has no rule at all, so nothing (port 22 included) is allowed in; checkov flags a list without ingress_security_rules
  #checkov:skip=CKV_OCI_16:Deliberately empty: all filtering is done by the NSGs of nsg.tf (SEC-007), one rule per peer and port
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-empty"
  freeform_tags  = var.freeform_tags
}

# The db subnet's list: only the bastion's private endpoint needs it (oci_bastion_bastion takes
# no NSG), to open PostgreSQL sessions to the database's endpoint in the same subnet. Stateful;
# no ingress rule (the db NSG admits the bastion's address on 5432, module bastion).
# Assumption: the bastion's private endpoint is filtered by its subnet's security lists.
resource "oci_core_security_list" "db" {
  #checkov:skip=CKV_OCI_19:This list has no ingress rule at all, so nothing (port 22 included) is allowed in; checkov flags a list without ingress_security_rules
  #checkov:skip=CKV_OCI_16:No ingress on purpose: the db NSG admits PostgreSQL from the api and worker NSGs and the bastion's address only (SEC-007)
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-db"
  freeform_tags  = var.freeform_tags

  egress_security_rules {
    description      = "bastion private endpoint to PostgreSQL in the db subnet"
    destination      = local.db_cidr
    destination_type = "CIDR_BLOCK"
    protocol         = "6"
    stateless        = false

    tcp_options {
      min = 5432
      max = 5432
    }
  }
}

resource "oci_core_route_table" "public" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-public-rt"
  freeform_tags  = var.freeform_tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.this.id
  }
}

resource "oci_core_route_table" "app" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-app-rt"
  freeform_tags  = var.freeform_tags

  route_rules {
    destination       = local.service_cidr
    destination_type  = "SERVICE_CIDR_BLOCK"
    network_entity_id = oci_core_service_gateway.this.id
  }

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_nat_gateway.this.id
  }
}

# The database answers only; it starts no connection, so its subnet routes nowhere.
resource "oci_core_route_table" "db" {
  compartment_id = var.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-db-rt"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_subnet" "public" {
  compartment_id             = var.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = local.public_cidr
  display_name               = "${var.name_prefix}-public"
  dns_label                  = "public"
  prohibit_public_ip_on_vnic = false
  route_table_id             = oci_core_route_table.public.id
  security_list_ids          = [oci_core_security_list.empty.id]
  freeform_tags              = var.freeform_tags
}

resource "oci_core_subnet" "app" {
  compartment_id             = var.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = local.app_cidr
  display_name               = "${var.name_prefix}-app"
  dns_label                  = "app"
  prohibit_public_ip_on_vnic = true
  prohibit_internet_ingress  = true
  route_table_id             = oci_core_route_table.app.id
  security_list_ids          = [oci_core_security_list.empty.id]
  freeform_tags              = var.freeform_tags
}

resource "oci_core_subnet" "db" {
  compartment_id             = var.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = local.db_cidr
  display_name               = "${var.name_prefix}-db"
  dns_label                  = "db"
  prohibit_public_ip_on_vnic = true
  prohibit_internet_ingress  = true
  route_table_id             = oci_core_route_table.db.id
  security_list_ids          = [oci_core_security_list.db.id]
  freeform_tags              = var.freeform_tags
}
