"""Start-up (issue 16): ``govcloud --help`` and ``govcloud version`` import nothing they do not use.

Nearly all of the old start-up time was imports done for nothing: rich (and rich.progress), the devcloud
package (urllib, http.client), the model and PyYAML. Which modules a fresh process has loaded holds that
property without timing anything (``bench/cli_speed.py`` measures the time against ``openstack --help``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("rich", "yaml", "govcloud.model", "govcloud.devcloud", "govcloud.store", "govcloud.engine", "govcloud.drivers",
         "govcloud.exporter", "sqlalchemy", "openstack", "ansible_runner", "prometheus_client", "urllib.request", "http.client")

_PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["govcloud", *json.loads(sys.argv[1])]
from govcloud.cli import main
main()
"""


def _modules(*args: str) -> tuple[set[str], str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(args))], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES "))), done.stdout


@pytest.mark.parametrize("args", [("--help",), ("version",), ("ticket", "--help"), ("devcloud", "--help")])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    modules, out = _modules(*args)
    assert out.strip()
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == []


def test_a_reading_command_still_gets_what_it_needs() -> None:
    modules, out = _modules("--root", str(REPO), "topology", "show", "-o", "json")
    assert json.loads(out)
    assert {"yaml", "govcloud.model.state"} <= modules
