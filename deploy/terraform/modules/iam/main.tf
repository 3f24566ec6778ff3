# Identity (SEC-005: least privilege). Three principals:
#   - the functions of this compartment (dynamic group, resource principal)
#   - the container instances of this compartment (dynamic group, resource principal)
#   - the storage user, whose Customer Secret Key the apps use for the S3-compatible API
# and the services that need the vault key (Object Storage, for bucket encryption).
# A fourth principal, the backup job's (a dynamic group of the one backup container instance,
# the only one that may write into the backups bucket), is in module worker: it needs the
# instance's OCID, which exists only after this module.
# Every statement is limited to this compartment and, where OCI allows, to the one vault,
# secret set, bucket or repository it is for. Nothing grants manage on anything but objects.

resource "oci_identity_dynamic_group" "functions" {
  compartment_id = var.tenancy_id
  name           = "${var.name_prefix}-functions"
  description    = "Smart Alarm functions (alarm-http)"
  matching_rule  = "ALL {resource.type = 'fnfunc', resource.compartment.id = '${var.compartment_id}'}"
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_dynamic_group" "containers" {
  compartment_id = var.tenancy_id
  name           = "${var.name_prefix}-containers"
  description    = "Smart Alarm container instances (alarm-worker, alarm-http, backup job): secrets, images; no backups bucket"
  matching_rule  = "ALL {resource.type = 'computecontainerinstance', resource.compartment.id = '${var.compartment_id}'}"
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_user" "storage" {
  compartment_id = var.tenancy_id
  name           = "${var.name_prefix}-storage"
  description    = "Owner of the apps' S3-compatibility key (sounds bucket only); no console password, no API key"
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_user_capabilities_management" "storage" {
  user_id                      = oci_identity_user.storage.id
  can_use_api_keys             = false
  can_use_auth_tokens          = false
  can_use_console_password     = false
  can_use_customer_secret_keys = true
  can_use_smtp_credentials     = false
}

resource "oci_identity_group" "storage" {
  compartment_id = var.tenancy_id
  name           = "${var.name_prefix}-storage"
  description    = "The storage user of Smart Alarm"
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_user_group_membership" "storage" {
  group_id = oci_identity_group.storage.id
  user_id  = oci_identity_user.storage.id
}

locals {
  in_compartment = "in compartment id ${var.compartment_id}"
  fn             = "dynamic-group ${oci_identity_dynamic_group.functions.name}"
  ci             = "dynamic-group ${oci_identity_dynamic_group.containers.name}"
  storage        = "group ${oci_identity_group.storage.name}"
}

resource "oci_identity_policy" "apps" {
  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-apps"
  description    = "Smart Alarm: what the functions, container instances and storage user may do"
  freeform_tags  = var.freeform_tags

  statements = [
    # Secrets: read the bundles of this vault's secrets, nothing else of the vault. Reading a
    # bundle needs no permission on the key (the Vault service decrypts).
    "Allow ${local.fn} to read secret-bundles ${local.in_compartment} where target.vault.id = '${var.vault_id}'",
    "Allow ${local.ci} to read secret-bundles ${local.in_compartment} where target.vault.id = '${var.vault_id}'",

    # Sounds: the apps' S3 key may handle objects of the sounds bucket only.
    "Allow ${local.storage} to read buckets ${local.in_compartment} where target.bucket.name = '${var.sounds_bucket}'",
    "Allow ${local.storage} to manage objects ${local.in_compartment} where target.bucket.name = '${var.sounds_bucket}'",

    # Backups: nothing here. The backups bucket holds full database dumps; only the backup
    # job's own dynamic group (module worker) may write into it, never alarm-http or
    # alarm-worker (members of the containers group above).

    # Images: container instances pull from OCIR in this compartment.
    "Allow ${local.ci} to read repos ${local.in_compartment}",
  ]
}

# Service principals that act with the vault key.
resource "oci_identity_policy" "services" {
  compartment_id = var.compartment_id
  name           = "${var.name_prefix}-services"
  description    = "Smart Alarm: Object Storage encrypts the buckets with the vault key; Functions pulls the function image"
  freeform_tags  = var.freeform_tags

  statements = [
    "Allow service objectstorage-${var.region} to use keys ${local.in_compartment} where target.key.id = '${var.key_id}'",
    "Allow service faas to read repos ${local.in_compartment}",
    "Allow service faas to use virtual-network-family ${local.in_compartment}",
    # Lifecycle rules act as the Object Storage service: it may handle the objects of these
    # two buckets only.
    "Allow service objectstorage-${var.region} to manage object-family ${local.in_compartment} where any {target.bucket.name = '${var.sounds_bucket}', target.bucket.name = '${var.backups_bucket}'}",
    "Allow any-user to use functions-family ${local.in_compartment} where all {request.principal.type = 'ApiGateway', request.resource.compartment.id = '${var.compartment_id}'}",
    "Allow any-user to read secret-bundles ${local.in_compartment} where all {request.principal.type = 'postgresqldbsystem', target.vault.id = '${var.vault_id}'}",
  ]
}
