"""The v1 resources end to end: device templates, devices and service
instances with the blueprint's attribute semantics, collections (paging,
sorting, filters, fields), versions, request ids, operations and events."""

from urllib import parse

import sqlalchemy as sa

from servicevm.tests import base

T = '/v1/device_templates'
D = '/v1/devices'
S = '/v1/service_instances'
OPS = '/v1/operations'
UUID = '0b7c2f9e-8a1d-4c55-9e3b-3f7a2d1c6e41'
REQUEST_ID = 'x-openstack-request-id'
VERSION = 'OpenStack-API-Version'


def path_of(url):
    return parse.urlsplit(url).path


class ResourceTestCase(base.APIBehaviourTestCase):

    def follow(self, href, persona=base.MEMBER):
        """GET a link as returned (an absolute URL)."""
        parts = parse.urlsplit(href)
        self.assertEqual('http://localhost', '%s://%s' % (parts.scheme,
                                                          parts.netloc))
        return self.get('%s?%s' % (parts.path, parts.query), persona)

    def all_pages(self, url, key, persona=base.MEMBER, max_pages=50):
        """Every item of a collection, following next links; returns
        (items, number of pages)."""
        items, pages = [], 0
        body = self.get(url, persona).json
        while True:
            pages += 1
            self.assertLess(pages, max_pages)
            items.extend(body[key])
            links = body[key + '_links']
            if not links:
                return items, pages
            self.assertEqual(['next'], [link['rel'] for link in links])
            body = self.follow(links[0]['href'], persona).json

    def create_service(self, persona=base.MEMBER, **values):
        """A service instance bound to ``devices`` (none by default),
        once configured on them (with a conductor running)."""
        body = {'service_type': 'firewall', 'devices': []}
        body.update(values)
        response = self.post(S, {'service_instance': body}, persona,
                             status=202 if body['devices'] else 201)
        if body['devices']:
            self.wait_settled()
            return self.get('%s/%s' % (S, response.json['service_instance'][
                'id'])).json['service_instance']
        return response.json['service_instance']

    def bind_directly(self, service_id, device_ids):
        """Bindings written straight to the database (listing tests, with
        no conductor to configure them)."""
        with self.engine.begin() as conn:
            for position, device_id in enumerate(device_ids):
                conn.execute(sa.text(
                    "INSERT INTO service_device_bindings (service_instance_id,"
                    " device_id, project_id, position, status, owner, "
                    "created_at) VALUES (:s, :d, 'project-a', :p, 'ACTIVE', "
                    ":o, CURRENT_TIMESTAMP)"),
                    {'s': service_id, 'd': device_id, 'p': position,
                     'o': False})

    def set_device_status(self, device_id, status):
        with self.engine.begin() as conn:
            conn.execute(sa.text('UPDATE devices SET status = :s, '
                                 'operation_id = NULL WHERE id = :id'),
                         {'s': status, 'id': device_id})


class TestDeviceTemplates(ResourceTestCase):

    start_conductor = False

    def test_create_defaults(self):
        response = self.post(T, {'device_template': {
            'device_driver': 'noop'}}, status=201)
        template = response.json['device_template']
        self.assertEqual({
            'id': template['id'], 'project_id': 'project-a', 'name': '',
            'description': '', 'device_driver': 'noop',
            'mgmt_driver': 'noop', 'attributes': {}, 'service_types': [],
            'lifecycle_events': {},
            'created_at': template['created_at'], 'updated_at': None},
            template)
        self.assertTrue(template['created_at'])
        self.assertEqual('http://localhost%s/%s' % (T, template['id']),
                         response.headers['Location'])
        self.assertEqual(template, self.get(path_of(
            response.headers['Location'])).json['device_template'])

    def test_create_all_fields(self):
        attributes = {'image': 'cirros', 'flavor': 1, 'nics': [
            {'net-id': UUID}], 'config': {'a': None}, 'none': None}
        template = self.create_template(
            name='fw', description='a firewall', mgmt_driver='noop',
            service_types=['firewall', {'service_type': 'router'}],
            attributes=attributes)
        self.assertEqual('fw', template['name'])
        self.assertEqual('a firewall', template['description'])
        self.assertEqual(['firewall', 'router'], template['service_types'])
        self.assertEqual(attributes, template['attributes'])
        shown = self.get('%s/%s' % (T, template['id'])).json[
            'device_template']
        self.assertEqual(template, shown)

    def test_create_with_null_attributes(self):
        template = self.create_template(attributes=None)
        self.assertEqual({}, template['attributes'])

    def test_update_name_and_description(self):
        template = self.create_template(service_types=['firewall'])
        url = '%s/%s' % (T, template['id'])
        for method, values in (
                ('patch', {'name': 'renamed'}),
                ('patch', {'description': 'described'}),
                ('put', {'name': 'again', 'description': ''})):
            response = getattr(self.app, method + '_json')(
                url, {'device_template': values},
                headers=base.headers(), status=200)
            updated = response.json['device_template']
            for key, value in values.items():
                self.assertEqual(value, updated[key])
            self.assertTrue(updated['updated_at'])
            template.update(values, updated_at=updated['updated_at'])
            self.assertEqual(template, updated)
            self.assertEqual(template, self.get(url).json['device_template'])

    def test_delete(self):
        template = self.create_template()
        url = '%s/%s' % (T, template['id'])
        response = self.delete(url, status=204)
        self.assertEqual(b'', response.body)
        self.assertError(self.get(url, status=404), 404)
        self.assertError(self.delete(url, status=404), 404)
        self.assertEqual([], self.get(T).json['device_templates'])
        counts = self.table_counts()
        self.assertEqual(0, counts['device_template_attributes'])
        self.assertEqual(0, counts['service_types'])

    def test_delete_template_in_use(self):
        template = self.create_template()
        url = '%s/%s' % (T, template['id'])
        device = self.create_device(template['id'], wait=False)
        error = self.assertError(self.delete(url), 409)
        self.assertEqual('servicevm.template_in_use', error['code'])
        self.assertIn(device['id'], error['detail'])
        self.assertIn('delete those devices first', error['detail'])
        self.assertEqual(template, self.get(url).json['device_template'])


