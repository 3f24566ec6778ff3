# The inputs of the iam module.

variable "tenancy_id" {
  type = string
}

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "region" {
  type = string
}

variable "vault_id" {
  type = string
}

variable "key_id" {
  type = string
}

variable "sounds_bucket" {
  type = string
}

variable "backups_bucket" {
  type = string
}

variable "freeform_tags" {
  type = map(string)
}
