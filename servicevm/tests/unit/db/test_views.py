"""The API's device views built from rows (views.py) are the ORM's
``Device.as_dict``: for list and show, with kwargs (a secret among them),
service contexts and bound service instances, and with ``fields``."""

import datetime

from oslo_utils import uuidutils
import sqlalchemy as sa

from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.db.sqlalchemy import api as sqla_api
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.tests import base


class ViewsChecks:
    """The checks, on whatever database ``self.dbapi`` reaches (projects
    of their own: a database may be shared by a class's tests)."""

    def setUp(self):
        super().setUp()
        self.dbapi = sqla_api.Connection()
        self.project = 'views-' + uuidutils.generate_uuid()
        self.other = 'other-' + uuidutils.generate_uuid()

    def context(self, project=None, roles=('member',)):
        return svm_context.RequestContext(
            user_id='user-views', project_id=project or self.project,
            roles=list(roles))

    def make_devices(self, project=None):
        """Three devices: a plain one, one with everything, one without
        kwargs; the last two bound to two services (the later id bound
        first); returns (device ids, service ids in binding order)."""
        project = project or self.project
        ctx = self.context(project)
        template = self.dbapi.template_create(ctx, {
            'project_id': project, 'device_driver': 'noop',
            'mgmt_driver': 'noop'})
        ids = []
        specs = [
            {'name': 'plain', 'kwargs': {}},
            {'name': 'full', 'description': 'all of it',
             'kwargs': {'zeta': [1, 2], 'alpha': {'x': None},
                        'password': 's3cret', 'count': 3, 'none': None},
             'service_contexts': [
                 {'network_id': uuidutils.generate_uuid(), 'role': 'mgmt',
                  'index': 0},
                 {'subnet_id': uuidutils.generate_uuid(), 'role': 'data',
                  'index': 1},
                 {'port_id': 'p', 'router_id': 'r'}]},
            {'name': 'bound', 'kwargs': {}},
        ]
        for spec in specs:
            device, _operation = self.dbapi.device_create(ctx, dict(
                spec, project_id=project, user_id='user-views',
                template_id=template.id))
            ids.append(device.id)
        services = sorted(uuidutils.generate_uuid() for _ in range(2))
        with ef.writer.using(ctx) as session:
            session.execute(sa.update(models.Device).where(
                models.Device.id == ids[1]).values(
                status='ACTIVE', operation_id=None, mgmt_address='10.0.0.9',
                instance_id='vm-1', ready=True,
                last_seen=datetime.datetime(2026, 1, 2, 3, 4, 5),
                updated_at=datetime.datetime(2099, 1, 2, 3, 4, 5, 6)))
            services.reverse()
            for second, service_id in enumerate(services):
                session.add(models.ServiceInstance(
                    id=service_id, project_id=project, service_type='fw',
                    mgmt_driver='noop', status='ACTIVE'))
                session.flush()
                for device_id in (ids[1], ids[2]):
                    session.add(models.ServiceDeviceBinding(
                        service_instance_id=service_id, device_id=device_id,
                        project_id=project,
                        created_at=datetime.datetime(2026, 1, 1, 0, 0,
                                                     second)))
        return ids, services

    def orm_view(self, device_id):
        return self.dbapi.device_get(self.context(), device_id).as_dict()

    def test_show_is_as_dict(self):
        ids, services = self.make_devices()
        for device_id in ids:
            self.assertEqual(self.orm_view(device_id),
                             self.dbapi.device_show(self.context(),
                                                    device_id))
        full = self.dbapi.device_show(self.context(), ids[1])
        self.assertEqual('***', full['kwargs']['password'])
        self.assertEqual(['alpha', 'count', 'none', 'password', 'zeta'],
                         list(full['kwargs']))
        self.assertEqual(['mgmt', 'data', None],
                         [c['role'] for c in full['service_contexts']])
        self.assertEqual(services, full['services'])
        self.assertEqual(services, self.dbapi.device_show(
            self.context(), ids[2])['services'])

    def test_list_is_as_dict(self):
        ids, _services = self.make_devices()
        self.make_devices(self.other)
        page = self.dbapi.device_list(self.context(), {}, 10, None,
                                      'created_at', 'asc')
        self.assertEqual([self.orm_view(i) for i in ids], page)
        # Paged one by one, backwards by name.
        names, marker = [], None
        while True:
            page = self.dbapi.device_list(self.context(), {}, 1, marker,
                                          'name', 'desc')
            if not page:
                break
            names.append(page[0]['name'])
            marker = page[0]['id']
        self.assertEqual(['plain', 'full', 'bound'], names)
        # Every sort key, both ways, filtered or not, with or without the
        # collections: the pages walk the same devices as one big page.
        for sort_key in ('created_at', 'updated_at', 'name', 'id',
                         'status'):
            for sort_dir in ('asc', 'desc'):
                for filters, wanted in (({}, None),
                                        ({'status': 'PENDING_CREATE'},
                                         ['name'])):
                    whole = self.dbapi.device_list(
                        self.context(), filters, 10, None, sort_key,
                        sort_dir, wanted)
                    walked, marker = [], None
                    for _ in range(5):
                        page = self.dbapi.device_list(
                            self.context(), filters, 1, marker, sort_key,
                            sort_dir, wanted)
                        if not page:
                            break
                        walked += page
                        marker = page[0]['id']
                    self.assertEqual(whole, walked, (sort_key, sort_dir,
                                                     filters))
                    self.assertEqual(3 if not filters else 2, len(whole))

    def test_fields_without_collections_skip_them(self):
        ids, _services = self.make_devices()
        view = self.dbapi.device_show(self.context(), ids[1],
                                      wanted=['name', 'status'])
        self.assertNotIn('kwargs', view)
        self.assertEqual('full', view['name'])
        page = self.dbapi.device_list(self.context(), {'name': 'full'}, 5,
                                      None, 'created_at', 'asc',
                                      wanted=['services'])
        self.assertEqual([self.orm_view(ids[1])['services']],
                         [d['services'] for d in page])

    def test_scoped_to_the_callers_project(self):
        ids, _services = self.make_devices()
        self.assertRaises(exceptions.DeviceNotFound, self.dbapi.device_show,
                          self.context(self.other), ids[0])
        self.assertEqual([], self.dbapi.device_list(
            self.context(self.other), {}, 10, None, 'created_at', 'asc'))
        admin = self.context('admin-project', roles=('admin',))
        self.assertEqual(ids[0], self.dbapi.device_show(admin, ids[0])['id'])
        self.assertRaises(exceptions.InvalidParameter,
                          self.dbapi.device_list, self.context(self.other), {},
                          10, ids[0], 'created_at', 'asc')


class TestViewsSQLite(ViewsChecks, base.DBTestCase):
    pass
