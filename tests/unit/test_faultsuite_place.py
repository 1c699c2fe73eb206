"""The fault suite's Place (tests/support/faultsuite.py) writes one audit chain: what its in-process engine
appends (submit, approve, retire) and what the CLI and daemons it starts append must be signed with the same
key, or the CLI refuses to append after the engine and ``audit verify`` fails, whatever the faults did."""

from __future__ import annotations

from pathlib import Path

from tests.support.faultsuite import Place, approved_ticket


def test_what_the_engine_of_a_place_appends_verifies_with_the_cli_of_that_place(tmp_path: Path) -> None:
    place = Place(state_dir=tmp_path / "state", db=f"sqlite:///{tmp_path / 'state.db'}", clouds_yaml=tmp_path / "clouds.yaml")
    approved_ticket(place, tmp_path, 2, roles=())
    verified = place.cli("audit", "verify", timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain intact" in verified.stdout
