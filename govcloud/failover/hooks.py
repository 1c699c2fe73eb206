"""Post-recovery hooks: a protection group's Ansible role, run on its recovered VMs (``steps.HookRunner``).

A recovery plan (``recovery/*.yaml``) names the role and its variables; validation has checked the
role exists in ``playbooks/roles`` and the variables are plain role data (no ``ansible_*``, no
magic variables, no Jinja). The run goes through the same Ansible driver as ticket configuration
(``AnsibleDriver.for_settings``: same SSH user, key and known-hosts file) with the playbook
``playbooks/recovery_hook.yml``, which applies that one role. Hosts are the group's VMs as the store
records them after the move (address, server id); the hook variables are their host variables, laid
under govcloud's own.
"""

from __future__ import annotations

from typing import Any

from govcloud.drivers.ansible import AnsibleDriver
from govcloud.errors import DriverError
from govcloud.failover.steps import HookCall, HookResult, HookRunner
from govcloud.settings import Settings

PLAYBOOK = "recovery_hook.yml"


def hook_inventory(call: HookCall, python: str) -> dict[str, Any]:
    """A static inventory of the group's VMs with an address; the hook's variables as host variables."""
    assert call.step.hook is not None
    hosts = {vm.name: {**call.step.hook.vars, "ansible_host": vm.address, "ansible_python_interpreter": python,
                       "govcloud_vm_id": vm.server_id, "govcloud_vm_name": vm.name, "govcloud_ticket": vm.ticket,
                       "govcloud_tenant": vm.tenant, "govcloud_system": vm.system, "govcloud_centre": vm.centre,
                       "govcloud_recovery_group": call.step.name, "govcloud_recovery_run": call.run_id}
             for vm in call.vms if vm.address}
    return {"all": {"hosts": hosts}}


def ansible_hook(settings: Settings, driver: AnsibleDriver | None = None) -> HookRunner:
    """The hook runner of a govcloud process (CLI and daemon)."""

    def run(call: HookCall) -> HookResult:
        assert call.step.hook is not None
        inventory = hook_inventory(call, settings.configure.python)
        hosts = inventory["all"]["hosts"]
        missing = sorted(vm.name for vm in call.vms if not vm.address)
        if not hosts:
            return HookResult(False, "no recovered VM has an address: the hook did not run")
        try:
            result = (driver or AnsibleDriver.for_settings(settings)).run(
                inventory, playbook=PLAYBOOK, extravars={"govcloud_hook_role": call.step.hook.role},
                owners={h["ansible_host"]: h["govcloud_vm_id"] or name for name, h in hosts.items()})
        except DriverError as exc:
            return HookResult(False, f"{call.step.hook.role}: {exc}")
        failed = result.failed_hosts
        if failed or missing or result.rc != 0:
            reasons = [f"{h}: {'; '.join(result.hosts[h].failures) or result.hosts[h].status}" for h in failed]
            reasons += [f"{m}: no address" for m in missing]
            return HookResult(False, f"{call.step.hook.role} (run {result.ident}): " + ("; ".join(reasons) or f"rc {result.rc}"))
        return HookResult(True, f"{call.step.hook.role} (run {result.ident}): ok on {len(hosts)} VMs")

    return run
