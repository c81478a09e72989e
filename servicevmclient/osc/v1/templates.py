"""openstack servicevm template create|list|show|set|delete"""

import logging

from osc_lib.command import command
from osc_lib import exceptions

from servicevmclient.osc.v1 import common

LOG = logging.getLogger(__name__)

LIFECYCLE_EVENTS = ('INSTANTIATE', 'CONFIGURE', 'START', 'STOP',
                    'TERMINATE', 'SCALE_OUT', 'SCALE_IN', 'HEAL')
SORT_KEYS = ('created_at', 'updated_at', 'name', 'id', 'device_driver')
COLUMNS = (('ID', 'id'), ('Name', 'name'),
           ('Device Driver', 'device_driver'),
           ('Mgmt Driver', 'mgmt_driver'),
           ('Service Types', 'service_types'))
LONG_COLUMNS = (('Description', 'description'), ('Project', 'project_id'),
                ('Created At', 'created_at'), ('Updated At', 'updated_at'))


def _add_script_options(parser, for_set=False):
    parser.add_argument(
        '--lifecycle-events-file', metavar='<file>',
        help='The lifecycle scripts as a JSON or YAML mapping {EVENT: '
             '[{name: ..., script: ...}]} (--script options add to it)')
    parser.add_argument(
        '--script', metavar='<event>:<name>=<file>', action='append',
        default=[], dest='scripts',
        help='A lifecycle script read from <file>, run at <event> (one of '
             '%s); one of the same name is replaced (repeat for more)'
             % ', '.join(LIFECYCLE_EVENTS))
    if for_set:
        parser.add_argument(
            '--remove-script', metavar='<event>:<name>', action='append',
            default=[], dest='remove_scripts',
            help='Remove this lifecycle script')


def _lifecycle_events(parsed_args, current=None):
    """The lifecycle_events to send, or None when nothing changes."""
    removed = getattr(parsed_args, 'remove_scripts', [])
    if not (parsed_args.lifecycle_events_file or parsed_args.scripts or
            removed):
        return None
    if parsed_args.lifecycle_events_file:
        events = common.read_mapping(parsed_args.lifecycle_events_file,
                                     'lifecycle events')
    else:
        events = {k: list(v) for k, v in (current or {}).items()}
    for spec in removed:
        event, sep, name = spec.partition(':')
        if not sep or event.upper() not in events:
            raise exceptions.CommandError(
                'No lifecycle script %s (give <event>:<name>).' % spec)
        events[event.upper()] = [s for s in events[event.upper()]
                                 if s.get('name') != name]
    for spec in parsed_args.scripts:
        head, sep, path = spec.partition('=')
        event, sep2, name = head.partition(':')
        if not sep or not sep2 or not name or not path:
            raise exceptions.CommandError(
                '--script takes <event>:<name>=<file>, not %r' % spec)
        event = event.upper()
        if event not in LIFECYCLE_EVENTS:
            raise exceptions.CommandError(
                'Unknown lifecycle event %s; one of: %s' % (
                    event, ', '.join(LIFECYCLE_EVENTS)))
        script = {'name': name, 'script': common.read_file(
            path, 'script %s' % name)}
        scripts = [s for s in events.get(event, []) if s.get('name') != name]
        events[event] = scripts + [script]
    return {k: v for k, v in events.items() if v}


def _mgmt_auth(parsed_args):
    """attributes.mgmt_auth from the management credential options
    (secrets read from files, never from the command line)."""
    auth = {}
    if parsed_args.mgmt_username:
        auth['username'] = parsed_args.mgmt_username
    if parsed_args.ssh_key_file:
        auth['private_key'] = common.read_file(parsed_args.ssh_key_file,
                                               'SSH private key')
    if parsed_args.mgmt_password_file:
        auth['password'] = common.read_file(
            parsed_args.mgmt_password_file, 'password').rstrip('\r\n')
    if parsed_args.mgmt_port is not None:
        auth['port'] = parsed_args.mgmt_port
    return auth


