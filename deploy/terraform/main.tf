# Smart Alarm on OCI: the root module wires the modules together.
#
#   network        VCN, 3 subnets, NAT + service gateway, NSGs (SEC-007)
#   iam            dynamic groups + least-privilege policies (SEC-005), the storage user
#   vault          KMS vault, master key, the apps' secrets (REQ-004, SEC-003)
#   storage        sounds + backups buckets, lifecycle rules, Customer Secret Key (REQ-003)
#   database       OCI Database with PostgreSQL, 30-day backups (GUD-003); Autonomous refused
#   functions      alarm-http as OCI Functions, blue and green (REQ-001) [api_mode = functions]
#   api_gateway    TLS, JWT at the edge, 17 req/s per IP, X-Deploy-Color routing (REQ-005,
#                  SEC-004, GUD-002)                                           [functions]
#   worker         alarm-worker Container Instances, scheduled backups
#   bastion        OCI Bastion to PostgreSQL: the pipeline's migrations, operators' restores
#   load_balancer  alarm-http Container Instances, blue and green, behind a TLS 1.2+ LB with
#                  X-Deploy-Color routing (REQ-006, GUD-002)                   [containers]
#   logging        log group + service logs (GUD-005)
#   monitoring     notification topic + alarms (REQ-007, GUD-004, AC-006)
#
# Releases of alarm-http are blue-green (GUD-002); the switch is one variable, live_color.
# Both colors always run (functions alarm-http-blue/-green, or two sets of container instances
# behind the backend sets http-blue/-green); the idle color holds the candidate before the
# switch, or the previous release for rollback. A request with the header
# `X-Deploy-Color: <color>:<preview_token>` (e.g. `green:<token>`) reaches that color; every
# other request (no header, a bare color, a wrong token) reaches live_color.
# A release, in Terraform terms (say blue is live; deploy/release.sh runs these steps):
#   1. migrations: `alarm-migrate up`, then `alarm-migrate status --check` (exits 1 while any
#      migration is pending: the release waits) through a port-forwarding session of the
#      bastion (output bastion_id) to database_endpoint_ip:5432; migrations only expand, so
#      the release still live on blue keeps working
#   2. http_images.green = <candidate tag>           -> terraform apply (green runs it; no
#      public traffic reaches it yet)
#   3. smoke test the candidate: SMOKE_COLOR=green SMOKE_PREVIEW_TOKEN=<preview_token>
#      deploy/smoke.sh https://<api_hostname> (sends X-Deploy-Color: green:<token> through the
#      real public endpoint, gateway or LB)
#   4. live_color = "green", the worker on the new tag -> terraform apply (the route's
#      default / the listener's default backend set changes; the worker is replaced)
# Rollback: live_color = "blue" -> terraform apply (blue still runs the previous release).
# The idle color is NOT open to anyone: after a release it runs the PREVIOUS version, which may
# carry a security bug the release fixed. It is reachable only with the preview token
# (var.preview_token, sensitive), which the release pipeline holds (TF_VAR_preview_token).
# Who else can learn it: anyone with read access to the gateway deployment or the load
# balancer's routing policy (the token is in their routing rules), and anyone who can read the
# Terraform state. Rotate it by setting a new TF_VAR_preview_token and applying.

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}

data "oci_objectstorage_namespace" "ns" {
  compartment_id = var.compartment_ocid
}

locals {
  functions_mode  = var.api_mode == "functions"
  containers_mode = var.api_mode == "containers"
  ad_names        = [for ad in data.oci_identity_availability_domains.ads.availability_domains : ad.name]
  namespace       = data.oci_objectstorage_namespace.ns.namespace

  sounds_bucket  = "${var.name_prefix}-sounds"
  backups_bucket = "${var.name_prefix}-backups"

  # The secrets the apps read by reference ({vault:oci:<secret OCID>}).
  secret_names = concat(
    ["database-url", "jwt-secret-key", "jwt-rsa-keys", "data-encryption-keys", "storage-secret-access-key"],
    # nonsensitive(): for_each refuses keys derived from a sensitive value; this reveals only
    # whether SMTP is configured, never the password.
    nonsensitive(var.smtp_password != "") ? ["smtp-password"] : [],
  )

  # Settings shared by alarm-http (function or container) and alarm-worker. Secrets are vault
  # references resolved by the apps at start (and re-read every SECRETS_REFRESH_SECONDS).
  common_env = merge(
    {
      SECRETS_PROVIDERS         = "oci"
      OCI_AUTH                  = "resource_principal"
      OCI_REGION                = var.region
      LOG_FORMAT                = "json"
      DATABASE_URL              = module.vault.references["database-url"]
      DATA_ENCRYPTION_KEYS      = module.vault.references["data-encryption-keys"]
      STORAGE_BACKEND           = "oci"
      STORAGE_NAMESPACE         = local.namespace
      STORAGE_REGION            = var.region
      STORAGE_BUCKET            = local.sounds_bucket
      STORAGE_ACCESS_KEY_ID     = module.storage.access_key_id
      STORAGE_SECRET_ACCESS_KEY = module.vault.references["storage-secret-access-key"]
      JWT_ISSUER                = var.jwt_issuer
      JWT_AUDIENCE              = var.jwt_audience
    },
    # nonsensitive(): reveals only whether SMTP is configured (keeps the map's keys plain).
    nonsensitive(var.smtp_password != "") ? { SMTP_PASSWORD = module.vault.references["smtp-password"] } : {},
    var.app_settings,
  )

  http_env = merge(local.common_env, {
    JWT_SECRET_KEY               = module.vault.references["jwt-secret-key"]
    JWT_RSA_KEYS                 = module.vault.references["jwt-rsa-keys"]
    RATE_LIMIT_PER_IP_PER_MINUTE = "1000"
  })
}