class TestDevices(ResourceTestCase):

    def test_create_defaults_and_lifecycle(self):
        template = self.create_template()
        response = self.post(D, {'device': {'template_id': template['id']}},
                             status=202)
        device = response.json['device']
        operation_id = response.json['operation_id']
        self.assertEqual('http://localhost%s/%s' % (OPS, operation_id),
                         response.headers['Location'])
        self.assertEqual('PENDING_CREATE', device['status'])
        expected = {
            'id': device['id'], 'project_id': 'project-a',
            'user_id': 'member-user', 'name': '', 'description': '',
            'template_id': template['id'], 'instance_id': None,
            'mgmt_address': None, 'mgmt_config': None, 'last_seen': None,
            'status': 'PENDING_CREATE',
            'status_reason': None, 'power_state': 'unknown', 'ready': False,
            'operation_id': operation_id,
            'kwargs': {}, 'service_contexts': [], 'services': [],
            'created_at': device['created_at'], 'updated_at': None}
        self.assertEqual(expected, device)
        device = self.wait_for_device(device['id'], 'ACTIVE', base.MEMBER)
        self.assertIsNone(device['operation_id'])
        self.assertEqual('noop-%s' % device['id'], device['instance_id'])
        self.assertTrue(device['ready'])
        self.assertEqual('running', device['power_state'])
        operation = self.wait_for_operation(operation_id)
        self.assertEqual('create', operation['kind'])

    def test_create_all_fields(self):
        template = self.create_template()
        contexts = [{'network_id': UUID, 'role': 'mgmt', 'index': 0},
                    {'subnet_id': UUID.replace('0b', '1c')}]
        device = self.create_device(
            template['id'], name='fw-1', description='first',
            kwargs={'mgmt_address': '192.0.2.7', 'flavor': {'ram': 512}},
            service_contexts=contexts)
        self.assertEqual('fw-1', device['name'])
        self.assertEqual('first', device['description'])
        self.assertEqual({'mgmt_address': '192.0.2.7',
                          'flavor': {'ram': 512}}, device['kwargs'])
        self.assertEqual('192.0.2.7', device['mgmt_address'])
        full = [dict({'network_id': None, 'subnet_id': None,
                      'port_id': None, 'router_id': None, 'role': None,
                      'index': None}, **c) for c in contexts]
        self.assertEqual(full, device['service_contexts'])

    def test_update_name_is_synchronous(self):
        device = self.create_device()
        self.wait_settled()
        url = '%s/%s' % (D, device['id'])
        for method in ('patch_json', 'put_json'):
            for values in ({'name': 'renamed'}, {'description': 'd'},
                           {'name': 'both', 'description': 'both'}):
                response = getattr(self.app, method)(
                    url, {'device': values}, headers=base.headers(),
                    status=200)
                updated = response.json['device']
                self.assertNotIn('Location', response.headers)
                self.assertEqual('ACTIVE', updated['status'])
                for key, value in values.items():
                    self.assertEqual(value, updated[key])
        # No operation was started.
        operations = self.get(OPS + '?resource_id=' + device['id']).json[
            'operations']
        self.assertEqual(['create'], [o['kind'] for o in operations])

    def test_update_kwargs_runs_an_operation(self):
        device = self.create_device(kwargs={'a': 1, 'b': 2})
        self.wait_settled()
        url = '%s/%s' % (D, device['id'])
        response = self.patch(url, {'device': {'kwargs': {'c': 3}}},
                              status=202)
        operation_id = response.json['operation_id']
        self.assertEqual('http://localhost%s/%s' % (OPS, operation_id),
                         response.headers['Location'])
        updated = response.json['device']
        self.assertEqual('PENDING_UPDATE', updated['status'])
        # Replaced, not merged.
        self.assertEqual({'c': 3}, updated['kwargs'])
        device = self.wait_for_device(device['id'], 'ACTIVE')
        self.assertEqual({'c': 3}, device['kwargs'])
        operation = self.wait_for_operation(operation_id)
        self.assertEqual('update', operation['kind'])
        self.assertEqual(['COMPLETED'],
                         [s['state'] for s in operation['steps']])
        # Name and kwargs together; empty kwargs clear them.
        self.wait_settled()
        response = self.app.put_json(
            url, {'device': {'name': 'new', 'kwargs': {}}},
            headers=base.headers(), status=202)
        self.assertEqual('new', response.json['device']['name'])
        self.assertEqual({}, response.json['device']['kwargs'])
        device = self.wait_for_device(device['id'], 'ACTIVE')
        self.assertEqual(('new', {}), (device['name'], device['kwargs']))

    def test_delete(self):
        device = self.create_device()
        self.wait_settled()
        url = '%s/%s' % (D, device['id'])
        response = self.delete(url, status=202)
        self.assertEqual('PENDING_DELETE', response.json['device']['status'])
        operation_id = response.json['operation_id']
        self.assertEqual('http://localhost%s/%s' % (OPS, operation_id),
                         response.headers['Location'])
        self.assertIsNone(self.wait_for_device(device['id'], None))
        self.assertError(self.get(url, status=404), 404)
        self.assertEqual([], self.get(D).json['devices'])
        operation = self.wait_for_operation(operation_id)
        self.assertEqual('delete', operation['kind'])
        self.wait_settled()
        self.assertError(self.delete(url, status=404), 404)
        counts = self.table_counts()
        self.assertEqual(0, counts['devices'])
        self.assertEqual(0, counts['device_kwargs'])

    def test_delete_device_bound_to_a_service_instance(self):
        device = self.create_device()
        self.wait_settled()
        service = self.create_service(devices=[device['id']])
        url = '%s/%s' % (D, device['id'])
        self.assertEqual([service['id']],
                         self.get(url).json['device']['services'])
        with self.assertNoNewRows():
            error = self.assertError(self.delete(url), 409)
        self.assertEqual('servicevm.device_in_use', error['code'])
        self.assertIn(service['id'], error['detail'])
        self.assertEqual('ACTIVE', self.get(url).json['device']['status'])
        self.delete('%s/%s' % (S, service['id']), status=202)
        self.wait_settled()
        self.assertEqual([], self.get(url).json['device']['services'])
        self.delete(url, status=202)
        self.assertIsNone(self.wait_for_device(device['id'], None))

    def test_delete_with_accept_json(self):
        # A 204 answers a client that accepts JSON (no 406).
        template = self.create_template()
        service = self.create_service()
        for url in ('%s/%s' % (T, template['id']),
                    '%s/%s' % (S, service['id'])):
            response = self.app.delete(url, headers=dict(
                base.headers(base.MEMBER), Accept='application/json'),
                status=204)
            self.assertEqual(b'', response.body)

    def test_delete_template_after_its_devices(self):
        template = self.create_template()
        device = self.create_device(template['id'])
        self.wait_settled()
        t_url = '%s/%s' % (T, template['id'])
        self.assertError(self.delete(t_url), 409)
        self.delete('%s/%s' % (D, device['id']), status=202)
        self.wait_for_device(device['id'], None)
        self.delete(t_url, status=204)


