"""A fake servicevm client and a fake OSC app for the command tests."""

import copy
import io
import types

from servicevmclient import client as svm_client

TEMPLATE_ID = '11111111-1111-1111-1111-111111111111'
DEVICE_ID = '22222222-2222-2222-2222-222222222222'
DEVICE2_ID = '23232323-2323-2323-2323-232323232323'
SERVICE_ID = '33333333-3333-3333-3333-333333333333'
OP_ID = '44444444-4444-4444-4444-444444444444'
OP2_ID = '45454545-4545-4545-4545-454545454545'

TEMPLATE = {'id': TEMPLATE_ID, 'name': 'fw', 'description': '',
            'project_id': 'demo', 'device_driver': 'noop',
            'mgmt_driver': 'ssh', 'service_types': ['firewall'],
            'attributes': {'image': 'fw-9.1',
                           'mgmt_auth': {'username': 'admin',
                                         'private_key': '***'}},
            'lifecycle_events': {'INSTANTIATE': [
                {'name': 'dns', 'script': 'echo dns'}]},
            'created_at': '2026-01-01T00:00:00', 'updated_at': None}
DEVICE = {'id': DEVICE_ID, 'name': 'fw1', 'status': 'ACTIVE',
          'template_id': TEMPLATE_ID, 'mgmt_address': '192.0.2.10',
          'kwargs': {'mgmt_address': '192.0.2.10'}, 'services': [],
          'power_state': 'running', 'ready': True, 'operation_id': None,
          'status_reason': None, 'project_id': 'demo'}
SERVICE = {'id': SERVICE_ID, 'name': 'edge', 'service_type': 'firewall',
           'status': 'ACTIVE', 'devices': [DEVICE_ID],
           'bindings': [{'device_id': DEVICE_ID, 'status': 'ACTIVE',
                         'owner': False}],
           'kwargs': {'zone': 'dmz'}, 'managed_by_user': True}


def operation(state, steps=(), error=None, op_id=OP_ID, kind='create'):
    """An operation as the API shows it; steps: (name, state[, error])."""
    return {'id': op_id, 'resource_type': 'device',
            'resource_id': DEVICE_ID, 'kind': kind, 'state': state,
            'error': error,
            'steps': [{'name': s[0], 'state': s[1], 'attempts': 1,
                       'output': None,
                       'error': s[2] if len(s) > 2 else None}
                      for s in steps]}


def not_found(what='Device'):
    return svm_client.NotFound(404, [{'detail': '%s could not be found.'
                                      % what, 'request_id': 'req-1'}])


class FakeClient:
    """Records calls; answers from its attributes. ``operations`` maps an
    operation id to the list of answers its polls get, in turn (the last
    one repeats)."""

    def __init__(self):
        self.calls = []
        self.templates = [copy.deepcopy(TEMPLATE)]
        self.devices = [copy.deepcopy(DEVICE)]
        self.services = [copy.deepcopy(SERVICE)]
        self.operations = {}
        self.events = []
        self.gone = set()

    def _record(self, call, *args, **kwargs):
        self.calls.append((call, args, kwargs))

    def called(self, name):
        return [c for c in self.calls if c[0] == name]

    def _find(self, items, name_or_id, what):
        found = [i for i in items if name_or_id in (i['id'], i['name'])]
        if len(found) != 1:
            raise not_found(what)
        return copy.deepcopy(found[0])

    # templates
    def list_templates(self, limit=None, **filters):
        self._record('list_templates', limit=limit, **filters)
        return copy.deepcopy(self.templates)

    def find_template(self, name_or_id):
        return self._find(self.templates, name_or_id, 'Template')

    def create_template(self, **values):
        self._record('create_template', **values)
        result = dict(copy.deepcopy(TEMPLATE), **svm_client.mask(values))
        return result

    def update_template(self, template_id, **values):
        self._record('update_template', template_id, **values)
        return dict(copy.deepcopy(TEMPLATE), **values)

    def delete_template(self, template_id):
        self._record('delete_template', template_id)

    # devices
    def list_devices(self, limit=None, **filters):
        self._record('list_devices', limit=limit, **filters)
        return copy.deepcopy(self.devices)

    def get_device(self, device_id):
        self._record('get_device', device_id)
        if device_id in self.gone:
            raise not_found()
        return self._find(self.devices, device_id, 'Device')

    def find_device(self, name_or_id):
        return self._find(self.devices, name_or_id, 'Device')

    def create_device(self, **values):
        self._record('create_device', **values)
        device = dict(copy.deepcopy(DEVICE), status='PENDING_CREATE',
                      operation_id=OP_ID)
        return {'device': device, 'operation_id': OP_ID}

    def update_device(self, device_id, **values):
        self._record('update_device', device_id, **values)
        answer = {'device': copy.deepcopy(DEVICE)}
        if 'kwargs' in values:
            answer['operation_id'] = OP_ID
        return answer

    def delete_device(self, device_id, **kwargs):
        self._record('delete_device', device_id, **kwargs)
        return {'device': dict(copy.deepcopy(DEVICE),
                               status='PENDING_DELETE'),
                'operation_id': OP_ID}

    def device_action(self, device_id, action, params=None,
                      on_failure=None):
        self._record('device_action', device_id, action, params,
                     on_failure=on_failure)
        return {'device': dict(copy.deepcopy(DEVICE),
                               status='PENDING_UPDATE'),
                'operation_id': OP_ID}

    def list_device_events(self, device_id, limit=None, sort_dir=None):
        self._record('list_device_events', device_id, limit=limit,
                     sort_dir=sort_dir)
        return copy.deepcopy(self.events)

    # services
    def list_services(self, limit=None, **filters):
        self._record('list_services', limit=limit, **filters)
        return copy.deepcopy(self.services)

    def get_service(self, service_id):
        self._record('get_service', service_id)
        if service_id in self.gone:
            raise not_found('Service instance')
        return self._find(self.services, service_id, 'Service instance')

    def find_service(self, name_or_id):
        return self._find(self.services, name_or_id, 'Service instance')

    def create_service(self, **values):
        self._record('create_service', **values)
        service = dict(copy.deepcopy(SERVICE), status='PENDING_CREATE')
        if values.get('devices') == []:
            return {'service_instance': service}
        return {'service_instance': service, 'operation_id': OP_ID,
                'operation_ids': [OP_ID, OP2_ID]}

    def update_service(self, service_id, **values):
        self._record('update_service', service_id, **values)
        return copy.deepcopy(SERVICE)

    def delete_service(self, service_id):
        self._record('delete_service', service_id)
        return {'service_instance': dict(copy.deepcopy(SERVICE),
                                         status='PENDING_DELETE'),
                'operation_id': OP_ID, 'operation_ids': [OP_ID]}

    # operations
    def list_operations(self, limit=None, **filters):
        self._record('list_operations', limit=limit, **filters)
        return [operation('COMPLETED')]

    def get_operation(self, operation_id):
        self._record('get_operation', operation_id)
        answers = self.operations.get(operation_id)
        if not answers:
            raise svm_client.NotFound(404, [{'detail': 'Operation %s '
                                             'could not be found.'
                                             % operation_id}])
        if len(answers) > 1:
            return copy.deepcopy(answers.pop(0))
        return copy.deepcopy(answers[0])

    def operation_action(self, operation_id, action):
        self._record('operation_action', operation_id, action)
        return operation('PROCESSING', op_id=operation_id)


class FakeApp:
    def __init__(self, svm):
        self.client_manager = types.SimpleNamespace(servicevm=svm)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.stdin = io.StringIO()
        self.options = types.SimpleNamespace(debug=False)
