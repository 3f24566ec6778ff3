# The inputs of the worker module.

variable "tenancy_id" {
  description = "The tenancy's OCID: the backup job's dynamic group lives in the tenancy."
  type        = string
}

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "subnet_id" {
  description = "The private app subnet."
  type        = string
}

variable "nsg_ids" {
  description = "The worker NSG: PostgreSQL, OCI services, webhook and SMTP egress only."
  type        = list(string)
}

variable "ad_names" {
  type = list(string)
}

variable "worker_count" {
  type = number

  validation {
    condition     = var.worker_count >= 1
    error_message = "At least one alarm-worker must run: nothing else rings alarms."
  }
}

variable "shape" {
  type = object({
    shape         = string
    ocpus         = number
    memory_in_gbs = number
  })
}

variable "worker_image" {
  type = string
}

variable "tools_image" {
  description = "The tools target (alarm-migrate beside pg_dump/pg_restore)."
  type        = string
}

variable "uploader_image" {
  description = "An image with the OCI CLI and a POSIX shell (copies backups into the bucket)."
  type        = string
}

variable "backups_bucket" {
  type = string
}

variable "namespace" {
  type = string
}

variable "region" {
  type = string
}

variable "backup_schedule_cron" {
  type = string
}

variable "backup_keep_days" {
  type = number

  validation {
    condition     = var.backup_keep_days >= 30
    error_message = "GUD-003: backups are kept at least 30 days."
  }
}

variable "environment" {
  description = "Settings and vault references (never secret values)."
  type        = map(string)
}

variable "freeform_tags" {
  type = map(string)
}
