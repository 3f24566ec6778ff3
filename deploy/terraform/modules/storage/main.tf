# Object Storage (REQ-003): the sounds bucket the apps use through the S3 compatibility API
# (STORAGE_BACKEND=oci) and a backups bucket for alarm-migrate backups. Both private
# (NoPublicAccess), versioned, encrypted with the vault's master key, and emitting object
# events (for audit). The apps authenticate with a Customer Secret Key of a dedicated user,
# whose secret goes straight into the vault (module vault) and is never output.

resource "oci_objectstorage_bucket" "sounds" {
  compartment_id        = var.compartment_id
  namespace             = var.namespace
  name                  = var.sounds_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = var.freeform_tags
}

resource "oci_objectstorage_bucket" "backups" {
  compartment_id        = var.compartment_id
  namespace             = var.namespace
  name                  = var.backups_bucket
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.kms_key_id
  freeform_tags         = var.freeform_tags
}

resource "oci_objectstorage_object_lifecycle_policy" "sounds" {
  namespace = var.namespace
  bucket    = oci_objectstorage_bucket.sounds.name

  # The apps abort abandoned uploads themselves (hourly housekeeping); this is the backstop the
  # README asks for: incomplete multipart uploads go after a few days.
  rules {
    name        = "abort-incomplete-multipart-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = 3
    time_unit   = "DAYS"
    is_enabled  = true
  }

  # Parts of tus uploads in progress live under uploads/; a finished upload moves to its sound.
  rules {
    name        = "expire-upload-parts"
    action      = "DELETE"
    target      = "objects"
    time_amount = var.uploads_expire_days
    time_unit   = "DAYS"
    is_enabled  = true

    object_name_filter {
      inclusion_prefixes = ["uploads/"]
    }
  }

  # Versioning keeps a deleted sound's bytes as a previous version: erase them after 30 days
  # (an erased account's sounds must not outlive the LGPD grace period).
  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = 30
    time_unit   = "DAYS"
    is_enabled  = true
  }
}

resource "oci_objectstorage_object_lifecycle_policy" "backups" {
  namespace = var.namespace
  bucket    = oci_objectstorage_bucket.backups.name

  rules {
    name        = "expire-backups"
    action      = "DELETE"
    target      = "objects"
    time_amount = var.backup_retention_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = 1
    time_unit   = "DAYS"
    is_enabled  = true
  }

  rules {
    name        = "abort-incomplete-multipart-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = 1
    time_unit   = "DAYS"
    is_enabled  = true
  }
}

# S3-compatibility credentials of the storage user (module iam). Its `key` is the
# STORAGE_SECRET_ACCESS_KEY; it is passed only into the vault.
resource "oci_identity_customer_secret_key" "apps" {
  user_id      = var.storage_user_id
  display_name = "${var.name_prefix}-apps-s3"
}
