"""openstack servicevm alarm list|show|acknowledge, and
openstack servicevm device metrics show"""

from osc_lib.command import command

from servicevmclient.osc.v1 import common

COLUMNS = (('ID', 'id'), ('Resource ID', 'resource_id'),
           ('Event Type', 'event_type'), ('Acknowledged', 'acknowledged'),
           ('Created At', 'created_at'))
LONG_COLUMNS = (('Message', 'message'), ('Operation ID', 'operation_id'),
                ('Acknowledged By', 'acknowledged_by'),
                ('Acknowledged At', 'acknowledged_at'))
FIRST = ('id', 'resource_type', 'resource_id', 'event_type', 'message',
         'acknowledged')


class ListAlarms(command.Lister):
    """List alarms: failures that need a person (a failed delete or heal,
    a dead device, the health brake), newest last."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--device', metavar='<device>',
            help='Only those of this device (name or ID)')
        parser.add_argument(
            '--event-type', metavar='<type>',
            help='Only those of this type (e.g. device.dead)')
        state = parser.add_mutually_exclusive_group()
        state.add_argument('--acknowledged', dest='acknowledged',
                           action='store_true', default=None,
                           help='Only acknowledged ones')
        state.add_argument('--unacknowledged', dest='acknowledged',
                           action='store_false',
                           help='Only those not acknowledged yet')
        parser.add_argument(
            '--limit', metavar='<count>', type=int,
            help='Show at most this many')
        parser.add_argument(
            '--long', action='store_true', default=False,
            help='Show more columns')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        resource_id = None
        if parsed_args.device:
            resource_id = svm.find_device(parsed_args.device)['id']
        acknowledged = parsed_args.acknowledged
        alarms = svm.list_alarms(
            limit=parsed_args.limit, resource_id=resource_id,
            event_type=parsed_args.event_type,
            acknowledged=None if acknowledged is None else
            ('1' if acknowledged else '0'))
        return common.listing(alarms, COLUMNS, LONG_COLUMNS,
                              parsed_args.long)


class ShowAlarm(command.ShowOne):
    """Show an alarm."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('alarm', metavar='<alarm>', help='ID of the alarm')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        return common.show(self.alarm(svm, parsed_args.alarm), first=FIRST)

    @staticmethod
    def alarm(svm, alarm_id):
        return svm.get_alarm(alarm_id)


class AcknowledgeAlarm(ShowAlarm):
    """Acknowledge an alarm (someone is on it)."""

    @staticmethod
    def alarm(svm, alarm_id):
        return svm.acknowledge_alarm(alarm_id)


class ShowDeviceMetrics(command.ShowOne):
    """Show what the health watch last saw of a device: status, power
    state, when, usage counters, and its liveness monitor's last
    result."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('device', metavar='<device>',
                            help='Name or ID of the device')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        device_id = svm.find_device(parsed_args.device)['id']
        return common.show(svm.get_device_metrics(device_id), first=(
            'device_id', 'status', 'power_state', 'last_seen'))
