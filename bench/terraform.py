"""Benchmark: plan + apply N instances through govcloud's Terraform driver against bare ``terraform apply``
of the same rendered root module, side by side on the same moto server.

usage: python bench/terraform.py [N] [--rounds R]

Each round, from an empty cloud (moto reset, a fresh VPC and subnet) and a fresh workspace:

1. bare: copy the rendered ``main.tf.json`` into an empty directory; time ``terraform init`` +
   ``terraform apply -auto-approve`` (what an operator would type), with the same CLI config and env;
2. bare, saved plan (the fair baseline for plan-bound approval): the same copy; time ``terraform init`` +
   ``terraform plan -out=PLAN`` + ``terraform apply PLAN`` — two terraform processes, like govcloud's;
3. govcloud: time ``render`` → ``plan`` (init, saved plan, summary, sha256) → ``apply`` of that saved plan,
   with the run directories, event log and progress callback.

Prints the median wall times and govcloud's overhead against both baselines. Target: ≤ 5 %. Needs
terraform, the provider mirror (/opt/tf-plugins) and ``moto_server`` (pip install 'moto[server]').
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.drivers.terraform import Ec2Cloud, InstanceSpec, TerraformDriver
from tests.support.moto import MotoServer, moto_server

TENANT, CLOUD = "bench", "thirdparty"


def fresh_cloud(moto: MotoServer) -> tuple[Ec2Cloud, str, str]:
    import boto3

    moto.reset()
    env = moto.credentials_env
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=moto.region, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24", AvailabilityZone=f"{moto.region}a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    cloud = Ec2Cloud(name=CLOUD, region=moto.region, vpc_id=vpc, endpoints={"ec2": moto.url, "sts": moto.url, "iam": moto.url},
                     skip_checks=True)
    return cloud, subnet, ami


def specs(n: int, subnet: str, ami: str) -> list[InstanceSpec]:
    return [InstanceSpec(name=f"b1-{i}", index=i, ticket="b1", tenant=TENANT, system="bench", size="t3.micro", image=ami, network=subnet,
                         private_ip=f"10.30.1.{10 + i}") for i in range(n)]


BARE = [["terraform", "init", "-input=false"], ["terraform", "apply", "-auto-approve", "-input=false"]]
SAVED_PLAN = [["terraform", "init", "-input=false"], ["terraform", "plan", "-input=false", "-out=bare.tfplan"],
              ["terraform", "apply", "-input=false", "bare.tfplan"]]


def bare(moto: MotoServer, n: int, base: Path, commands: list[list[str]] = BARE, name: str = "bare") -> float:
    """Render with the driver (untimed), then time the plain terraform ``commands`` in a copy."""
    cloud, subnet, ami = fresh_cloud(moto)
    driver = TerraformDriver(workspace_root=base / f"render-{name}")
    ws = driver.render(TENANT, cloud, specs(n, subnet, ami), secret_env=moto.credentials_env)
    env, _ = driver._env(ws)
    work = base / name
    work.mkdir()
    source = Path(os.path.relpath(driver.modules_dir / "ec2", work))
    text = (ws.directory / "main.tf.json").read_text(encoding="utf-8").replace(
        os.path.relpath(driver.modules_dir / "ec2", ws.directory), str(source))
    (work / "main.tf.json").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    for argv in commands:
        subprocess.run(argv, cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def govcloud(moto: MotoServer, n: int, base: Path) -> tuple[float, dict[str, Any]]:
    cloud, subnet, ami = fresh_cloud(moto)
    events: list[str] = []
    started = time.perf_counter()
    driver = TerraformDriver(workspace_root=base / "govcloud")
    ws = driver.render(TENANT, cloud, specs(n, subnet, ami), secret_env=moto.credentials_env)
    plan = driver.plan(ws, progress=lambda event, data: events.append(event))
    planned = time.perf_counter() - started
    result = driver.apply(ws, plan.planfile, sha256=plan.sha256, progress=lambda event, data: events.append(event))
    elapsed = time.perf_counter() - started
    assert result.add == plan.add == n + 1, (result, plan)
    return elapsed, {"plan": planned, "events": len(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("terraform") is None:
        sys.exit("terraform not on PATH")
    bare_times: list[float] = []
    saved_times: list[float] = []
    ours: list[float] = []
    with moto_server() as moto:
        for round_ in range(args.rounds):
            base = Path(tempfile.mkdtemp(prefix="govcloud-bench-tf-"))
            try:
                bare_times.append(bare(moto, args.n, base))
                saved_times.append(bare(moto, args.n, base, SAVED_PLAN, "saved"))
                elapsed, info = govcloud(moto, args.n, base)
                ours.append(elapsed)
                print(f"round {round_ + 1}: bare {bare_times[-1]:6.1f} s   bare saved plan {saved_times[-1]:6.1f} s   "
                      f"govcloud {elapsed:6.1f} s (plan {info['plan']:.1f} s, {info['events']} events)", flush=True)
            finally:
                shutil.rmtree(base, ignore_errors=True)
    b, s, g = statistics.median(bare_times), statistics.median(saved_times), statistics.median(ours)
    print(f"\n{args.n} instances, median of {args.rounds}:")
    print(f"  bare terraform init + apply -auto-approve            {b:6.1f} s")
    print(f"  bare terraform init + plan -out + apply PLAN         {s:6.1f} s")
    print(f"  govcloud render + plan + apply(saved plan)           {g:6.1f} s")
    print(f"  overhead vs the saved-plan baseline (same workflow)  {100 * (g / s - 1):+6.1f} %   (target ≤ 5 %)")
    print(f"  overhead vs apply -auto-approve (no approval step)   {100 * (g / b - 1):+6.1f} %")


if __name__ == "__main__":
    main()
