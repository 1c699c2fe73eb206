# mypy: ignore-errors
"""Run inside the devcloud's venv (openstacksdk comes with nova): fill keystone, then each region.

usage: python bootstrap.py identity|content SPEC.json   (OS_CLIENT_CONFIG_FILE set by the caller)
Idempotent: every step finds before it creates, so ``up`` after ``down`` only checks.
"""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openstack
from openstack import exceptions

T0 = time.monotonic()


def log(msg):
    print(f"[bootstrap +{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def connect(spec, region=None):
    return openstack.connect(cloud=spec["cloud"], region_name=region or spec["regions"][0]["id"])


def ensure_password(spec, idp, user, project_id, password):
    """Set ``password`` only when it does not already work: keystone revokes every token of a user whose
    password is updated, even to the same value, and the services started alongside (nova's scheduler and
    conductor) hold tokens from this very ``up`` — the first call each makes to placement then gets a 401,
    and nova's conductor leaves an evacuation stuck in ``rebuilding`` on it."""
    try:
        openstack.connect(auth_url=spec["keystone_url"], username=user.name, password=password, project_id=project_id,
                          user_domain_id=user.domain_id, identity_api_version="3").authorize()
        return
    except exceptions.HttpException:
        pass
    log(f"password of {user.name} set")
    idp.update_user(user, password=password)


def identity(spec):
    """Service project, roles, service users, the monitor (reader) user, services and endpoints."""
    conn = connect(spec)
    idp = conn.identity
    domain = idp.find_domain("default")
    project = idp.find_project("service", domain_id=domain.id) or idp.create_project(name="service", domain_id=domain.id)
    admin_project = idp.find_project("admin", domain_id=domain.id)
    for role in ("service", "member", "reader"):
        if not idp.find_role(role):
            idp.create_role(name=role)
    admin_role, service_role, reader = idp.find_role("admin"), idp.find_role("service"), idp.find_role("reader")
    for name in ("nova", "placement", "glance", "neutron"):
        user = idp.find_user(name, domain_id=domain.id)
        if user is None:
            user = idp.create_user(name=name, password=spec["service_password"], domain_id=domain.id, default_project_id=project.id)
        else:
            ensure_password(spec, idp, user, project.id, spec["service_password"])
        idp.assign_project_role_to_user(project, user, admin_role)
        idp.assign_project_role_to_user(project, user, service_role)
    monitor = idp.find_user("monitor", domain_id=domain.id)
    if monitor is None:
        monitor = idp.create_user(name="monitor", password=spec["monitor_password"], domain_id=domain.id)
    else:
        ensure_password(spec, idp, monitor, admin_project.id, spec["monitor_password"])
    idp.assign_project_role_to_user(admin_project, monitor, reader)
    keystone = idp.find_service("keystone")
    for region in spec["regions"]:
        rid = region["id"]
        if not idp.find_region(rid):
            idp.create_region(id=rid)
        urls = {"identity": spec["keystone_url"]}
        urls.update({stype: url for stype, url in region["endpoints"].items()})
        for stype, url in urls.items():
            svc = keystone if stype == "identity" else _service(idp, stype)
            have = {e.interface for e in idp.endpoints(service_id=svc.id, region_id=rid)}
            for iface in ("public", "internal", "admin"):
                if iface not in have:
                    idp.create_endpoint(service_id=svc.id, interface=iface, url=url, region_id=rid)
    log("identity: service users, monitor (reader), endpoints in " + ", ".join(r["id"] for r in spec["regions"]))


def _service(idp, stype):
    names = {"compute": "nova", "placement": "placement", "image": "glance", "network": "neutron"}
    return idp.find_service(names[stype]) or idp.create_service(name=names[stype], type=stype)


def _retry(what, fn, deadline):
    while True:
        try:
            return fn()
        except exceptions.SDKException as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {exc}") from exc
            time.sleep(1)


def content(spec, region):
    """Image, flavors, network, quotas, computes in cells and in their centre's AZ."""
    rid = region["id"]
    deadline = time.monotonic() + spec["timeout"]
    conn = connect(spec, rid)
    if not conn.image.find_image(spec["image"]["name"]):
        conn.create_image(spec["image"]["name"], filename=spec["image"]["file"], disk_format="raw",
                          container_format="bare", visibility="public", wait=True, timeout=120)
    for fl in spec["flavors"]:
        if not conn.compute.find_flavor(fl["name"]):
            conn.compute.create_flavor(name=fl["name"], vcpus=fl["vcpus"], ram=fl["ram_mb"], disk=fl["disk_gb"], is_public=True)
    _network(conn, spec, region)
    project = conn.identity.find_project("admin", domain_id="default")
    conn.compute.update_quota_set(project, instances=1000, cores=4000, ram=16_000_000)
    conn.network.update_quota(project.id, ports=2000, networks=100, subnets=100, security_groups=100, security_group_rules=1000)
    hosts = {h: c["id"] for c in region["centres"] for h in c["hosts"]}
    while True:
        up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
        if set(hosts) <= up:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rid}: nova-compute not up on {sorted(set(hosts) - up)}")
        time.sleep(0.5)
    # hosts reach cell mappings only ~40 s later on their own (gotcha 9): map them now
    subprocess.run(region["discover_hosts"], check=True, capture_output=True, timeout=120)
    for centre in region["centres"]:
        agg = conn.compute.find_aggregate(centre["id"]) or conn.compute.create_aggregate(
            name=centre["id"], availability_zone=centre["id"])
        for host in centre["hosts"]:
            if host not in (conn.compute.get_aggregate(agg).hosts or []):
                _retry(f"add {host} to {centre['id']}", lambda a=agg, h=host: conn.compute.add_host_to_aggregate(a, h), deadline)
    while len(list(conn.compute.hypervisors())) < len(hosts):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rid}: hypervisors missing")
        time.sleep(0.5)
    log(f"{rid}: image, {len(spec['flavors'])} flavors, network, quotas, hosts " + ", ".join(f"{h}@{z}" for h, z in hosts.items()))


def _network(conn, spec, region):
    name = spec["network"]["name"]
    net = conn.network.find_network(name) or conn.network.create_network(
        name=name, shared=True, provider_network_type="flat", provider_physical_network=spec["network"]["physical_network"])
    sub = region["subnet"]
    if not conn.network.find_subnet(f"{name}-subnet", network_id=net.id):
        conn.network.create_subnet(
            name=f"{name}-subnet", network_id=net.id, ip_version=4, cidr=sub["cidr"], gateway_ip=sub["gateway"],
            enable_dhcp=False, allocation_pools=[{"start": sub["pool_start"], "end": sub["pool_end"]}])


def main():
    with open(sys.argv[2], encoding="utf-8") as handle:
        phase, spec = sys.argv[1], json.load(handle)
    if phase == "identity":
        identity(spec)
    else:
        with ThreadPoolExecutor(len(spec["regions"])) as pool:
            for future in [pool.submit(content, spec, r) for r in spec["regions"]]:
                future.result()


if __name__ == "__main__":
    main()
