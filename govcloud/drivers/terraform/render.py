"""Plain data in, and the pure rendering of a workspace's root module.

A cloud with ``driver: terraform`` is provisioned through a root module per tenant × cloud (a
*workspace*: ``<workspace_root>/<tenant>--<cloud>/``). ``render_root`` turns plain data (the cloud and
its VMs) into that module's ``main.tf.json``, pointing at ``terraform/modules/{ec2,openstack}``;
``cli_config`` is the project's own CLI config (``<workspace_root>/terraformrc``: providers from the
filesystem mirror only), which terraform reads instead of ~/.terraformrc. No I/O here:
``TerraformDriver`` (``driver``) writes what these return.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govcloud.errors import PermanentError

AWS_PROVIDER = ("hashicorp/aws", "5.100.0")
OPENSTACK_PROVIDER = ("terraform-provider-openstack/openstack", "~> 3.0")


# -- plain data in ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceSpec:
    """One VM of a workspace. ``size`` is an instance type / flavor name, ``image`` an AMI id / image
    name, ``network`` a subnet id (EC2) or subnet id for the fixed IP (OpenStack, optional there)."""

    name: str
    index: int
    ticket: str
    tenant: str
    system: str
    size: str
    image: str
    network: str
    zone: str | None = None
    private_ip: str | None = None
    server_group: str | None = None

@dataclass(frozen=True)
class Ec2Cloud:
    """An EC2-compatible third-party cloud. ``endpoints`` maps services (ec2, sts, iam) to URLs for
    clouds that are not AWS itself; ``skip_checks`` sets the provider's ``skip_*`` flags such clouds need.
    Credentials are not here: pass them as ``secret_env`` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."""

    name: str
    region: str
    vpc_id: str
    endpoints: Mapping[str, str] = field(default_factory=dict)
    skip_checks: bool = False
    ssh_public_key: str | None = None
    key_name: str | None = None
    ssh_cidrs: tuple[str, ...] = ("10.0.0.0/8",)
    provider_version: str = AWS_PROVIDER[1]

@dataclass(frozen=True)
class OpenStackCloud:
    """An OpenStack cloud driven by Terraform: ``cloud`` is the clouds.yaml entry (the file reaches
    terraform through ``secret_env["OS_CLIENT_CONFIG_FILE"]``)."""

    name: str
    cloud: str
    region: str
    network_id: str
    security_group_ids: tuple[str, ...] = ()
    key_pair: str | None = None
    server_group_policy: str = "anti-affinity"
    provider_version: str = OPENSTACK_PROVIDER[1]

Cloud = Ec2Cloud | OpenStackCloud


@dataclass(frozen=True)
class Workspace:
    """One root module on disk. ``secret_env`` goes to terraform's environment only (never repr'd or written)."""

    tenant: str
    cloud: str
    directory: Path
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.tenant}--{self.cloud}"


# -- rendering (pure) ------------------------------------------------------------------------
def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def schema_name(tenant: str, cloud: str) -> str:
    """PostgreSQL schema of a workspace's state in the ``pg`` backend (one per tenant × cloud)."""
    return "govcloud_" + re.sub(r"[^a-z0-9_]", "_", f"{tenant}__{cloud}".lower())


def render_root(tenant: str, cloud: Cloud, instances: Sequence[InstanceSpec], *, module_source: str, backend: str = "local") -> dict[str, Any]:
    """The root module as a JSON-syntax document. Deterministic (sorted) so a re-render changes nothing.

    ``backend``: ``local`` (state file in the workspace, locked with fcntl) or ``pg`` (state and locks in
    PostgreSQL; the connection string comes from ``PG_CONN_STR`` in the environment, never the file).
    """
    names = [i.name for i in instances]
    if len(set(names)) != len(names):
        raise PermanentError(f"workspace {tenant}--{cloud.name}: duplicate VM names {sorted({n for n in names if names.count(n) > 1})}")
    if any(i.tenant != tenant for i in instances):
        raise PermanentError(f"workspace {tenant}--{cloud.name}: instances of other tenants {sorted({i.tenant for i in instances} - {tenant})}")
    state = {"local": {"path": "terraform.tfstate"}} if backend == "local" else {"pg": {"schema_name": schema_name(tenant, cloud.name)}}
    if backend not in ("local", "pg"):
        raise PermanentError(f"unknown terraform backend {backend!r}: use local or pg")
    ordered = sorted(instances, key=lambda i: i.name)
    if isinstance(cloud, Ec2Cloud):
        source, provider = AWS_PROVIDER[0], "aws"
        config: dict[str, Any] = {"region": cloud.region}
        if cloud.endpoints:
            config["endpoints"] = dict(sorted(cloud.endpoints.items()))
        if cloud.skip_checks:
            config.update(skip_credentials_validation=True, skip_requesting_account_id=True, skip_metadata_api_check=True,
                          skip_region_validation=True)
        module = _drop_none({
            "source": module_source, "name_prefix": f"{tenant}-{cloud.name}", "vpc_id": cloud.vpc_id, "tenant": tenant,
            "ssh_public_key": cloud.ssh_public_key, "key_name": cloud.key_name, "ssh_cidrs": list(cloud.ssh_cidrs),
            "instances": {i.name: _drop_none({"ticket": i.ticket, "index": i.index, "system": i.system, "instance_type": i.size,
                                              "ami": i.image, "subnet_id": i.network, "private_ip": i.private_ip, "zone": i.zone})
                          for i in ordered},
        })
        version, key = cloud.provider_version, "ec2"
    else:
        source, provider = OPENSTACK_PROVIDER[0], "openstack"
        config = {"cloud": cloud.cloud, "region": cloud.region}
        groups = {i.server_group: cloud.server_group_policy for i in ordered if i.server_group}
        module = _drop_none({
            "source": module_source, "tenant": tenant, "network_id": cloud.network_id, "security_group_ids": list(cloud.security_group_ids),
            "key_pair": cloud.key_pair, "server_groups": dict(sorted(groups.items())),
            "instances": {i.name: _drop_none({"ticket": i.ticket, "index": i.index, "system": i.system, "flavor": i.size, "image": i.image,
                                              "zone": i.zone, "fixed_ip": i.private_ip, "subnet_id": i.network or None,
                                              "server_group": i.server_group}) for i in ordered},
        })
        version, key = cloud.provider_version, "openstack"
    return {
        "terraform": {"required_version": ">= 1.5", "required_providers": {provider: {"source": source, "version": version}}, "backend": state},
        "provider": {provider: config},
        "module": {key: module},
        "output": {"instances": {"value": f"${{module.{key}.instances}}", "description": "id and private_ip per VM name"}},
    }


def cli_config(mirror: Path) -> str:
    """The project's CLI config: providers from the filesystem mirror only (no ``direct {}``: a provider
    missing from the mirror fails fast instead of trying an unreachable registry)."""
    return f'provider_installation {{\n  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n  }}\n}}\ndisable_checkpoint = true\n'
