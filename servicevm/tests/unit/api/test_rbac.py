"""The RBAC matrix: every endpoint x persona x own/other project.

Every resource a row needs is made in project-a by its member. The
personas are an admin, a member and a reader, each either of project-a
("own") or of another project ("other"). Each row of MATRIX becomes a test
method of its own, with a fresh database.
"""

from urllib import parse

from servicevm.tests import base

A = 'project-a'
PERSONAS = {
    ('admin', 'own'): ('admin-a-user', A, 'admin'),
    ('admin', 'other'): base.ADMIN,
    ('member', 'own'): base.MEMBER,
    ('member', 'other'): base.OTHER_MEMBER,
    ('reader', 'own'): base.READER,
    ('reader', 'other'): ('other-reader', 'project-b', 'reader'),
}
COLUMNS = [(p, s) for p in ('admin', 'member', 'reader')
           for s in ('own', 'other')]

T = '/v1/device_templates'
D = '/v1/devices'
S = '/v1/service_instances'
OPS = '/v1/operations'


def _in_a(body, key):
    """``body`` asking for project-a by ``key`` (project_id, tenant_id)."""
    ((name, inner),) = body.items()
    return {name: dict(inner, **{key: A})}


NEW_T = {'device_template': {'name': 'new', 'device_driver': 'noop',
                             'service_types': ['firewall']}}
NEW_D = {'device': {'name': 'new', 'template_id': '{template}'}}
NEW_S = {'service_instance': {'name': 'new', 'service_type': 'firewall',
                              'devices': []}}
RENAME_T = {'device_template': {'name': 'renamed'}}
RENAME_D = {'device': {'name': 'renamed'}}
REBOOT_D = {'action': 'reboot'}
KWARGS_D = {'device': {'kwargs': {'flavor': 'm1.small'}}}
RENAME_S = {'service_instance': {'name': 'renamed'}}
PAUSE_OP = {'action': 'pause'}
ALL = '?all_projects=1'
IN_A = '?project_id=' + A

# (method, url, body, expected status for
#                          admin own/other, member own/other, reader own/other)
ENDPOINTS = [
    ('GET', T, None,                      (200, 200, 200, 200, 200, 200)),
    ('GET', T + ALL, None,                (200, 200, 403, 403, 403, 403)),
    ('GET', T + IN_A, None,               (200, 200, 200, 403, 200, 403)),
    ('POST', T, NEW_T,                    (201, 201, 201, 201, 403, 403)),
    ('POST', T, _in_a(NEW_T, 'project_id'), (201, 201, 201, 403, 403, 403)),
    ('POST', T, _in_a(NEW_T, 'tenant_id'), (201, 201, 201, 403, 403, 403)),
    ('GET', T + '/{template}', None,      (200, 200, 200, 404, 200, 404)),
    ('PATCH', T + '/{template}', RENAME_T, (200, 200, 200, 404, 403, 404)),
    ('PUT', T + '/{template}', RENAME_T,  (200, 200, 200, 404, 403, 404)),
    ('DELETE', T + '/{template}', None,   (204, 204, 204, 404, 403, 404)),

    ('GET', D, None,                      (200, 200, 200, 200, 200, 200)),
    ('GET', D + ALL, None,                (200, 200, 403, 403, 403, 403)),
    ('GET', D + IN_A, None,               (200, 200, 200, 403, 200, 403)),
    # project-a's template is not usable from another project.
    ('POST', D, NEW_D,                    (202, 400, 202, 400, 403, 403)),
    ('POST', D, _in_a(NEW_D, 'project_id'), (202, 202, 202, 403, 403, 403)),
    ('POST', D, _in_a(NEW_D, 'tenant_id'), (202, 202, 202, 403, 403, 403)),
    ('GET', D + '/{device}', None,        (200, 200, 200, 404, 200, 404)),
    ('PATCH', D + '/{device}', RENAME_D,  (200, 200, 200, 404, 403, 404)),
    ('PATCH', D + '/{device}', KWARGS_D,  (202, 202, 202, 404, 403, 404)),
    ('PUT', D + '/{device}', RENAME_D,    (200, 200, 200, 404, 403, 404)),
    ('DELETE', D + '/{device}', None,     (202, 202, 202, 404, 403, 404)),
    ('GET', D + '/{device}/events', None, (200, 200, 200, 404, 200, 404)),
    # The noop driver has no actions: 400 means the policy let it in.
    ('POST', D + '/{device}/action', REBOOT_D,
     (400, 400, 400, 404, 403, 404)),

    ('GET', S, None,                      (200, 200, 200, 200, 200, 200)),
    ('GET', S + ALL, None,                (200, 200, 403, 403, 403, 403)),
    ('GET', S + IN_A, None,               (200, 200, 200, 403, 200, 403)),
    ('POST', S, NEW_S,                    (201, 201, 201, 201, 403, 403)),
    ('POST', S, _in_a(NEW_S, 'project_id'), (201, 201, 201, 403, 403, 403)),
    ('POST', S, _in_a(NEW_S, 'tenant_id'), (201, 201, 201, 403, 403, 403)),
    ('GET', S + '/{service}', None,       (200, 200, 200, 404, 200, 404)),
    ('PATCH', S + '/{service}', RENAME_S, (200, 200, 200, 404, 403, 404)),
    ('PUT', S + '/{service}', RENAME_S,   (200, 200, 200, 404, 403, 404)),
    ('DELETE', S + '/{service}', None,    (204, 204, 204, 404, 403, 404)),

    ('GET', OPS, None,                    (200, 200, 200, 200, 200, 200)),
    ('GET', OPS + ALL, None,              (200, 200, 403, 403, 403, 403)),
    ('GET', OPS + IN_A, None,             (200, 200, 200, 403, 200, 403)),
    ('GET', OPS + '/{operation}', None,   (200, 200, 200, 404, 200, 404)),
    # The operation is COMPLETED: 409 means the policy let the call in.
    ('POST', OPS + '/{operation}/action', PAUSE_OP,
     (409, 409, 409, 404, 403, 404)),
]

