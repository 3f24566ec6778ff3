# alarm-worker (the trigger engine and delivery worker) and the backup job, as OCI Container
# Instances in the private app subnet with the worker NSG (SEC-007). Schema migrations are not
# run here: the release pipeline runs `alarm-migrate up` and `alarm-migrate status --check`
# from its own runner through the OCI Bastion of module bastion (port forwarding to 5432),
# before it switches live_color; operators use the same path for `alarm-migrate restore`.
#
# Why alarm-worker is NOT an OCI Function (the seed's REQ-001 asks for "all backend services
# as functions"): the engine holds PostgreSQL leases (the right to ring, renewed continuously)
# and wakes every second to claim due triggers. A function is frozen between invocations and
# recycled at the platform's will, so leases would lapse and alarms would ring late or not at
# all. The trade-off: the API (module functions) scales to zero and is paid per call, while
# the engine is a small always-on cost (worker_count x the container shape). Several workers
# share the due alarms; the leases make every ring happen once.
#
# Identity: container instances have resource principals (the platform sets
# OCI_RESOURCE_PRINCIPAL_VERSION and the token files; is_resource_principal_disabled=false),
# which the apps use with OCI_AUTH=resource_principal to read the vault secrets. The
# containers dynamic group (module iam) may read this vault's secret bundles, pull images,
# and write (not delete) objects of the backups bucket.
#
# Images run as 65532 with a read-only root; VOLUME /data (and /backups for tools) get an
# ephemeral EMPTYDIR volume.

locals {
  security_context = {
    user  = 65532
    group = 65532
  }
}

resource "oci_container_instances_container_instance" "worker" {
  count = var.worker_count

  compartment_id           = var.compartment_id
  display_name             = "${var.name_prefix}-worker-${count.index}"
  availability_domain      = var.ad_names[count.index % length(var.ad_names)]
  fault_domain             = "FAULT-DOMAIN-${(count.index % 3) + 1}"
  shape                    = var.shape.shape
  container_restart_policy = "ALWAYS"
  freeform_tags            = var.freeform_tags

  # SIGTERM: the worker hands its leases back before it exits.
  graceful_shutdown_timeout_in_seconds = 60

  shape_config {
    ocpus         = var.shape.ocpus
    memory_in_gbs = var.shape.memory_in_gbs
  }

  vnics {
    subnet_id             = var.subnet_id
    nsg_ids               = var.nsg_ids
    is_public_ip_assigned = false
    display_name          = "${var.name_prefix}-worker-${count.index}"
  }

  containers {
    display_name                   = "alarm-worker"
    image_url                      = var.worker_image
    environment_variables          = var.environment
    is_resource_principal_disabled = false

    security_context {
      security_context_type          = "LINUX"
      run_as_user                    = local.security_context.user
      run_as_group                   = local.security_context.group
      is_non_root_user_check_enabled = true
      is_root_file_system_readonly   = true
    }

    volume_mounts {
      mount_path  = "/data"
      volume_name = "data"
    }

    # The worker has no public port; its ops listener (OPS_LISTEN_ADDR, 9090) answers while the
    # process runs (a TCP check: the exact health path of the worker's ops listener is the
    # app's, not this configuration's, to define).
    health_checks {
      name                     = "ops"
      health_check_type        = "TCP"
      port                     = 9090
      initial_delay_in_seconds = 30
      interval_in_seconds      = 15
      timeout_in_seconds       = 5
      failure_threshold        = 4
      failure_action           = "KILL"
    }
  }

  volumes {
    name          = "data"
    volume_type   = "EMPTYDIR"
    backing_store = "EPHEMERAL_STORAGE"
  }
}

