# The deployment's inputs: where, how the API runs, sizes, networks, the database, and the secrets (TF_VAR_* only).
# ---------------------------------------------------------------------------------------------
# Where: tenancy, compartment, region (COM-002: data stays in Brazil)
# ---------------------------------------------------------------------------------------------
variable "tenancy_ocid" {
  description = "The tenancy's OCID (dynamic groups, the storage user and its group live in the tenancy's root)."
  type        = string
}

variable "compartment_ocid" {
  description = "The compartment every Smart Alarm resource is created in."
  type        = string
}

variable "region" {
  description = "OCI region. Only Brazilian regions are accepted (COM-002: data residency in Brazil)."
  type        = string
  default     = "sa-saopaulo-1"

  validation {
    condition     = contains(["sa-saopaulo-1", "sa-vinhedo-1"], var.region)
    error_message = "COM-002: every resource must stay in Brazil: region must be sa-saopaulo-1 or sa-vinhedo-1."
  }
}

variable "oci_config_profile" {
  description = "Profile of ~/.oci/config the provider signs with."
  type        = string
  default     = "DEFAULT"
}

variable "name_prefix" {
  description = "Prefix of every display name."
  type        = string
  default     = "smart-alarm"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix: 2 to 21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "freeform_tags" {
  description = "Tags put on every resource that takes them."
  type        = map(string)
  default     = { "app" = "smart-alarm", "managed-by" = "terraform" }
}

# ---------------------------------------------------------------------------------------------
# How the API runs
# ---------------------------------------------------------------------------------------------
variable "api_mode" {
  description = "functions: alarm-http as an OCI Function behind API Gateway (REQ-001/REQ-005). containers: alarm-http as Container Instances behind the flexible load balancer (REQ-006). alarm-worker is a Container Instance either way."
  type        = string
  default     = "functions"

  validation {
    condition     = contains(["functions", "containers"], var.api_mode)
    error_message = "api_mode must be functions or containers."
  }
}

variable "api_hostname" {
  description = "The public host name of the API (its certificate's name), e.g. api.example.com.br. The gateway fetches the JWKS from https://<api_hostname>/.well-known/jwks.json."
  type        = string
}

variable "certificate_ocid" {
  description = "OCID of the TLS certificate for api_hostname in the OCI Certificates service (used by the API gateway or the load balancer listener). The private key never passes through Terraform."
  type        = string
}

variable "images" {
  description = "OCIR image URLs (e.g. gru.ocir.io/<namespace>/smart-alarm/alarm-worker:1.4.0), pinned tags, one per target of deploy/images/Containerfile except alarm-http (see http_images) and alarm-migrate (the release pipeline runs it on its own runner, through the bastion). backup_uploader: an image with the OCI CLI (copies the backup files into the backups bucket)."
  type = object({
    alarm_worker    = string
    tools           = string
    backup_uploader = string
  })

  validation {
    condition     = alltrue([for url in values(var.images) : !endswith(url, ":latest") && length(regexall(":[^/]+$", url)) > 0])
    error_message = "Every image must be pinned to a tag (not :latest) so that a new release is a new plan."
  }
}

# ---------------------------------------------------------------------------------------------
# Blue-green releases of alarm-http (GUD-002). Both colors always run; live_color takes the
# traffic, the other one (the idle color) holds the candidate before the switch or the previous
# release for rollback, and answers only requests with the header
# X-Deploy-Color: <color>:<preview_token>.
# Release: candidate into http_images[idle] -> apply -> smoke with X-Deploy-Color:
# <idle>:<preview_token> -> live_color = <idle> -> apply. Rollback: live_color back -> apply.
# ---------------------------------------------------------------------------------------------
variable "live_color" {
  description = "The alarm-http color that takes the public traffic (blue or green). The other color answers only requests carrying X-Deploy-Color: <color>:<preview_token>."
  type        = string
  default     = "blue"

  validation {
    condition     = contains(["blue", "green"], var.live_color)
    error_message = "live_color must be blue or green."
  }
}

variable "preview_token" {
  description = "The secret that opens preview access to a color: X-Deploy-Color: <color>:<preview_token> reaches that color (the idle one: the candidate, or after a release the PREVIOUS version); anything else reaches live_color. Held by the release pipeline (TF_VAR_preview_token, SMOKE_PREVIEW_TOKEN of deploy/smoke.sh); readable by anyone with read on the gateway deployment or the LB routing policy, and in the Terraform state. 32 to 128 of A-Z a-z 0-9 _ - (e.g. openssl rand -hex 32)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{32,128}$", var.preview_token))
    error_message = "preview_token must be 32 to 128 characters of A-Z, a-z, 0-9, _ and -."
  }
}

