# The inputs of the vault module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "freeform_tags" {
  type = map(string)
}

variable "secret_names" {
  description = "Names of the app secrets (not sensitive: they drive for_each)."
  type        = list(string)
}

variable "secret_values" {
  description = "Contents by name; every name of secret_names must be here."
  type        = map(string)
  sensitive   = true
}

variable "db_admin_password" {
  type      = string
  sensitive = true
}

variable "vault_type" {
  description = "DEFAULT (shared HSM partition) or VIRTUAL_PRIVATE (dedicated partition, automatic key rotation, a higher monthly cost)."
  type        = string
  default     = "DEFAULT"

  validation {
    condition     = contains(["DEFAULT", "VIRTUAL_PRIVATE"], var.vault_type)
    error_message = "vault_type must be DEFAULT or VIRTUAL_PRIVATE."
  }
}
