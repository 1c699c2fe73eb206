"""Keystone projects the integration tests make for their own tenants, removed again at the end.

Onboarding (``tenants sync``, and every apply before its first server in a cloud) creates a tenant's project
with a role, nova quota, network access and a security group in each region. Tenants only the tests use
(gd-czt, gd-scl, gd-zf of the fault suite, it-evacuate) were left behind as empty projects after every run;
a fixture wraps a test module in ``projects_removed(...)`` so that their projects go once they hold no
server. A project that still holds servers is left alone: removing it would orphan them (and a concurrent
run on the same devcloud may be using it — its next apply onboards the tenant again anyway).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openstack

REGIONS = ("gd-gz", "gd-sg")
ADMIN = "devcloud-admin"


def _admin(region: str) -> Any:
    return openstack.connect(cloud=ADMIN, region_name=region)


def _servers(conn: Any, project_id: str) -> list[Any]:
    return list(conn.compute.servers(all_projects=True, project_id=project_id))


def remove_project(name: str, *, settle: float = 60.0) -> bool:
    """Delete project ``name`` and what onboarding made in it in every region, once no server is left in it
    (deletions nova still finishes are waited for, up to ``settle`` seconds). False when it holds servers
    or does not exist."""
    project = _admin(REGIONS[0]).identity.find_project(name, domain_id="default")
    if project is None:
        return False
    deadline = time.monotonic() + settle
    for region in REGIONS:
        conn = _admin(region)
        while _servers(conn, project.id):
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
    for region in REGIONS:
        conn = _admin(region)
        for group in conn.compute.server_groups(all_projects=True):
            if group.project_id == project.id:
                conn.compute.delete_server_group(group, ignore_missing=True)
        for port in conn.network.ports(project_id=project.id):
            conn.network.delete_port(port, ignore_missing=True)
        for policy in conn.network.rbac_policies(target_project_id=project.id):
            conn.network.delete_rbac_policy(policy, ignore_missing=True)
        for group in conn.network.security_groups(project_id=project.id):
            conn.network.delete_security_group(group, ignore_missing=True)
        conn.compute.revert_quota_set(project.id)
    _admin(REGIONS[0]).identity.delete_project(project, ignore_missing=True)
    return True


@contextmanager
def projects_removed(*names: str) -> Iterator[None]:
    """Run the body, then remove the projects of ``names`` that hold no server (``remove_project``)."""
    try:
        yield
    finally:
        for name in names:
            remove_project(name)


def project_names() -> set[str]:
    """Every project of the devcloud's keystone (for the tests of this module's fixtures)."""
    return {p.name for p in _admin(REGIONS[0]).identity.projects()}
