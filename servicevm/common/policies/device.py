from servicevm.common.policies import base


def list_rules():
    return base.crud_rules(
        'device', '/v1/devices/{device_id}', '/v1/devices',
        extra=[('events', base.ADMIN_OR_READER,
                "List a device's events.", 'GET',
                '/v1/devices/{device_id}/events'),
               ('action', base.ADMIN_OR_MEMBER,
                "Run one of the device driver's actions (reboot, "
                "resize, scale...) as an operation.", 'POST',
                '/v1/devices/{device_id}/action')])
