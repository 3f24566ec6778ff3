# What the network module hands on (to the root module, or as terraform output).

output "vcn_id" {
  value = oci_core_vcn.this.id
}

output "public_subnet_id" {
  value = oci_core_subnet.public.id
}

output "public_subnet_cidr" {
  value = local.public_cidr
}

output "app_subnet_id" {
  value = oci_core_subnet.app.id
}

output "app_subnet_cidr" {
  value = local.app_cidr
}

output "db_subnet_id" {
  value = oci_core_subnet.db.id
}

output "nsg_ids" {
  description = "NSG OCIDs by role: lb, gateway, api, worker, db."
  value       = { for k, nsg in oci_core_network_security_group.this : k => nsg.id }
}
