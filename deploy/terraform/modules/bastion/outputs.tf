# What the bastion module hands on (to the root module, or as terraform output).

output "bastion_id" {
  value = oci_bastion_bastion.this.id
}

output "private_endpoint_ip" {
  description = "The bastion's private endpoint in the db subnet (the db NSG admits it on 5432)."
  value       = oci_bastion_bastion.this.private_endpoint_ip_address
}
