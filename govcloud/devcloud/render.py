"""Configuration files of the devcloud, rendered from the profile, the layout and the secrets.

Pure functions returning text (``render_all`` maps relative path → content), so unit tests check
them without a cloud; ``write_all`` is the only writer. Re-rendered by every ``up``, so a changed
port in the profile takes effect at the next start.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from govcloud.devcloud.layout import Layout, write_private
from govcloud.devcloud.profile import Profile, Region

IniValue = str | int | float | bool | Path
Ini = Mapping[str, Mapping[str, IniValue]]
HOST = "127.0.0.1"
SERVICE_USERS = ("nova", "placement", "glance", "neutron")
PASTE_FILES = {"nova": "nova-api-paste.ini", "glance": "glance-api-paste.ini", "neutron": "neutron-api-paste.ini"}


def render_ini(sections: Ini) -> str:
    """oslo.config INI text; booleans as ``true``/``false``, empty strings kept (``service_plugins =``)."""
    lines: list[str] = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        for key, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"{key} = {text}".rstrip())
        lines.append("")
    return "\n".join(lines)


def db_name(service: str, region: Region | None = None) -> str:
    """PostgreSQL database of a service; per region except keystone (``nova_api_gd_gz``)."""
    return service if region is None else f"{service}_{region.id.replace('-', '_')}"


def db_url(layout: Layout, database: str) -> str:
    """SQLAlchemy URL over PostgreSQL's unix socket in the state directory (no TCP, trust auth)."""
    return f"postgresql+psycopg2://postgres@/{database}?host={layout.pg_socket}"


def transport_url(profile: Profile, secrets: Mapping[str, str], region: Region) -> str:
    """One RabbitMQ vhost per region: the two novas must not consume each other's RPC topics."""
    return f"rabbit://devcloud:{secrets['rabbit']}@{HOST}:{profile.rabbit_port}/{region.id}"


def keystone_url(profile: Profile) -> str:
    return f"http://{HOST}:{profile.keystone_port}/v3"


def _auth(profile: Profile, secrets: Mapping[str, str], user: str) -> dict[str, IniValue]:
    """keystoneauth password options for one service user."""
    return {
        "auth_url": keystone_url(profile),
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": secrets["service"],
    }


def _authtoken(profile: Profile, secrets: Mapping[str, str], user: str) -> dict[str, IniValue]:
    return {"www_authenticate_uri": keystone_url(profile), **_auth(profile, secrets, user), "service_token_roles_required": True}


def keystone_conf(profile: Profile, layout: Layout) -> str:
    # In-process dogpile cache: without it every token validation re-reads role assignments and
    # keystone becomes the bottleneck of the whole cloud (50 boots: 144 s → 29 s in the probe).
    return render_ini({
        "DEFAULT": {"log_file": layout.service_log("keystone"), "debug": False},
        "database": {"connection": db_url(layout, db_name("keystone"))},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": layout.data / "keystone-fernet-keys"},
        "fernet_receipts": {"key_repository": layout.data / "keystone-fernet-keys"},
        "credential": {"key_repository": layout.data / "keystone-credential-keys"},
        "cache": {"enabled": True, "backend": "dogpile.cache.memory", "expiration_time": 120},
        "identity": {"password_hash_rounds": 4},
    })


def placement_conf(profile: Profile, layout: Layout, secrets: Mapping[str, str], region: Region) -> str:
    return render_ini({
        "DEFAULT": {"log_file": layout.service_log(f"placement-{region.id}"), "debug": False},
        "placement_database": {"connection": db_url(layout, db_name("placement", region))},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": _authtoken(profile, secrets, "placement"),
    })


def glance_conf(profile: Profile, layout: Layout, secrets: Mapping[str, str], region: Region) -> str:
    store = layout.data / region.id / "glance"
    return render_ini({
        "DEFAULT": {
            "log_file": layout.service_log(f"glance-{region.id}"),
            "debug": False,
            "enabled_backends": "fs:file",
            "worker_self_reference_url": f"http://{HOST}:{region.ports['glance']}",
        },
        "database": {"connection": db_url(layout, db_name("glance", region))},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": f"{store}/images/"},
        "os_glance_staging_store": {"filesystem_store_datadir": f"{store}/staging/"},
        "os_glance_tasks_store": {"filesystem_store_datadir": f"{store}/tasks/"},
        "paste_deploy": {"flavor": "keystone", "config_file": layout.etc / region.id / "glance" / "glance-api-paste.ini"},
        "keystone_authtoken": _authtoken(profile, secrets, "glance"),
        "oslo_concurrency": {"lock_path": layout.data / region.id / "lock"},
    })


