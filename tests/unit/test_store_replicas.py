"""The replicas table: migration 0010 creates what ``store/tables.py`` declares, and the store's
functions write and read it (listing filters, a VM's replicas oldest first)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from govcloud.store import Store, replicas
from govcloud.store.replicas import ReplicaRow
from govcloud.store.tables import metadata


def test_the_migration_creates_the_table_tables_py_declares(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    about_replicas = [d for d in diffs if "replicas" in repr(d)]
    assert about_replicas == []
    assert "replicas" in sa.inspect(store.engine).get_table_names()


def row(n: int, *, tenant: str = "gd-gat", idx: int = 0, state: str = "ready") -> ReplicaRow:
    return ReplicaRow(id=f"r{n}", ticket="t-1", idx=idx, vm=f"vm-{idx}", tenant=tenant, system="hukou" if tenant == "gd-gat" else "mzoa",
                      cloud="gd-prov", server_id="s-1", source_region="gd-gz", dr_region="gd-sg",
                      taken_at=f"2026-12-05T01:0{n}:00.000000+00:00", state=state, size=4194304, checksum="c")


def test_rows_are_written_updated_filtered_and_deleted(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        for item in (row(3), row(1), row(2, tenant="gd-mzt", idx=1), row(4, state="failed")):
            replicas.insert(conn, item)
        replicas.update(conn, "r4", error="HTTP 413", source_image=None)
    with store.transaction() as conn:
        assert [r.id for r in replicas.of_vm(conn, "t-1", 0)] == ["r1", "r3", "r4"]
        assert [r.id for r in replicas.listing(conn, tenants=["gd-mzt"])] == ["r2"]
        assert [r.id for r in replicas.listing(conn, systems=["hukou"], states=["ready"])] == ["r1", "r3"]
        assert replicas.of_vm(conn, "t-1", 0)[2].error == "HTTP 413"
        replicas.delete(conn, "r1")
        assert [r.id for r in replicas.listing(conn, tenants=[])] == []
        assert len(replicas.listing(conn)) == 3
    store.close()
