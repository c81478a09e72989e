from servicevm.common.policies import base


def list_rules():
    return base.crud_rules(
        'device', '/v1/devices/{device_id}', '/v1/devices',
        extra=[('events', base.ADMIN_OR_READER,
                "List a device's events.", 'GET',
                '/v1/devices/{device_id}/events')])