# The matrix: (method, url template, persona, own/other, status, body).
MATRIX = [(method, url, persona, scope, status, body)
          for method, url, body, statuses in ENDPOINTS
          for (persona, scope), status in zip(COLUMNS, statuses)]

# collection -> (singular, the fixture that is its item)
RESOURCES = {'device_templates': ('device_template', 'template'),
             'devices': ('device', 'device'),
             'service_instances': ('service_instance', 'service'),
             'operations': ('operation', 'operation')}


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


class RBACTestCase(base.APIBehaviourTestCase):

    def settle(self, operation_id):
        """The conductor is done, and the operation completed."""
        self.wait_settled()
        operation = self.get('%s/%s' % (OPS, operation_id), base.ADMIN)
        self.assertEqual('COMPLETED', operation.json['operation']['state'])

    def make_device(self, template_id, persona=base.MEMBER, **values):
        """A device whose create operation has completed (ACTIVE alone
        is not enough: the operation ends just after)."""
        body = {'device': dict(name='dev', template_id=template_id,
                               **values)}
        response = self.post(D, body, persona, status=202).json
        self.settle(response['operation_id'])
        return response['device']['id'], response['operation_id']

    def make_service(self, persona=base.MEMBER, **values):
        """A service instance bound to ``devices`` (none by default),
        configured on them."""
        values.setdefault('devices', [])
        body = {'service_instance': dict(name='svc',
                                         service_type='firewall', **values)}
        response = self.post(S, body, persona,
                             status=202 if values['devices'] else 201).json
        for operation_id in response.get('operation_ids', ()):
            self.settle(operation_id)
        return response['service_instance']


class TestRBACMatrix(RBACTestCase):
    """Test methods are generated below, one per row of MATRIX."""

    def _fixtures(self, collection):
        """Make in project-a what a row on ``collection`` needs."""
        if collection == 'service_instances':
            return {'service': self.make_service()['id']}
        ids = {'template': self.create_template()['id']}
        if collection != 'device_templates':
            ids['device'], ids['operation'] = self.make_device(
                ids['template'])
        return ids

    def _snapshot(self, collection):
        """What every project holds, seen by the admin, and how many
        rows each table has."""
        items = self.get('/v1/%s%s' % (collection, ALL),
                         base.ADMIN).json[collection]
        return ({i['id']: (i['project_id'], i.get('name'),
                           i.get('description'), i.get('status'),
                           i.get('updated_at')) for i in items},
                self.table_counts())

    def _request(self, method, url, body, who):
        call = getattr(self.app, method.lower() + ('_json' if body else ''))
        args = (url, body) if body else (url,)
        return call(*args, headers=base.headers(who), status='*')

    def check_row(self, method, url, persona, scope, expected, body):
        path, _, query = url.partition('?')
        collection = path.split('/')[2]
        singular, fixture = RESOURCES[collection]
        ids = self._fixtures(collection)
        before = self._snapshot(collection) if method != 'GET' else None
        who = PERSONAS[persona, scope]
        response = self._request(method, url.format(**ids), _fill(body, ids),
                                 who)
        self.assertEqual(expected, response.status_int, response.body)
        if expected >= 400:
            self.assertError(response, expected)
            if method != 'GET':
                # A denied write changed nothing.
                self.assertEqual(before, self._snapshot(collection))
        elif method == 'GET' and path.endswith('/events'):
            events = response.json['events']
            self.assertTrue(events)
            self.assertEqual({ids['device']},
                             {e['resource_id'] for e in events})
        elif method == 'GET' and '{' not in url:
            self._check_listing(response.json[collection], ids[fixture],
                                who, parse.parse_qs(query))
        elif method == 'GET':
            self.assertEqual(ids[fixture], response.json[singular]['id'])
        else:
            self._check_write(method, path, body, who, singular, ids,
                              response)

    def _check_listing(self, items, fixture_id, who, query):
        if 'all_projects' in query:
            projects = None
        else:
            projects = set(query.get('project_id', [who[1]]))
            for item in items:
                self.assertIn(item['project_id'], projects, item)
        listed = [i['id'] for i in items]
        if projects is None or A in projects:
            self.assertIn(fixture_id, listed)
        else:
            self.assertNotIn(fixture_id, listed)

    def _check_write(self, method, path, body, who, singular, ids,
                     response):
        self.assertEqual(response.status_int == 204, not response.body)
        result = response.json[singular] if response.body else None
        if response.status_int == 202:
            self.settle(response.json['operation_id'])
        if method == 'POST':
            inner = body[singular]
            owner = A if {'project_id', 'tenant_id'} & set(inner) else who[1]
            self.assertEqual(owner, result['project_id'])
            self.get('%s/%s' % (path, result['id']), base.ADMIN)
            return
        url = path.format(**ids)
        if method == 'DELETE':
            self.assertEqual(404, self.get(url, status='*').status_int)
            return
        current = self.get(url).json[singular]
        for key, value in body[singular].items():
            self.assertEqual(value, current[key])
            self.assertEqual(value, result[key])


