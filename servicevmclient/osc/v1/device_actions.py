"""openstack servicevm device reboot|reset|shutdown|start|resize|scale|
reconfigure|heal|respawn, device snapshot create|delete|revert, device nic
attach|detach, and device action (any action by name).

Each starts an operation on the device (POST /v1/devices/{id}/action);
which actions a device has depends on its template's device driver (the
API answers 400 naming the supported ones): nova has reboot, reset,
shutdown, start, resize, snapshots and NICs; heat has scale; every device
has reconfigure (apply its service instances' configuration again), and
a DEAD or ERROR device heal and respawn.
"""

from osc_lib.command import command

from servicevmclient.osc.v1 import common
from servicevmclient.osc.v1 import devices


class DeviceAction(command.ShowOne):
    """Base of the action commands: ACTION, and PARAMS as (option, param
    key, metavar, help, type, required) tuples."""

    ACTION = None
    PARAMS = ()

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('device', metavar='<device>',
                            help='Name or ID of the device')
        for option, key, metavar, help_, type_, required in self.PARAMS:
            parser.add_argument(option, dest='param_' + key,
                                metavar=metavar, help=help_, type=type_,
                                required=required)
        devices.add_on_failure_option(parser)
        common.add_wait_options(parser, 'until the action is done')
        return parser

    def action(self, parsed_args):
        return self.ACTION

    def params(self, parsed_args):
        return {key: getattr(parsed_args, 'param_' + key)
                for _, key, _, _, _, _ in self.PARAMS
                if getattr(parsed_args, 'param_' + key) is not None}

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        device = svm.find_device(parsed_args.device)
        answer = svm.device_action(
            device['id'], self.action(parsed_args),
            self.params(parsed_args), on_failure=parsed_args.on_failure)
        return devices.finish(self.app, svm, answer, parsed_args)


class RebootDevice(DeviceAction):
    """Reboot a device's VM (soft); its services' configuration is
    applied again after."""
    ACTION = 'reboot'


class ResetDevice(DeviceAction):
    """Reset a device's VM (hard reboot)."""
    ACTION = 'reset'


class ShutdownDevice(DeviceAction):
    """Shut a device's VM down (its STOP scripts first)."""
    ACTION = 'shutdown'


class StartDevice(DeviceAction):
    """Start a device's VM again (its START scripts after)."""
    ACTION = 'start'


class ResizeDevice(DeviceAction):
    """Resize a device's VM to another flavor (confirmed for you)."""
    ACTION = 'resize'
    PARAMS = (('--flavor', 'flavor', '<flavor>', 'Name or ID of the new '
               'flavor', str, True),)


class ScaleDevice(DeviceAction):
    """Scale a device's group of VMs (heat) to a number of VMs."""
    ACTION = 'scale'
    PARAMS = (('--count', 'count', '<count>', 'The number of VMs '
               '(within the template\'s scaling min and max)', int, True),)


class ReconfigureDevice(DeviceAction):
    """Apply the configuration of every service instance bound to a
    device again (a device that came back without it)."""
    ACTION = 'reconfigure'


class HealDevice(DeviceAction):
    """Heal a DEAD or ERROR device: a hard reboot first, a respawn (a
    new VM for the same device) only if that does not bring it back."""
    ACTION = 'heal'


class RespawnDevice(DeviceAction):
    """Respawn a DEAD or ERROR device: a new VM for the same device,
    its scripts run and its services' configuration applied again."""
    ACTION = 'respawn'


class CreateDeviceSnapshot(DeviceAction):
    """Snapshot a device's VM (an image)."""
    ACTION = 'snapshot_create'
    PARAMS = (('--name', 'name', '<name>', 'Name of the snapshot image',
               str, False),)


class DeleteDeviceSnapshot(DeviceAction):
    """Delete a snapshot image of a device."""
    ACTION = 'snapshot_delete'
    PARAMS = (('--image', 'image_id', '<image-id>', 'ID of the snapshot '
               'image', str, True),)


class RevertDeviceSnapshot(DeviceAction):
    """Rebuild a device's VM from one of its snapshots."""
    ACTION = 'snapshot_revert'
    PARAMS = (('--image', 'image_id', '<image-id>', 'ID of the snapshot '
               'image', str, True),)


class AttachDeviceNic(DeviceAction):
    """Attach a NIC to a device's VM (on a network, or a port)."""
    ACTION = 'attach_nic'
    PARAMS = (('--network', 'network_id', '<network-id>', 'Network of the '
               'new port', str, False),
              ('--port', 'port_id', '<port-id>', 'An existing port',
               str, False),
              ('--fixed-ip', 'fixed_ip', '<ip>', 'Its IP address on the '
               'network', str, False))


class DetachDeviceNic(DeviceAction):
    """Detach a NIC (port) from a device's VM."""
    ACTION = 'detach_nic'
    PARAMS = (('--port', 'port_id', '<port-id>', 'The port to detach',
               str, True),)


class RunDeviceAction(DeviceAction):
    """Run any action of a device's driver, by name, with parameters."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('action_name', metavar='<action>',
                            help='The action (e.g. reboot, scale)')
        parser.add_argument(
            '--param', metavar='<key=value>', action='append', default=[],
            dest='action_params',
            help='A parameter of the action (repeat for more); the value '
                 'is JSON when it parses as JSON, else a string')
        return parser

    def action(self, parsed_args):
        return parsed_args.action_name

    def params(self, parsed_args):
        return common.parse_kv(parsed_args.action_params, '--param')