def neutron_conf(profile: Profile, layout: Layout, secrets: Mapping[str, str], region: Region) -> str:
    # No agents, no L3, no DHCP: only the core network/subnet/port API; the bind-all driver binds ports.
    return render_ini({
        "DEFAULT": {
            "core_plugin": "ml2",
            "service_plugins": "",
            "auth_strategy": "keystone",
            "transport_url": transport_url(profile, secrets, region),
            "api_paste_config": layout.etc / region.id / "neutron" / "api-paste.ini",
            "state_path": layout.data / region.id / "neutron",
            "log_file": layout.service_log(f"neutron-{region.id}"),
            "debug": False,
            "dhcp_agent_notification": False,
            "notify_nova_on_port_status_changes": False,
            "notify_nova_on_port_data_changes": False,
            "allow_overlapping_ips": True,
        },
        "database": {"connection": db_url(layout, db_name("neutron", region))},
        "keystone_authtoken": _authtoken(profile, secrets, "neutron"),
        "oslo_concurrency": {"lock_path": layout.data / region.id / "lock"},
    })


def ml2_conf(profile: Profile) -> str:
    return render_ini({
        "ml2": {
            "type_drivers": "flat,vlan,vxlan",
            "tenant_network_types": "vxlan",
            "mechanism_drivers": "govcloud_bindall",
            "extension_drivers": "port_security",
        },
        "ml2_type_flat": {"flat_networks": profile.physical_network},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
        "securitygroup": {"enable_security_group": True},
    })


