output "instances" {
  description = "Per VM name: the cloud's instance id and the private IPv4 address the Ansible step connects to."
  value = {
    for name, vm in aws_instance.vm : name => {
      id         = vm.id
      private_ip = vm.private_ip
    }
  }
}

output "security_group_id" {
  description = "The tenant's security group (for operators adding rules outside govcloud)."
  value       = aws_security_group.tenant.id
}
