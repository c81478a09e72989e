from servicevm.common.policies import base


def list_rules():
    # Alarms are raised by the conductor (a failed or stuck delete...);
    # users read them and acknowledge them.
    rules = base.crud_rules(
        'alarm', '/v1/alarms/{alarm_id}', '/v1/alarms',
        extra=[('acknowledge', base.ADMIN_OR_MEMBER,
                'Acknowledge an alarm.', 'POST',
                '/v1/alarms/{alarm_id}/action')])
    return [r for r in rules
            if r.name.rsplit(':', 1)[-1] in ('get_all', 'all_projects',
                                             'get', 'acknowledge')]