class TestBusyDevice(ResourceTestCase):
    """No conductor: a device stays PENDING_CREATE, its create operation
    PROCESSING."""

    start_conductor = False

    def test_second_lifecycle_request_is_a_conflict(self):
        device = self.create_device(wait=False)
        url = '%s/%s' % (D, device['id'])
        operations = self.get(OPS + '?resource_id=' + device['id']).json[
            'operations']
        self.assertEqual([('create', 'PROCESSING')],
                         [(o['kind'], o['state']) for o in operations])
        with self.assertNoNewRows():
            for method, body in (
                    ('delete', None),
                    ('patch', {'device': {'kwargs': {'a': 1}}}),
                    ('put', {'device': {'kwargs': {'a': 1}}}),
                    # The rename must not happen when the update is refused.
                    ('patch', {'device': {'name': 'x', 'kwargs': {}}})):
                if body is None:
                    response = self.delete(url)
                else:
                    response = getattr(self.app, method + '_json')(
                        url, body, headers=base.headers(), status='*')
                error = self.assertError(response, 409)
                self.assertEqual('servicevm.device_busy', error['code'])
                self.assertIn(operations[0]['id'], error['detail'])
        self.assertEqual(device, self.get(url).json['device'])

    def test_descriptive_update_of_a_busy_device(self):
        device = self.create_device(wait=False)
        response = self.patch('%s/%s' % (D, device['id']),
                              {'device': {'name': 'renamed'}}, status=200)
        self.assertEqual('renamed', response.json['device']['name'])
        self.assertEqual('PENDING_CREATE', response.json['device']['status'])


