variable "name_prefix" {
  description = "Prefix of the security group and key pair names: govcloud renders <tenant>-<cloud> so that two tenants never share them."
  type        = string
}

variable "vpc_id" {
  description = "VPC (network) of the tenant in the third-party cloud; the security group lives in it."
  type        = string
}

variable "tenant" {
  description = "govcloud tenant slug, written to every resource as the govcloud:tenant tag."
  type        = string
}

variable "instances" {
  description = <<-EOT
    VMs to keep, keyed by VM name (govcloud's <ticket>-<index> naming, unique per tenant):
    ticket/index/system become govcloud:* tags so a re-run finds what exists; instance_type and ami
    choose size and image; subnet_id places the VM; private_ip (optional) fixes its address inside
    that subnet (the Ansible step reaches it there); zone (optional) pins an availability zone.
  EOT
  type = map(object({
    ticket        = string
    index         = number
    system        = string
    instance_type = string
    ami           = string
    subnet_id     = string
    private_ip    = optional(string)
    zone          = optional(string)
  }))

  validation {
    condition     = alltrue([for name, vm in var.instances : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", name))])
    error_message = "VM names must be 1-63 characters of letters, digits, dot, underscore or dash."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key for the tenant's key pair; null means use the existing key pair named by key_name."
  type        = string
  default     = null
}

variable "key_name" {
  description = "Name of an existing key pair, used when ssh_public_key is null; null for no key pair at all."
  type        = string
  default     = null
}

variable "ssh_cidrs" {
  description = "CIDR blocks allowed to reach port 22 (govcloud's Ansible control hosts)."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}

variable "tags" {
  description = "Extra tags for every resource (e.g. the province's cost centre); govcloud's own tags win on conflict."
  type        = map(string)
  default     = {}
}
