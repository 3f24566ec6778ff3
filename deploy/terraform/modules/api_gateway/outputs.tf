# What the api_gateway module hands on (to the root module, or as terraform output).

output "gateway_id" {
  value = oci_apigateway_gateway.this.id
}

output "deployment_id" {
  value = oci_apigateway_deployment.api.id
}

output "hostname" {
  description = "The gateway's generated host name: point api_hostname's DNS (CNAME) here."
  value       = oci_apigateway_gateway.this.hostname
}