class TestServiceInstances(ResourceTestCase):

    start_conductor = False

    def test_create_defaults(self):
        response = self.post(S, {'service_instance': {
            'service_type': 'firewall', 'devices': []}}, status=201)
        service = response.json['service_instance']
        self.assertEqual({
            'id': service['id'], 'project_id': 'project-a',
            'user_id': 'member-user', 'name': '', 'description': '',
            'service_type': 'firewall', 'service_table_id': None,
            'managed_by_user': True, 'mgmt_driver': 'noop',
            'mgmt_address': None, 'status': 'ACTIVE', 'status_reason': None,
            'kwargs': {}, 'service_contexts': [], 'devices': [],
            'bindings': [],
            'created_at': service['created_at'], 'updated_at': None},
            service)
        self.assertEqual('http://localhost%s/%s' % (S, service['id']),
                         response.headers['Location'])
        self.assertEqual(service, self.get(path_of(
            response.headers['Location'])).json['service_instance'])

    def test_create_bound_to_devices(self):
        template = self.create_template(service_types=['firewall', 'lb'])
        first = self.create_device(template['id'], wait=False)
        second = self.create_device(template['id'], wait=False)
        for device in (first, second):
            # As if their creates had completed (no conductor here).
            self.set_device_status(device['id'], 'ACTIVE')
        response = self.post(S, {'service_instance': dict(
            service_type='firewall',
            name='fw', description='d', service_table_id='row-1',
            managed_by_user=True, mgmt_address='192.0.2.1',
            kwargs={'rules': []}, service_contexts=[{'role': 'in'}],
            devices=[second['id'], first['id']])}, status=202)
        service = response.json['service_instance']
        self.assertEqual([second['id'], first['id']], service['devices'])
        self.assertEqual('PENDING_CREATE', service['status'])
        self.assertEqual(['PENDING', 'PENDING'],
                         [b['status'] for b in service['bindings']])
        # One configure operation per device; each holds its device.
        self.assertEqual(2, len(response.json['operation_ids']))
        for op_id, device in zip(response.json['operation_ids'],
                                 (second, first)):
            operation = self.get('%s/%s' % (OPS, op_id)).json['operation']
            self.assertEqual(('configure', device['id']),
                             (operation['kind'], operation['resource_id']))
            self.assertEqual('PENDING_UPDATE', self.get('%s/%s' % (
                D, device['id'])).json['device']['status'])
        self.assertEqual(('fw', 'd', 'row-1', True, '192.0.2.1'),
                         (service['name'], service['description'],
                          service['service_table_id'],
                          service['managed_by_user'],
                          service['mgmt_address']))
        self.assertEqual({'rules': []}, service['kwargs'])
        self.assertEqual('in', service['service_contexts'][0]['role'])
        for device in (first, second):
            self.assertEqual([service['id']], self.get(
                '%s/%s' % (D, device['id'])).json['device']['services'])

    def test_update(self):
        service = self.create_service(kwargs={'a': 1})
        url = '%s/%s' % (S, service['id'])
        for method, values in (('patch_json', {'name': 'n'}),
                               ('put_json', {'description': 'd'}),
                               ('patch_json', {'kwargs': {'b': 2}})):
            response = getattr(self.app, method)(
                url, {'service_instance': values}, headers=base.headers(),
                status=200)
            updated = response.json['service_instance']
            for key, value in values.items():
                self.assertEqual(value, updated[key])
        shown = self.get(url).json['service_instance']
        self.assertEqual(('n', 'd', {'b': 2}),
                         (shown['name'], shown['description'],
                          shown['kwargs']))
        self.assertTrue(shown['updated_at'])

    def test_delete(self):
        # Bound to no device: gone at once (the staged delete of a bound
        # one is in tests/unit/conductor/test_services.py).
        device = self.create_device(wait=False)
        service = self.create_service()
        self.bind_directly(service['id'], [device['id']])
        self.set_device_status(device['id'], 'ERROR')
        url = '%s/%s' % (S, service['id'])
        self.assertEqual(b'', self.delete(url, status=204).body)
        self.assertError(self.get(url, status=404), 404)
        self.assertError(self.delete(url, status=404), 404)
        self.assertEqual(0, self.table_counts()['service_device_bindings'])


