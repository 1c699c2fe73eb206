# One tenant's VMs in an EC2-compatible third-party cloud: a security group and key pair per tenant,
# and one instance per VM. Every resource carries govcloud's tags so an operator (or a re-run after a
# crash) can tell which ticket it belongs to.

locals {
  common_tags = merge(var.tags, {
    "govcloud:tenant" = var.tenant
  })
  key_name = var.ssh_public_key == null ? var.key_name : aws_key_pair.tenant[0].key_name
}

resource "aws_security_group" "tenant" {
  name        = "${var.name_prefix}-govcloud"
  description = "govcloud: SSH from the control hosts, all egress"
  vpc_id      = var.vpc_id
  tags        = merge(local.common_tags, { Name = "${var.name_prefix}-govcloud" })

  # Inline rules: one resource, one API round trip per change, and supported by every
  # EC2-compatible API govcloud docks with (separate rule resources need DescribeSecurityGroupRules).
  ingress {
    description = "SSH for the Ansible configuration step"
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = var.ssh_cidrs
  }

  egress {
    description = "All egress"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_key_pair" "tenant" {
  count      = var.ssh_public_key == null ? 0 : 1
  key_name   = "${var.name_prefix}-govcloud"
  public_key = var.ssh_public_key
  tags       = local.common_tags
}

resource "aws_instance" "vm" {
  for_each = var.instances

  ami                    = each.value.ami
  instance_type          = each.value.instance_type
  subnet_id              = each.value.subnet_id
  private_ip             = each.value.private_ip
  availability_zone      = each.value.zone
  key_name               = local.key_name
  vpc_security_group_ids = [aws_security_group.tenant.id]

  tags = merge(local.common_tags, {
    Name              = each.key
    "govcloud:ticket" = each.value.ticket
    "govcloud:index"  = tostring(each.value.index)
    "govcloud:system" = each.value.system
  })
  volume_tags = merge(local.common_tags, {
    Name              = each.key
    "govcloud:ticket" = each.value.ticket
  })

  lifecycle {
    # Some EC2-compatible APIs (moto among them) do not report the instance's SecurityGroups when
    # they were given at launch with a subnet, which would show a spurious update on every plan.
    # The group is the module's own and set at creation; see docs/terraform.md.
    ignore_changes = [vpc_security_group_ids]
  }
}
