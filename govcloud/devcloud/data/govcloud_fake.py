# mypy: ignore-errors
"""nova.virt.govcloud_fake: nova's fake driver, restartable (installed into the devcloud's venv).

The stock ``nova.virt.fake.FakeDriver`` (nova 34) takes its compute-node UUID from
``uuidsentinel`` — a new random UUID in every process — and never writes ``<state_path>/compute_id``.
A restarted nova-compute with the same ``host`` then refuses to start ("No local node identity
found…"), so ``restore-centre`` could not work. This subclass derives a fixed uuid5 from the node
name and writes the identity file on first start. Nova loads drivers only from ``nova.virt.*``, so
``govcloud devcloud install`` copies this file to ``site-packages/nova/virt/govcloud_fake.py``.

A live-migrated instance is forgotten on its source host (``post_live_migration``), as a real
hypervisor's source forgets it; the stock fake kept a ghost copy there.

Snapshots carry real bytes. The stock fake's ``snapshot`` only moves the task state and leaves the
image ``queued`` with no data, so a copy of it to another region would copy nothing. Here ``snapshot``
does what the libvirt driver does (``nova/virt/libvirt/driver.py``: task state IMAGE_PENDING_UPLOAD,
then IMAGE_UPLOADING, then ``self._image_api.update(context, image_id, metadata, data)`` with the
disk's bytes and ``status: active``), with a small "disk" generated for the occasion: a text header
naming the instance, the image and a per-process counter, followed by pseudo-random bytes seeded by
the instance uuid and the image id. Two servers (and two snapshots of one server) never have the same
bytes, and the same snapshot is reproducible from its header. Size: ``DISK_MIB`` MiB, or the server's
metadata ``devcloud:disk_mib`` (1 to ``MAX_DISK_MIB``) — benchmarks take larger ones.
"""

import io
import itertools
import random
import uuid

from nova.compute import task_states
from nova.image import glance
from nova.virt import fake
from nova.virt import node as virt_node

DISK_MIB = 4
MAX_DISK_MIB = 256
_COUNTER = itertools.count(1)
UPLOAD_PART = 512 * 1024


def _node_uuid(nodename):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, "govcloud-devcloud-node." + nodename))


class StableFakeDriver(fake.FakeDriver):
    """FakeDriver with a stable node identity per host."""

    def init_host(self, host):
        super().init_host(host)
        if virt_node.read_local_node_uuid() is None:
            virt_node.write_local_node_uuid(_node_uuid(self._nodes[0]))

    def get_available_resource(self, nodename):
        res = super().get_available_resource(nodename)
        res["uuid"] = _node_uuid(nodename)
        return res

    def get_nodenames_by_uuid(self, refresh=False):
        return {_node_uuid(n): n for n in self.get_available_nodes()}

    def post_live_migration(self, context, instance, block_device_info, migrate_data=None):
        """Forget a live-migrated instance on its source host, as a real hypervisor's source does.

        The stock fake keeps it (only nova's test-only ``FakeLiveMigrateDriver`` forgets it), so an instance
        live-migrated away and back, then evacuated onto its former host, failed there with "Instance …
        already exists" (seen by tests/integration/test_failover_migrate.py)."""
        self.destroy(context, instance, network_info=None, block_device_info=block_device_info)

    def snapshot(self, context, instance, image_id, update_task_state):
        """Upload a generated disk to the snapshot's image, as libvirt's driver uploads the real one.

        No check that the fake "runs" the instance: the stock fake forgets its instances when the
        compute restarts (``restore-centre``), and nova still lists them ACTIVE on this host."""
        image_api = glance.API()
        snapshot = image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        data = disk_bytes(instance.uuid, image_id, next(_COUNTER), _disk_mib(instance))
        metadata = {"status": "active", "name": snapshot["name"], "disk_format": "raw", "container_format": "bare",
                    "properties": {"image_location": "snapshot", "image_state": "available", "owner_id": instance.project_id}}
        update_task_state(task_state=task_states.IMAGE_UPLOADING, expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # purge_props=False: keep the properties createImage set (the caller's metadata, instance_uuid)
        image_api.update(context, image_id, metadata, _SmallReads(data), purge_props=False)


class _SmallReads(io.BytesIO):
    """Reads of at most ``UPLOAD_PART`` bytes. glanceclient sends a file as HTTP chunks of whatever one
    ``read(1 MiB)`` returns, and uWSGI (the devcloud's glance) refuses a chunked part of 1 MiB or more
    with its default ``--chunked-input-limit`` ("OSError: unable to receive chunked part")."""

    def read(self, size=-1):
        return super().read(UPLOAD_PART if size is None or size < 0 else min(size, UPLOAD_PART))


def _disk_mib(instance):
    """``devcloud:disk_mib`` of the server's metadata when it is a whole number in range, else ``DISK_MIB``."""
    try:
        wanted = int((instance.metadata or {}).get("devcloud:disk_mib", DISK_MIB))
    except (TypeError, ValueError):
        return DISK_MIB
    return wanted if 1 <= wanted <= MAX_DISK_MIB else DISK_MIB


def disk_bytes(instance_uuid, image_id, counter, mib):
    """The snapshot's "disk": a header line, then pseudo-random bytes up to ``mib`` MiB."""
    header = f"govcloud-fake-disk instance={instance_uuid} image={image_id} snapshot={counter}\n".encode()
    body = random.Random(f"{instance_uuid}/{image_id}").randbytes(mib * 1024 * 1024 - len(header))
    return header + body
