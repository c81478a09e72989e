"""Bad input: every malformed or refused request is a 4xx (never a 5xx) in
the one error shape, names the offending field where there is one, and
leaves no row behind."""

import io
import json

import webob

from servicevm.tests import base

T = '/v1/device_templates'
D = '/v1/devices'
S = '/v1/service_instances'
OPS = '/v1/operations'
UUID = '0b7c2f9e-8a1d-4c55-9e3b-3f7a2d1c6e41'
VERSION = 'OpenStack-API-Version'


class BadInputTestCase(base.APIBehaviourTestCase):
    """A template and a device of project-a's member. No conductor runs
    (what is refused never reaches it), so the device stays
    PENDING_CREATE and nothing writes behind the test's back."""

    start_conductor = False

    def setUp(self):
        super().setUp()
        self.template = self.create_template()
        self.device = self.create_device(self.template['id'], wait=False)

    def check(self, response, status, field=None, contains=None, case=''):
        """assertError, saying which case failed."""
        try:
            return self.assertError(response, status, field=field,
                                    contains=contains)
        except AssertionError as e:
            raise AssertionError('%s: %s' % (case, e))

    def check_all(self, cases, method='POST'):
        """(url, body, status, field) cases, none of which changes the
        database."""
        with self.assertNoNewRows():
            for url, body, status, field in cases:
                response = self.request(method, url, json.dumps(body))
                self.check(response, status, field,
                           case='%s %s %s' % (method, url, body))


