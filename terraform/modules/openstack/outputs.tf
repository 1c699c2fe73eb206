output "instances" {
  description = "Per VM name: the nova server id and the fixed IPv4 address of its port (what the Ansible step connects to)."
  value = {
    for name, vm in openstack_compute_instance_v2.vm : name => {
      id         = vm.id
      private_ip = vm.access_ip_v4
    }
  }
}

output "server_groups" {
  description = "Per server group name: its nova id."
  value       = { for name, group in openstack_compute_servergroup_v2.group : name => group.id }
}
