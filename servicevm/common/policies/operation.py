from servicevm.common.policies import base


def list_rules():
    # Operations are created by lifecycle requests, never directly.
    return [r for r in base.crud_rules('operation',
                                       '/v1/operations/{operation_id}',
                                       '/v1/operations')
            if r.name.rsplit(':', 1)[-1] in ('get_all', 'all_projects',
                                             'get')]