class TestBodies(BadInputTestCase):

    def urls(self):
        """Every URL that takes a body: (method, url, wrapper)."""
        return [('POST', T, 'device_template'), ('POST', D, 'device'),
                ('POST', S, 'service_instance'),
                ('PATCH', '%s/%s' % (T, self.template['id']),
                 'device_template'),
                ('PUT', '%s/%s' % (T, self.template['id']),
                 'device_template'),
                ('PATCH', '%s/%s' % (D, self.device['id']), 'device'),
                ('PUT', '%s/%s' % (D, self.device['id']), 'device')]

    def test_malformed_json(self):
        with self.assertNoNewRows():
            for method, url, _ in self.urls():
                for raw in ('{', '{"device": }', "{'a': 1}", 'nul',
                            b'\xff\xfe{}', b'{"a": "\xff"}', '{"a": 1} x',
                            '{"a": NaN'):
                    response = self.request(method, url, raw)
                    error = self.check(response, 400,
                                       case='%s %s %r' % (method, url, raw))
                    self.assertEqual('servicevm.malformed_json',
                                     error['code'])
                    self.assertIn('not valid JSON', error['detail'])

    def test_deeply_nested_json(self):
        with self.assertNoNewRows():
            for raw in ('[' * 2000, '{"a":' * 2000 + '1' + '}' * 2000,
                        json.dumps({'device': {'template_id': 'x'}})[:-2]
                        + ', "kwargs": {"k": ' + '[' * 1500 + ']' * 1500
                        + '}}}'):
                for url in (T, D, '%s/%s' % (D, self.device['id'])):
                    method = 'PATCH' if url.count('/') > 2 else 'POST'
                    response = self.request(method, url, raw)
                    self.check(response, 400, case='%s %s' % (method, url))

    def test_empty_body(self):
        with self.assertNoNewRows():
            for method, url, _ in self.urls():
                self.check(self.request(method, url, ''), 400,
                           contains='needs a JSON body', case=url)
                self.check(self.request(method, url), 400, case=url)

    def test_body_not_an_object(self):
        with self.assertNoNewRows():
            for method, url, _ in self.urls():
                for value in ([], [{}], 'device', 1, 1.5, True, None):
                    response = self.request(method, url, json.dumps(value))
                    self.check(response, 400, contains='must be an object',
                               case='%s %s %r' % (method, url, value))

    def test_missing_or_wrong_wrapper(self):
        with self.assertNoNewRows():
            for method, url, wrapper in self.urls():
                self.check(self.request(method, url, '{}'), 400,
                           field=wrapper, contains='required', case=url)
                for value in (None, [], 'x', 1):
                    response = self.request(method, url,
                                            json.dumps({wrapper: value}))
                    self.check(response, 400, field=wrapper,
                               case='%s %r' % (url, value))
                # The plural, or another resource's wrapper, is unknown.
                for other in (wrapper + 's', 'resource'):
                    response = self.request(
                        method, url, json.dumps({wrapper: {'name': 'x'},
                                                 other: {}}))
                    self.check(response, 400, field=other, case=url)

    def test_wrong_types(self):
        tid = self.template['id']
        self.check_all([
            (T, {'device_template': {'device_driver': 1}}, 400,
             'device_template.device_driver'),
            (T, {'device_template': {'device_driver': 'noop', 'name': 5}},
             400, 'device_template.name'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'description': ['x']}},
             400, 'device_template.description'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'attributes': ['image']}},
             400, 'device_template.attributes'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': 'firewall'}},
             400, 'device_template.service_types'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': [1]}},
             400, 'device_template.service_types.0'),
            (D, {'device': {'template_id': 1}}, 400, 'device.template_id'),
            (D, {'device': {'template_id': tid, 'kwargs': 'a=1'}}, 400,
             'device.kwargs'),
            (D, {'device': {'template_id': tid, 'service_contexts': {}}},
             400, 'device.service_contexts'),
            (D, {'device': {'template_id': tid,
                            'service_contexts': [{'index': 'one'}]}},
             400, 'device.service_contexts.0.index'),
            (D, {'device': {'template_id': tid,
                            'service_contexts': [{'index': -1}]}},
             400, 'device.service_contexts.0.index'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'devices': self.device['id']}},
             400, 'service_instance.devices'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'managed_by_user': 'yes'}},
             400, 'service_instance.managed_by_user'),
            (S, {'service_instance': {'service_type': ['firewall']}},
             400, 'service_instance.service_type'),
        ])
        self.check_all([
            ('%s/%s' % (D, self.device['id']), {'device': {'name': None}},
             400, 'device.name'),
            ('%s/%s' % (D, self.device['id']), {'device': {'kwargs': []}},
             400, 'device.kwargs'),
            ('%s/%s' % (T, tid), {'device_template': {'description': 1}},
             400, 'device_template.description'),
        ], method='PATCH')

    def test_required_fields(self):
        self.check_all([
            (T, {'device_template': {'name': 'x'}}, 400,
             'device_template.device_driver'),
            (D, {'device': {'name': 'x'}}, 400, 'device.template_id'),
            (S, {'service_instance': {'name': 'x'}}, 400,
             'service_instance.service_type'),
        ])

    def test_unknown_fields(self):
        tid = self.template['id']
        self.check_all([
            (T, {'device_template': {'device_driver': 'noop', 'flavor': 1}},
             400, 'device_template.flavor'),
            (D, {'device': {'template_id': tid, 'image': 'cirros'}}, 400,
             'device.image'),
            (D, {'device': {'template_id': tid,
                            'service_contexts': [{'vlan': 5}]}},
             400, 'device.service_contexts.0.vlan'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'service_type_id': UUID}},
             400, 'service_instance.service_type_id'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': [
                                         {'service_type': 'fw', 'x': 1}]}},
             400, 'device_template.service_types.0.x'),
        ])
        response = self.request('POST', T, json.dumps(
            {'device_template': {'device_driver': 'noop', 'flavor': 1}}))
        error = self.assertError(response, 400)
        # The message says what may be given instead.
        self.assertIn("'flavor'", error['detail'])
        self.assertIn('device_driver', error['detail'])

    def test_read_only_fields_on_create(self):
        tid = self.template['id']
        cases = []
        for key, value in (('id', UUID), ('created_at', '2020-01-01'),
                           ('updated_at', '2020-01-01')):
            cases.append((T, {'device_template': {
                'device_driver': 'noop', key: value}}, 400,
                'device_template.' + key))
        for key, value in (('id', UUID), ('status', 'ACTIVE'),
                           ('status_reason', 'x'), ('instance_id', 'vm-1'),
                           ('mgmt_address', '192.0.2.1'),
                           ('services', [UUID]), ('power_state', 'running'),
                           ('ready', True), ('user_id', 'u'),
                           ('created_at', '2020-01-01')):
            cases.append((D, {'device': {'template_id': tid, key: value}},
                          400, 'device.' + key))
        for key, value in (('id', UUID), ('status', 'ACTIVE'),
                           ('status_reason', 'x'), ('user_id', 'u')):
            cases.append((S, {'service_instance': {
                'service_type': 'firewall', key: value}}, 400,
                'service_instance.' + key))
        self.check_all(cases)

    def test_read_only_fields_on_update(self):
        t_url = '%s/%s' % (T, self.template['id'])
        d_url = '%s/%s' % (D, self.device['id'])
        service = self.post(S, {'service_instance': {
            'service_type': 'firewall', 'devices': []}}, status=201).json[
            'service_instance']
        s_url = '%s/%s' % (S, service['id'])
        cases = []
        # Set on create only (allow_put False), or never.
        for key, value in (('device_driver', 'noop'), ('mgmt_driver', 'noop'),
                           ('service_types', ['lb']),
                           ('attributes', {'a': 1}), ('project_id', 'x'),
                           ('tenant_id', 'x'), ('id', UUID)):
            cases.append((t_url, {'device_template': {key: value}}, 400,
                          'device_template.' + key))
        for key, value in (('template_id', UUID), ('status', 'ACTIVE'),
                           ('instance_id', 'vm'), ('mgmt_address', 'x'),
                           ('service_contexts', []), ('services', []),
                           ('project_id', 'x'), ('id', UUID)):
            cases.append((d_url, {'device': {key: value}}, 400,
                          'device.' + key))
        for key, value in (('service_type', 'lb'), ('devices', []),
                           ('mgmt_driver', 'noop'), ('mgmt_address', 'x'),
                           ('service_table_id', 'x'), ('status', 'ERROR'),
                           ('managed_by_user', True),
                           ('service_contexts', [])):
            cases.append((s_url, {'service_instance': {key: value}}, 400,
                          'service_instance.' + key))
        for method in ('PATCH', 'PUT'):
            self.check_all(cases, method=method)
        # Nothing changed.
        self.assertEqual(self.template, self.get(t_url).json[
            'device_template'])
        self.assertEqual(self.device, self.get(d_url).json['device'])

    def test_update_must_set_something(self):
        for url, wrapper in (('%s/%s' % (T, self.template['id']),
                              'device_template'),
                             ('%s/%s' % (D, self.device['id']), 'device')):
            self.check_all([(url, {wrapper: {}}, 400, wrapper)],
                           method='PATCH')

    def test_over_long_strings(self):
        tid = self.template['id']
        long = 'x' * 256
        self.check_all([
            (T, {'device_template': {'device_driver': 'noop', 'name': long}},
             400, 'device_template.name'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'description': 'x' * 1025}},
             400, 'device_template.description'),
            (T, {'device_template': {'device_driver': long}}, 400,
             'device_template.device_driver'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': [long]}},
             400, 'device_template.service_types.0'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'attributes': {long: 1}}},
             400, 'device_template.attributes'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'project_id': 'p' * 256}},
             400, 'device_template.project_id'),
            (D, {'device': {'template_id': tid, 'name': long}}, 400,
             'device.name'),
            (D, {'device': {'template_id': tid, 'kwargs': {long: 'v'}}},
             400, 'device.kwargs'),
            (D, {'device': {'template_id': tid,
                            'service_contexts': [{'role': long}]}},
             400, 'device.service_contexts.0.role'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'mgmt_address': long}},
             400, 'service_instance.mgmt_address'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'service_table_id': long}},
             400, 'service_instance.service_table_id'),
        ])
        self.check_all([
            ('%s/%s' % (D, self.device['id']), {'device': {'name': long}},
             400, 'device.name'),
        ], method='PATCH')
        # The longest value allowed is stored whole.
        name = 'n' * 255
        template = self.create_template(name=name, description='d' * 1024)
        self.assertEqual(name, template['name'])
        self.assertEqual(name, self.get('%s/%s' % (T, template['id'])).json[
            'device_template']['name'])

    def test_bad_characters_and_empty_names(self):
        self.check_all([
            (T, {'device_template': {'device_driver': ''}}, 400,
             'device_template.device_driver'),
            (T, {'device_template': {'device_driver': '../noop'}}, 400,
             'device_template.device_driver'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': ['fire wall']}},
             400, 'device_template.service_types.0'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'attributes': {'': 1}}},
             400, 'device_template.attributes'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': ['fw', 'fw']}},
             400, 'device_template.service_types'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': [
                                         'fw', {'service_type': 'fw'}]}},
             400, 'device_template.service_types'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'project_id': 'a b'}},
             400, 'device_template.project_id'),
        ])

    def test_too_many_entries(self):
        tid = self.template['id']
        self.check_all([
            (D, {'device': {'template_id': tid,
                            'kwargs': {'k%d' % i: i for i in range(201)}}},
             400, 'device.kwargs'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'service_types': ['t%d' % i
                                                       for i in range(33)]}},
             400, 'device_template.service_types'),
        ])

    def test_bad_uuids(self):
        tid = self.template['id']
        cases = []
        for bad in ('', 'abc', tid + '0', tid[:-1], 'x' * 36, 1, None,
                    tid.replace('-', '_')):
            cases.append((D, {'device': {'template_id': bad}}, 400,
                          'device.template_id'))
            cases.append((S, {'service_instance': {
                'service_type': 'firewall', 'devices': [bad]}}, 400,
                'service_instance.devices.0'))
            cases.append((S, {'service_instance': {
                'service_type': 'firewall',
                'devices': [self.device['id'], bad]}}, 400,
                'service_instance.devices.1'))
            cases.append((D, {'device': {
                'template_id': tid,
                'service_contexts': [{'network_id': bad or 'x'}]}}, 400,
                'device.service_contexts.0.network_id'))
        self.check_all(cases)
        self.check_all([
            (S, {'service_instance': {
                'service_type': 'firewall',
                'devices': [self.device['id'], self.device['id']]}}, 400,
             'service_instance.devices'),
        ])


