# The inputs of the database module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "nsg_ids" {
  type = list(string)
}

variable "db" {
  type = object({
    version        = string
    shape          = string
    ocpus          = number
    memory_in_gbs  = number
    instance_count = number
    admin_username = string
    app_username   = string
    database_name  = string
  })
}

variable "admin_password_secret_id" {
  type = string
}

variable "backup_retention_days" {
  type = number

  validation {
    condition     = var.backup_retention_days >= 30
    error_message = "GUD-003: backups are kept at least 30 days."
  }
}

variable "enable_autonomous_database" {
  type    = bool
  default = false

  validation {
    condition     = var.enable_autonomous_database == false
    error_message = "Autonomous Database cannot be enabled until an Oracle adapter exists."
  }
}

variable "freeform_tags" {
  type = map(string)
}
