# OCI Database with PostgreSQL (the seed's REQ-002 asked for Autonomous Database; Smart Alarm
# runs on PostgreSQL, see below).
#   - private subnet, the db NSG only (5432 from the api and worker NSGs), no public endpoint:
#     the service has none, and no reader endpoint is opened
#   - TLS (SEC-002): the service accepts only TLS connections; the apps' DATABASE_URL adds
#     sslmode=require
#   - daily automatic backups kept var.backup_retention_days (>= 30, GUD-003)
#   - the administrator's password is read by the service from the vault secret; it is never
#     an argument here

resource "oci_psql_db_system" "this" {
  compartment_id              = var.compartment_id
  display_name                = "${var.name_prefix}-pg"
  description                 = "Smart Alarm PostgreSQL"
  db_version                  = var.db.version
  shape                       = var.db.shape
  instance_ocpu_count         = var.db.ocpus
  instance_memory_size_in_gbs = var.db.memory_in_gbs
  instance_count              = var.db.instance_count
  freeform_tags               = var.freeform_tags

  network_details {
    subnet_id                  = var.subnet_id
    nsg_ids                    = var.nsg_ids
    is_reader_endpoint_enabled = false
  }

  storage_details {
    is_regionally_durable = true
    system_type           = "OCI_OPTIMIZED_STORAGE"
  }

  credentials {
    username = var.db.admin_username

    password_details {
      password_type  = "VAULT_SECRET"
      secret_id      = var.admin_password_secret_id
      secret_version = "1"
    }
  }

  management_policy {
    maintenance_window_start = "SUN 05:00"

    backup_policy {
      kind           = "DAILY"
      backup_start   = "04:00"
      retention_days = var.backup_retention_days
    }
  }

  lifecycle {
    # A new admin password version is applied by the operator, not by replacing the system.
    ignore_changes = [credentials]
  }
}

# Autonomous Database stays off: Smart Alarm has no Oracle adapter (it speaks PostgreSQL and
# SQLite). The root variable's validation refuses enable_autonomous_database = true, and the
# precondition below refuses it again should a caller of this module pass it.
resource "oci_database_autonomous_database" "refused" {
  count = var.enable_autonomous_database ? 1 : 0

  compartment_id              = var.compartment_id
  db_name                     = "smartalarm"
  display_name                = "${var.name_prefix}-adb"
  db_workload                 = "OLTP"
  compute_model               = "ECPU"
  compute_count               = 2
  data_storage_size_in_gb     = 20
  is_mtls_connection_required = true
  subnet_id                   = var.subnet_id
  nsg_ids                     = var.nsg_ids
  secret_id                   = var.admin_password_secret_id

  lifecycle {
    precondition {
      condition     = !var.enable_autonomous_database
      error_message = "Autonomous Database cannot be enabled until an Oracle adapter exists."
    }
  }
}
