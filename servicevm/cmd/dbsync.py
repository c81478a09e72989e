"""servicevm-db-manage: create and upgrade the database schema; make and
rotate the keys that seal secrets."""

import sys

from oslo_config import cfg

from servicevm.common import context as svm_context
from servicevm.common import secrets
from servicevm.common import service
from servicevm.db import api as db_api
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


def _new_secret_key():
    print(secrets.new_key())


def _rotate_secrets():
    count = db_api.get_instance().secrets_reseal(
        svm_context.get_admin_context())
    print('%d sealed values re-sealed with the first key; the other keys '
          'may now be removed.' % count)


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
        'new-secret-key', help='Print a new Fernet key for [secrets].')
    parser.set_defaults(func=_new_secret_key)

    parser = subparsers.add_parser(
        'rotate-secrets',
        help='Re-seal every stored secret with the first [secrets] key.')
    parser.set_defaults(func=_rotate_secrets)

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
