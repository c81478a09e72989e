"""The OpenAPI document and the API cannot drift: every route it lists
validates its query string and body with the schemas it gives, and every
route the API answers is in it."""

import json

import fixtures
import jsonschema
import sqlalchemy as sa

from servicevm.api.controllers.v1 import utils
from servicevm.api import openapi
from servicevm.tests import base

METHODS = ('get', 'post', 'put', 'patch', 'delete')


class TestOpenAPI(base.APITestCase):

    start_conductor = False

    def setUp(self):
        super().setUp()
        # What each request validates with.
        self.used = {}
        real_query, real_body = utils.query, utils.body

        def query(schema):
            self.used['query'] = schema
            return real_query(schema)

        def body(schema):
            self.used['body'] = schema
            return real_body(schema)
        self.useFixture(fixtures.MonkeyPatch(
            'servicevm.api.controllers.v1.utils.query', query))
        self.useFixture(fixtures.MonkeyPatch(
            'servicevm.api.controllers.v1.utils.body', body))
        template = self.create_template()
        device = self.create_device(template['id'], wait=False)
        service = self.post('/v1/service_instances', {'service_instance': {
            'service_type': 'firewall', 'devices': []}},
            status=201).json['service_instance']
        # An alarm, as a conductor records one.
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO events (project_id, resource_type, "
                "resource_id, event_type, result, created_at) VALUES "
                "('project-a', 'device', :d, 'device.delete.error', "
                "'alarm', CURRENT_TIMESTAMP)"), {'d': device['id']})
            alarm_id = conn.execute(sa.text(
                "SELECT max(id) FROM events WHERE result = 'alarm'")).scalar()
        self.ids = {'alarms': str(alarm_id),
                    'device_templates': template['id'],
                    'devices': device['id'],
                    'service_instances': service['id'],
                    'operations': self.get(
                        '/v1/operations').json['operations'][0]['id']}

    def path(self, template):
        for resource, resource_id in self.ids.items():
            prefix = '/v1/%s/{id}' % resource
            if template.startswith(prefix):
                return template.replace('{id}', resource_id)
        return template

    def call(self, method, path):
        self.used.clear()
        kwargs = {'headers': base.headers(base.ADMIN), 'status': '*'}
        if method in ('post', 'put', 'patch'):
            # An empty object: validated (and refused) by the body schema.
            return getattr(self.app, method + '_json')(path, {}, **kwargs)
        return getattr(self.app, method)(path, **kwargs)

    def test_served_document(self):
        response = self.get('/v1/openapi.json')
        document = response.json
        self.assertEqual('3.1.0', document['openapi'])
        self.assertEqual(openapi.document(document['servers'][0]['url']),
                         document)
        # Every schema in it is a valid JSON Schema.
        for path, methods in document['paths'].items():
            for method, operation in methods.items():
                schemas = [p['schema'] for p in operation.get(
                    'parameters', ())]
                body = operation.get('requestBody')
                if body:
                    schemas.append(body['content']['application/json'][
                        'schema'])
                for schema in schemas:
                    jsonschema.Draft202012Validator.check_schema(schema)
        json.dumps(document)

    def test_routes_validate_with_the_documented_schemas(self):
        for path, method, _, query, body, statuses, _ in openapi.ROUTES:
            response = self.call(method, self.path(path))
            where = '%s %s' % (method.upper(), path)
            self.assertNotIn(response.status_int, (404, 405), where)
            self.assertLess(response.status_int, 500, where)
            self.assertIs(query, self.used.get('query'),
                          '%s: the query schema differs' % where)
            if body is None:
                self.assertNotIn('body', self.used, where)
            else:
                self.assertEqual(body, self.used.get('body'),
                                 '%s: the body schema differs' % where)
                self.assertEqual(400, response.status_int, where)

    def test_every_route_of_the_api_is_documented(self):
        documented = {(p, m) for p, m, *_ in openapi.ROUTES}
        paths = {'/', '/v1', '/v1/openapi.json'}
        for resource in self.ids:
            paths.update({'/v1/%s' % resource, '/v1/%s/{id}' % resource,
                          '/v1/%s/{id}/action' % resource,
                          '/v1/%s/{id}/events' % resource,
                          '/v1/%s/{id}/alarms' % resource,
                          '/v1/%s/{id}/metrics' % resource})
        for path in sorted(paths):
            for method in METHODS:
                response = self.call(method, self.path(path))
                if response.status_int in (404, 405):
                    continue
                self.assertIn((path, method), documented,
                              '%s %s answers %s but is not in the OpenAPI '
                              'document' % (method.upper(), path,
                                            response.status_int))
