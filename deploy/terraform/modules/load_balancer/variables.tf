# The inputs of the load_balancer module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "public_subnet_id" {
  type = string
}

variable "lb_nsg_ids" {
  type = list(string)
}

variable "certificate_id" {
  description = "OCI Certificates service certificate of api_hostname."
  type        = string
}

variable "app_subnet_id" {
  type = string
}

variable "app_subnet_cidr" {
  description = "The app subnet (for reference in descriptions; filtering is by NSG)."
  type        = string
}

variable "app_nsg_ids" {
  type = list(string)
}

variable "app_port" {
  description = "alarm-http's LISTEN_ADDR port."
  type        = number
  default     = 8080
}

variable "ad_names" {
  type = list(string)
}

variable "instance_count" {
  description = "alarm-http instances per color."
  type        = number

  validation {
    condition     = var.instance_count >= 1
    error_message = "At least one alarm-http instance."
  }
}

variable "shape" {
  type = object({
    shape         = string
    ocpus         = number
    memory_in_gbs = number
  })
}

variable "images" {
  description = "The alarm-http image of each color (blue, green)."
  type        = map(string)

  validation {
    condition     = length(var.images) == 2 && contains(keys(var.images), "blue") && contains(keys(var.images), "green")
    error_message = "images needs exactly the colors blue and green."
  }
}

variable "live_color" {
  description = "The color whose backend set is the listener's default (blue or green)."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.live_color)
    error_message = "live_color must be blue or green."
  }
}

variable "preview_token" {
  description = "X-Deploy-Color: <color>:<preview_token> reaches that color's backend set; anything else the live color's."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{32,128}$", var.preview_token))
    error_message = "preview_token must be 32 to 128 characters of A-Z, a-z, 0-9, _ and -."
  }
}

variable "environment" {
  description = "Settings and vault references (never secret values)."
  type        = map(string)
}

variable "min_bandwidth_mbps" {
  type    = number
  default = 10
}

variable "max_bandwidth_mbps" {
  type    = number
  default = 100
}

variable "freeform_tags" {
  type = map(string)
}
