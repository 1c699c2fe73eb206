"""Persistence: SQLite by default, PostgreSQL by URL; alembic migrations; the hash-chained audit log.

The only package that imports SQLAlchemy and alembic. Callers get a ``Store`` and talk to it in
govcloud's terms (``store.audit.append(...)``), never in SQL.
"""

from govcloud.store.db import Store

__all__ = ["Store"]