class TestProjects(BadInputTestCase):

    def test_member_creating_in_another_project_is_forbidden(self):
        tid = self.template['id']
        with self.assertNoNewRows():
            for key in ('project_id', 'tenant_id'):
                for url, wrapper, body in (
                        (T, 'device_template', {'device_driver': 'noop'}),
                        (D, 'device', {'template_id': tid}),
                        (S, 'service_instance',
                         {'service_type': 'firewall'})):
                    body = dict(body, **{key: 'project-b'})
                    response = self.post(url, {wrapper: body})
                    self.check(response, 403, case='%s %s' % (url, key))

    def test_project_and_tenant_id_disagreeing(self):
        tid = self.template['id']
        both = {'project_id': 'project-a', 'tenant_id': 'project-b'}
        self.check_all([
            (T, {'device_template': dict(both, device_driver='noop')}, 400,
             'device_template.tenant_id'),
            (D, {'device': dict(both, template_id=tid)}, 400,
             'device.tenant_id'),
            (S, {'service_instance': dict(both, service_type='firewall')},
             400, 'service_instance.tenant_id'),
        ])
        # Agreeing, they are one project.
        response = self.post(T, {'device_template': dict(
            device_driver='noop', project_id='project-a',
            tenant_id='project-a')}, status=201)
        self.assertEqual('project-a',
                         response.json['device_template']['project_id'])

    def test_template_not_found(self):
        other = self.create_template(persona=base.OTHER_MEMBER)
        admins = self.create_template(persona=base.ADMIN)
        with self.assertNoNewRows():
            for template_id, persona, project in (
                    (UUID, base.MEMBER, None),
                    (other['id'], base.MEMBER, None),
                    (admins['id'], base.MEMBER, None),
                    # An admin sees every template, but a device uses one
                    # of its own project.
                    (self.template['id'], base.ADMIN, None),
                    (admins['id'], base.ADMIN, 'project-a'),
                    (other['id'], base.ADMIN, 'project-a')):
                body = {'template_id': template_id}
                if project:
                    body['project_id'] = project
                response = self.post(D, {'device': body}, persona)
                self.check(response, 400, field='device.template_id',
                           contains=template_id,
                           case='%s as %s' % (template_id, persona))
        # The admin may create a device in project-a from its template.
        response = self.post(D, {'device': {
            'template_id': self.template['id'],
            'project_id': 'project-a'}}, base.ADMIN, status=202)
        self.assertEqual('project-a', response.json['device']['project_id'])

    def test_service_instance_devices_of_another_project(self):
        other = self.create_device(persona=base.OTHER_MEMBER, wait=False)
        self.check_all([
            (S, {'service_instance': {'service_type': 'firewall',
                                      'devices': [other['id']]}},
             400, 'service_instance.devices'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'devices': [UUID]}},
             400, 'service_instance.devices'),
        ])

    def test_service_type_the_device_does_not_offer(self):
        error = None
        with self.assertNoNewRows():
            response = self.post(S, {'service_instance': {
                'service_type': 'loadbalancer',
                'devices': [self.device['id']]}})
            error = self.check(response, 409,
                               field='service_instance.service_type')
        self.assertIn('firewall', error['detail'])
        self.assertIn('loadbalancer', error['detail'])

    def test_driver_not_enabled(self):
        self.check_all([
            (T, {'device_template': {'device_driver': 'nova'}}, 400,
             'device_template.device_driver'),
            (T, {'device_template': {'device_driver': 'noop',
                                     'mgmt_driver': 'ssh'}}, 400,
             'device_template.mgmt_driver'),
            (S, {'service_instance': {'service_type': 'firewall',
                                      'mgmt_driver': 'netconf'}}, 400,
             'service_instance.mgmt_driver'),
        ])
        response = self.post(T, {'device_template': {'device_driver': 'nova'}})
        error = self.assertError(response, 400)
        self.assertIn("'nova'", error['detail'])
        self.assertIn('noop', error['detail'])  # what is enabled


