"""openstack servicevm device create|list|show|set|delete, and
openstack servicevm device event list"""

import logging

from osc_lib.command import command
from osc_lib import exceptions

from servicevmclient import client as svm_client
from servicevmclient.osc.v1 import common

LOG = logging.getLogger(__name__)

SORT_KEYS = ('created_at', 'updated_at', 'name', 'id', 'status')
COLUMNS = (('ID', 'id'), ('Name', 'name'), ('Status', 'status'),
           ('Mgmt Address', 'mgmt_address'), ('Template ID', 'template_id'))
LONG_COLUMNS = (('Power State', 'power_state'), ('Ready', 'ready'),
                ('Operation ID', 'operation_id'),
                ('Status Reason', 'status_reason'),
                ('Services', 'services'), ('Project', 'project_id'),
                ('Created At', 'created_at'))
EVENT_COLUMNS = (('ID', 'id'), ('Time', 'created_at'),
                 ('Event Type', 'event_type'), ('Result', 'result'),
                 ('Message', 'message'))
EVENT_LONG_COLUMNS = (('Operation ID', 'operation_id'), ('User', 'user_id'),
                      ('Request ID', 'request_id'), ('Details', 'details'))


def add_on_failure_option(parser):
    parser.add_argument(
        '--on-failure', metavar='<policy>',
        choices=common.ON_FAILURE_CHOICES,
        help='When a step fails: fail_temp (stop and wait for retry, '
             'rollback or fail: the default) or rollback (undo at once)')


def finish(app, svm, answer, parsed_args):
    """The (columns, data) of a device answer with its operation; with
    --wait, once the operation completed, of the device as it is then."""
    device = answer['device']
    operation_id = answer.get('operation_id')
    if operation_id and parsed_args.wait:
        common.wait_for_operation(svm, operation_id, common.stderr(app),
                                  parsed_args.wait_timeout)
        try:
            device = svm.get_device(device['id'])
        except svm_client.NotFound:
            pass
    extra = {'operation_id': operation_id} if operation_id else None
    return common.show(device, extra=extra)


class CreateDevice(command.ShowOne):
    """Create a device from a template (an operation builds it)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='<name>',
                            help='Name of the device')
        parser.add_argument('--template', metavar='<template>',
                            required=True,
                            help='Name or ID of the template to build it '
                                 'from')
        parser.add_argument('--description', metavar='<description>')
        common.add_kwargs_options(parser)
        add_on_failure_option(parser)
        common.add_wait_options(parser, 'until the device is built')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        values = {'name': parsed_args.name,
                  'template_id': svm.find_template(
                      parsed_args.template)['id']}
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        kwargs = common.kwargs_from(parsed_args)
        if kwargs is not None:
            values['kwargs'] = kwargs
        if parsed_args.on_failure:
            values['on_failure'] = parsed_args.on_failure
        answer = svm.create_device(**values)
        return finish(self.app, svm, answer, parsed_args)


class ListDevices(command.Lister):
    """List devices."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--name', metavar='<name>',
                            help='Only those with this name')
        parser.add_argument('--status', metavar='<status>',
                            help='Only those in this status (ACTIVE, '
                                 'ERROR, PENDING_CREATE...)')
        parser.add_argument('--template', metavar='<template>',
                            help='Only those made from this template '
                                 '(name or ID)')
        common.add_list_options(parser, SORT_KEYS)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        params = common.list_params(parsed_args)
        if parsed_args.template:
            params['template_id'] = svm.find_template(
                parsed_args.template)['id']
        devices = svm.list_devices(
            limit=parsed_args.limit, name=parsed_args.name,
            status=parsed_args.status and parsed_args.status.upper(),
            **params)
        return common.listing(devices, COLUMNS, LONG_COLUMNS,
                              parsed_args.long)