class TestCollections(ResourceTestCase):

    start_conductor = False

    def make_templates(self, names):
        return [self.create_template(name=n) for n in names]

    def test_pages_and_next_links(self):
        made = self.make_templates(['t%d' % i for i in range(5)])
        body = self.get(T + '?limit=2').json
        self.assertEqual([t['id'] for t in made[:2]],
                         [t['id'] for t in body['device_templates']])
        (link,) = body['device_templates_links']
        self.assertEqual('next', link['rel'])
        query = parse.parse_qs(parse.urlsplit(link['href']).query)
        self.assertEqual({'limit': ['2'], 'marker': [made[1]['id']]}, query)
        items, pages = self.all_pages(T + '?limit=2', 'device_templates')
        self.assertEqual(3, pages)
        self.assertEqual([t['id'] for t in made], [t['id'] for t in items])
        # The last, partial, page has no next link.
        last = self.get(T + '?limit=2&marker=' + made[3]['id']).json
        self.assertEqual([made[4]['id']],
                         [t['id'] for t in last['device_templates']])
        self.assertEqual([], last['device_templates_links'])
        # Without a limit, everything fits.
        body = self.get(T).json
        self.assertEqual(5, len(body['device_templates']))
        self.assertEqual([], body['device_templates_links'])

    def test_full_last_page(self):
        made = self.make_templates(['a', 'b', 'c', 'd'])
        body = self.get(T + '?limit=2&marker=' + made[1]['id']).json
        self.assertEqual(2, len(body['device_templates']))
        # A full page links on; the page after is empty and links nowhere.
        body = self.follow(body['device_templates_links'][0]['href']).json
        self.assertEqual({'device_templates': [],
                          'device_templates_links': []}, body)

    def test_limits_are_clamped(self):
        self.config(max_limit=3, default_limit=2, group='api')
        self.make_templates(['t%d' % i for i in range(7)])
        body = self.get(T + '?limit=1000').json
        self.assertEqual(3, len(body['device_templates']))
        query = parse.parse_qs(parse.urlsplit(
            body['device_templates_links'][0]['href']).query)
        self.assertEqual(['3'], query['limit'])
        items, pages = self.all_pages(T + '?limit=1000', 'device_templates')
        self.assertEqual((7, 3), (len(items), pages))
        body = self.get(T).json
        self.assertEqual(2, len(body['device_templates']))
        self.assertEqual(1, len(body['device_templates_links']))

    def test_next_link_keeps_the_query(self):
        made = self.make_templates(['x', 'y', 'x', 'x', 'z'])
        body = self.get(T + '?name=x&sort_dir=desc&limit=1'
                            '&fields=name').json
        query = parse.parse_qs(parse.urlsplit(
            body['device_templates_links'][0]['href']).query)
        self.assertEqual({'name': ['x'], 'sort_dir': ['desc'],
                          'limit': ['1'], 'fields': ['name'],
                          'marker': [made[3]['id']]}, query)
        items, _ = self.all_pages(T + '?name=x&sort_dir=desc&limit=1'
                                      '&fields=name', 'device_templates')
        self.assertEqual([made[i]['id'] for i in (3, 2, 0)],
                         [t['id'] for t in items])
        self.assertEqual([{'id', 'name'}] * 3, [set(t) for t in items])

    def test_sorting(self):
        made = self.make_templates(['b', 'c', 'a'])
        ids = {t['name']: t['id'] for t in made}

        def names(query):
            return [t['name'] for t in
                    self.get(T + query).json['device_templates']]
        self.assertEqual(['b', 'c', 'a'], names(''))
        self.assertEqual(['a', 'c', 'b'], names('?sort_dir=desc'))
        self.assertEqual(['a', 'b', 'c'], names('?sort_key=name'))
        self.assertEqual(['c', 'b', 'a'],
                         names('?sort_key=name&sort_dir=desc'))
        self.assertEqual(sorted(ids.values()), [ids[n] for n in names(
            '?sort_key=id')])
        self.assertEqual(['b', 'c', 'a'], names('?sort_key=created_at'))

    def test_ties_on_the_sort_key_across_pages(self):
        names = ['same'] * 7 + ['aaa', 'zzz'] + ['same'] * 2
        made = self.make_templates(names)
        for sort_dir in ('asc', 'desc'):
            for limit in (1, 2, 3, 4):
                items, pages = self.all_pages(
                    T + '?sort_key=name&sort_dir=%s&limit=%d'
                    % (sort_dir, limit), 'device_templates')
                ids = [t['id'] for t in items]
                case = '%s limit %d' % (sort_dir, limit)
                self.assertEqual(len(ids), len(set(ids)), case)
                self.assertEqual(sorted(t['id'] for t in made), sorted(ids),
                                 case)
                got = [t['name'] for t in items]
                self.assertEqual(sorted(got, reverse=sort_dir == 'desc'),
                                 got, case)

    def test_paging_by_updated_at(self):
        made = self.make_templates(['t%d' % i for i in range(5)])
        # Two were updated (so updated_at is set), three never were.
        for template in (made[3], made[1]):
            self.patch('%s/%s' % (T, template['id']),
                       {'device_template': {'description': 'u'}},
                       status=200)
        for sort_dir in ('asc', 'desc'):
            items, _ = self.all_pages(
                T + '?sort_key=updated_at&limit=2&sort_dir=' + sort_dir,
                'device_templates')
            order = [t['id'] for t in items]
            expected = [made[i]['id'] for i in (0, 2, 4, 3, 1)]
            if sort_dir == 'desc':
                expected.reverse()
            self.assertEqual(expected, order, sort_dir)

    def test_marker(self):
        made = self.make_templates(['t%d' % i for i in range(4)])
        body = self.get(T + '?marker=' + made[1]['id']).json
        self.assertEqual([t['id'] for t in made[2:]],
                         [t['id'] for t in body['device_templates']])
        body = self.get(T + '?sort_dir=desc&marker=' + made[1]['id']).json
        self.assertEqual([made[0]['id']],
                         [t['id'] for t in body['device_templates']])
        # The last one as a marker: an empty page.
        body = self.get(T + '?marker=' + made[3]['id']).json
        self.assertEqual([], body['device_templates'])

    def test_filters(self):
        first = self.create_template(name='one')
        second = self.create_template(name='two')
        d1 = self.create_device(first['id'], name='a', wait=False)
        d2 = self.create_device(first['id'], name='b', wait=False)
        d3 = self.create_device(second['id'], name='a', wait=False)
        self.set_device_status(d2['id'], 'ACTIVE')

        def ids(url, key):
            return sorted(i['id'] for i in self.get(url).json[key])
        self.assertEqual([first['id']], ids(T + '?name=one',
                                            'device_templates'))
        self.assertEqual([], ids(T + '?name=on', 'device_templates'))
        self.assertEqual(sorted([first['id'], second['id']]),
                         ids(T + '?device_driver=noop', 'device_templates'))
        self.assertEqual(sorted([d1['id'], d3['id']]),
                         ids(D + '?name=a', 'devices'))
        self.assertEqual([d2['id']], ids(D + '?status=ACTIVE', 'devices'))
        self.assertEqual(sorted([d1['id'], d3['id']]),
                         ids(D + '?status=PENDING_CREATE', 'devices'))
        self.assertEqual(sorted([d1['id'], d2['id']]),
                         ids(D + '?template_id=' + first['id'], 'devices'))
        self.assertEqual([d1['id']], ids(
            D + '?template_id=%s&name=a' % first['id'], 'devices'))
        self.assertEqual([], ids(D + '?template_id=' + UUID, 'devices'))
        self.assertEqual([], ids(D + '?status=ERROR', 'devices'))
        s1 = self.create_service(name='s1')
        self.bind_directly(s1['id'], [d1['id']])
        s2 = self.create_service(name='s2')
        self.bind_directly(s2['id'], [d1['id'], d3['id']])
        s3 = self.create_service(name='s3', service_type='lb')
        self.assertEqual(sorted([s1['id'], s2['id']]), ids(
            S + '?device_id=' + d1['id'], 'service_instances'))
        self.assertEqual([s2['id']], ids(S + '?device_id=' + d3['id'],
                                         'service_instances'))
        self.assertEqual([], ids(S + '?device_id=' + d2['id'],
                                 'service_instances'))
        self.assertEqual([s2['id']], ids(
            S + '?device_id=%s&name=s2' % d1['id'], 'service_instances'))
        self.assertEqual([s3['id']], ids(S + '?service_type=lb',
                                         'service_instances'))
        self.assertEqual([s1['id']], ids(S + '?status=ACTIVE&name=s1',
                                         'service_instances'))
        # Paging through a filtered list.
        items, pages = self.all_pages(
            S + '?device_id=%s&limit=1' % d1['id'], 'service_instances')
        self.assertEqual([s1['id'], s2['id']], [i['id'] for i in items])

    def test_fields(self):
        template = self.create_template(name='t')
        device = self.create_device(template['id'], name='d', wait=False)
        body = self.get(D + '?fields=name,status').json
        self.assertEqual([{'id': device['id'], 'name': 'd',
                           'status': 'PENDING_CREATE'}], body['devices'])
        body = self.get('%s/%s?fields=template_id' % (D, device['id'])).json
        self.assertEqual({'id': device['id'],
                          'template_id': template['id']}, body['device'])
        body = self.get(T + '?fields=id').json
        self.assertEqual([{'id': template['id']}], body['device_templates'])
        body = self.get('%s/%s?fields=service_types,attributes'
                        % (T, template['id'])).json
        self.assertEqual({'id', 'service_types', 'attributes'},
                         set(body['device_template']))
        service = self.create_service()
        self.bind_directly(service['id'], [device['id']])
        body = self.get(S + '?fields=devices').json
        self.assertEqual([{'id': service['id'], 'devices': [device['id']]}],
                         body['service_instances'])
        body = self.get(OPS + '?fields=kind,state').json
        (operation,) = body['operations']
        self.assertEqual({'id': operation['id'], 'kind': 'create',
                          'state': 'PROCESSING'}, operation)

    def test_other_projects_are_not_listed(self):
        mine = self.create_template()
        other = self.create_template(persona=base.OTHER_MEMBER)
        self.assertEqual([mine['id']], [t['id'] for t in self.get(T).json[
            'device_templates']])
        self.assertError(self.get('%s/%s' % (T, other['id']), status=404),
                         404)
        listed = self.get(T + '?all_projects=1', base.ADMIN).json[
            'device_templates']
        self.assertEqual(sorted([mine['id'], other['id']]),
                         sorted(t['id'] for t in listed))


