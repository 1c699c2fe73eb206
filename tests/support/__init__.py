"""Test harness helpers (servers the tests start themselves)."""