class ShowDevice(command.ShowOne):
    """Show a device."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('device', metavar='<device>',
                            help='Name or ID of the device')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        return common.show(svm.find_device(parsed_args.device))


class SetDevice(command.Command):
    """Change a device's name or description, or its kwargs (an update
    operation applies them)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('device', metavar='<device>',
                            help='Name or ID of the device')
        parser.add_argument('--name', metavar='<name>', help='New name')
        parser.add_argument('--description', metavar='<description>',
                            help='New description')
        common.add_kwargs_options(parser, for_set=True)
        add_on_failure_option(parser)
        common.add_wait_options(parser, 'until the new kwargs are applied')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        device = svm.find_device(parsed_args.device)
        values = {}
        if parsed_args.name is not None:
            values['name'] = parsed_args.name
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        changes = common.kwargs_from(parsed_args)
        if changes is not None or parsed_args.remove_kwargs:
            values['kwargs'] = common.merged_kwargs(
                device.get('kwargs'), changes or {},
                parsed_args.remove_kwargs, parsed_args.replace_kwargs,
                'device\'s')
            if parsed_args.on_failure:
                values['on_failure'] = parsed_args.on_failure
        if not values:
            raise exceptions.CommandError(
                'Nothing to change: give --name, --description or kwargs.')
        answer = svm.update_device(device['id'], **values)
        if answer.get('operation_id') and parsed_args.wait:
            common.wait_for_operation(svm, answer['operation_id'],
                                      common.stderr(self.app),
                                      parsed_args.wait_timeout)


class DeleteDevice(command.Command):
    """Delete devices (an operation tears each down)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('devices', metavar='<device>', nargs='+',
                            help='Name or ID of a device')
        parser.add_argument(
            '--force', action='store_true', default=False,
            help='Cancel the operation running on the device first')
        parser.add_argument(
            '--cascade', action='store_true', default=False,
            help='Delete the service instances bound to it first')
        add_on_failure_option(parser)
        common.add_wait_options(parser, 'until the devices are gone')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        stream = common.stderr(self.app)
        started = []
        failed = []
        for name in parsed_args.devices:
            try:
                device = svm.find_device(name)
                answer = svm.delete_device(
                    device['id'], force=parsed_args.force,
                    cascade=parsed_args.cascade,
                    on_failure=parsed_args.on_failure)
            except svm_client.ClientError as e:
                LOG.error('Cannot delete device %s: %s', name, e)
                failed.append(name)
                continue
            ids = answer.get('operation_ids') or [answer['operation_id']]
            self.app.stdout.write('Deleting device %s: operation %s\n' % (
                device['id'], ', '.join(ids)))
            started.append((device['id'], ids))
        if parsed_args.wait:
            for device_id, ids in started:
                try:
                    if parsed_args.cascade:
                        # The services go first; the last of them deletes
                        # the device.
                        common.wait_for_operations(
                            svm, ids, stream, parsed_args.wait_timeout)
                        common.wait_until_gone(
                            svm.get_device, device_id, 'device',
                            parsed_args.wait_timeout)
                    else:
                        common.wait_for_operation(
                            svm, ids[0], stream, parsed_args.wait_timeout)
                except exceptions.CommandError as e:
                    LOG.error('%s', e)
                    failed.append(device_id)
                    continue
                self.app.stdout.write('Deleted device %s\n' % device_id)
        if failed:
            raise exceptions.CommandError(
                '%d of %d devices not deleted.' % (
                    len(failed), len(parsed_args.devices)))


class ListDeviceEvents(command.Lister):
    """List a device's history, oldest first (also of a deleted
    device, by ID)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('device', metavar='<device>',
                            help='Name or ID of the device')
        parser.add_argument('--limit', metavar='<count>', type=int,
                            help='Show at most this many')
        parser.add_argument('--reverse', action='store_true',
                            default=False, help='Newest first')
        parser.add_argument('--long', action='store_true', default=False,
                            help='Show more columns')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        device_id = parsed_args.device
        try:
            device_id = svm.find_device(device_id)['id']
        except svm_client.NotFound:
            if not svm_client.is_uuid(device_id):
                raise
        events = svm.list_device_events(
            device_id, limit=parsed_args.limit,
            sort_dir='desc' if parsed_args.reverse else None)
        return common.listing(events, EVENT_COLUMNS, EVENT_LONG_COLUMNS,
                              parsed_args.long)
