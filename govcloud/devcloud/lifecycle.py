"""``up``, ``down`` and ``reset``: the devcloud's whole life, in ordered small steps.

``up`` from a clean state: PostgreSQL, epmd + RabbitMQ, keystone (+ bootstrap), every schema in
parallel, the region APIs, conductors, schedulers and computes, then the content (image, flavors,
network, AZs). From a stopped state the one-time steps are skipped by their markers. ``up`` while
running raises ``AlreadyUp`` (exit 2) and touches nothing. ``down`` stops by recorded pid / process
group only. Progress goes to the injected ``report`` callback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from govcloud.devcloud import pg, procs
from govcloud.devcloud.errors import AlreadyUp, DevcloudError, NotInstalled
from govcloud.devcloud.install import data_path, is_installed
from govcloud.devcloud.layout import Layout, load_secrets, write_private
from govcloud.devcloud.profile import Profile, Region, profile_from_json
from govcloud.devcloud.render import config_dir, db_name, db_url, keystone_url, write_all
from govcloud.devcloud.services import (
    Service,
    all_services,
    base_env,
    compute_services,
    infra_services,
    keystone_service,
    region_services,
)

Report = Callable[[str], None]
START_TIMEOUT = 180.0
STOP_GRACE = {"compute": 8.0, "nova": 10.0, "api": 10.0, "infra": 15.0}


class Clock:
    """Elapsed-time stamps for the progress report (budgets are measured with these)."""

    def __init__(self, report: Report) -> None:
        self.t0 = time.monotonic()
        self.report = report

    def __call__(self, message: str) -> None:
        self.report(f"[{time.monotonic() - self.t0:6.1f}s] {message}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def running(layout: Layout) -> dict[str, int]:
    """Service name → pid of every recorded process that still runs (PostgreSQL included)."""
    out = {}
    if layout.run.exists():
        for pidfile in sorted(layout.run.glob("*.pid")):
            pid = procs.running_pid(pidfile)
            if pid is not None:
                out[pidfile.stem] = pid
    pg_pid = pg.pid(layout)
    if pg_pid is not None and procs.alive(pg_pid):
        out["postgres"] = pg_pid
    return out


def stored_profile(layout: Layout) -> Profile | None:
    """The profile the last ``up`` used (None before the first ``up``)."""
    if not layout.profile_json.exists():
        return None
    return profile_from_json(layout.profile_json.read_text(encoding="utf-8"))


def _marker(layout: Layout, step: str) -> Path:
    return layout.markers / step


def _run_step(layout: Layout, step: str, commands: Sequence[Sequence[str]], env: dict[str, str], timeout: float) -> None:
    """Run a one-time chain of commands unless its marker exists; log to ``logs/<step>.out``."""
    if _marker(layout, step).exists():
        return
    log = layout.out_log(step)
    with open(log, "ab") as out:
        for argv in commands:
            try:
                rc = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False).returncode
            except subprocess.TimeoutExpired as exc:
                raise DevcloudError(f"{step}: timed out after {timeout:.0f} s; see {log}") from exc
            if rc != 0:
                raise DevcloudError(f"{step} failed (exit {rc}): {' '.join(argv[:4])}\n{procs.tail(log)}")
    _marker(layout, step).touch()


def _start(service: Service, layout: Layout) -> None:
    procs.start(service.argv, pidfile=layout.pidfile(service.name), log=layout.out_log(service.name), env=service.env)


def _wait_http(service: Service, layout: Layout, timeout: float = START_TIMEOUT) -> None:
    url = f"http://127.0.0.1:{service.port}/"
    procs.wait_until(lambda: procs.http_ok(url), service=service.name, pidfile=layout.pidfile(service.name), logs=service.logs, timeout=timeout)


def _wait_tcp(service: Service, layout: Layout, timeout: float = START_TIMEOUT) -> None:
    assert service.port is not None
    port = service.port
    procs.wait_until(lambda: procs.port_in_use(port), service=service.name, pidfile=layout.pidfile(service.name), logs=service.logs, timeout=timeout)


def _parallel(jobs: Sequence[Callable[[], None]]) -> None:
    """Run jobs in threads; re-raise the first failure after all finished (no half-waited children)."""
    with ThreadPoolExecutor(max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        future.result()


def _preflight(profile: Profile, layout: Layout) -> None:
    if not is_installed(layout):
        raise NotInstalled(f"devcloud not installed in {layout.root}: run `govcloud devcloud install` first")
    live = running(layout)
    if live:
        raise AlreadyUp(f"devcloud already up ({len(live)} processes, e.g. {', '.join(sorted(live)[:4])}): run `govcloud devcloud down` first")
    for pidfile in layout.run.glob("*.pid") if layout.run.exists() else []:
        pidfile.unlink()  # stale: their processes are gone
    procs.check_ports_free(profile.tcp_ports())


def _start_rabbit(profile: Profile, layout: Layout) -> Service:
    """epmd (ours unless one already listens) and RabbitMQ; returns the rabbit service to wait for."""
    epmd, rabbit = infra_services(profile, layout)
    (layout.data / "rabbitmq").mkdir(parents=True, exist_ok=True)
    (layout.logs / "rabbitmq").mkdir(parents=True, exist_ok=True)
    (layout.etc / "rabbitmq" / "rabbitmq-env.conf").touch()
    if not procs.port_in_use(profile.epmd_port):
        _start(epmd, layout)
    _start(rabbit, layout)
    return rabbit


def _keystone_steps(profile: Profile, layout: Layout, secrets: dict[str, str], env: dict[str, str]) -> list[list[str]]:
    manage = [str(layout.bin("keystone-manage")), "--config-file", str(layout.etc / "keystone" / "keystone.conf")]
    first = profile.regions[0].id
    return [
        [*manage, "db_sync"],
        [*manage, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
        [*manage, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
        [*manage, "bootstrap", "--bootstrap-password", secrets["admin"], "--bootstrap-username", "admin",
         "--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", first, "--bootstrap-admin-url", keystone_url(profile),
         "--bootstrap-public-url", keystone_url(profile), "--bootstrap-internal-url", keystone_url(profile)],
    ]


def _schema_chains(profile: Profile, layout: Layout, region: Region) -> dict[str, list[list[str]]]:
    """Per service of a region: the one-time schema commands (and nova's cell setup)."""
    nova = [str(layout.bin("nova-manage")), "--config-file", str(config_dir(layout, region, "nova") / "nova.conf")]
    ndir = config_dir(layout, region, "neutron")
    placement_conf = str(config_dir(layout, region, "placement") / "placement.conf")
    glance_conf = str(config_dir(layout, region, "glance") / "glance-api.conf")
    neutron_confs = ["--config-file", str(ndir / "neutron.conf"), "--config-file", str(ndir / "ml2_conf.ini")]
    return {
        "placement": [[str(layout.bin("placement-manage")), "--config-file", placement_conf, "db", "sync"]],
        "glance": [[str(layout.bin("glance-manage")), "--config-file", glance_conf, "db_sync"]],
        "neutron": [[str(layout.bin("neutron-db-manage")), *neutron_confs, "upgrade", "heads"]],
        "nova": [
            [*nova, "api_db", "sync"],
            [*nova, "cell_v2", "map_cell0", "--database_connection", db_url(layout, db_name("nova_cell0", region))],
            [*nova, "cell_v2", "create_cell", "--name", "cell1"],
            [*nova, "db", "sync"],
        ],
    }


def _service_jobs(profile: Profile, layout: Layout, env: dict[str, str], identity: threading.Event) -> list[Callable[[], None]]:
    """One job per region and service: schema (behind a marker), then start its processes.

    Services start as soon as their own schema is there instead of waiting for the slowest one: on
    two cores this overlap is most of the difference between ~70 s and ~45 s to "APIs up". Computes
    also wait for ``identity`` (service users exist): a compute that gets a 401 from keystone dies.
    """
    jobs: list[Callable[[], None]] = []
    for region in profile.regions:
        services = region_services(profile, layout, region) + [s for s in compute_services(profile, layout) if s.region == region.id]
        for service, commands in _schema_chains(profile, layout, region).items():
            mine = [s for s in services if s.name.startswith(f"{service}-") or (service == "nova" and s.name.startswith("nova-"))]

            def job(step: str = f"dbsync-{service}-{region.id}", commands: list[list[str]] = commands, mine: list[Service] = mine) -> None:
                # niced: keystone is the critical path (computes wait for its users), schemas are not
                _run_step(layout, step, [["nice", "-n", "10", *c] for c in commands], env, 600)
                for svc in mine:
                    if svc.kind == "compute" and not identity.wait(START_TIMEOUT):
                        raise DevcloudError("keystone's service users were not ready in time; computes not started")
                    if svc.kind != "compute" or identity.is_set():
                        _start(svc, layout)

            jobs.append(job)
    return jobs


def _databases(profile: Profile) -> list[str]:
    names = [db_name("keystone")]
    for region in profile.regions:
        names += [db_name(s, region) for s in ("placement", "glance", "neutron", "nova_api", "nova_cell0", "nova_cell1")]
    return names


def bootstrap_spec(profile: Profile, layout: Layout, secrets: dict[str, str], timeout: float) -> dict[str, object]:
    """Input of ``data/scripts/bootstrap.py`` (it runs in the services' venv, which has openstacksdk)."""
    regions = []
    for region in profile.regions:
        p = region.ports
        nova_conf = str(config_dir(layout, region, "nova") / "nova.conf")
        regions.append({
            "id": region.id,
            "endpoints": {
                "compute": f"http://127.0.0.1:{p['nova']}/v2.1",
                "placement": f"http://127.0.0.1:{p['placement']}",
                "image": f"http://127.0.0.1:{p['glance']}",
                "network": f"http://127.0.0.1:{p['neutron']}",
            },
            "centres": [{"id": c.id, "hosts": list(c.hosts)} for c in region.centres],
            "subnet": dataclasses.asdict(region.subnet),
            "discover_hosts": [str(layout.bin("nova-manage")), "--config-file", nova_conf, "cell_v2", "discover_hosts"],
        })
    return {
        "cloud": "devcloud-admin",
        "keystone_url": keystone_url(profile),
        "service_password": secrets["service"],
        "monitor_password": secrets["monitor"],
        "regions": regions,
        "flavors": [{"name": f.name, "vcpus": f.vcpus, "ram_mb": f.ram_mb, "disk_gb": f.disk_gb} for f in profile.flavors],
        "image": {"name": profile.image_name, "file": str(layout.data / "image.raw")},
        "network": {"name": profile.network_name, "physical_network": profile.physical_network},
        "timeout": timeout,
    }


def venv_script(
    layout: Layout, script: str, args: Sequence[str], *, timeout: float, log: Path | None = None,
    watch: procs.Supervisor | None = None,
) -> str:
    """Run one of ``data/scripts`` with the venv's python and our clouds.yaml; return stdout.

    While it runs, the ``watch``ed services must stay alive: one that dies is restarted once, and one
    that dies again fails ``up`` at once with its log, instead of after the script's own timeout.
    """
    env = {**base_env(layout), "OS_CLIENT_CONFIG_FILE": str(layout.clouds_yaml)}
    argv = [str(layout.bin("python")), str(data_path(f"scripts/{script}")), *args]
    what = f"{script} {args[0] if args else ''}".strip()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if watch is not None:
                    watch.check()
                if time.monotonic() > deadline:
                    raise DevcloudError(f"{what}: timed out after {timeout:.0f} s")
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(stdout + stderr)
    if proc.returncode == 3:
        raise DevcloudError(f"{what}: timed out waiting: {stdout.strip()[:500]}")
    if proc.returncode != 0:
        raise DevcloudError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(stderr.splitlines()[-15:]))
    return stdout


