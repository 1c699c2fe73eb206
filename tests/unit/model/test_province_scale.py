"""A province larger than the sample (issue 16): the scaled generator's data is valid, and fits the reader.

``bench/province_gen.py`` copies the sample's 65 tenants up to N; 5,000 tenants put 2.4 MB in
``tenants.yaml``, over the 512 KiB a ticket may have, so the admins' own files have their own bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import province_gen
from govcloud.errors import ConfigError
from govcloud.model import loading
from govcloud.model.state import load_state
from govcloud.settings import DataPaths
from tests.unit.model.test_corpus import TIC, make_dataset


def test_generated_province_is_valid(tmp_path: Path) -> None:
    """150 tenants: two whole copies of the sample and a partial third, with its parents."""
    root = province_gen.generate(tmp_path / "p", 150)
    state = load_state(DataPaths(root=root))
    assert len(state.tenants) == 150
    assert {"gd-gat", "gd-gat-k1", "gd-gat-k2"} <= set(state.tenants)
    assert state.tenants["gd-gat-k2"].parent == "gd-zf-k2"
    assert len(state.tickets) == len(list((root / "tickets").glob("*.yaml")))


def _tenants_of_size(root: Path, size: int) -> None:
    path = root / "tenants.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "#" * (size - len(text.encode("utf-8")) - 1) + "\n", encoding="utf-8")


def test_tenants_file_larger_than_a_ticket_may_be_is_read(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    _tenants_of_size(root, loading.MAX_FILE_BYTES * 2)
    assert load_state(DataPaths(root=root)).tenants


def test_tenants_file_over_its_own_bound_is_refused(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    _tenants_of_size(root, loading.MAX_PROVINCE_FILE_BYTES + 1)
    with pytest.raises(ConfigError) as info:
        load_state(DataPaths(root=root))
    assert [(p.file, p.message) for p in info.value.problems] == [("tenants.yaml", "file too large")]


def test_ticket_keeps_the_small_bound(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: "reason: " + "x" * loading.MAX_FILE_BYTES + "\n"})
    with pytest.raises(ConfigError) as info:
        load_state(DataPaths(root=root))
    assert [(p.file, p.message) for p in info.value.problems] == [(TIC, "file too large")]


def test_generator_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert province_gen.main(["--tenants", "70", "--out", str(tmp_path / "q")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "q")
    assert len(load_state(DataPaths(root=tmp_path / "q")).tenants) == 70