class TestBodySize(BadInputTestCase):

    LIMIT = 2048

    def setUp(self):
        super().setUp()
        from servicevm.api import app
        self.config(max_request_body_size=self.LIMIT, group='api')
        self.app = type(self.app)(app.setup_app(base.CONF))

    def big_body(self, size):
        body = {'device_template': {'device_driver': 'noop',
                                    'description': ''}}
        padding = size - len(json.dumps(body))
        body['device_template']['description'] = 'x' * padding
        raw = json.dumps(body).encode()
        self.assertEqual(size, len(raw))
        return raw

    def chunked(self, raw):
        """POST ``raw`` without a Content-Length, as a server passes a
        chunked body (cheroot sets wsgi.input_terminated)."""
        environ = webob.Request.blank(T, method='POST',
                                      headers=base.headers()).environ
        environ.pop('CONTENT_LENGTH', None)
        environ.update({'wsgi.input': io.BytesIO(raw),
                        'wsgi.input_terminated': True,
                        'HTTP_TRANSFER_ENCODING': 'chunked',
                        'CONTENT_TYPE': 'application/json'})
        return webob.Request(environ).get_response(self.app.app)

    def test_over_the_limit(self):
        with self.assertNoNewRows():
            for size in (self.LIMIT + 1, 10 * self.LIMIT):
                response = self.request('POST', T, self.big_body(size))
                self.check(response, 413, contains=str(self.LIMIT),
                           case=size)
            response = self.request(
                'PATCH', '%s/%s' % (D, self.device['id']),
                json.dumps({'device': {'kwargs': {'k': 'v' * 3000}}}))
            self.check(response, 413)

    def test_at_the_limit(self):
        body = {'device_template': {'device_driver': 'noop',
                                    'attributes': {'k': ''}}}
        body['device_template']['attributes']['k'] = 'v' * (
            self.LIMIT - len(json.dumps(body)))
        raw = json.dumps(body)
        self.assertEqual(self.LIMIT, len(raw))
        response = self.request('POST', T, raw)
        self.assertEqual(201, response.status_int, response.body)
        self.assertEqual(body['device_template']['attributes'],
                         response.json['device_template']['attributes'])

    def test_chunked_over_the_limit(self):
        with self.assertNoNewRows():
            response = self.chunked(self.big_body(self.LIMIT + 1))
            self.check(response, 413, contains=str(self.LIMIT))
            response = self.chunked(self.big_body(50 * self.LIMIT))
            self.check(response, 413)

    def test_chunked_under_the_limit(self):
        response = self.chunked(self.big_body(600))
        self.assertEqual(201, response.status_int, response.body)
        templates = self.get(T).json['device_templates']
        self.assertEqual(2, len(templates))


