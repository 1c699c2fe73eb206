# mypy: ignore-errors
"""Agent-less ML2 mechanism driver for the devcloud (installed into its venv, not govcloud's).

Neutron's real mechanism drivers bind a port only where an L2 agent or OVN chassis runs for the
port's ``binding:host_id``. With nova's fake driver there is none, so every port would end
``binding_failed`` and nova would refuse to boot. This driver binds every port, on any host, to the
first segment as an OVS port and marks it ACTIVE; the fake driver plugs nothing anyway.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    """Bind every port to its first segment."""

    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
