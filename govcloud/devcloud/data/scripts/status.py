# mypy: ignore-errors
"""Run inside the devcloud's venv: nova-compute services of every region as JSON on stdout.

usage: python status.py CLOUD REGION[,REGION…] [--wait-state up|down --hosts h1,h2 --timeout S]
With ``--wait-state`` it polls until those hosts report that state (exit 3 on timeout).
"""

import json
import sys
import time

import openstack


def computes(cloud, regions):
    out = []
    for rid in regions:
        conn = openstack.connect(cloud=cloud, region_name=rid)
        for s in conn.compute.services(binary="nova-compute"):
            out.append({"region": rid, "host": s.host, "zone": s.availability_zone, "state": s.state,
                        "status": s.status, "forced_down": bool(s.is_forced_down)})
    return out


def main():
    args = sys.argv[1:]
    cloud, regions = args[0], args[1].split(",")
    opts = dict(zip(args[2::2], args[3::2], strict=False))
    if "--wait-state" not in opts:
        print(json.dumps(computes(cloud, regions)))
        return
    hosts = set(opts["--hosts"].split(","))
    deadline = time.monotonic() + float(opts.get("--timeout", "60"))
    while True:
        rows = [r for r in computes(cloud, regions) if r["host"] in hosts]
        if len(rows) == len(hosts) and all(r["state"] == opts["--wait-state"] for r in rows):
            print(json.dumps(rows))
            return
        if time.monotonic() > deadline:
            print(json.dumps(rows))
            sys.exit(3)
        time.sleep(1)


if __name__ == "__main__":
    main()
