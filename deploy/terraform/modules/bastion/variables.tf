# The inputs of the bastion module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "target_subnet_id" {
  description = "The db subnet: the bastion's private endpoint is created there."
  type        = string
}

variable "db_nsg_id" {
  description = "The db NSG (gets the ingress rule from the bastion's private endpoint on 5432)."
  type        = string
}

variable "client_cidrs" {
  description = "Who may open sessions (never 0.0.0.0/0)."
  type        = list(string)

  validation {
    condition     = length(var.client_cidrs) >= 1 && alltrue([for c in var.client_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "client_cidrs: at least one valid CIDR, and never the whole internet (0.0.0.0/0, ::/0)."
  }
}

variable "freeform_tags" {
  type = map(string)
}