class CreateTemplate(command.ShowOne):
    """Create a device template (how to build a kind of device)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='<name>',
                            help='Name of the template')
        parser.add_argument('--description', metavar='<description>')
        parser.add_argument(
            '--device-driver', metavar='<driver>', required=True,
            help='Device driver that builds its devices (noop, nova, heat)')
        parser.add_argument(
            '--mgmt-driver', metavar='<driver>',
            help='Management driver that reaches into them (noop, ssh, '
                 'netconf)')
        parser.add_argument(
            '--service-type', metavar='<type>', action='append',
            default=[], dest='service_types',
            help='A service type its devices offer (repeat for more)')
        common.add_kwargs_options(parser, name='attributes',
                                  option='--attribute')
        _add_script_options(parser)
        auth = parser.add_argument_group(
            'management credentials (attributes.mgmt_auth)')
        auth.add_argument('--mgmt-username', metavar='<username>',
                          help='User the management driver logs in as')
        auth.add_argument(
            '--ssh-key-file', metavar='<file>',
            help='File holding the SSH private key it logs in with (sent '
                 'as attributes.mgmt_auth.private_key, never shown)')
        auth.add_argument(
            '--mgmt-password-file', metavar='<file>',
            help='File holding its password (never shown)')
        auth.add_argument('--mgmt-port', metavar='<port>', type=int,
                          help='Management port (ssh: 22, netconf: 830)')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        values = {'name': parsed_args.name,
                  'device_driver': parsed_args.device_driver}
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        if parsed_args.mgmt_driver:
            values['mgmt_driver'] = parsed_args.mgmt_driver
        if parsed_args.service_types:
            values['service_types'] = parsed_args.service_types
        attributes = common.kwargs_from(parsed_args, 'attributes',
                                        '--attribute') or {}
        auth = _mgmt_auth(parsed_args)
        if auth:
            merged = dict(attributes.get('mgmt_auth') or {})
            merged.update(auth)
            attributes['mgmt_auth'] = merged
        if attributes:
            values['attributes'] = attributes
        events = _lifecycle_events(parsed_args)
        if events:
            values['lifecycle_events'] = events
        template = svm.create_template(**values)
        return common.show(template)


class ListTemplates(command.Lister):
    """List device templates."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--name', metavar='<name>',
                            help='Only those with this name')
        parser.add_argument('--device-driver', metavar='<driver>',
                            help='Only those of this device driver')
        common.add_list_options(parser, SORT_KEYS)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        params = common.list_params(parsed_args)
        templates = svm.list_templates(
            limit=parsed_args.limit, name=parsed_args.name,
            device_driver=parsed_args.device_driver, **params)
        return common.listing(templates, COLUMNS, LONG_COLUMNS,
                              parsed_args.long)


class ShowTemplate(command.ShowOne):
    """Show a device template."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('template', metavar='<template>',
                            help='Name or ID of the template')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        return common.show(svm.find_template(parsed_args.template))


class SetTemplate(command.Command):
    """Change a device template's name, description or lifecycle
    scripts."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('template', metavar='<template>',
                            help='Name or ID of the template')
        parser.add_argument('--name', metavar='<name>', help='New name')
        parser.add_argument('--description', metavar='<description>',
                            help='New description')
        _add_script_options(parser, for_set=True)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        template = svm.find_template(parsed_args.template)
        values = {}
        if parsed_args.name is not None:
            values['name'] = parsed_args.name
        if parsed_args.description is not None:
            values['description'] = parsed_args.description
        events = _lifecycle_events(parsed_args,
                                   template.get('lifecycle_events'))
        if events is not None:
            values['lifecycle_events'] = events
        if not values:
            raise exceptions.CommandError('Nothing to change: give --name, '
                                          '--description or scripts.')
        svm.update_template(template['id'], **values)


class DeleteTemplate(command.Command):
    """Delete device templates (refused while devices use them)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('templates', metavar='<template>', nargs='+',
                            help='Name or ID of a template')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        failed = []
        for name in parsed_args.templates:
            try:
                svm.delete_template(svm.find_template(name)['id'])
            except Exception as e:
                LOG.error('Cannot delete template %s: %s', name, e)
                failed.append(name)
        if failed:
            raise exceptions.CommandError(
                '%d of %d templates not deleted.' % (
                    len(failed), len(parsed_args.templates)))