class TestVersionsAndRequestIds(ResourceTestCase):

    start_conductor = False

    def test_root(self):
        response = self.get('/')
        self.assertEqual('servicevm 1.0', response.headers[VERSION])
        self.assertIn(VERSION, response.headers['Vary'])
        body = response.json
        (version,) = body['versions']
        self.assertEqual(version, body['default_version'])
        self.assertEqual(('v1', 'CURRENT', '1.0', '1.0'),
                         (version['id'], version['status'],
                          version['min_version'], version['version']))
        self.assertEqual('/v1/', path_of(version['links'][0]['href']))
        self.assertEqual('application/json',
                         version['media-types'][0]['base'])
        # Without identity headers, too.
        self.assertEqual(body, self.app.get('/').json)

    def test_v1(self):
        response = self.get('/v1')
        self.assertEqual('servicevm 1.0', response.headers[VERSION])
        version = response.json['version']
        self.assertEqual('v1', version['id'])
        resources = {r['name']: path_of(r['links'][0]['href'])
                     for r in version['resources']}
        self.assertEqual({'device_templates': T, 'devices': D,
                          'service_instances': S, 'operations': OPS,
                          'alarms': '/v1/alarms'}, resources)
        for path in resources.values():
            self.get(path)
        self.assertEqual(version, self.get('/v1/').json['version'])

    def test_version_header_on_every_response(self):
        for value in (None, 'servicevm 1.0', 'servicevm latest'):
            extra = {VERSION: value} if value else {}
            for url, status in ((D, 200), ('/v1/bogus', 404),
                                (D + '?limit=0', 400)):
                response = self.request('GET', url, extra_headers=extra)
                self.assertEqual(status, response.status_int)
                self.assertEqual('servicevm 1.0', response.headers[VERSION])
        response = self.request(
            'POST', T, '{"device_template": {"device_driver": "noop"}}',
            extra_headers={VERSION: 'servicevm 1.0'})
        self.assertEqual(201, response.status_int)
        self.assertEqual('servicevm 1.0', response.headers[VERSION])

    def test_request_ids(self):
        seen = set()
        template = self.create_template()
        for method, url, body, status in (
                ('GET', '/', None, 200), ('GET', T, None, 200),
                ('POST', T, '{"device_template": {"device_driver": "noop"}}',
                 201),
                ('POST', D, '{"device": {"template_id": "%s"}}'
                 % template['id'], 202),
                ('GET', '/v1/bogus', None, 404),
                ('GET', D + '?bogus=1', None, 400),
                ('POST', T, '{', 400),
                ('DELETE', D, None, 405),
                ('POST', T, '{"device_template": {"device_driver": "noop"}}',
                 201)):
            response = self.request(method, url, body)
            self.assertEqual(status, response.status_int, url)
            request_id = response.headers[REQUEST_ID]
            self.assertTrue(request_id.startswith('req-'), request_id)
            self.assertNotIn(request_id, seen)
            seen.add(request_id)
            if status >= 400:
                self.assertEqual(request_id,
                                 response.json['errors'][0]['request_id'])
            if status == 202:
                operation = self.get(path_of(response.headers['Location']))
                self.assertEqual(request_id,
                                 operation.json['operation']['request_id'])
        response = self.delete('%s/%s' % (T, self.create_template()['id']),
                               status=204)
        self.assertTrue(response.headers[REQUEST_ID].startswith('req-'))


