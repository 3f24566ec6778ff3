# The inputs of the network module.

variable "compartment_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "vcn_cidr" {
  type = string
}

variable "app_port" {
  description = "alarm-http's LISTEN_ADDR port (the only port the LB may reach)."
  type        = number
  default     = 8080
}

variable "public_ingress_cidrs" {
  type = list(string)
}

variable "ops_scrape_cidrs" {
  type = list(string)
}

variable "egress_webhook_ports" {
  type = list(number)
}

variable "smtp_port" {
  type = number
}

variable "freeform_tags" {
  type = map(string)
}
