"""The in-memory cloud and engine context of test_recover.py, for every failover test module."""

from tests.unit.failover.test_recover import cloud, ctx

__all__ = ["cloud", "ctx"]