def _bootstrap(phase: str, profile: Profile, layout: Layout, secrets: dict[str, str], watch: procs.Supervisor | None = None) -> None:
    spec = layout.etc / f"bootstrap-{phase}.json"
    write_private(spec, json.dumps(bootstrap_spec(profile, layout, secrets, START_TIMEOUT)))
    venv_script(layout, "bootstrap.py", [phase, str(spec)], timeout=START_TIMEOUT + 60, log=layout.out_log("bootstrap"), watch=watch)


def up(profile: Profile, layout: Layout, report: Report) -> float:
    """Start everything from a clean or stopped state; return seconds until the cloud was ready."""
    clock = Clock(report)
    _preflight(profile, layout)
    layout.make_dirs()
    secrets = load_secrets(layout)
    write_all(profile, layout, secrets)
    env = base_env(layout)
    try:
        _up_steps(profile, layout, secrets, env, clock)
    except BaseException:
        clock("start failed: stopping what was started")
        down(layout, lambda _m: None)
        raise
    return clock.elapsed


def _up_steps(profile: Profile, layout: Layout, secrets: dict[str, str], env: dict[str, str], clock: Clock) -> None:
    for region in profile.regions:  # nova writes compute_id into state_path: it must exist
        for host in region.hosts:
            (layout.data / region.id / "compute" / host / "instances").mkdir(parents=True, exist_ok=True)
    pg.init(layout)
    pg.start(layout)
    pg.create_databases(layout, _databases(profile))
    clock("postgres up")
    rabbit = _start_rabbit(profile, layout)
    keystone = keystone_service(profile, layout)

    identity = threading.Event()

    def keystone_job() -> None:
        _run_step(layout, "keystone-setup", _keystone_steps(profile, layout, secrets, env), env, 300)
        _start(keystone, layout)
        _wait_http(keystone, layout)
        _bootstrap("identity", profile, layout, secrets)
        identity.set()
        clock("keystone up, users and endpoints registered")

    _parallel([keystone_job, *_service_jobs(profile, layout, env, identity)])
    clock("all schemas synced, services started")
    _wait_tcp(rabbit, layout)
    started = [s for r in profile.regions for s in region_services(profile, layout, r)] + compute_services(profile, layout)
    _parallel([functools.partial(_wait_http, s, layout) for s in started if s.port is not None])
    clock("rabbitmq and region APIs up: " + ", ".join(r.id for r in profile.regions))
    image = layout.data / "image.raw"
    if not image.exists():
        image.write_bytes(b"\0" * 1024 * 1024)  # the fake driver boots nothing: any bytes will do
    watched = [procs.Watched(s.name, layout.pidfile(s.name), functools.partial(_start, s, layout), s.logs) for s in started]
    _bootstrap("content", profile, layout, secrets, watch=procs.Supervisor(watched, report=clock))
    clock("cloud ready: computes in their AZs, image, flavors, network")


