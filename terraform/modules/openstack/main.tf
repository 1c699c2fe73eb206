# One tenant's VMs in an OpenStack cloud: a port per VM on the tenant network (so the address is
# known and can be fixed before the server exists), server groups for HA systems, and the servers.

resource "openstack_compute_servergroup_v2" "group" {
  for_each = var.server_groups
  name     = each.key
  policies = [each.value]
}

resource "openstack_networking_port_v2" "vm" {
  for_each           = var.instances
  name               = each.key
  network_id         = var.network_id
  security_group_ids = var.security_group_ids
  admin_state_up     = true

  dynamic "fixed_ip" {
    for_each = each.value.fixed_ip == null && each.value.subnet_id == null ? [] : [each.value]
    content {
      subnet_id  = fixed_ip.value.subnet_id
      ip_address = fixed_ip.value.fixed_ip
    }
  }
}

resource "openstack_compute_instance_v2" "vm" {
  for_each          = var.instances
  name              = each.key
  flavor_name       = each.value.flavor
  image_name        = each.value.image
  availability_zone = each.value.zone
  key_pair          = var.key_pair

  metadata = merge(var.metadata, {
    "govcloud:tenant" = var.tenant
    "govcloud:ticket" = each.value.ticket
    "govcloud:index"  = tostring(each.value.index)
    "govcloud:system" = each.value.system
  })

  network {
    port = openstack_networking_port_v2.vm[each.key].id
  }

  dynamic "scheduler_hints" {
    for_each = each.value.server_group == null ? [] : [each.value.server_group]
    content {
      group = openstack_compute_servergroup_v2.group[scheduler_hints.value].id
    }
  }
}
