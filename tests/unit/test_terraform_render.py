"""Terraform driver without a cloud: rendering of root modules (EC2 and OpenStack), secrets kept off
disk, error mapping, run directories (with a fake ``terraform`` that prints canned ``-json`` events).

The OpenStack module cannot be initialised here (no provider can be had), so its rendering is checked
against the variables the module declares; ``terraform fmt`` checks both modules' syntax. A missing
``terraform`` binary fails these tests loudly: CI must have it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.terraform import (
    Diagnostic,
    Ec2Cloud,
    InstanceSpec,
    OpenStackCloud,
    StalePlan,
    StateLocked,
    TerraformDriver,
    classify,
    cli_config,
    render_root,
    schema_name,
)
from govcloud.errors import PermanentError, TemporaryError

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "terraform" / "modules"
SECRET = "s3cr3t-AKIA-never-on-disk"
PG = "postgres://govcloud:pg-password-never-on-disk@db.example/terraform"


def _specs(tenant: str = "gov-a", n: int = 3, **extra: Any) -> list[InstanceSpec]:
    return [InstanceSpec(name=f"t7-{i}", index=i, ticket="t7", tenant=tenant, system="web", size="t3.micro", image="ami-1",
                         network="subnet-1", private_ip=f"10.0.1.{10 + i}" if i else None, zone="zone-a", **extra) for i in range(n)]


EC2 = Ec2Cloud(name="tp", region="cn-east-1", vpc_id="vpc-1", endpoints={"sts": "http://x:1", "ec2": "http://x:1", "iam": "http://x:1"},
               skip_checks=True, ssh_public_key="ssh-ed25519 AAAA test")
OS = OpenStackCloud(name="hz", cloud="hangzhou", region="RegionOne", network_id="net-1", security_group_ids=("sg-1",))


def declared(module: str) -> tuple[set[str], set[str], set[str]]:
    """Variables of a module, those without a default, and the attribute names of ``instances``."""
    text = (MODULES / module / "variables.tf").read_text(encoding="utf-8")
    blocks = dict(re.findall(r'variable "(\w+)" \{(.*?)\n\}', text, re.S))
    required = {name for name, body in blocks.items() if "default" not in body}
    instance_type = re.search(r"map\(object\(\{(.*?)\}\)\)", blocks["instances"], re.S)
    assert instance_type is not None
    attrs = set(re.findall(r"^\s*(\w+)\s*=", instance_type.group(1), re.M))
    return set(blocks), required, attrs


@pytest.mark.parametrize(("cloud", "module"), [(EC2, "ec2"), (OS, "openstack")])
def test_rendered_arguments_match_module_variables(cloud: Ec2Cloud | OpenStackCloud, module: str) -> None:
    document = render_root("gov-a", cloud, _specs(server_group="t7-web"), module_source=f"../{module}")
    arguments = document["module"][module]
    variables, required, attrs = declared(module)
    assert set(arguments) - {"source"} <= variables
    assert required <= set(arguments)
    for vm in arguments["instances"].values():
        assert set(vm) <= attrs
    assert document["output"]["instances"]["value"] == f"${{module.{module}.instances}}"


def test_ec2_rendering() -> None:
    document = render_root("gov-a", EC2, _specs(), module_source="../../modules/ec2")
    provider = document["provider"]["aws"]
    assert provider["endpoints"] == {"ec2": "http://x:1", "iam": "http://x:1", "sts": "http://x:1"}
    assert provider["skip_credentials_validation"] is True and provider["skip_requesting_account_id"] is True
    assert document["terraform"]["required_providers"]["aws"] == {"source": "hashicorp/aws", "version": "5.100.0"}
    assert document["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}
    vms = document["module"]["ec2"]["instances"]
    assert list(vms) == ["t7-0", "t7-1", "t7-2"]
    assert "private_ip" not in vms["t7-0"] and vms["t7-1"]["private_ip"] == "10.0.1.11"
    assert vms["t7-2"] == {"ticket": "t7", "index": 2, "system": "web", "instance_type": "t3.micro", "ami": "ami-1",
                           "subnet_id": "subnet-1", "private_ip": "10.0.1.12", "zone": "zone-a"}
    assert document["module"]["ec2"]["name_prefix"] == "gov-a-tp"


def test_openstack_rendering_has_ports_data_and_server_groups() -> None:
    document = render_root("gov-a", OS, _specs(server_group="t7-web"), module_source="../openstack")
    assert document["provider"] == {"openstack": {"cloud": "hangzhou", "region": "RegionOne"}}
    assert document["terraform"]["required_providers"]["openstack"]["source"] == "terraform-provider-openstack/openstack"
    module = document["module"]["openstack"]
    assert module["server_groups"] == {"t7-web": "anti-affinity"}
    assert module["instances"]["t7-1"]["fixed_ip"] == "10.0.1.11" and module["instances"]["t7-1"]["flavor"] == "t3.micro"
    assert module["security_group_ids"] == ["sg-1"]


def test_pg_backend_renders_schema_not_connection_string() -> None:
    document = render_root("gov-a", EC2, _specs(), module_source="../ec2", backend="pg")
    assert document["terraform"]["backend"] == {"pg": {"schema_name": schema_name("gov-a", "tp")}}
    assert schema_name("gov-a", "tp") == "govcloud_gov_a__tp"
    with pytest.raises(PermanentError, match="unknown terraform backend"):
        render_root("gov-a", EC2, _specs(), module_source="../ec2", backend="s3")


def test_bad_input_is_refused() -> None:
    with pytest.raises(PermanentError, match="duplicate VM names"):
        render_root("gov-a", EC2, _specs() + _specs()[:1], module_source="../ec2")
    with pytest.raises(PermanentError, match="other tenants"):
        render_root("gov-a", EC2, _specs(tenant="gov-b"), module_source="../ec2")
    with pytest.raises(PermanentError, match="cannot name a terraform workspace"):
        TerraformDriver(workspace_root=Path("/nonexistent")).workspace("Gov A", "tp")


def test_render_is_deterministic_valid_json_and_idempotent(tmp_path: Path) -> None:
    driver = TerraformDriver(workspace_root=tmp_path / "ws", modules_dir=MODULES)
    ws = driver.render("gov-a", EC2, list(reversed(_specs())))
    target = ws.directory / "main.tf.json"
    first, mtime = target.read_text(encoding="utf-8"), target.stat().st_mtime_ns
    assert (ws.directory / json.loads(first)["module"]["ec2"]["source"]).resolve() == MODULES / "ec2"
    driver.render("gov-a", EC2, _specs())
    assert target.read_text(encoding="utf-8") == first and target.stat().st_mtime_ns == mtime
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n"
    assert [w.name for w in driver.workspaces()] == ["gov-a--tp"]
    assert driver.find_workspace("gov-a", "tp") is not None and driver.find_workspace("gov-a", "other") is None


def test_secrets_stay_off_disk(tmp_path: Path) -> None:
    driver = TerraformDriver(workspace_root=tmp_path / "ws", modules_dir=MODULES, pg_conn_str=PG)
    ws = driver.render("gov-a", EC2, _specs(), secret_env={"AWS_SECRET_ACCESS_KEY": SECRET})
    env, shown = driver._env(ws)
    assert env["AWS_SECRET_ACCESS_KEY"] == SECRET and env["PG_CONN_STR"] == PG
    assert shown["AWS_SECRET_ACCESS_KEY"] == "<secret>" and shown["PG_CONN_STR"] == "<secret>"
    assert SECRET not in repr(ws)
    for path in (tmp_path / "ws").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert SECRET not in text and "pg-password" not in text, path
    assert json.loads((ws.directory / "main.tf.json").read_text(encoding="utf-8"))["terraform"]["backend"]["pg"]


def test_cli_config_uses_the_mirror_only(tmp_path: Path) -> None:
    text = cli_config(Path("/opt/tf-plugins"))
    assert 'path = "/opt/tf-plugins"' in text and "direct" not in text and "disable_checkpoint = true" in text
    driver = TerraformDriver(workspace_root=tmp_path / "ws", modules_dir=MODULES)
    env, _ = driver._env(driver.workspace("gov-a", "tp"))
    assert env["TF_CLI_CONFIG_FILE"] == str(tmp_path / "ws" / "terraformrc")
    assert env["CHECKPOINT_DISABLE"] == "1" and env["TF_IN_AUTOMATION"] == "1"
    assert (tmp_path / "ws" / "terraformrc").read_text(encoding="utf-8") == text


def test_modules_are_fmt_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.fail("terraform is not installed: the machine image ships it at /usr/local/bin (CI must too)", pytrace=False)
    result = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(REPO / "terraform")],
                            capture_output=True, text=True, check=False, env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("summary", "detail", "kind", "delay"), [
    ("Error acquiring the state lock", "ConditionalCheckFailed: lock held by 4f2c", StateLocked, 15),  # a TemporaryError
    ("creating EC2 Instance", "operation error EC2: RunInstances, https response error StatusCode: 503, RequestLimitExceeded", TemporaryError, 30),
    ("Unsupported argument", 'An argument named "flavour" is not expected here.', PermanentError, None),
    ("creating EC2 Instance", "InvalidAMIID.NotFound: The image id '[ami-x]' does not exist", PermanentError, None),
])
def test_diagnostics_map_to_errors(summary: str, detail: str, kind: type[Exception], delay: int | None) -> None:
    error = classify([Diagnostic("error", summary, detail, "module.ec2.aws_instance.vm[\"a\"]")], "terraform apply of gov-a--tp")
    assert type(error) is kind and (delay is None) == isinstance(error, PermanentError)
    assert summary in str(error) and detail.split(":")[0] in str(error)
    if delay is not None:
        assert isinstance(error, TemporaryError) and error.delay == delay


def test_one_permanent_error_makes_the_run_permanent() -> None:
    error = classify([Diagnostic("error", "Error acquiring the state lock", ""), Diagnostic("error", "Invalid reference", "x")], "plan")
    assert type(error) is PermanentError
    assert isinstance(classify([Diagnostic("error", "Saved plan is stale", "")], "apply"), StalePlan)


FAKE = '''#!{python}
import json, sys
print(json.dumps({{"type": "version", "@message": "Terraform 1.11.4", "terraform": "1.11.4"}}))
print("not json at all")
print(json.dumps({{"type": "planned_change", "@message": "a: Plan to create",
                  "change": {{"resource": {{"addr": "module.ec2.aws_instance.vm[a]"}}, "action": "create"}}}}))
print(json.dumps({{"type": "diagnostic", "@level": "error", "@message": "Error: Error acquiring the state lock",
                  "diagnostic": {{"severity": "error", "summary": "Error acquiring the state lock", "detail": "held by someone"}}}}))
sys.exit(1)
'''


def test_run_directory_events_and_failure_mapping(tmp_path: Path) -> None:
    fake = tmp_path / "terraform"
    fake.write_text(FAKE.format(python=sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    mirror = tmp_path / "mirror" / "registry.terraform.io" / "hashicorp" / "aws"
    mirror.mkdir(parents=True)
    driver = TerraformDriver(workspace_root=tmp_path / "ws", modules_dir=MODULES, binary=str(fake), mirror=tmp_path / "mirror")
    ws = driver.render("gov-a", EC2, _specs(), secret_env={"AWS_SECRET_ACCESS_KEY": SECRET})
    seen: list[tuple[str, str]] = []
    with pytest.raises(TemporaryError, match="state lock: held by someone") as caught:
        driver.init(ws, progress=lambda event, data: seen.append((event, data["ident"])))
    assert seen and seen[0][0] == "planned_change" and [e for e, _ in seen] == ["planned_change", "diagnostic"]
    run_dir = ws.directory / "runs" / seen[0][1]
    assert seen[0][1] in str(caught.value)
    assert (run_dir / "rc").read_text() == "1\n"
    status = json.loads((run_dir / "status").read_text())
    assert status["status"] == "failed" and status["errors"] == ["Error acquiring the state lock: held by someone"]
    command = json.loads((run_dir / "command").read_text())
    assert command["argv"][1] == "init" and command["env"]["AWS_SECRET_ACCESS_KEY"] == "<secret>"
    assert len((run_dir / "events.jsonl").read_text().splitlines()) == 3
    assert "not json at all" in (run_dir / "stdout").read_text()
    assert not list(run_dir.glob(".*.tmp"))


def test_missing_binary_mirror_or_provider_is_named(tmp_path: Path) -> None:
    ws_root = tmp_path / "ws"
    missing = TerraformDriver(workspace_root=ws_root, modules_dir=MODULES, binary=str(tmp_path / "no-terraform"))
    with pytest.raises(PermanentError, match=r"terraform binary .* not found"):
        missing.init(missing.render("gov-a", EC2, _specs()))
    terraform = shutil.which("terraform") or "/usr/local/bin/terraform"
    no_mirror = TerraformDriver(workspace_root=ws_root, modules_dir=MODULES, binary=terraform, mirror=tmp_path / "no-mirror")
    if shutil.which(terraform):
        with pytest.raises(PermanentError, match=r"provider mirror .*no-mirror is missing"):
            no_mirror.init(no_mirror.render("gov-a", EC2, _specs()))
        (tmp_path / "mirror").mkdir()
        no_openstack = TerraformDriver(workspace_root=ws_root, modules_dir=MODULES, binary=terraform, mirror=tmp_path / "mirror")
        with pytest.raises(PermanentError, match=r"terraform-provider-openstack/openstack .* is not in the mirror"):
            no_openstack.plan(no_openstack.render("gov-a", OS, _specs()))


def test_apply_refuses_a_plan_that_is_not_the_approved_one(tmp_path: Path) -> None:
    driver = TerraformDriver(workspace_root=tmp_path / "ws", modules_dir=MODULES)
    ws = driver.render("gov-a", EC2, _specs())
    planfile = tmp_path / "plan.tfplan"
    planfile.write_bytes(b"edited")
    with pytest.raises(StalePlan, match="not the approved one"):
        driver.apply(ws, planfile, sha256="0" * 64)
    with pytest.raises(StalePlan, match="missing"):
        driver.apply(ws, tmp_path / "gone.tfplan", sha256="0" * 64)