def _test_name(method, url, persona, scope, body):
    words = url[len('/v1/'):].replace('{', '').replace('}', '')
    for char in '/?=-':
        words = words.replace(char, '_')
    variant = ''
    if body:
        inner = list(body.values())[0]
        variant = ''.join('_' + k for k in ('project_id', 'tenant_id',
                                            'kwargs') if k in inner)
    return 'test_%s_%s%s__%s_%s' % (method.lower(), words, variant,
                                    persona, scope)


def _make_test(row):
    def test(self):
        self.check_row(*row)
    return test


for _row in MATRIX:
    _name = _test_name(_row[0], _row[1], _row[2], _row[3], _row[5])
    assert not hasattr(TestRBACMatrix, _name), _name
    setattr(TestRBACMatrix, _name, _make_test(_row))


class TestTenancy(RBACTestCase):
    """What one row cannot show: bindings across projects, and events
    that outlive their device."""

    def test_service_binds_only_devices_of_its_project(self):
        template_id = self.create_template()['id']
        device_id, _ = self.make_device(template_id)
        service = self.make_service(devices=[device_id])
        self.assertEqual([device_id], service['devices'])
        before = self.get(S + ALL, base.ADMIN).json['service_instances']
        for persona, extra in ((base.OTHER_MEMBER, {}),
                               (base.ADMIN, {}),
                               (base.ADMIN, {'project_id': 'project-b'})):
            body = {'service_instance': dict(
                name='x', service_type='firewall', devices=[device_id],
                **extra)}
            self.assertError(self.post(S, body, persona), 400,
                             contains=device_id)
        self.assertEqual(before, self.get(S + ALL, base.ADMIN).json[
            'service_instances'])
        # The admin binds it in project-a by naming project-a.
        service = self.make_service(base.ADMIN, project_id=A,
                                    devices=[device_id])
        self.assertEqual(A, service['project_id'])
        # Another project neither sees the bindings nor may break them.
        listed = self.get(S + '?device_id=' + device_id,
                          base.OTHER_MEMBER).json['service_instances']
        self.assertEqual([], listed)
        self.assertError(self.get('%s/%s' % (S, service['id']),
                                  base.OTHER_MEMBER, status=404), 404)
        self.assertError(self.delete('%s/%s' % (D, device_id),
                                     base.OTHER_MEMBER), 404)
        self.assertError(self.delete('%s/%s' % (D, device_id),
                                     base.READER), 403)
        self.assertError(self.delete('%s/%s' % (D, device_id)), 409)

    def test_events_of_a_deleted_device_stay_in_its_project(self):
        device_id, _ = self.make_device(self.create_template()['id'])
        response = self.delete('%s/%s' % (D, device_id), status=202)
        self.settle(response.json['operation_id'])
        url = '%s/%s/events' % (D, device_id)
        for persona in (base.MEMBER, base.READER, base.ADMIN):
            events = self.get(url, persona).json['events']
            self.assertEqual('device.delete.end', events[-1]['event_type'])
        for persona in (base.OTHER_MEMBER, PERSONAS['reader', 'other']):
            self.assertError(self.get(url, persona, status=404), 404)
