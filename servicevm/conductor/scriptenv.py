"""The environment a lifecycle script runs with (SVM_* variables):
the device's facts, its configurations, its networks' addresses, and
for CONFIGURE scripts the service instances it hosts."""

import json
import re


def env_name(key):
    """An environment variable name from any key: upper case, letters,
    digits and underscores only."""
    name = re.sub(r'[^A-Z0-9_]', '_', str(key).upper())
    return '_' + name if not name or name[0].isdigit() else name


def script_env(work, event, ctx=None):
    """What a script gets: the device's facts, then the template's and
    the request's ``configurations`` as SVM_CONF_<NAME> (values that are
    not strings as JSON), each network's addresses as SVM_NET_<NAME>_IP(S)
    (with ``ctx``: one poll of the VIM per run). Values reach the script
    as its environment, never on a command line."""
    device = work.device
    env = {'SVM_EVENT': event, 'SVM_DEVICE_ID': device['id'],
           'SVM_DEVICE_NAME': device.get('name') or '',
           'SVM_HOSTNAME': re.sub(r'[^A-Za-z0-9-]', '-',
                                  device.get('name') or device['id'])[:63],
           'SVM_PROJECT_ID': device.get('project_id') or '',
           'SVM_OPERATION_ID': work.operation.id,
           'SVM_MGMT_ADDRESS': device.get('mgmt_address') or '',
           'SVM_INSTANCE_ID': device.get('instance_id') or ''}
    configurations = {}
    for source in ((work.template.get('attributes') or {}),
                   (device.get('kwargs') or {})):
        values = source.get('configurations')
        if isinstance(values, dict):
            configurations.update(values)
    for key, value in configurations.items():
        env['SVM_CONF_' + env_name(key)] = _env_value(value)
    if ctx is not None:
        # Each network's addresses: SVM_NET_<NAME>_IP (the first) and
        # SVM_NET_<NAME>_IPS (all, space-separated).
        for network, ips in sorted(work.addresses(ctx).items()):
            ips = [str(ip) for ip in ips or () if ip]
            if ips:
                env['SVM_NET_%s_IP' % env_name(network)] = ips[0]
                env['SVM_NET_%s_IPS' % env_name(network)] = ' '.join(ips)
    if event == 'CONFIGURE':
        env.update(services_env(work))
    if event in ('SCALE_IN', 'SCALE_OUT'):
        params = work.operation.params or {}
        env['SVM_SCALE_COUNT'] = str((params.get('params') or {}).get(
            'count'))
        if params.get('members_before') is not None:
            env['SVM_SCALE_FROM'] = str(params['members_before'])
    return env


def _env_value(value):
    return value if isinstance(value, str) else json.dumps(value)


def services_env(work):
    """What CONFIGURE scripts learn of the service instances: the
    change (bind or unbind) and the services it is about, every service
    the device hosts once it is done (SVM_SERVICES, JSON), and, when one
    service changes, its id, name, type and kwargs (SVM_SERVICE_CONF_*)."""
    changing = work.changing_services()
    hosted = [{key: s.get(key) for key in (
        'id', 'name', 'service_type', 'kwargs', 'service_contexts')}
        for s in work.hosted_services()]
    env = {'SVM_SERVICE_CHANGE': work.service_change(),
           'SVM_SERVICE_IDS': ' '.join(s['id'] for s in changing),
           'SVM_SERVICES': json.dumps(hosted, sort_keys=True)}
    if len(changing) == 1:
        service = changing[0]
        env.update(SVM_SERVICE_ID=service['id'],
                   SVM_SERVICE_NAME=service.get('name') or '',
                   SVM_SERVICE_TYPE=service['service_type'])
        for key, value in (service.get('kwargs') or {}).items():
            env['SVM_SERVICE_CONF_' + env_name(key)] = _env_value(value)
    return env
