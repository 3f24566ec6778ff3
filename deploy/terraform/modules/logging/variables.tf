# The inputs of the logging module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "retention_days" {
  description = "Days the service logs are kept."
  type        = number

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180], var.retention_days)
    error_message = "OCI Logging keeps logs 30, 60, 90, 120, 150 or 180 days."
  }
}

variable "enable_functions" {
  type = bool
}

variable "enable_gateway" {
  type = bool
}

variable "enable_lb" {
  type = bool
}

variable "function_app_id" {
  description = "The Functions application (null unless enable_functions)."
  type        = string
  default     = null
}

variable "api_deployment_id" {
  description = "The API deployment (null unless enable_gateway)."
  type        = string
  default     = null
}

variable "load_balancer_id" {
  description = "The load balancer (null unless enable_lb)."
  type        = string
  default     = null
}

variable "freeform_tags" {
  type = map(string)
}
