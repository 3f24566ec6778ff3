# The inputs of the monitoring module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "alert_emails" {
  type = list(string)
}

variable "api_mode" {
  type = string
}

variable "function_ids" {
  description = "alarm-http function OCIDs by color (blue, green); null unless api_mode = functions."
  type        = map(string)
  default     = null
}

variable "live_color" {
  description = "The color that takes the traffic (its function-errors alarm is critical)."
  type        = string
  default     = "blue"
}

variable "api_deployment_id" {
  type    = string
  default = null
}

variable "gateway_id" {
  type    = string
  default = null
}

variable "load_balancer_id" {
  type    = string
  default = null
}

variable "db_system_id" {
  type = string
}

variable "worker_count" {
  description = "How many workers (drives count; the ids are known only after apply)."
  type        = number
}

variable "worker_instance_ids" {
  type = list(string)
}

variable "api_5xx_per_5m" {
  description = "5xx answers in 5 minutes above which api-5xx fires (a count: OCI cannot express the 1% ratio of ApiErrorRateHigh)."
  type        = number
  default     = 10
}

variable "db_connections_warning" {
  description = "PostgreSQL connections above which db-connections-high fires (keep below max_connections of the shape)."
  type        = number
  default     = 200
}

variable "freeform_tags" {
  type = map(string)
}