class TestContentType(BadInputTestCase):

    def test_not_json(self):
        body = json.dumps({'device_template': {'device_driver': 'noop'}})
        with self.assertNoNewRows():
            for content_type in ('text/plain', 'application/xml',
                                 'application/x-www-form-urlencoded',
                                 'multipart/form-data; boundary=x',
                                 'application/jsonp'):
                for method, url in (
                        ('POST', T),
                        ('PATCH', '%s/%s' % (T, self.template['id'])),
                        ('PATCH', '%s/%s' % (D, self.device['id']))):
                    response = self.request(method, url, body,
                                            content_type=content_type)
                    self.check(response, 415,
                               case='%s %s %s' % (method, url, content_type))

    def test_json_with_charset_is_json(self):
        body = json.dumps({'device_template': {'device_driver': 'noop'}})
        response = self.request('POST', T, body,
                                content_type='application/json; '
                                             'charset=UTF-8')
        self.assertEqual(201, response.status_int, response.body)


class TestQueries(BadInputTestCase):

    def check_queries(self, cases):
        with self.assertNoNewRows():
            for url, field in cases:
                response = self.get(url, status='*')
                self.check(response, 400, field=field, case=url)

    def test_sorting(self):
        cases = []
        for url in (T, D, S, OPS):
            cases += [
                (url + '?sort_key=bogus', 'sort_key'),
                (url + '?sort_key=', 'sort_key'),
                (url + '?sort_dir=up', 'sort_dir'),
                (url + '?sort_dir=ASC', 'sort_dir'),
                (url + '?sort_key=id&sort_dir=', 'sort_dir'),
            ]
        cases += [(T + '?sort_key=attributes', 'sort_key'),
                  (D + '?sort_key=kwargs', 'sort_key'),
                  (D + '?sort_key=mgmt_address', 'sort_key')]
        self.check_queries(cases)
        response = self.get(D + '?sort_key=bogus', status=400)
        # The message says which keys may be used.
        self.assertIn('created_at', response.json['errors'][0]['detail'])

    def test_limits(self):
        cases = []
        for url in (T, D, S, OPS, '%s/%s/events' % (D, self.device['id'])):
            for limit in ('-1', '0', '00', 'abc', '1.5', '', '1e3',
                          '9' * 20, ' 1'):
                cases.append(('%s?limit=%s' % (url, limit), 'limit'))
        self.check_queries(cases)
        response = self.get(D + '?limit=0', status=400)
        self.assertIn('at least 1', response.json['errors'][0]['detail'])

    def test_markers(self):
        other = self.create_template(persona=base.OTHER_MEMBER)
        events = '%s/%s/events' % (D, self.device['id'])
        self.check_queries([
            (T + '?marker=abc', 'marker'),
            (T + '?marker=' + UUID, 'marker'),
            # Another project's template is no marker of mine.
            (T + '?marker=' + other['id'], 'marker'),
            # Nor is a device a marker of templates.
            (T + '?marker=' + self.device['id'], 'marker'),
            (D + '?marker=' + self.template['id'], 'marker'),
            (S + '?marker=1', 'marker'),
            (OPS + '?marker=' + UUID, 'marker'),
            (events + '?marker=abc', 'marker'),
            (events + '?marker=-1', 'marker'),
        ])

    def test_filters(self):
        self.check_queries([
            (D + '?template_id=abc', 'template_id'),
            (D + '?template_id=', 'template_id'),
            (D + '?status=active;', 'status'),
            (D + '?name=' + 'x' * 256, 'name'),
            (S + '?device_id=abc', 'device_id'),
            (OPS + '?resource_id=abc', 'resource_id'),
            (T + '?device_driver=a%20b', 'device_driver'),
            (D + '?all_projects=maybe', 'all_projects'),
            (D + '?project_id=a%20b', 'project_id'),
        ])

    def test_unknown_parameters(self):
        cases = []
        for url in (T, D, S, OPS, '%s/%s' % (T, self.template['id']),
                    '%s/%s' % (D, self.device['id']),
                    '%s/%s/events' % (D, self.device['id'])):
            cases += [(url + '?bogus=1', 'bogus'),
                      (url + '?Limit=1', 'Limit'),
                      (url + '?tenant_id=project-a', 'tenant_id')]
        # Filters of one collection are unknown to another.
        cases += [(T + '?status=ACTIVE', 'status'),
                  (D + '?device_id=' + UUID, 'device_id'),
                  (D + '?fields=id&sort_key=id&page=2', 'page')]
        self.check_queries(cases)
        response = self.get(D + '?bogus=1', status=400)
        detail = response.json['errors'][0]['detail']
        self.assertIn("'bogus'", detail)
        self.assertIn('query string', detail)
        self.assertIn('limit', detail)  # what may be given

    def test_parameter_given_twice(self):
        self.check_queries([
            (D + '?name=a&name=b', 'name'),
            (D + '?limit=1&limit=1', 'limit'),
            (T + '?sort_key=name&sort_key=id', 'sort_key'),
            ('%s/%s?fields=id&fields=name' % (D, self.device['id']),
             'fields'),
        ])

    def test_unknown_fields(self):
        self.check_queries([
            (D + '?fields=bogus', 'fields'),
            (D + '?fields=id,bogus', 'fields'),
            (D + '?fields=id,', 'fields'),
            (D + '?fields=', 'fields'),
            (T + '?fields=kwargs', 'fields'),
            (OPS + '?fields=kwargs', 'fields'),
            ('%s/%s?fields=password' % (D, self.device['id']), 'fields'),
            ('%s/%s?fields=attributes' % (S, UUID), 'fields'),
        ])

    def test_method_override_is_refused(self):
        url = '%s/%s' % (D, self.device['id'])
        with self.assertNoNewRows():
            for method, query in (('POST', '?_method=delete'),
                                  ('POST', '?_method=DELETE'),
                                  ('GET', '?_method=get')):
                response = self.request(method, url + query, '{}'
                                        if method == 'POST' else None)
                self.check(response, 400, field='_method', case=query)
            # Nor in a form body: forms are refused as they are.
            response = self.request('POST', url, '_method=delete',
                                    content_type='application/x-www-form-'
                                                 'urlencoded')
            self.check(response, 415)
            # Even a malformed one (never parsed).
            response = self.request('DELETE', url, extra_headers={
                'Content-Type': 'multipart/form-data'})
            self.check(response, 415)
        self.assertEqual(self.device, self.get(url).json['device'])