def down(layout: Layout, report: Report) -> float:
    """Stop every recorded process (computes first, RabbitMQ and PostgreSQL last); return seconds."""
    clock = Clock(report)
    profile = stored_profile(layout)
    services = all_services(profile, layout) if profile is not None else []
    known = {s.name: s.kind for s in services}
    pidfiles = sorted(layout.run.glob("*.pid")) if layout.run.exists() else []
    for kinds in (("compute",), ("nova", "api"), ("infra",)):
        batch = [p for p in pidfiles if known.get(p.stem, "api") in kinds and p.stem not in ("rabbitmq", "epmd")]
        if kinds == ("infra",):
            batch += [p for p in pidfiles if p.stem == "rabbitmq"]
        _parallel([functools.partial(_stop_quiet, p, STOP_GRACE[kinds[0]]) for p in batch])
    procs.stop(layout.pidfile("epmd"), grace=5)  # after rabbit, which still talks to it while stopping
    pg.stop(layout)
    clock("devcloud down")
    return clock.elapsed


def _stop_quiet(pidfile: Path, grace: float) -> None:
    procs.stop(pidfile, grace=grace)


def reset(layout: Layout, report: Report) -> None:
    """Wipe the cloud's data (databases, queues, images, logs, configs); keep the venv and install."""
    if running(layout):
        raise AlreadyUp("devcloud is running: run `govcloud devcloud down` before `reset`")
    for path in (layout.data, layout.logs, layout.run, layout.etc, layout.clouds_yaml, layout.secrets_file):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    report(f"devcloud data wiped in {layout.root} (the services' venv is kept)")


def region_of(profile: Profile, region_id: str) -> Region:
    for region in profile.regions:
        if region.id == region_id:
            return region
    raise DevcloudError(f"unknown region {region_id}")
