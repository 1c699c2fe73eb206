"""How each centre's compute hosts are fenced (``inventory/fencing.yaml``): method, BMCs, BMC user.

Fencing is what makes automatic evacuation safe: before a dead centre's VMs are started again in its
partner, its hosts are powered off (a host cut off from the control network may still run them, and two
copies would write one volume). Methods, per centre:

* ``none`` — nothing is fenced (the default for every centre the file does not name): govcloud only reports;
* ``ipmi`` — ``ipmitool -I lanplus`` powers each compute host off through its BMC (``hosts``: host →
  BMC address and UDP port; ``user`` the BMC user). The password is never in this file: it comes from
  the environment or a 0600 file named in the settings (``govcloud/settings.py``, ``FencingSettings``);
* ``devcloud`` — the loopback cloud's own fence agent, ``govcloud devcloud host off|on|status HOST``
  (stops and starts that host's nova-compute), run like any external fence agent.

The file is optional: without it every centre's method is ``none`` (today's behaviour). Read through
``loading.py`` like every other file, so each problem names file, line and key (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from govcloud.errors import ConfigError, Problem
from govcloud.model import loading
from govcloud.model.schema import NOWHERE, Converter, NonEmpty, OneLine, Range, Where
from govcloud.model.topology import Topology

Method = Literal["none", "ipmi", "devcloud"]
Text = Annotated[str, NonEmpty(), OneLine()]


@dataclass(frozen=True)
class Bmc:
    """One compute host's baseboard management controller."""

    bmc: Text
    """Address (IP or DNS name) of the BMC on the management network."""
    port: Annotated[int, Range(minimum=1, maximum=65535)] = 623
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class CentreFence:
    """The fence method of one centre and what it needs."""

    method: Method = "none"
    user: Text | None = None
    """``ipmi``: the BMC user (the same on every BMC of the centre)."""
    cipher_suite: Annotated[int, Range(minimum=0, maximum=17)] = 3
    """``ipmi``: RMCP+ cipher suite (``ipmitool -C``); 3 (HMAC-SHA1, AES-128) is what BMCs commonly offer."""
    hosts: dict[str, Bmc] = field(default_factory=dict)
    """``ipmi``: every compute host of the centre (as nova names it) → its BMC."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)


NONE = CentreFence()


@dataclass(frozen=True)
class FencingFile:
    version: Literal[1]
    clouds: dict[str, dict[str, CentreFence]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fencing:
    """(cloud id, centre id) → how that centre is fenced; ``none`` for every centre not named."""

    centres: dict[tuple[str, str], CentreFence] = field(default_factory=dict)
    file: str = ""

    def of(self, cloud: str, centre: str) -> CentreFence:
        return self.centres.get((cloud, centre), NONE)


def load_fencing(path: Path, topology: Topology) -> Fencing:
    """The fencing file checked against the topology; a missing file means ``none`` everywhere."""
    if not path.exists() and not path.is_symlink():
        return Fencing()
    doc = loading.read(path)
    converter = Converter(doc)
    parsed = converter.dataclass(FencingFile, doc.data, ())
    problems = list(converter.problems)
    centres: dict[tuple[str, str], CentreFence] = {}
    if not problems:
        for cloud_id, by_centre in parsed.clouds.items():
            cloud = topology.cloud(cloud_id)
            if cloud is None:
                problems.append(doc.problem(("clouds", cloud_id), found=f"'{cloud_id}'", message="unknown cloud",
                                            expected="a cloud id of topology.yaml"))
                continue
            for centre_id, fence in by_centre.items():
                if cloud.centre(centre_id) is None:
                    problems.append(doc.problem(("clouds", cloud_id, centre_id), found=f"'{centre_id}'", message="unknown centre",
                                                expected="one of " + ", ".join(c.id for c in cloud.centres)))
                    continue
                problems += _check(fence)
                centres[(cloud_id, centre_id)] = fence
    if problems:
        raise ConfigError(problems)
    return Fencing(centres=centres, file=doc.file)


def _check(fence: CentreFence) -> list[Problem]:
    """What a method needs: ``ipmi`` a user and at least one host; the others no BMCs."""
    where = fence.where
    if fence.method == "ipmi":
        problems = []
        if not fence.hosts:
            problems.append(where.problem("hosts", found="no hosts", expected="every compute host of the centre → {bmc, port}",
                                          message="ipmi fencing needs the centre's BMCs"))
        if fence.user is None:
            problems.append(where.problem("user", found="nothing", expected="the BMC user", message="ipmi fencing needs a user"))
        return problems
    extra = [key for key in ("hosts", "user") if where.has(key)]
    return [where.problem(key, found=f"'{key}' with method {fence.method}", expected="only with method ipmi",
                          message="not used by this method") for key in extra]
