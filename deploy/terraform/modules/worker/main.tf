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
# containers dynamic group (module iam) may read this vault's secret bundles and pull images;
# it has NO access to the backups bucket (full database dumps). Only the backup job's own
# dynamic group (below, matching that one container instance) may write into it.
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
#   tools:    alarm-migrate backup --dir /backups --keep-days N (pg_dump beside it), which
#             writes alarm-<stamp>.pgdump and its sidecars .pgdump.json and .pgdump.sha256
#   uploader: waits for the backup's data file (local.upload_script), then copies the three
#             files into the backups bucket with the backup job's own resource principal
#             (dynamic group "backup" below; no overwrite; the bucket's lifecycle rule deletes
#             objects after backup_keep_days, GUD-003, and the job's principal may not delete).
# restart NEVER: each start runs one backup, then the instance stops. OCI Resource Scheduler
# starts it on backup_schedule_cron (UTC).
#
# Unverified assumptions (not checkable offline):
#   - the EMPTYDIR volumes are writable by uid/gid 65532: oci_container_instances_container_instance
#     takes no mode or owner for an EMPTYDIR volume (volumes {} has only name, volume_type,
#     backing_store, configs), so this relies on the service creating them writable for the
#     container's user (alarm-migrate then makes /backups owner-only itself);
#   - the EMPTYDIR volumes are empty at every start (ephemeral storage), so the newest backup
#     in /backups is this run's (an older one would fail the upload: --no-overwrite);
#   - the uploader image's OCI CLI needs a writable HOME (~/.oci, its config and caches) and a
#     writable temp dir while the root file system is read-only: HOME and TMPDIR point to /tmp,
#     an EMPTYDIR of the uploader's own (not /backups, which the uploader mounts read-only so
#     that it cannot alter a backup).
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
      # The OCI CLI writes under $HOME (~/.oci) and needs a temp dir; the root is read-only.
      HOME   = "/tmp"
      TMPDIR = "/tmp"
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

    # The uploader's writable HOME and TMPDIR (see above).
    volume_mounts {
      mount_path  = "/tmp"
      volume_name = "upload-tmp"
    }
  }

  volumes {
    name          = "backups"
    volume_type   = "EMPTYDIR"
    backing_store = "EPHEMERAL_STORAGE"
  }

  volumes {
    name          = "upload-tmp"
    volume_type   = "EMPTYDIR"
    backing_store = "EPHEMERAL_STORAGE"
  }
}

locals {
  # `alarm-migrate backup` writes alarm-<stamp>.pgdump.partial, then the sidecars
  # alarm-<stamp>.pgdump.json and alarm-<stamp>.pgdump.sha256, and renames the data file to
  # alarm-<stamp>.pgdump LAST. The script takes the newest *.pgdump.sha256, its stem (the path
  # without .sha256) names the data file; it waits until that data file exists (the rename is
  # done), then uploads exactly three files by name: the data file, then its .json, then its
  # .sha256 (last, so a checksum in the bucket means its data file is there). Nothing named
  # .partial is ever uploaded. The whole wait (for the sidecar, then for the data file) is
  # bounded by 720 x 10 s = 2 h; a backup that is not finished by then, or a failed upload,
  # fails the container (exit 1), which the container instance's state and logs show.
  upload_script = <<-EOT
    set -eu
    stem=""
    i=0
    while [ "$i" -lt 720 ]; do
      if [ -z "$stem" ]; then
        sum=$(ls -t /backups/*.pgdump.sha256 2>/dev/null | head -n 1 || true)
        if [ -n "$sum" ]; then
          stem=$${sum%.sha256}
        fi
      fi
      if [ -n "$stem" ] && [ -f "$stem" ]; then
        for f in "$stem" "$stem.json" "$stem.sha256"; do
          oci os object put --region "$REGION" --namespace "$NAMESPACE" --bucket-name "$BUCKET" \
            --file "$f" --name "$(basename "$f")" --no-overwrite
        done
        exit 0
      fi
      i=$((i + 1))
      sleep 10
    done
    if [ -n "$stem" ]; then
      echo "backup $stem not finished within 2 h (its data file never appeared)" >&2
    else
      echo "no backup appeared in /backups within 2 h" >&2
    fi
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

# The schedule acts with its own principal (request.principal.id pins the statement to this
# one schedule, whose only resource is the backup instance). Verb `use` (not manage: no create,
# delete or move) and only the permissions a START_RESOURCE schedule needs: start and stop,
# and read (the schedule may read the instance's state around the action: unverified).
# It cannot be narrowed to the one instance: Container Instances policies support only the
# general variables (no target.resource.id or target.containerinstance.id), so the statement
# covers the container instances of this compartment, for this schedule's principal only.
resource "oci_identity_policy" "scheduler" {
  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-backup-scheduler"
  description    = "Smart Alarm: the backup schedule may start the backup container instance"
  freeform_tags  = var.freeform_tags

  statements = [
    "Allow any-user to use compute-container-instances in compartment id ${var.compartment_id} where all {request.principal.type = 'resourceschedule', request.principal.id = '${oci_resource_scheduler_schedule.backup.id}', any {request.permission = 'COMPUTE_CONTAINER_INSTANCE_START', request.permission = 'COMPUTE_CONTAINER_INSTANCE_STOP', request.permission = 'COMPUTE_CONTAINER_INSTANCE_READ'}}",
  ]
}

# The backup job's own principal: a dynamic group matching exactly the backup container
# instance (created after it, hence here and not in module iam: the instance's OCID would make
# a cycle iam -> worker -> iam). Dynamic groups live in the tenancy. Only this group may write
# into the backups bucket (full database dumps): the shared containers group (alarm-worker,
# alarm-http) has no access to it. The backup instance stays a member of the containers group
# too, for what every container needs (the vault's secret bundles: DATABASE_URL; image pulls).
# Note: the instance runs a first backup as soon as it is created, possibly before this group
# and policy exist or have propagated; that first upload may then fail (exit 1), and the
# scheduled runs succeed.
resource "oci_identity_dynamic_group" "backup" {
  compartment_id = var.tenancy_id
  name           = "${var.name_prefix}-backup"
  description    = "Smart Alarm backup job (the one backup container instance)"
  matching_rule  = "ALL {resource.type = 'computecontainerinstance', resource.id = '${oci_container_instances_container_instance.backup.id}'}"
  freeform_tags  = var.freeform_tags
}

# Write-only into the backups bucket: create objects (PutObject, multipart upload parts and
# commit) and inspect them (HeadObject/ListObjects, which --no-overwrite and the CLI's upload
# may use); no read, no delete, no overwrite (the lifecycle rule expires old backups, so a
# compromised job cannot erase older ones). Assumption: `oci os object put` needs nothing on
# the bucket itself (no GetBucket).
resource "oci_identity_policy" "backup" {
  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-backup"
  description    = "Smart Alarm: the backup job writes into the backups bucket"
  freeform_tags  = var.freeform_tags

  statements = [
    "Allow dynamic-group ${oci_identity_dynamic_group.backup.name} to manage objects in compartment id ${var.compartment_id} where all {target.bucket.name = '${var.backups_bucket}', any {request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT'}}",
  ]
}
