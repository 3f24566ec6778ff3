# The inputs of the api_gateway module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "subnet_id" {
  description = "The public subnet."
  type        = string
}

variable "nsg_ids" {
  description = "The gateway NSG first (443 from public_ingress_cidrs)."
  type        = list(string)
}

variable "certificate_id" {
  description = "OCI Certificates service certificate of api_hostname."
  type        = string
}

variable "function_ids" {
  description = "alarm-http function OCIDs by color (blue, green)."
  type        = map(string)

  validation {
    condition     = length(var.function_ids) == 2 && contains(keys(var.function_ids), "blue") && contains(keys(var.function_ids), "green")
    error_message = "function_ids needs exactly the colors blue and green."
  }
}

variable "live_color" {
  description = "The color whose function takes every request without a valid X-Deploy-Color: <color>:<preview_token> (blue or green)."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.live_color)
    error_message = "live_color must be blue or green."
  }
}

variable "preview_token" {
  description = "X-Deploy-Color: <color>:<preview_token> reaches that color; anything else the live color."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{32,128}$", var.preview_token))
    error_message = "preview_token must be 32 to 128 characters of A-Z, a-z, 0-9, _ and -."
  }
}

variable "api_hostname" {
  type = string
}

variable "jwt_issuer" {
  type = string
}

variable "jwt_audience" {
  type = string
}

variable "rate_limit_requests_per_second" {
  description = "Per client IP (SEC-004: 1000/min = 17/s rounded up)."
  type        = number

  validation {
    condition     = var.rate_limit_requests_per_second >= 1 && var.rate_limit_requests_per_second <= 17
    error_message = "SEC-004: at most 17 requests/second per IP."
  }
}

variable "jwks_cache_hours" {
  description = "How long the gateway caches the JWKS (1 to 24 hours): publish a new RSA key at least this long before it signs."
  type        = number
  default     = 1
}

variable "freeform_tags" {
  type = map(string)
}
