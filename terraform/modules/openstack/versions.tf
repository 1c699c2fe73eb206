# Needs terraform-provider-openstack, which cannot be obtained on govcloud's build machines (no
# registry access, not in the local mirror): this module is checked by `terraform fmt` and by the
# unit tests of its rendering only. See docs/terraform.md.
terraform {
  required_version = ">= 1.5"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = ">= 1.54"
    }
  }
}