variable "http_images" {
  description = "The alarm-http image (OCIR URL, pinned tag) of each color, e.g. { blue = \"gru.ocir.io/<namespace>/smart-alarm/alarm-http:1.4.0\", green = \"...:1.5.0\" }. A release puts the candidate into the idle color's slot."
  type = object({
    blue  = string
    green = string
  })

  validation {
    condition     = alltrue([for url in values(var.http_images) : !endswith(url, ":latest") && length(regexall(":[^/]+$", url)) > 0])
    error_message = "Every image must be pinned to a tag (not :latest) so that a new release is a new plan."
  }
}

variable "function_memory_mb" {
  description = "alarm-http function memory (MB)."
  type        = number
  default     = 512
}

variable "function_timeout_seconds" {
  description = "alarm-http function timeout (the Fn-Deadline the app answers before)."
  type        = number
  default     = 60

  validation {
    condition     = var.function_timeout_seconds >= 5 && var.function_timeout_seconds <= 300
    error_message = "function_timeout_seconds must be 5..300 (OCI Functions' limit for synchronous calls)."
  }
}

variable "http_instance_count" {
  description = "api_mode = containers: how many alarm-http container instances the load balancer spreads over."
  type        = number
  default     = 2
}

variable "worker_count" {
  description = "How many alarm-worker container instances share the due alarms (PostgreSQL leases make every ring happen once)."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_count >= 1
    error_message = "At least one alarm-worker must run: nothing else rings alarms."
  }
}

variable "container_shape" {
  description = "Container Instances shape and size (alarm-worker, alarm-http in containers mode, the backup job)."
  type = object({
    shape         = string
    ocpus         = number
    memory_in_gbs = number
  })
  default = { shape = "CI.Standard.E4.Flex", ocpus = 1, memory_in_gbs = 4 }
}

variable "backup_schedule_cron" {
  description = "When the alarm-migrate backup job starts (cron, UTC), via OCI Resource Scheduler."
  type        = string
  default     = "15 3 * * *"
}

variable "app_settings" {
  description = "Non-secret settings passed to both apps (see `alarm-http --help`), e.g. { API_BASE_URL = \"https://api.example.com.br\", SMTP_HOST = \"smtp.email.sa-saopaulo-1.oci.oraclecloud.com\", SMTP_FROM = \"alarms@example.com.br\" }. Secrets never go here: they are vault references."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.app_settings), ["DATABASE_URL", "JWT_SECRET_KEY", "JWT_RSA_KEYS", "DATA_ENCRYPTION_KEYS", "STORAGE_SECRET_ACCESS_KEY", "SMTP_PASSWORD"])) == 0
    error_message = "Secret settings are vault references set by this configuration, not app_settings entries."
  }
}

# ---------------------------------------------------------------------------------------------
# Edge: API Gateway (functions mode)
# ---------------------------------------------------------------------------------------------
variable "rate_limit_requests_per_second" {
  description = "Per client IP rate limit at the gateway. SEC-004 asks 1000 requests/minute per IP; OCI API Gateway counts requests per second, so 1000/60 = 16.7 is rounded up to 17/s (1020/min). The app keeps its own per-minute limit (RATE_LIMIT_PER_IP_PER_MINUTE=1000) behind it."
  type        = number
  default     = 17

  validation {
    condition     = var.rate_limit_requests_per_second >= 1 && var.rate_limit_requests_per_second <= 17
    error_message = "SEC-004: at most 17 requests/second per IP (1000/minute rounded up)."
  }
}

variable "jwt_issuer" {
  description = "The `iss` of the app's tokens (the app's JWT_ISSUER)."
  type        = string
}

