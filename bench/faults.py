"""Benchmark: the fault suite's figures on the devcloud (issue 11), with N-VM applies (default 100).

usage: python bench/faults.py [--count N] [--share 0.2] [--kills 20] [--seed 11] [--only faults|kills|leader]

1. baseline: an N-VM apply through the fault proxy with no faults (the proxy's own cost included);
2. faults: an N-VM apply with ``--share`` of keystone, nova and neutron calls answered by a fault
   (500/502/503, reset before or after forwarding, a held connection past the client's api_timeout);
3. kills: an N-VM apply killed with SIGKILL ``--kills`` times at random points, then run to the end;
4. leader: two ``govcloud daemon`` processes on one PostgreSQL store (a private server, tests/support/postgres.py),
   an N-VM ticket approved, the leader's process group SIGKILLed ``--kills`` times at random points of the
   apply and started again each time; the ticket must end active.

Prints, per run: faults injected per service and kind, creates whose answer was lost, the engine's
retries, the wall time and its ratio to the baseline, and the census: servers, duplicates, orphans, missing,
not ACTIVE; for the kill runs also lost tickets, ledger and ``govcloud audit verify``, and for the leader run the
takeover times (SIGKILL to another daemon recorded as leader: min, median, max). Every ticket is
retired through govcloud at the end and checked gone in nova. Needs a running devcloud.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.devcloud.layout import devcloud_dir
from govcloud.engine import provision, tickets
from tests.support.faultproxy import FaultPlan, FaultProxy, devcloud_upstreams, write_clouds_yaml
from tests.support.faultsuite import (
    OPERATOR,
    DaemonPair,
    Place,
    approved_ticket,
    census,
    kill_apply,
    kill_leaders,
    kill_points,
    leader_kill_points,
    ledger_consistent,
    nova,
    retire_all,
    wait_state,
)
from tests.support.postgres import create_database, postgres_server
from tests.support.tickets import open_store

API_TIMEOUT, HOLD = 8.0, 12.0


def proxied_apply(place: Place, work: Path, count: int, share: float, seed: int) -> dict[str, Any]:
    """One N-VM apply through the proxy; returns its figures (the ticket is retired by the caller)."""
    ticket_id = approved_ticket(place, work, count)
    events: collections.Counter[str] = collections.Counter()

    def progress(event: str, data: dict[str, Any]) -> None:
        events[event if event != "vm" else f"vm:{data.get('status')}"] += 1

    plan = FaultPlan({"keystone": share, "nova": share, "neutron": share}, seed=seed, hold=HOLD)
    with FaultProxy(devcloud_upstreams(), plan) as proxy:
        faulty = write_clouds_yaml(place.clouds_yaml, work / f"clouds-{ticket_id}.yaml", proxy, api_timeout=API_TIMEOUT)
        operator = place.engine(OPERATOR, clouds_yaml=faulty, progress=progress)
        started = time.monotonic()
        (outcome,) = provision.apply(operator, [ticket_id], configure=False)
        wall = time.monotonic() - started
        summary = proxy.summary()
    found = census(nova(place.clouds_yaml), operator, [ticket_id])
    return {"ticket": ticket_id, "state": outcome.state, "why": outcome.detail[:600], "wall_s": round(wall, 1), "faults": summary,
            "retries": events["retry"],
            "adopted_after_lost_answer": events["vm:ADOPTED-AFTER-LOST-ANSWER"], "servers": found.servers,
            "duplicates": found.duplicates, "orphans": found.orphans, "missing": found.missing, "not_active": found.not_active,
            "ledger": ledger_consistent(operator, ticket_id, count) or "consistent", "detail": found.detail[:10]}


def killed_apply(place: Place, work: Path, count: int, kills: int, seed: int, span: float) -> dict[str, Any]:
    """An N-VM apply killed ``kills`` times, then run to the end."""
    ticket_id = approved_ticket(place, work, count)
    conn = nova(place.clouds_yaml)
    started = time.monotonic()
    runs = [kill_apply(place, ticket_id, after, conn) for after in kill_points(seed, kills, span)]
    final = place.cli("apply", "--skip-configure", ticket_id)
    wall = time.monotonic() - started
    operator = place.engine(OPERATOR)
    found = census(conn, operator, [ticket_id])
    verified = place.cli("audit", "verify")
    state = tickets.show(operator, ticket_id).state
    return {"ticket": ticket_id, "state": state, "wall_s": round(wall, 1), "final_apply_rc": final.returncode,
            "kills": sum(run.killed for run in runs), "kill_points_s": [run.after for run in runs],
            "servers_at_each_kill": [run.servers_then for run in runs], "servers": found.servers,
            "duplicates": found.duplicates, "orphans": found.orphans, "missing": found.missing, "not_active": found.not_active,
            "lost_tickets": 0 if state == "active" else 1, "ledger": ledger_consistent(operator, ticket_id, count) or "consistent",
            "audit_verify": "intact" if verified.returncode == 0 else (verified.stdout + verified.stderr)[-500:],
            "detail": found.detail[:10]}


def killed_leader(clouds_yaml: Path, work: Path, count: int, kills: int, seed: int) -> dict[str, Any]:
    """Two daemons on a private PostgreSQL, an N-VM ticket, the leader killed ``kills`` times; the ticket is
    retired here (the database goes with the server)."""
    with postgres_server() as url:
        db = create_database(url, "leaderkill")
        open_store(db).close()  # migrate once, before two processes race to
        place = Place(state_dir=work / "leader-state", db=db, clouds_yaml=clouds_yaml)
        conn = nova(clouds_yaml)
        operator = place.engine(OPERATOR)
        pair = DaemonPair(db, work / "leader")
        ticket_id = ""
        try:
            pair.wait_ready()
            started = time.monotonic()
            ticket_id = approved_ticket(place, work, count, roles=())
            runs = kill_leaders(pair, operator, ticket_id, leader_kill_points(seed, kills, count), conn)
            state = wait_state(operator, ticket_id, "active", timeout=1800)
            wall = time.monotonic() - started
            found = census(conn, operator, [ticket_id])
            verified = place.cli("audit", "verify")
            takeovers = [run.takeover_s for run in runs]
            return {"ticket": ticket_id, "state": state, "wall_s": round(wall, 1), "kills": len(runs),
                    "takeover_s": {"min": min(takeovers), "median": statistics.median(takeovers), "max": max(takeovers)} if takeovers else None,
                    "kill_points": [(run.at, run.delay) for run in runs], "servers_at_each_kill": [run.servers_then for run in runs],
                    "servers": found.servers, "duplicates": found.duplicates, "orphans": found.orphans, "missing": found.missing,
                    "not_active": found.not_active, "lost_tickets": 0 if state == "active" else 1,
                    "ledger": ledger_consistent(operator, ticket_id, count) or "consistent",
                    "audit_verify": "intact" if verified.returncode == 0 else (verified.stdout + verified.stderr)[-500:],
                    "detail": found.detail[:10]}
        finally:
            pair.close()
            if ticket_id:
                left = retire_all(place, [ticket_id], conn)
                print("leader cleanup", "clean" if not left else f"LEFT {left}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--span", type=float, default=30.0,
                        help="each kill lands at a random second in (1, SPAN) of its apply (each resumed apply goes further)")
    parser.add_argument("--only", choices=("faults", "kills", "leader"))
    args = parser.parse_args()

    clouds_yaml = Path(os.environ.get("OS_CLIENT_CONFIG_FILE") or devcloud_dir(os.environ) / "clouds.yaml")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="govcloud-faults-") as tmp:
        work = Path(tmp)
        # The daemons (own state directories) and the CLI sign the audit chain with one key, as hosts sharing a store must.
        os.environ.setdefault("GOVCLOUD_AUDIT_KEY_FILE", str(work / "audit.key"))
        os.environ.setdefault("GOVCLOUD_AUDIT_ANCHOR", str(work / "audit.anchor"))
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
        place = Place(state_dir=work / "state", db=f"sqlite:///{work / 'state.db'}", clouds_yaml=clouds_yaml)
        made: list[str] = []
        try:
            if args.only in (None, "faults"):
                for name, share in (("baseline", 0.0), ("faults", args.share)):
                    results[name] = proxied_apply(place, work, args.count, share, args.seed)
                    made.append(results[name]["ticket"])
                    print(name, json.dumps(results[name], ensure_ascii=False), flush=True)
                results["faults"]["wall_vs_baseline"] = round(results["faults"]["wall_s"] / results["baseline"]["wall_s"], 2)
            if args.only in (None, "leader"):
                results["leader"] = killed_leader(clouds_yaml, work, args.count, args.kills, args.seed)
                print("leader", json.dumps(results["leader"], ensure_ascii=False), flush=True)
            if args.only in (None, "kills"):
                results["kills"] = killed_apply(place, work, args.count, args.kills, args.seed, args.span)
                made.append(results["kills"]["ticket"])
                print("kills", json.dumps(results["kills"], ensure_ascii=False), flush=True)
        finally:
            left = retire_all(place, made, nova(clouds_yaml))
            print("cleanup", "clean" if not left else f"LEFT {left}", flush=True)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    bad = [name for name, r in results.items() if name != "baseline" and (r["duplicates"] or r["orphans"] or r["state"] != "active")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