module "network" {
  source = "./modules/network"

  compartment_id       = var.compartment_ocid
  name_prefix          = var.name_prefix
  vcn_cidr             = var.vcn_cidr
  public_ingress_cidrs = var.public_ingress_cidrs
  ops_scrape_cidrs     = var.ops_scrape_cidrs
  egress_webhook_ports = var.egress_webhook_ports
  smtp_port            = var.smtp_port
  freeform_tags        = var.freeform_tags
}

module "vault" {
  source = "./modules/vault"

  compartment_id    = var.compartment_ocid
  name_prefix       = var.name_prefix
  freeform_tags     = var.freeform_tags
  secret_names      = local.secret_names
  db_admin_password = var.db_admin_password
  secret_values = merge(
    {
      # sslmode=require encrypts the connection but does NOT verify the server's certificate
      # (an attacker on the path could impersonate the database); verify-full needs OCI's CA
      # bundle for the PostgreSQL service in the images, which is not done yet.
      "database-url"              = "postgresql://${var.db.app_username}:${urlencode(var.db_app_password)}@${module.database.endpoint_ip}:5432/${var.db.database_name}?sslmode=require"
      "jwt-secret-key"            = var.jwt_secret_key
      "jwt-rsa-keys"              = var.jwt_rsa_keys
      "data-encryption-keys"      = var.data_encryption_keys
      "storage-secret-access-key" = module.storage.secret_access_key
    },
    # nonsensitive() on the condition only (whether SMTP is configured); the value stays sensitive.
    nonsensitive(var.smtp_password != "") ? { "smtp-password" = var.smtp_password } : {},
  )
}

module "iam" {
  source = "./modules/iam"

  tenancy_id     = var.tenancy_ocid
  compartment_id = var.compartment_ocid
  name_prefix    = var.name_prefix
  region         = var.region
  vault_id       = module.vault.vault_id
  key_id         = module.vault.key_id
  sounds_bucket  = local.sounds_bucket
  backups_bucket = local.backups_bucket
  freeform_tags  = var.freeform_tags
}

module "storage" {
  source = "./modules/storage"

  compartment_id        = var.compartment_ocid
  namespace             = local.namespace
  name_prefix           = var.name_prefix
  sounds_bucket         = local.sounds_bucket
  backups_bucket        = local.backups_bucket
  kms_key_id            = module.vault.key_id
  storage_user_id       = module.iam.storage_user_id
  uploads_expire_days   = var.uploads_expire_days
  backup_retention_days = var.backup_retention_days
  freeform_tags         = var.freeform_tags

  # Object Storage may only encrypt with the vault key once the service policy exists.
  depends_on = [module.iam]
}

module "database" {
  source = "./modules/database"

  compartment_id             = var.compartment_ocid
  name_prefix                = var.name_prefix
  subnet_id                  = module.network.db_subnet_id
  nsg_ids                    = [module.network.nsg_ids.db]
  db                         = var.db
  admin_password_secret_id   = module.vault.admin_password_secret_id
  backup_retention_days      = var.db_backup_retention_days
  enable_autonomous_database = var.enable_autonomous_database
  freeform_tags              = var.freeform_tags
}

# Migrations and restores reach PostgreSQL through this bastion (port forwarding), from the
# release pipeline's runner or an operator's network only (bastion_client_cidrs).
module "bastion" {
  source = "./modules/bastion"

  compartment_id   = var.compartment_ocid
  name_prefix      = var.name_prefix
  target_subnet_id = module.network.db_subnet_id
  db_nsg_id        = module.network.nsg_ids.db
  client_cidrs     = var.bastion_client_cidrs
  freeform_tags    = var.freeform_tags
}

module "logging" {
  source = "./modules/logging"

