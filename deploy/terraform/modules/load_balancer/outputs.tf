# What the load_balancer module hands on (to the root module, or as terraform output).

output "load_balancer_id" {
  value = oci_load_balancer_load_balancer.this.id
}

output "ip_address" {
  description = "The LB's public address: point api_hostname's DNS (A record) here."
  value       = [for ip in oci_load_balancer_load_balancer.this.ip_address_details : ip.ip_address if ip.is_public][0]
}

output "instance_ids" {
  description = "alarm-http container instance OCIDs by color, then index."
  value       = { for color in ["blue", "green"] : color => [for k, ci in oci_container_instances_container_instance.http : ci.id if startswith(k, "${color}-")] }
}
