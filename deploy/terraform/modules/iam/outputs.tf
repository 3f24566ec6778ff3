# What the iam module hands on (to the root module, or as terraform output).

output "storage_user_id" {
  value = oci_identity_user.storage.id
}

output "functions_dynamic_group" {
  value = oci_identity_dynamic_group.functions.name
}

output "containers_dynamic_group" {
  value = oci_identity_dynamic_group.containers.name
}
