variable "tenant" {
  description = "govcloud tenant slug, written into every server's metadata as govcloud:tenant."
  type        = string
}

variable "network_id" {
  description = "Neutron network the tenant's ports are created on (the tenant network onboarding created)."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of every port (govcloud-default from onboarding)."
  type        = list(string)
  default     = []
}

variable "key_pair" {
  description = "Nova key pair injected into every server; null for none."
  type        = string
  default     = null
}

variable "server_groups" {
  description = <<-EOT
    Server groups to create, keyed by group name (govcloud's <ticket>-<system> naming for HA
    systems), with the nova policy: "anti-affinity" (members on different hosts, the HA default)
    or "soft-anti-affinity" when the zone may have fewer hosts than members.
  EOT
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for policy in values(var.server_groups) : contains(["anti-affinity", "soft-anti-affinity", "affinity", "soft-affinity"], policy)])
    error_message = "Server group policies are anti-affinity, soft-anti-affinity, affinity or soft-affinity."
  }
}

variable "instances" {
  description = <<-EOT
    VMs to keep, keyed by VM name (<ticket>-<index>): ticket/index/system become govcloud:* metadata
    so a re-run finds what exists; flavor and image choose size and image (names); zone is the
    availability zone (the "data centre"); fixed_ip (optional) fixes the port's address; server_group
    (optional) names a key of server_groups.
  EOT
  type = map(object({
    ticket       = string
    index        = number
    system       = string
    flavor       = string
    image        = string
    zone         = optional(string)
    fixed_ip     = optional(string)
    subnet_id    = optional(string)
    server_group = optional(string)
  }))
}

variable "metadata" {
  description = "Extra metadata for every server; govcloud's own keys win on conflict."
  type        = map(string)
  default     = {}
}