variable "jwt_audience" {
  description = "The `aud` of the app's tokens (the app's JWT_AUDIENCE)."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------
variable "vcn_cidr" {
  description = "The VCN's CIDR; the three subnets are carved out of it (/24 each)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "public_ingress_cidrs" {
  description = "Who may reach the public endpoint (gateway or load balancer) on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "bastion_client_cidrs" {
  description = "Who may open sessions on the OCI Bastion that reaches PostgreSQL (the release pipeline's runner, the operators' networks), e.g. [\"203.0.113.10/32\"]. No default: the world (0.0.0.0/0, ::/0 or any /0) is refused."
  type        = list(string)

  validation {
    condition     = length(var.bastion_client_cidrs) >= 1
    error_message = "bastion_client_cidrs needs at least one network (the pipeline runner's)."
  }

  validation {
    condition     = alltrue([for c in var.bastion_client_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "bastion_client_cidrs: valid CIDRs only, and never the whole internet (0.0.0.0/0, ::/0)."
  }
}

variable "ops_scrape_cidrs" {
  description = "Networks of the Prometheus that scrapes the apps' ops ports (9091 alarm-http in containers mode, 9090 alarm-worker). Empty: nothing may reach them."
  type        = list(string)
  default     = []
}

variable "egress_webhook_ports" {
  description = "TCP ports the worker may reach on the internet (through the NAT gateway) to deliver webhooks; keep in step with WEBHOOK_ALLOWED_PORTS."
  type        = list(number)
  default     = [443]
}

variable "smtp_port" {
  description = "TCP port of the SMTP server (through the NAT gateway); 0: no e-mail egress."
  type        = number
  default     = 587
}

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
variable "db" {
  description = "OCI Database with PostgreSQL."
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
  default = {
    version        = "16"
    shape          = "PostgreSQL.VM.Standard.E5.Flex"
    ocpus          = 2
    memory_in_gbs  = 32
    instance_count = 2
    admin_username = "alarmadmin"
    app_username   = "alarm_app"
    database_name  = "alarms"
  }
}

variable "db_backup_retention_days" {
  description = "GUD-003: the database's automatic backups are kept this many days."
  type        = number
  default     = 30

  validation {
    condition     = var.db_backup_retention_days >= 30
    error_message = "GUD-003: backups are kept at least 30 days."
  }
}

variable "enable_autonomous_database" {
  description = "Oracle Autonomous Database (the seed's REQ-002). Refused: Smart Alarm has no Oracle adapter yet (it runs on PostgreSQL and SQLite only)."
  type        = bool
  default     = false

  validation {
    condition     = var.enable_autonomous_database == false
    error_message = "Autonomous Database cannot be enabled until an Oracle adapter exists: Smart Alarm speaks PostgreSQL (and SQLite) only."
  }
}

# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------
variable "uploads_expire_days" {
  description = "Objects under uploads/ (parts of tus uploads in progress) are deleted after this many days."
  type        = number
  default     = 7
}

variable "backup_retention_days" {
  description = "alarm-migrate backups in the backups bucket are deleted after this many days (GUD-003)."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 30
    error_message = "GUD-003: backups are kept at least 30 days."
  }
}

# ---------------------------------------------------------------------------------------------
# Secrets: given once at apply (TF_VAR_* or a -var-file outside the repository); stored in
# OCI Vault; the apps read them by OCID with their resource principal. Never write them here.
# ---------------------------------------------------------------------------------------------
variable "db_admin_password" {
  description = "The PostgreSQL administrator's password."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_admin_password) >= 16
    error_message = "db_admin_password must be at least 16 characters."
  }
}

variable "db_app_password" {
  description = "The password of the apps' PostgreSQL role (db.app_username), which the operator creates once (README)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_app_password) >= 16
    error_message = "db_app_password must be at least 16 characters."
  }
}

variable "jwt_secret_key" {
  description = "JWT_SECRET_KEY: HS256 key, at least 32 bytes (required with JWT_RSA_KEYS too)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.jwt_secret_key) >= 32
    error_message = "jwt_secret_key must be at least 32 bytes."
  }
}

variable "jwt_rsa_keys" {
  description = "JWT_RSA_KEYS: PEM PKCS#8 RSA private keys, the signing key first. RS256 tokens are what the gateway verifies against the JWKS."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("-----BEGIN PRIVATE KEY-----", var.jwt_rsa_keys))
    error_message = "jwt_rsa_keys must hold PEM PKCS#8 (BEGIN PRIVATE KEY) blocks."
  }
}

variable "data_encryption_keys" {
  description = "DATA_ENCRYPTION_KEYS: one base64 32-byte key per line, the sealing key first (openssl rand -base64 32)."
  type        = string
  sensitive   = true
}

variable "smtp_password" {
  description = "SMTP_PASSWORD (empty: no SMTP login)."
  type        = string
  sensitive   = true
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------
variable "alert_emails" {
  description = "Addresses subscribed to the alarms' notification topics (AC-006)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the service logs are kept (30, 60, 90, 120, 150 or 180)."
  type        = number
  default     = 90
}
