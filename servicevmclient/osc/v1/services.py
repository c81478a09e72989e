"""openstack servicevm service create|list|show|set|delete (service
instances: logical services bound to devices)."""

import logging

from osc_lib.command import command
from osc_lib import exceptions

from servicevmclient import client as svm_client
from servicevmclient.osc.v1 import common
from servicevmclient.osc.v1 import devices

LOG = logging.getLogger(__name__)

SORT_KEYS = ('created_at', 'updated_at', 'name', 'id', 'status',
             'service_type')
COLUMNS = (('ID', 'id'), ('Name', 'name'), ('Service Type', 'service_type'),
           ('Status', 'status'), ('Devices', 'devices'))
LONG_COLUMNS = (('Status Reason', 'status_reason'),
                ('Description', 'description'),
                ('Managed By User', 'managed_by_user'),
                ('Mgmt Driver', 'mgmt_driver'), ('Project', 'project_id'),
                ('Created At', 'created_at'))


class CreateService(command.ShowOne):
    """Create a service instance bound to devices: those given, a new
    one made from a template, or the one the scheduler picks."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='<name>',
                            help='Name of the service instance')
        parser.add_argument('--service-type', metavar='<type>',
                            required=True,
                            help='Its service type (firewall, router...)')
        parser.add_argument('--description', metavar='<description>')
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            '--device', metavar='<device>', action='append', default=[],
            dest='devices',
            help='Bind it to this device, name or ID (repeat for more)')
        where.add_argument(
            '--template', metavar='<template>',
            help='Bind it to a new device made from this template (name '
                 'or ID), which it owns')
        where.add_argument(
            '--no-devices', action='store_true', default=False,
            help='Bind it to no device')
        common.add_kwargs_options(parser, name='device-kwargs',
                                  option='--device-kwarg')
        common.add_kwargs_options(parser)
        parser.add_argument(
            '--mgmt-driver', metavar='<driver>',
            help='Its management driver (default: noop)')
        parser.add_argument(
            '--managed-by-service', action='store_false', default=None,
            dest='managed_by_user',
            help='Managed by another service: only an admin may change '
                 'or delete it')
        devices.add_on_failure_option(parser)
        common.add_wait_options(parser, 'until every device is configured')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        values = {'name': parsed_args.name,
                  'service_type': parsed_args.service_type}
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        device_kwargs = common.kwargs_from(parsed_args, 'device-kwargs',
                                           '--device-kwarg')
        if device_kwargs is not None and not parsed_args.template:
            raise exceptions.CommandError(
                '--device-kwarg and --device-kwargs-file go with '
                '--template.')
        if parsed_args.devices:
            values['devices'] = [svm.find_device(d)['id']
                                 for d in parsed_args.devices]
        elif parsed_args.no_devices:
            values['devices'] = []
        elif parsed_args.template:
            values['template_id'] = svm.find_template(
                parsed_args.template)['id']
            if device_kwargs is not None:
                values['device_kwargs'] = device_kwargs
        kwargs = common.kwargs_from(parsed_args)
        if kwargs is not None:
            values['kwargs'] = kwargs
        for key in ('mgmt_driver', 'managed_by_user', 'on_failure'):
            if getattr(parsed_args, key) is not None:
                values[key] = getattr(parsed_args, key)
        answer = svm.create_service(**values)
        service = answer['service_instance']
        ids = answer.get('operation_ids') or (
            [answer['operation_id']] if answer.get('operation_id') else [])
        if ids and parsed_args.wait:
            common.wait_for_operations(svm, ids, common.stderr(self.app),
                                       parsed_args.wait_timeout)
            service = svm.get_service(service['id'])
        extra = {'operation_ids': ids} if ids else None
        return common.show(service, extra=extra)


class ListServices(command.Lister):
    """List service instances."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--name', metavar='<name>',
                            help='Only those with this name')
        parser.add_argument('--service-type', metavar='<type>',
                            help='Only those of this service type')
        parser.add_argument('--status', metavar='<status>',
                            help='Only those in this status')
        parser.add_argument('--device', metavar='<device>',
                            help='Only those bound to this device (name '
                                 'or ID)')
        common.add_list_options(parser, SORT_KEYS)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        params = common.list_params(parsed_args)
        if parsed_args.device:
            params['device_id'] = svm.find_device(parsed_args.device)['id']
        services = svm.list_services(
            limit=parsed_args.limit, name=parsed_args.name,
            service_type=parsed_args.service_type,
            status=parsed_args.status and parsed_args.status.upper(),
            **params)
        return common.listing(services, COLUMNS, LONG_COLUMNS,
                              parsed_args.long)


class ShowService(command.ShowOne):
    """Show a service instance (with its bindings to devices)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('service', metavar='<service>',
                            help='Name or ID of the service instance')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        return common.show(svm.find_service(parsed_args.service))


class SetService(command.Command):
    """Change a service instance's name, description or kwargs."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('service', metavar='<service>',
                            help='Name or ID of the service instance')
        parser.add_argument('--name', metavar='<name>', help='New name')
        parser.add_argument('--description', metavar='<description>',
                            help='New description')
        common.add_kwargs_options(parser, for_set=True)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        service = svm.find_service(parsed_args.service)
        values = {}
        if parsed_args.name is not None:
            values['name'] = parsed_args.name
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        changes = common.kwargs_from(parsed_args)
        if changes is not None or parsed_args.remove_kwargs:
            values['kwargs'] = common.merged_kwargs(
                service.get('kwargs'), changes or {},
                parsed_args.remove_kwargs, parsed_args.replace_kwargs,
                'service instance\'s')
        if not values:
            raise exceptions.CommandError(
                'Nothing to change: give --name, --description or kwargs.')
        svm.update_service(service['id'], **values)


class DeleteService(command.Command):
    """Delete service instances (their configuration leaves their
    devices first; devices they own are deleted after)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('services', metavar='<service>', nargs='+',
                            help='Name or ID of a service instance')
        common.add_wait_options(parser, 'until the service instances are gone')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        stream = common.stderr(self.app)
        failed = []
        for name in parsed_args.services:
            try:
                service_id = svm.find_service(name)['id']
                answer = svm.delete_service(service_id)
            except svm_client.ClientError as e:
                LOG.error('Cannot delete service instance %s: %s', name, e)
                failed.append(name)
                continue
            ids = (answer or {}).get('operation_ids') or []
            if not ids or not answer.get('service_instance'):
                self.app.stdout.write(
                    'Deleted service instance %s\n' % service_id)
                if not ids:
                    continue
            else:
                self.app.stdout.write(
                    'Deleting service instance %s: operation %s\n' % (
                        service_id, ', '.join(ids)))
            if not parsed_args.wait:
                continue
            try:
                common.wait_for_operations(svm, ids, stream,
                                           parsed_args.wait_timeout)
                if answer.get('service_instance'):
                    common.wait_until_gone(
                        svm.get_service, service_id, 'service instance',
                        parsed_args.wait_timeout)
                    self.app.stdout.write(
                        'Deleted service instance %s\n' % service_id)
            except exceptions.CommandError as e:
                LOG.error('%s', e)
                failed.append(name)
        if failed:
            raise exceptions.CommandError(
                '%d of %d service instances not deleted.' % (
                    len(failed), len(parsed_args.services)))
