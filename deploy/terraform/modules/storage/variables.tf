# The inputs of the storage module.

variable "compartment_id" {
  type = string
}

variable "namespace" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "sounds_bucket" {
  type = string
}

variable "backups_bucket" {
  type = string
}

variable "kms_key_id" {
  type = string
}

variable "storage_user_id" {
  type = string
}

variable "uploads_expire_days" {
  type = number
}

variable "backup_retention_days" {
  type = number
}

variable "freeform_tags" {
  type = map(string)
}
