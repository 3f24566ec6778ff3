# API Gateway in front of the alarm-http function (the seed's REQ-005 / INF-005).
#
# TLS (SEC-001): the gateway terminates TLS with the certificate of api_hostname from the OCI
# Certificates service. OCI API Gateway offers TLS 1.2 and TLS 1.3 only; the protocol list is
# not configurable, so "TLS 1.2+" holds by the service (the load balancer's listener, which
# does take a list, names TLSv1.2 and TLSv1.3 explicitly).
#
# Rate limit (SEC-004): the seed asks 1,000 requests/minute per IP. The gateway's rate limiting
# counts whole requests per second per key, so the limit is 17/s per CLIENT_IP
# (ceil(1000 / 60) = 17, i.e. up to 1,020/min, and a burst of 17 in one second is allowed
# where a per-minute window would allow all 1,000 at once). Above it the gateway answers 429
# (AC-005). The app keeps its own per-minute limit (RATE_LIMIT_PER_IP_PER_MINUTE=1000) behind
# the gateway, keyed on the X-Forwarded-For hop the gateway appends.
#
# JWT at the edge: tokens are RS256 (the app signs with the first key of JWT_RSA_KEYS) and the
# gateway verifies them against the app's own JWKS, https://<api_hostname>/.well-known/jwks.json
# (cached up to jwks_cache_hours; publish a new key before signing with it, README). Only the
# signature, issuer, audience and expiry are checked here; everything else (API keys in
# X-API-Key on /api/v1/webhooks..., scopes, account state, revocation, per-route rules) stays
# in the app, which verifies every token again.
#
# Why is_anonymous_access_allowed = true: a request without an Authorization header must reach
# the app. Registration, login, token refresh, /health/*, /.well-known/jwks.json itself and
# every request authenticated by an API key (X-API-Key, no bearer token) carry no JWT; a policy
# that rejected them would break API keys and make the JWKS unreachable to the gateway. With
# anonymous access allowed, a request WITHOUT a token passes unauthenticated (the app then
# answers 401 where a route needs a user), while a request WITH a bearer token that fails
# validation (bad signature, wrong iss/aud, expired) is refused at the edge with 401 and never
# invokes the function. A validation_failure_policy (MODIFY_RESPONSE) was not used: it
# rewrites the refusal but still refuses, so it cannot let API-key requests through, and the
# anonymous flag already does exactly that. Every route's authorization is ANONYMOUS for the
# same reason: the gateway authenticates, the app authorizes.
#
# Blue-green (GUD-002): the one route has a DYNAMIC_ROUTING_BACKEND. Its selector is the request
# header X-Deploy-Color: "blue:<preview_token>" goes to alarm-http-blue, "green:<preview_token>"
# to alarm-http-green, and every other request (no header, a bare color, a wrong token) to the
# default key, the live color's function (var.live_color). A release: candidate image into the
# idle color's slot -> apply -> smoke test https://<api_hostname> with X-Deploy-Color:
# <idle>:<preview_token> -> flip live_color -> apply; rollback: flip live_color back -> apply
# (only this deployment changes; both functions keep running).
# The idle color is reachable only with the preview token: after a release it runs the previous
# version, which may carry a security bug the release fixed. The release pipeline holds the
# token (TF_VAR_preview_token); it is also readable by anyone with read access to this
# deployment (its routing keys) and in the Terraform state. The JWT policy and rate limit apply
# to every request either way (they run before the backend is chosen).

locals {
  jwks_uri = "https://${var.api_hostname}/.well-known/jwks.json"
}

resource "oci_apigateway_gateway" "this" {
  compartment_id             = var.compartment_id
  display_name               = "${var.name_prefix}-gateway"
  endpoint_type              = "PUBLIC"
  subnet_id                  = var.subnet_id
  network_security_group_ids = var.nsg_ids
  certificate_id             = var.certificate_id
  freeform_tags              = var.freeform_tags
}

