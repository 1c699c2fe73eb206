"""Unit tests never reach the shared devcloud: its fence agent is replaced by one that refuses."""

from __future__ import annotations

import sys

import pytest

from govcloud.failover import fence

REAL_DEVCLOUD_AGENT = fence.DEVCLOUD_AGENT
"""The shipped template, for the one test that checks it (test_ipmi_driver.py) and puts it back."""


@pytest.fixture(autouse=True)
def no_devcloud_fence_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake cloud's hosts have the devcloud's names (gz-main-1...): a fence that slipped through the
    fixtures' ``no_fencing`` would stop real computes. Here it prints no power state: a permanent error, at once."""
    monkeypatch.setattr(fence, "DEVCLOUD_AGENT", (sys.executable, "-c", "print('unit tests never fence the devcloud')"))
