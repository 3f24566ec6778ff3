# What the worker module hands on (to the root module, or as terraform output).

output "worker_ids" {
  value = oci_container_instances_container_instance.worker[*].id
}

output "backup_instance_id" {
  value = oci_container_instances_container_instance.backup.id
}
