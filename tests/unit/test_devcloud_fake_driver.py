"""The devcloud's fake hypervisor (``govcloud/devcloud/data/govcloud_fake.py``) writes real bytes into a
snapshot. The module runs inside nova (the devcloud's venv); here it is loaded with stand-ins for the
few nova modules it imports, so that its snapshot path — task states, the image API update, the bytes
and their parts — is checked in milliseconds. The devcloud integration test (tests/integration/
test_replicate.py) checks the same against the real nova and glance."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from govcloud.devcloud import install
from govcloud.devcloud.install import data_path

MIB = 1024 * 1024


class Glance:
    """nova.image.glance.API as the snapshot path uses it."""

    calls: ClassVar[list[tuple[str, Any]]] = []

    def get(self, _context: Any, image_id: str) -> dict[str, str]:
        return {"id": image_id, "name": f"snap-of-{image_id}"}

    def update(self, _context: Any, image_id: str, metadata: dict[str, Any], data: Any, purge_props: bool = True) -> None:
        parts = []
        while True:  # as glanceclient's _chunk_body: read(1 MiB) until empty, each read one HTTP chunk
            part = data.read(MIB)
            if not part:
                break
            parts.append(part)
        Glance.calls.append(("update", {"image": image_id, "metadata": metadata, "parts": parts, "purge_props": purge_props}))


@pytest.fixture
def fake() -> Iterator[Any]:
    stubs = {name: types.ModuleType(name) for name in ("nova", "nova.compute", "nova.compute.task_states", "nova.image",
                                                        "nova.image.glance", "nova.virt", "nova.virt.fake", "nova.virt.node")}
    stubs["nova.compute.task_states"].IMAGE_PENDING_UPLOAD = "image_pending_upload"  # type: ignore[attr-defined]
    stubs["nova.compute.task_states"].IMAGE_UPLOADING = "image_uploading"  # type: ignore[attr-defined]
    stubs["nova.image.glance"].API = Glance  # type: ignore[attr-defined]
    stubs["nova.virt.fake"].FakeDriver = type("FakeDriver", (), {})  # type: ignore[attr-defined]
    stubs["nova.compute"].task_states = stubs["nova.compute.task_states"]  # type: ignore[attr-defined]
    stubs["nova.image"].glance = stubs["nova.image.glance"]  # type: ignore[attr-defined]
    stubs["nova.virt"].fake = stubs["nova.virt.fake"]  # type: ignore[attr-defined]
    stubs["nova.virt"].node = stubs["nova.virt.node"]  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location("govcloud_fake_under_test", data_path("govcloud_fake.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        Glance.calls = []
        yield module
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def snapshot(fake: Any, uuid: str, image_id: str, metadata: dict[str, str] | None = None) -> tuple[list[Any], dict[str, Any]]:
    states: list[Any] = []
    instance = types.SimpleNamespace(uuid=uuid, metadata=metadata or {}, project_id="p-1")
    fake.StableFakeDriver().snapshot(None, instance, image_id, lambda **kw: states.append(kw))
    (call,) = [c for c in Glance.calls if c[1]["image"] == image_id]
    return states, call[1]


def test_a_snapshot_uploads_an_active_image_of_real_bytes_in_parts_uwsgi_accepts(fake: Any) -> None:
    states, sent = snapshot(fake, "u-1", "i-1")
    assert states == [{"task_state": "image_pending_upload"},
                      {"task_state": "image_uploading", "expected_state": "image_pending_upload"}]  # as libvirt's driver
    assert sent["metadata"]["status"] == "active" and sent["metadata"]["name"] == "snap-of-i-1"
    assert sent["purge_props"] is False  # the caller's metadata (govcloud:replica …) stays on the image
    data = b"".join(sent["parts"])
    assert len(data) == 4 * MIB and data.startswith(b"govcloud-fake-disk instance=u-1 image=i-1 ")
    assert max(len(p) for p in sent["parts"]) <= 512 * 1024 < MIB  # uWSGI refuses chunked parts of 1 MiB


def test_two_servers_and_two_snapshots_of_one_server_have_different_bytes(fake: Any) -> None:
    first = b"".join(snapshot(fake, "u-1", "i-1")[1]["parts"])
    other_server = b"".join(snapshot(fake, "u-2", "i-2")[1]["parts"])
    second_of_first = b"".join(snapshot(fake, "u-1", "i-3")[1]["parts"])
    assert len({first[100:], other_server[100:], second_of_first[100:]}) == 3
    assert fake.disk_bytes("u-1", "i-1", 1, 1)[80:] == fake.disk_bytes("u-1", "i-1", 9, 1)[80:]  # reproducible from the header


@pytest.mark.parametrize(("asked", "mib"), [("16", 16), ("0", 4), ("9999", 4), ("x", 4)])
def test_the_disk_size_comes_from_the_server_metadata_within_bounds(fake: Any, asked: str, mib: int) -> None:
    sent = snapshot(fake, "u-1", f"i-{asked}", {"devcloud:disk_mib": asked})[1]
    assert sum(len(p) for p in sent["parts"]) == mib * MIB


def test_install_copies_the_driver_into_nova_virt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``govcloud devcloud install`` is how a fresh machine (and a running devcloud, before its computes
    restart) gets the driver: the copy is unconditional, so a changed driver always lands."""
    site = tmp_path / "site-packages"
    (site / "nova" / "virt").mkdir(parents=True)
    (site / "nova" / "virt" / "govcloud_fake.py").write_text("# an older driver\n", encoding="utf-8")
    (site / "govcloud_bindall-1.0.dist-info").mkdir()
    monkeypatch.setattr(install, "site_packages", lambda _layout: site)
    install.install_shims(types.SimpleNamespace(), lambda _message: None)  # type: ignore[arg-type]
    copied = (site / "nova" / "virt" / "govcloud_fake.py").read_bytes()
    assert copied == data_path("govcloud_fake.py").read_bytes() and b"def snapshot" in copied