class TestOperationsAndEvents(ResourceTestCase):

    def test_operations_of_a_device(self):
        device = self.create_device()
        self.wait_settled()
        body = self.get(OPS + '?resource_id=' + device['id']).json
        (listed,) = body['operations']
        self.assertNotIn('steps', listed)
        self.assertEqual(('device', device['id'], 'create', 'COMPLETED',
                          'project-a', 'member-user'),
                         (listed['resource_type'], listed['resource_id'],
                          listed['kind'], listed['state'],
                          listed['project_id'], listed['user_id']))
        self.assertTrue(listed['started_at'])
        self.assertTrue(listed['finished_at'])
        self.assertIsNone(listed['error'])
        operation = self.get('%s/%s' % (OPS, listed['id'])).json['operation']
        steps = operation.pop('steps')
        self.assertEqual(listed, operation)
        self.assertEqual([(0, 'create_vm', 'COMPLETED', 1, []),
                          (1, 'wait_active', 'COMPLETED', 1,
                           ['create_vm'])],
                         [(s['seq'], s['name'], s['state'], s['attempts'],
                           s['depends_on']) for s in steps])
        for step in steps:
            self.assertTrue(step['started_at'] and step['finished_at'])
            self.assertIsNone(step['error'])
        # Another project sees none of it.
        self.assertEqual([], self.get(
            OPS + '?resource_id=' + device['id'],
            base.OTHER_MEMBER).json['operations'])
        self.assertError(self.get('%s/%s' % (OPS, listed['id']),
                                  base.OTHER_MEMBER, status=404), 404)
        self.assertError(self.get('%s/%s' % (OPS, UUID), status=404), 404)

    def test_operations_after_delete(self):
        device = self.create_device()
        self.wait_settled()
        response = self.delete('%s/%s' % (D, device['id']), status=202)
        self.wait_for_device(device['id'], None)
        self.wait_settled()
        body = self.get(OPS + '?resource_id=%s&sort_key=created_at'
                        % device['id']).json
        self.assertEqual([('create', 'COMPLETED'), ('delete', 'COMPLETED')],
                         [(o['kind'], o['state'])
                          for o in body['operations']])
        self.assertEqual(response.json['operation_id'],
                         body['operations'][1]['id'])
        body = self.get(OPS + '?kind=delete&state=COMPLETED').json
        self.assertEqual([response.json['operation_id']],
                         [o['id'] for o in body['operations']])

    def test_events_of_a_device(self):
        device = self.create_device()
        self.wait_settled()
        url = '%s/%s/events' % (D, device['id'])
        events = self.get(url).json['events']
        types = [e['event_type'] for e in events]
        self.assertEqual('device.create.requested', types[0])
        self.assertEqual('device.create.end', types[-1])
        for step in ('create_vm', 'wait_active'):
            start = types.index('device.create.%s.start' % step)
            end = types.index('device.create.%s.end' % step)
            self.assertLess(start, end)
        ids = [e['id'] for e in events]
        self.assertEqual(sorted(ids), ids)
        for event in events:
            self.assertEqual(('device', device['id'], 'project-a', 'ok'),
                             (event['resource_type'], event['resource_id'],
                              event['project_id'], event['result']))
            self.assertTrue(event['operation_id'])
        # Paging and the reverse order.
        items, pages = self.all_pages(url + '?limit=2', 'events')
        self.assertEqual(ids, [e['id'] for e in items])
        self.assertEqual((len(ids) + 1) // 2 + (len(ids) % 2 == 0), pages)
        self.assertEqual(list(reversed(ids)), [
            e['id'] for e in self.get(url + '?sort_dir=desc').json[
                'events']])
        # Another project cannot read them.
        self.assertError(self.get(url, base.OTHER_MEMBER, status=404), 404)
        self.assertError(self.get('%s/%s/events' % (D, UUID), status=404),
                         404)

    def test_events_outlive_the_device(self):
        device = self.create_device()
        self.wait_settled()
        service = self.create_service(devices=[device['id']])
        self.delete('%s/%s' % (S, service['id']), status=202)
        self.wait_settled()
        self.delete('%s/%s' % (D, device['id']), status=202)
        self.wait_for_device(device['id'], None)
        self.wait_settled()
        url = '%s/%s/events' % (D, device['id'])
        types = [e['event_type'] for e in self.get(url).json['events']]
        self.assertEqual('device.create.requested', types[0])
        for expected in ('device.create.end', 'device.service.bind',
                         'device.service.unbind', 'device.delete.requested',
                         'device.delete.end'):
            self.assertIn(expected, types)
        self.assertLess(types.index('device.service.bind'),
                        types.index('device.service.unbind'))
        self.assertEqual('device.delete.end', types[-1])
        # Still the project's only.
        self.assertError(self.get(url, base.OTHER_MEMBER, status=404), 404)
        self.assertEqual(types, [e['event_type'] for e in self.get(
            url, base.ADMIN).json['events']])