def nova_conf(profile: Profile, layout: Layout, secrets: Mapping[str, str], region: Region) -> str:
    rid = region.id
    return render_ini({
        "DEFAULT": {
            "transport_url": transport_url(profile, secrets, region),
            "compute_driver": "govcloud_fake.StableFakeDriver",
            "state_path": layout.data / rid / "nova",
            "log_file": layout.service_log(f"nova-api-{rid}"),
            "my_ip": HOST,
            "debug": False,
            "use_rootwrap_daemon": False,
            "enabled_apis": "osapi_compute",
            "heal_instance_info_cache_interval": -1,
            "sync_power_state_interval": -1,
            "cpu_allocation_ratio": 16.0,
            "ram_allocation_ratio": 1.5,
            "default_availability_zone": "nova",
            "report_interval": profile.report_interval,
            "service_down_time": profile.service_down_time,
            "vif_plugging_is_fatal": False,
            "vif_plugging_timeout": 0,
            "graceful_shutdown_timeout": 5,  # down ≤ 30 s: fake instances have nothing to flush
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": layout.etc / rid / "nova" / "api-paste.ini"},
        "api_database": {"connection": db_url(layout, db_name("nova_api", region))},
        "database": {"connection": db_url(layout, db_name("nova_cell1", region))},
        "keystone_authtoken": _authtoken(profile, secrets, "nova"),
        "service_user": {"send_service_user_token": True, **_auth(profile, secrets, "nova")},
        # keystoneauth retries: survive uWSGI resetting pooled connections (gotcha 6)
        "placement": {"region_name": rid, "connect_retries": 5, "status_code_retries": 3, **_auth(profile, secrets, "placement")},
        "glance": {"region_name": rid, "connect_retries": 3},
        "neutron": {"region_name": rid, **_auth(profile, secrets, "neutron")},
        "cinder": {"os_region_name": rid},
        "scheduler": {"discover_hosts_in_cells_interval": -1, "workers": 1},
        "conductor": {"workers": 1},
        "filter_scheduler": {"track_instance_changes": False},
        "vnc": {"enabled": False},
        "oslo_concurrency": {"lock_path": layout.data / rid / "lock"},
        "oslo_messaging_notifications": {"driver": "noop"},
    })


def compute_conf(layout: Layout, region: Region, host: str) -> str:
    """Per-host override: its own ``state_path`` keeps the node identity file apart (restartable)."""
    state = layout.data / region.id / "compute" / host
    return render_ini({"DEFAULT": {"host": host, "state_path": state, "instances_path": state / "instances"}})


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_files(profile: Profile, layout: Layout, secrets: Mapping[str, str]) -> dict[str, str]:
    """rabbitmq.conf + definitions (user, one vhost per region) loaded at boot: no rabbitmqctl calls."""
    definitions = {
        "users": [{
            "name": "devcloud",
            "password_hash": rabbit_password_hash(secrets["rabbit"]),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["administrator"],
        }],
        "vhosts": [{"name": r.id} for r in profile.regions],
        "permissions": [
            {"user": "devcloud", "vhost": r.id, "configure": ".*", "write": ".*", "read": ".*"} for r in profile.regions
        ],
    }
    conf = "\n".join([
        f"listeners.tcp.1 = {HOST}:{profile.rabbit_port}",
        f"load_definitions = {layout.etc / 'rabbitmq' / 'definitions.json'}",
        "log.console = false",
        "log.file.level = warning",
        "",
    ])
    return {"rabbitmq/rabbitmq.conf": conf, "rabbitmq/definitions.json": json.dumps(definitions, indent=1), "rabbitmq/enabled_plugins": "[].\n"}


def clouds_yaml(profile: Profile, secrets: Mapping[str, str]) -> str:
    """clouds.yaml for ``OS_CLIENT_CONFIG_FILE``: admin and a read-only (``reader``) monitoring user."""
    regions = [r.id for r in profile.regions]

    def entry(user: str, password: str) -> dict[str, object]:
        return {
            "auth": {
                "auth_url": keystone_url(profile),
                "username": user,
                "password": password,
                "project_name": "admin",
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": regions[0],
            "regions": regions,
            "identity_api_version": 3,
            "interface": "public",
        }

    clouds = {"devcloud-admin": entry("admin", secrets["admin"]), "devcloud-monitor": entry("monitor", secrets["monitor"])}
    return yaml.safe_dump({"clouds": clouds}, sort_keys=False)


def _paste(service: str) -> str:
    from govcloud.devcloud.install import data_path

    return data_path(f"paste/{PASTE_FILES[service]}").read_text(encoding="utf-8")


def render_all(profile: Profile, layout: Layout, secrets: Mapping[str, str]) -> dict[str, str]:
    """Every configuration file, keyed by its path relative to ``layout.etc``."""
    files = {"keystone/keystone.conf": keystone_conf(profile, layout), **rabbit_files(profile, layout, secrets)}
    for region in profile.regions:
        rid = region.id
        files[f"{rid}/placement/placement.conf"] = placement_conf(profile, layout, secrets, region)
        files[f"{rid}/glance/glance-api.conf"] = glance_conf(profile, layout, secrets, region)
        files[f"{rid}/glance/glance-api-paste.ini"] = _paste("glance")
        files[f"{rid}/neutron/neutron.conf"] = neutron_conf(profile, layout, secrets, region)
        files[f"{rid}/neutron/ml2_conf.ini"] = ml2_conf(profile)
        files[f"{rid}/neutron/api-paste.ini"] = _paste("neutron")
        files[f"{rid}/nova/nova.conf"] = nova_conf(profile, layout, secrets, region)
        files[f"{rid}/nova/api-paste.ini"] = _paste("nova")
        for host in region.hosts:
            files[f"{rid}/nova/compute-{host}.conf"] = compute_conf(layout, region, host)
    return files


def write_all(profile: Profile, layout: Layout, secrets: Mapping[str, str]) -> None:
    """Write every file 0600 (they hold passwords), the profile copy and clouds.yaml."""
    for rel, text in render_all(profile, layout, secrets).items():
        write_private(layout.etc / rel, text)
    write_private(layout.profile_json, profile.to_json())
    write_private(layout.clouds_yaml, clouds_yaml(profile, secrets))


def config_dir(layout: Layout, region: Region, service: str) -> Path:
    """``OS_<SERVICE>_CONFIG_DIR`` for a WSGI app (gotcha 8)."""
    return layout.etc / region.id / service
