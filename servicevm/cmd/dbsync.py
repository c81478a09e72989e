"""servicevm-db-manage: create and upgrade the database schema."""

import sys

from oslo_config import cfg

from servicevm.common import service
from servicevm.db import migration

CONF = cfg.CONF


def _upgrade():
    migration.upgrade(CONF.command.revision)
    print('Database is at revision %s.' % migration.version())


def _version():
    print(migration.version() or 'None (empty database)')


def _stamp():
    migration.stamp(CONF.command.revision)


def _revision():
    migration.revision(CONF.command.message,
                       autogenerate=CONF.command.autogenerate)


def add_command_parsers(subparsers):
    parser = subparsers.add_parser(
        'upgrade', help='Upgrade the schema to a revision (default: head).')
    parser.add_argument('revision', nargs='?', default='head')
    parser.set_defaults(func=_upgrade)

    parser = subparsers.add_parser(
        'version', help='Print the schema revision of the database.')
    parser.set_defaults(func=_version)

    parser = subparsers.add_parser(
        'stamp', help='Mark the database as being at a revision.')
    parser.add_argument('revision', nargs='?', default='head')
    parser.set_defaults(func=_stamp)

    parser = subparsers.add_parser(
        'revision', help='Create a migration (for developers).')
    parser.add_argument('-m', '--message', default='change')
    parser.add_argument('--autogenerate', action='store_true')
    parser.set_defaults(func=_revision)


command_opt = cfg.SubCommandOpt('command', title='Command',
                                help='Available commands',
                                handler=add_command_parsers)


def main():
    CONF.register_cli_opt(command_opt)
    service.prepare_service(sys.argv[1:])
    CONF.command.func()