resource "oci_apigateway_deployment" "api" {
  compartment_id = var.compartment_id
  gateway_id     = oci_apigateway_gateway.this.id
  display_name   = "${var.name_prefix}-api"
  path_prefix    = "/"
  freeform_tags  = var.freeform_tags

  specification {
    request_policies {
      rate_limiting {
        rate_in_requests_per_second = var.rate_limit_requests_per_second
        rate_key                    = "CLIENT_IP"
      }

      authentication {
        type                        = "JWT_AUTHENTICATION"
        token_header                = "Authorization"
        token_auth_scheme           = "Bearer"
        is_anonymous_access_allowed = true
        issuers                     = [var.jwt_issuer]
        audiences                   = [var.jwt_audience]
        max_clock_skew_in_seconds   = 60

        public_keys {
          type                        = "REMOTE_JWKS"
          uri                         = local.jwks_uri
          max_cache_duration_in_hours = var.jwks_cache_hours
          is_ssl_verify_disabled      = false
        }
      }
    }

    # Access and execution logs go to the service logs of module logging; these switches
    # make the gateway emit them.
    logging_policies {
      access_log {
        is_enabled = true
      }

      execution_log {
        is_enabled = true
        log_level  = "WARN"
      }
    }

    # One route: every path and method goes to one function (chosen by X-Deploy-Color:
    # <color>:<preview_token>, else the live color's), which routes itself.
    routes {
      path    = "/{path*}"
      methods = ["ANY"]

      backend {
        type = "DYNAMIC_ROUTING_BACKEND"

        selection_source {
          type     = "SINGLE"
          selector = "request.headers[X-Deploy-Color]"
        }

        # Preview keys: X-Deploy-Color: blue:<preview_token> / green:<preview_token> reaches
        # that color, live or idle. The key names are the colors only; the token is in values.
        routing_backends {
          key {
            type   = "ANY_OF"
            name   = "blue"
            values = ["blue:${var.preview_token}"]
          }

          backend {
            type                       = "ORACLE_FUNCTIONS_BACKEND"
            function_id                = var.function_ids["blue"]
            connect_timeout_in_seconds = 10
            read_timeout_in_seconds    = 60
          }
        }

        routing_backends {
          key {
            type   = "ANY_OF"
            name   = "green"
            values = ["green:${var.preview_token}"]
          }

          backend {
            type                       = "ORACLE_FUNCTIONS_BACKEND"
            function_id                = var.function_ids["green"]
            connect_timeout_in_seconds = 10
            read_timeout_in_seconds    = 60
          }
        }

        # Everything else (no header, a bare color, a wrong token): the live color. Assumption: a default
        # key needs no values (the service matches it when no other key does).
        routing_backends {
          key {
            type       = "ANY_OF"
            name       = "live"
            is_default = true
          }

          backend {
            type                       = "ORACLE_FUNCTIONS_BACKEND"
            function_id                = var.function_ids[var.live_color]
            connect_timeout_in_seconds = 10
            read_timeout_in_seconds    = 60
          }
        }
      }

      request_policies {
        authorization {
          type = "ANONYMOUS"
        }
      }
    }
  }
}

# The gateway fetches the JWKS from its own public name, i.e. from itself: its NSG needs that one
# egress (443 to its own public address). Everything else of the gateway NSG is in module
# network; this rule is here because the address exists only once the gateway does.
# Assumption: ip_addresses[0] of a PUBLIC gateway is its public address.
resource "oci_core_network_security_group_security_rule" "gateway_out_self_jwks" {
  network_security_group_id = var.nsg_ids[0]
  description               = "gateway fetches the app's JWKS through its own public endpoint"
  direction                 = "EGRESS"
  protocol                  = "6"
  destination               = "${oci_apigateway_gateway.this.ip_addresses[0].ip_address}/32"
  destination_type          = "CIDR_BLOCK"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}