# The backup job (the seed's AC-007, GUD-003): two containers sharing /backups.
#   tools:    alarm-migrate backup --dir /backups --keep-days N (pg_dump beside it)
#   uploader: waits for the backup's .sha256 file, then copies the three files into the
#             backups bucket with the resource principal (no overwrite; the bucket's lifecycle
#             rule deletes objects after backup_keep_days, GUD-003, and the job's principal
#             may not delete).
# restart NEVER: each start runs one backup, then the instance stops. OCI Resource Scheduler
# starts it on backup_schedule_cron (UTC).
resource "oci_container_instances_container_instance" "backup" {
  compartment_id           = var.compartment_id
  display_name             = "${var.name_prefix}-backup"
  availability_domain      = var.ad_names[0]
  shape                    = var.shape.shape
  container_restart_policy = "NEVER"
  freeform_tags            = var.freeform_tags

  shape_config {
    ocpus         = var.shape.ocpus
    memory_in_gbs = var.shape.memory_in_gbs
  }

  vnics {
    subnet_id             = var.subnet_id
    nsg_ids               = var.nsg_ids
    is_public_ip_assigned = false
  }

  containers {
    display_name                   = "backup"
    image_url                      = var.tools_image
    arguments                      = ["backup", "--dir", "/backups", "--keep-days", tostring(var.backup_keep_days)]
    environment_variables          = { for k, v in var.environment : k => v if contains(["SECRETS_PROVIDERS", "OCI_AUTH", "OCI_REGION", "LOG_FORMAT", "DATABASE_URL"], k) }
    is_resource_principal_disabled = false

    security_context {
      security_context_type          = "LINUX"
      run_as_user                    = local.security_context.user
      run_as_group                   = local.security_context.group
      is_non_root_user_check_enabled = true
      is_root_file_system_readonly   = true
    }

    volume_mounts {
      mount_path  = "/backups"
      volume_name = "backups"
    }
  }

  containers {
    display_name                   = "upload"
    image_url                      = var.uploader_image
    command                        = ["/bin/sh", "-c"]
    arguments                      = [local.upload_script]
    is_resource_principal_disabled = false

    environment_variables = {
      OCI_CLI_AUTH = "resource_principal"
      BUCKET       = var.backups_bucket
      NAMESPACE    = var.namespace
      REGION       = var.region
    }

    security_context {
      security_context_type          = "LINUX"
      run_as_user                    = local.security_context.user
      run_as_group                   = local.security_context.group
      is_non_root_user_check_enabled = true
      is_root_file_system_readonly   = true
    }

    volume_mounts {
      mount_path   = "/backups"
      volume_name  = "backups"
      is_read_only = true
    }
  }

  volumes {
    name          = "backups"
    volume_type   = "EMPTYDIR"
    backing_store = "EPHEMERAL_STORAGE"
  }
}

locals {
  # Waits (at most 2 h) for the backup's checksum file, the last of its three files, then
  # uploads every file of that backup. A missing upload fails the container (exit 1), which
  # the container instance's state and logs show.
  upload_script = <<-EOT
    set -eu
    for i in $(seq 1 720); do
      sum=$(ls -t /backups/*.sha256 2>/dev/null | head -n 1 || true)
      if [ -n "$sum" ]; then
        sleep 5
        stem=$${sum%.sha256}
        for f in "$stem".*; do
          oci os object put --region "$REGION" --namespace "$NAMESPACE" --bucket-name "$BUCKET" \
            --file "$f" --name "$(basename "$f")" --no-overwrite
        done
        exit 0
      fi
      sleep 10
    done
    echo "no backup appeared in /backups" >&2
    exit 1
  EOT
}

resource "oci_resource_scheduler_schedule" "backup" {
  compartment_id     = var.compartment_id
  display_name       = "${var.name_prefix}-backup"
  description        = "Starts the Smart Alarm backup job (alarm-migrate backup)"
  action             = "START_RESOURCE"
  recurrence_type    = "CRON"
  recurrence_details = var.backup_schedule_cron
  freeform_tags      = var.freeform_tags

  resources {
    id = oci_container_instances_container_instance.backup.id
  }
}

# The schedule acts with its own principal: it may start and stop container instances of this
# compartment, nothing else (SEC-005).
resource "oci_identity_policy" "scheduler" {
  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-backup-scheduler"
  description    = "Smart Alarm: the backup schedule may start the backup container instance"
  freeform_tags  = var.freeform_tags

  statements = [
    "Allow any-user to manage compute-container-instances in compartment id ${var.compartment_id} where all {request.principal.type = 'resourceschedule', request.principal.id = '${oci_resource_scheduler_schedule.backup.id}'}",
  ]
}