class TestVersions(BadInputTestCase):

    def test_bad_version_header(self):
        with self.assertNoNewRows():
            for value in ('servicevm 1', 'servicevm 1.x', 'servicevm one',
                          'servicevm 1.0.0', 'servicevm v1'):
                for method, url, body in (
                        ('GET', D, None), ('GET', '/', None),
                        ('POST', T, json.dumps({'device_template': {
                            'device_driver': 'noop'}}))):
                    response = self.request(
                        method, url, body, extra_headers={VERSION: value})
                    self.check(response, 400, field=VERSION,
                               case='%s %s %s' % (method, url, value))
                    self.assertIn(VERSION, response.headers)

    def test_unsupported_version(self):
        with self.assertNoNewRows():
            for value in ('servicevm 2.0', 'servicevm 0.9', 'servicevm 1.1',
                          'SERVICEVM 1.99'):
                for method, url, body in (
                        ('GET', D, None),
                        ('POST', T, json.dumps({'device_template': {
                            'device_driver': 'noop'}}))):
                    response = self.request(
                        method, url, body, extra_headers={VERSION: value})
                    error = self.check(response, 406, field=VERSION,
                                       case=value)
                    self.assertIn('1.0', error['detail'])

    def test_other_services_are_ignored(self):
        for value in ('compute 2.90', 'compute 2.1, servicevm 1.0',
                      'servicevm latest', 'servicevm 1.0'):
            response = self.request('GET', D, extra_headers={VERSION: value})
            self.assertEqual(200, response.status_int, value)
            self.assertEqual('servicevm 1.0', response.headers[VERSION])


