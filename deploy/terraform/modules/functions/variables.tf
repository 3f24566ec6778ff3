# The inputs of the functions module.

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
  description = "The api NSG (egress to PostgreSQL and OCI services only)."
  type        = list(string)
}

variable "images" {
  description = "The alarm-http image of each color (blue, green), in OCIR (same region)."
  type        = map(string)

  validation {
    condition     = length(var.images) == 2 && contains(keys(var.images), "blue") && contains(keys(var.images), "green")
    error_message = "images needs exactly the colors blue and green."
  }
}

variable "memory_mb" {
  type = number
}

variable "timeout_seconds" {
  type = number
}

variable "config" {
  description = "The function's environment: settings and vault references, never secret values."
  type        = map(string)

  validation {
    condition     = contains(keys(var.config), "DATABASE_URL") && contains(["oci", "s3"], lookup(var.config, "STORAGE_BACKEND", ""))
    error_message = "A function needs the network database (DATABASE_URL) and object storage (STORAGE_BACKEND oci or s3): alarm-http refuses to start as a function otherwise."
  }

  validation {
    condition     = !contains(keys(var.config), "TRUSTED_PROXIES") && !contains(keys(var.config), "FN_LISTENER")
    error_message = "TRUSTED_PROXIES must not be set for a function (the gateway is its only proxy), and FN_LISTENER is the platform's."
  }
}

variable "freeform_tags" {
  type = map(string)
}
