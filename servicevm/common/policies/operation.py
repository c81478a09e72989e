from servicevm.common.policies import base


def list_rules():
    # Operations are created by lifecycle requests, never directly; their
    # users steer them with actions.
    rules = base.crud_rules(
        'operation', '/v1/operations/{operation_id}', '/v1/operations',
        extra=[('action', base.ADMIN_OR_MEMBER,
                'Pause, resume, cancel, retry, roll back or fail an '
                'operation.', 'POST', '/v1/operations/{operation_id}/action')])
    return [r for r in rules
            if r.name.rsplit(':', 1)[-1] in ('get_all', 'all_projects',
                                             'get', 'action')]