class TestRouting(BadInputTestCase):

    def test_unknown_urls(self):
        d = '%s/%s' % (D, self.device['id'])
        with self.assertNoNewRows():
            for method, url in (
                    ('GET', '/v2'), ('GET', '/v1/bogus'),
                    ('GET', '/v1/device'), ('GET', d + '/bogus'),
                    ('GET', '/v2/devices'),
                    ('POST', '/v1/bogus'), ('DELETE', '/v1/bogus/1'),
                    ('GET', '%s/%s' % (D, UUID)), ('GET', D + '/not-an-id'),
                    ('GET', '%s/%s' % (T, UUID)), ('GET', '%s/%s' % (S, UUID)),
                    ('GET', '%s/%s' % (OPS, UUID)),
                    ('GET', '%s/%s/events' % (D, UUID)),
                    ('PATCH', '%s/%s' % (D, UUID)),
                    ('DELETE', '%s/%s' % (D, UUID)),
                    ('DELETE', '%s/%s' % (T, UUID)),
                    ('DELETE', '%s/%s' % (S, UUID)),
                    ('GET', '%s/%s' % (D, 'x' * 300))):
                body = json.dumps({'device': {'name': 'x'}}) \
                    if method in ('POST', 'PATCH') else None
                response = self.request(method, url, body)
                self.check(response, 404, case='%s %s' % (method, url))

    def test_unsupported_methods(self):
        d = '%s/%s' % (D, self.device['id'])
        body = json.dumps({'device': {'name': 'x'}})
        with self.assertNoNewRows():
            for method, url, allow in (
                    ('DELETE', D, 'GET, POST'), ('PUT', D, 'GET, POST'),
                    ('PATCH', D, 'GET, POST'), ('DELETE', T, 'GET, POST'),
                    ('PUT', S, 'GET, POST'), ('PATCH', S, 'GET, POST'),
                    ('POST', OPS, 'GET'), ('DELETE', OPS, 'GET'),
                    ('PATCH', '%s/%s' % (OPS, UUID), 'GET'),
                    ('DELETE', '%s/%s' % (OPS, UUID), 'GET'),
                    ('POST', d + '/events', 'GET'),
                    ('DELETE', d + '/events', 'GET'),
                    ('POST', '/', 'GET, HEAD'), ('PUT', '/v1', 'GET, HEAD'),
                    ('DELETE', '/v1', 'GET, HEAD')):
                response = self.request(
                    method, url, body if method != 'DELETE' else None)
                self.check(response, 405, case='%s %s' % (method, url))
                allowed = sorted(m.strip() for m in
                                 response.headers['Allow'].split(','))
                self.assertEqual(sorted(allow.split(', ')), allowed,
                                 '%s %s' % (method, url))
        self.assertEqual('dev', self.get(d).json['device']['name'])

    def test_errors_carry_the_request_id(self):
        response = self.request('GET', '/v1/bogus')
        error = self.check(response, 404)
        self.assertEqual(response.headers['x-openstack-request-id'],
                         error['request_id'])
