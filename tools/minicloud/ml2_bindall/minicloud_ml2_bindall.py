"""ML2 mechanism driver for the minicloud test cloud: binds every port.

There are no L2 agents in the test cloud, so no real mechanism driver can
bind a port and Nova would see ``binding_failed``. This driver binds every
port of vnic type ``normal`` on the first segment of its network, with
vif_type ``ovs`` and status ACTIVE. It configures nothing anywhere: there is
no dataplane. Test use only.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api

VIF_DETAILS = {
    portbindings.CAP_PORT_FILTER: True,
    portbindings.VIF_DETAILS_CONNECTIVITY: portbindings.CONNECTIVITY_L2,
}


class BindAllMechanismDriver(api.MechanismDriver):

    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        vnic_type = context.current.get(portbindings.VNIC_TYPE,
                                        portbindings.VNIC_NORMAL)
        if vnic_type != portbindings.VNIC_NORMAL:
            return
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                dict(VIF_DETAILS),
                                status=constants.PORT_STATUS_ACTIVE)
            return
