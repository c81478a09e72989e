"""servicevm-status: upgrade checks (oslo.upgradecheck)."""

import sys

from oslo_config import cfg
from oslo_upgradecheck import common_checks
from oslo_upgradecheck import upgradecheck

from servicevm.db import migration
from servicevm.drivers import loader

CONF = cfg.CONF


class Checks(upgradecheck.UpgradeCommands):

    def _check_schema(self):
        from alembic import script
        heads = script.ScriptDirectory(migration.MIGRATIONS_DIR).get_heads()
        current = migration.version()
        if current in heads:
            return upgradecheck.Result(upgradecheck.Code.SUCCESS)
        return upgradecheck.Result(
            upgradecheck.Code.FAILURE,
            'The database is at revision %s, not %s: run '
            '"servicevm-db-manage upgrade".' % (current, ', '.join(heads)))

    def _check_auth(self):
        if CONF.auth_strategy == 'noauth':
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                'auth_strategy is noauth: anyone who reaches the API is '
                'trusted. Use keystone outside development.')
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_drivers(self):
        problems = []
        for namespace, names in (
                (loader.DEVICE_NAMESPACE, CONF.enabled_device_drivers),
                (loader.MGMT_NAMESPACE, CONF.enabled_mgmt_drivers)):
            for name in names:
                try:
                    loader.get_driver(CONF, namespace, name)
                except Exception as e:
                    problems.append('%s %s: %s' % (namespace, name, e))
        if problems:
            return upgradecheck.Result(upgradecheck.Code.FAILURE,
                                       '; '.join(problems))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    _upgrade_checks = (
        ('Database schema', _check_schema),
        ('Authentication', _check_auth),
        ('Drivers', _check_drivers),
        ('Policy file', (common_checks.check_policy_json, {'conf': CONF})),
    )


def main():
    from servicevm import conf  # noqa: registers the options
    return upgradecheck.main(CONF, project='servicevm',
                             upgrade_command=Checks())


if __name__ == '__main__':
    sys.exit(main())