  compartment_id    = var.compartment_ocid
  name_prefix       = var.name_prefix
  retention_days    = var.log_retention_days
  function_app_id   = local.functions_mode ? module.functions[0].application_id : null
  api_deployment_id = local.functions_mode ? module.api_gateway[0].deployment_id : null
  load_balancer_id  = local.containers_mode ? module.load_balancer[0].load_balancer_id : null
  enable_functions  = local.functions_mode
  enable_gateway    = local.functions_mode
  enable_lb         = local.containers_mode
  freeform_tags     = var.freeform_tags
}

module "functions" {
  source = "./modules/functions"
  count  = local.functions_mode ? 1 : 0

  compartment_id  = var.compartment_ocid
  name_prefix     = var.name_prefix
  subnet_id       = module.network.app_subnet_id
  nsg_ids         = [module.network.nsg_ids.api]
  images          = var.http_images
  memory_mb       = var.function_memory_mb
  timeout_seconds = var.function_timeout_seconds
  config          = local.http_env
  freeform_tags   = var.freeform_tags

  depends_on = [module.iam]
}

module "api_gateway" {
  source = "./modules/api_gateway"
  count  = local.functions_mode ? 1 : 0

  compartment_id                 = var.compartment_ocid
  name_prefix                    = var.name_prefix
  subnet_id                      = module.network.public_subnet_id
  nsg_ids                        = [module.network.nsg_ids.gateway]
  certificate_id                 = var.certificate_ocid
  function_ids                   = module.functions[0].function_ids
  live_color                     = var.live_color
  preview_token                  = var.preview_token
  api_hostname                   = var.api_hostname
  jwt_issuer                     = var.jwt_issuer
  jwt_audience                   = var.jwt_audience
  rate_limit_requests_per_second = var.rate_limit_requests_per_second
  freeform_tags                  = var.freeform_tags
}

module "load_balancer" {
  source = "./modules/load_balancer"
  count  = local.containers_mode ? 1 : 0

  compartment_id   = var.compartment_ocid
  name_prefix      = var.name_prefix
  public_subnet_id = module.network.public_subnet_id
  lb_nsg_ids       = [module.network.nsg_ids.lb]
  certificate_id   = var.certificate_ocid
  app_subnet_id    = module.network.app_subnet_id
  app_subnet_cidr  = module.network.app_subnet_cidr
  app_nsg_ids      = [module.network.nsg_ids.api]
  ad_names         = local.ad_names
  instance_count   = var.http_instance_count
  shape            = var.container_shape
  images           = var.http_images
  live_color       = var.live_color
  preview_token    = var.preview_token
  # Behind the LB the client's address is the LB's X-Forwarded-For hop: trust the LB's subnet.
  environment = merge(local.http_env, {
    LISTEN_ADDR      = "0.0.0.0:8080"
    OPS_LISTEN_ADDR  = "0.0.0.0:9091"
    NO_WORKER        = "true"
    TRUSTED_PROXIES  = module.network.public_subnet_cidr
    STORAGE_NO_SPOOL = "true"
  })
  freeform_tags = var.freeform_tags

  depends_on = [module.iam]
}

module "worker" {
  source = "./modules/worker"

  tenancy_id           = var.tenancy_ocid
  compartment_id       = var.compartment_ocid
  name_prefix          = var.name_prefix
  subnet_id            = module.network.app_subnet_id
  nsg_ids              = [module.network.nsg_ids.worker]
  ad_names             = local.ad_names
  worker_count         = var.worker_count
  shape                = var.container_shape
  worker_image         = var.images.alarm_worker
  tools_image          = var.images.tools
  uploader_image       = var.images.backup_uploader
  backups_bucket       = local.backups_bucket
  namespace            = local.namespace
  region               = var.region
  backup_schedule_cron = var.backup_schedule_cron
  backup_keep_days     = var.backup_retention_days
  environment = merge(local.common_env, {
    OPS_LISTEN_ADDR  = "0.0.0.0:9090"
    STORAGE_NO_SPOOL = "true"
  })
  freeform_tags = var.freeform_tags

  depends_on = [module.iam]
}

module "monitoring" {
  source = "./modules/monitoring"

  compartment_id      = var.compartment_ocid
  name_prefix         = var.name_prefix
  alert_emails        = var.alert_emails
  api_mode            = var.api_mode
  function_ids        = local.functions_mode ? module.functions[0].function_ids : null
  live_color          = var.live_color
  api_deployment_id   = local.functions_mode ? module.api_gateway[0].deployment_id : null
  gateway_id          = local.functions_mode ? module.api_gateway[0].gateway_id : null
  load_balancer_id    = local.containers_mode ? module.load_balancer[0].load_balancer_id : null
  db_system_id        = module.database.db_system_id
  worker_count        = var.worker_count
  worker_instance_ids = module.worker.worker_ids
  freeform_tags       = var.freeform_tags
}
