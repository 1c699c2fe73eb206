"""A scaled province: the repository's sample data (65 tenants) copied until it has N tenants, still valid.

usage: python bench/province_gen.py --tenants 5000 [--out DIR] [--source DIR]

The copy ``k`` of a sample tenant ``gd-gat`` is ``gd-gat-kN`` (copy 0 keeps the sample's ids, so the
sample's tickets and users still name real tenants); each copy keeps its parents inside the same copy,
so the hierarchy, the systems, the contacts and the quota layout are the sample's, multiplied. The last
copy is partial: the first tenants of the sample file (parents come before their children there).

What is written under DIR (default: a new temporary directory, printed), usable with ``--root DIR``:

- ``inventory/topology.yaml``, ``users.yaml``, ``tickets/``: the sample's, unchanged;
- ``tenants.yaml``: all N tenants in one file, as a province keeps them (5,000 tenants ≈ 2.4 MB);
- ``quotas/``: the sample's ``policy.yaml``, and every other sample quota file repeated once per copy
  (``cities-k0003.yaml``...), so that no quota file grows with N.

The generator writes data through PyYAML's dumper, not govcloud's loader: it is a bench tool, and the
check that the result is valid is ``govcloud --root DIR validate`` itself (``bench/cli_speed.py`` runs it).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

SAMPLE = Path(__file__).resolve().parent.parent


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8")


def _renamed(tenant_id: str, k: int) -> str:
    return tenant_id if k == 0 else f"{tenant_id}-k{k}"


def _tenant_copies(tenants: list[dict[str, Any]], count: int) -> tuple[list[dict[str, Any]], list[set[str]]]:
    """``count`` tenants: whole copies of the sample, then the first ones again; the ids in each copy."""
    out: list[dict[str, Any]] = []
    members: list[set[str]] = []
    k = 0
    while len(out) < count:
        take = tenants[: count - len(out)]
        members.append({t["id"] for t in take})
        for tenant in take:
            twin = copy.deepcopy(tenant)
            twin["id"] = _renamed(tenant["id"], k)
            if twin.get("parent") is not None:
                twin["parent"] = _renamed(tenant["parent"], k)
            out.append(twin)
        k += 1
    return out, members


def _quota_copy(doc: dict[str, Any], k: int, present: set[str]) -> dict[str, Any]:
    """One sample quota file for copy ``k``: entries of tenants absent from that copy are left out."""
    twin = {key: value for key, value in doc.items() if key not in ("quotas", "totals", "policy", "tiers")}
    for key in ("quotas", "totals"):
        if key in doc:
            twin[key] = [dict(copy.deepcopy(q), tenant=_renamed(q["tenant"], k)) for q in doc[key] if q["tenant"] in present]
    return twin


def generate(out: Path, tenants: int, source: Path = SAMPLE) -> Path:
    """Write a province of ``tenants`` tenants under ``out`` (created); return ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("inventory/topology.yaml", "users.yaml"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, out / name)
    (out / "tickets").mkdir(exist_ok=True)
    (out / "quotas").mkdir(exist_ok=True)
    for ticket in sorted((source / "tickets").glob("*.yaml")):
        shutil.copyfile(ticket, out / "tickets" / ticket.name)
    sample = _load(source / "tenants.yaml")
    copies, members = _tenant_copies(sample["tenants"], tenants)
    _write(out / "tenants.yaml", {"version": sample["version"], "tenants": copies})
    for quota_file in sorted((source / "quotas").glob("*.yaml")):
        doc = _load(quota_file)
        if not doc.get("quotas") and not doc.get("totals"):  # policy and tiers: defined once
            shutil.copyfile(quota_file, out / "quotas" / quota_file.name)
            continue
        if doc.get("policy") is not None or doc.get("tiers"):
            raise SystemExit(f"{quota_file}: policy/tiers beside quotas; the generator copies quotas only")
        for k, present in enumerate(members):
            _write(out / "quotas" / f"{quota_file.stem}-k{k:04d}.yaml", _quota_copy(doc, k, present))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, required=True, help="how many tenants (≥ 1)")
    parser.add_argument("--out", type=Path, help="directory to write (default: a new temporary directory)")
    parser.add_argument("--source", type=Path, default=SAMPLE, help="sample data to scale (default: this repository)")
    args = parser.parse_args(argv)
    if args.tenants < 1:
        parser.error("--tenants must be at least 1")
    out = args.out or Path(tempfile.mkdtemp(prefix=f"govcloud-province-{args.tenants}-"))
    generate(out, args.tenants, args.source)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
