"""The Terraform driver: the only code that runs the ``terraform`` CLI.

A cloud with ``driver: terraform`` is provisioned through a root module per tenant × cloud (a
*workspace*: ``<workspace_root>/<tenant>--<cloud>/``) that this package renders as ``main.tf.json`` from
plain data and points at ``terraform/modules/{ec2,openstack}``. The engine calls ``render`` →
``plan`` (saved plan file + summary + sha256, what approval binds to) → ``apply`` (exactly that saved
plan) → ``outputs`` (addresses for the Ansible step); ``destroy`` retires a workspace.

``render``  plain data in (``InstanceSpec``, ``Ec2Cloud``, ``OpenStackCloud``, ``Workspace``) and the pure
            rendering of a root module and of the CLI config
``output``  terraform's machine-readable output as plain data (``PlanSummary``, ``PlanDetail``, …) and the
            errors its diagnostics become (``StalePlan``, ``StateLocked``, ``classify``)
``files``   atomic writes, sha256 of a plan file, run idents
``lock``    govcloud's own per-workspace lock (flock), held across render → plan → apply (``WorkspaceBusy``)
``driver``  ``TerraformDriver``: runs the binary, one recorded run directory per process

Callers import from here (``from govcloud.drivers.terraform import TerraformDriver, PlanSummary``).
"""

from govcloud.drivers.terraform.driver import REPO_MODULES, STREAMED, Progress, Run, TerraformDriver
from govcloud.drivers.terraform.files import new_ident, sha256_file, write_atomic
from govcloud.drivers.terraform.lock import LOCK_FILE, WorkspaceBusy, workspace_lock
from govcloud.drivers.terraform.output import (
    INSTANCE_TYPES,
    ApplyResult,
    Diagnostic,
    InstanceAddress,
    PlanDetail,
    PlannedChange,
    PlanSummary,
    ResourceChange,
    StalePlan,
    StateInstance,
    StateLocked,
    StateResource,
    classify,
    plan_detail,
    state_detail,
)
from govcloud.drivers.terraform.render import (
    AWS_PROVIDER,
    OPENSTACK_PROVIDER,
    Cloud,
    Ec2Cloud,
    InstanceSpec,
    OpenStackCloud,
    Workspace,
    cli_config,
    render_root,
    schema_name,
)

__all__ = [
    "AWS_PROVIDER",
    "INSTANCE_TYPES",
    "LOCK_FILE",
    "OPENSTACK_PROVIDER",
    "REPO_MODULES",
    "STREAMED",
    "ApplyResult",
    "Cloud",
    "Diagnostic",
    "Ec2Cloud",
    "InstanceAddress",
    "InstanceSpec",
    "OpenStackCloud",
    "PlanDetail",
    "PlanSummary",
    "PlannedChange",
    "Progress",
    "ResourceChange",
    "Run",
    "StalePlan",
    "StateInstance",
    "StateLocked",
    "StateResource",
    "TerraformDriver",
    "Workspace",
    "WorkspaceBusy",
    "classify",
    "cli_config",
    "new_ident",
    "plan_detail",
    "render_root",
    "schema_name",
    "sha256_file",
    "state_detail",
    "workspace_lock",
    "write_atomic",
]
