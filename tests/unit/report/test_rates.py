"""rates.yaml (issue 15, item 2): the shipped file loads; every problem names file, line and key; a
missing file is named; a cloud that is not in the topology is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.errors import ConfigError
from govcloud.model.rates import RateCard, ResourceHours, load_rates
from govcloud.model.state import load_state
from govcloud.settings import DataPaths
from tests.support.tickets import REPO

TOPOLOGY = load_state(DataPaths(root=REPO), []).topology


def test_the_shipped_rates_load() -> None:
    rates = load_rates(REPO / "rates.yaml", root=REPO, topology=TOPOLOGY)
    assert rates.currency == "CNY" and rates.card("tp-ecloud").vcpu_hour == 0.08 and rates.card("gd-prov") == rates.default
    assert rates.card("gd-prov", "dr") == rates.dr.default and rates.idle.days == 7 and rates.sla.total_hours == 48


def test_cost_of_resource_hours() -> None:
    card = RateCard(instance_hour=1.0, vcpu_hour=0.5, ram_gb_hour=0.25, disk_gb_hour=0.01)
    assert card.cost(ResourceHours(10, 20, 2048 * 10, 100)) == pytest.approx(10 + 10 + 5 + 1)


def problems_of(tmp_path: Path, text: str) -> list[tuple[str, int, str, str]]:
    (tmp_path / "rates.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rates(tmp_path / "rates.yaml", root=tmp_path, topology=TOPOLOGY)
    return [(p.file, p.line, p.key, p.found) for p in caught.value.problems]


def test_a_negative_price_and_an_unknown_cloud_name_file_line_and_key(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "version: 1\ndefault:\n  vcpu_hour: -1\nsla: {total_hours: many}\n")
    assert [(f, line, key) for f, line, key, _ in found] == [("rates.yaml", 3, "default.vcpu_hour"), ("rates.yaml", 4, "sla.total_hours")]
    found = problems_of(tmp_path, "version: 1\nclouds:\n  gd-prov: {vcpu_hour: 1}\n  nowhere: {vcpu_hour: 1}\n")
    assert found == [("rates.yaml", 4, "clouds.nowhere", "'nowhere'")]


def test_a_missing_rates_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_rates(tmp_path / "rates.yaml", root=tmp_path, topology=TOPOLOGY)
    (problem,) = caught.value.problems
    assert problem.file == "rates.yaml" and problem.found == "no such file"
