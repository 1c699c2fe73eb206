# mypy: ignore-errors
"""nova.virt.govcloud_fake: nova's fake driver, restartable (installed into the devcloud's venv).

The stock ``nova.virt.fake.FakeDriver`` (nova 34) takes its compute-node UUID from
``uuidsentinel`` — a new random UUID in every process — and never writes ``<state_path>/compute_id``.
A restarted nova-compute with the same ``host`` then refuses to start ("No local node identity
found…"), so ``restore-centre`` could not work. This subclass derives a fixed uuid5 from the node
name and writes the identity file on first start. Nova loads drivers only from ``nova.virt.*``, so
``govcloud devcloud install`` copies this file to ``site-packages/nova/virt/govcloud_fake.py``.
"""

import uuid

from nova.virt import fake
from nova.virt import node as virt_node


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
