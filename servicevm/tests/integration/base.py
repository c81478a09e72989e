"""Integration test base: servicevm against a real OpenStack control plane
on loopback (tools/minicloud.sh: Keystone, Placement, Glance, Neutron,
Nova with the fake virt driver, Heat).

tools/run-tests.sh starts the cloud and exports SERVICEVM_MINICLOUD_ENV,
the JSON file of its credentials and resource ids; without it every test
here is skipped. servicevm runs as in production: its API behind
keystonemiddleware against the cloud's Keystone, two conductors, the
Nova and Heat drivers with ``[vim] credentials = trust`` (VMs land in the
requesting user's project through a Keystone trust).
"""

import json
import os

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from servicevm.tests.functional import base as fbase

ENV = 'SERVICEVM_MINICLOUD_ENV'


def cloud_env():
    path = os.environ.get(ENV)
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class CloudTestCase(fbase.ServiceTestCase):

    REQUIRED_ENV = fbase.ServiceTestCase.REQUIRED_ENV + (ENV,)
    CONDUCTOR_HOSTS = ('cloud-conductor-1', 'cloud-conductor-2')
    #: How long a VM may take to build or go (the fake driver: seconds).
    VM_TIMEOUT = 120

    @classmethod
    def setUpResources(cls):
        cls.cloud = cloud_env()
        cls.CONFIG = cls.cloud_config(cls.cloud)
        cls._sessions_by_user = {}
        super().setUpResources()

    @classmethod
    def cloud_config(cls, env):
        auth_url = env['MINICLOUD_AUTH_URL']
        identity = auth_url[:-3] if auth_url.endswith('/v3') else auth_url
        service_user = {
            'auth_type': 'password', 'auth_url': identity,
            'username': env['MINICLOUD_SERVICEVM_USER'],
            'password': env['MINICLOUD_SERVICEVM_PASSWORD'],
            'user_domain_name': env['MINICLOUD_DOMAIN'],
        }
        scoped = dict(service_user,
                      project_name=env['MINICLOUD_SERVICEVM_PROJECT'],
                      project_domain_name=env['MINICLOUD_DOMAIN'])
        driver = dict(scoped, region_name=env['MINICLOUD_REGION'],
                      poll_interval=0.5, retry_backoff=0.5)
        nova = dict(driver)
        if env.get('MINICLOUD_NOTIFICATIONS_URL'):
            # As a deployment would: the conductors hear Nova's news.
            nova['notifications_url'] = env['MINICLOUD_NOTIFICATIONS_URL']
        return {
            'DEFAULT': {'auth_strategy': 'keystone',
                        'enabled_device_drivers': 'noop,nova,heat'},
            'keystone_authtoken': dict(scoped, www_authenticate_uri=identity,
                                       service_token_roles_required='true'),
            'trustee': service_user,
            'nova': nova,
            'heat': dict(driver, poll_interval=1.0),
            'vim': {'credentials': 'trust'},
            'conductor': {'device_timeout': cls.VM_TIMEOUT,
                          'poll_interval': 0.2},
        }

    # ---- Keystone users ------------------------------------------------

    def session(self, user):
        """A keystoneauth session of ``user`` ('admin', 'demo1', 'demo2',
        'servicevm') scoped to its project."""
        if user not in self._sessions_by_user:
            env = self.cloud
            if user == 'admin':
                name, password, project = (
                    env['MINICLOUD_ADMIN_USER'],
                    env['MINICLOUD_ADMIN_PASSWORD'],
                    env['MINICLOUD_ADMIN_PROJECT'])
            elif user == 'servicevm':
                name, password, project = (
                    env['MINICLOUD_SERVICEVM_USER'],
                    env['MINICLOUD_SERVICEVM_PASSWORD'],
                    env['MINICLOUD_SERVICEVM_PROJECT'])
            else:
                key = 'MINICLOUD_%s_' % user.upper()
                name, password, project = (env[key + 'USER'],
                                           env[key + 'PASSWORD'],
                                           env[key + 'PROJECT'])
            auth = v3.Password(
                auth_url=env['MINICLOUD_AUTH_URL'], username=name,
                password=password, project_name=project,
                user_domain_name=env['MINICLOUD_DOMAIN'],
                project_domain_name=env['MINICLOUD_DOMAIN'])
            self._sessions_by_user[user] = ks_session.Session(auth=auth)
        return self._sessions_by_user[user]

    def headers(self, persona='demo1'):
        if isinstance(persona, tuple):
            # The functional suite's personas: admin of the cloud.
            persona = 'admin'
        return {'X-Auth-Token': self.session(persona).get_token()}

    def project_id(self, user):
        return self.session(user).get_project_id()

    # ---- what the cloud holds (read as admin) ---------------------------

    def cloud_get(self, service_type, path, user='admin', **kwargs):
        reply = self.session(user).get(
            path, endpoint_filter={'service_type': service_type,
                                   'interface': 'public'},
            raise_exc=False, **kwargs)
        self.assertIn(reply.status_code, (200, 404), reply.text[:500])
        return reply.json() if reply.status_code == 200 else None

    def servers(self, device_id=None, user='admin'):
        """Servers tagged by servicevm (for one device), every project
        when ``user`` is admin."""
        params = {'tags': ('svm-dev-%s' % device_id) if device_id
                  else 'servicevm'}
        if user == 'admin':
            params['all_tenants'] = '1'
        return self.cloud_get(
            'compute', '/servers/detail', user=user, params=params,
            headers={'OpenStack-API-Version': 'compute 2.79'})['servers']

    def ports(self, server_id):
        return self.cloud_get('network', '/v2.0/ports',
                              params={'device_id': server_id})['ports']

    def stacks(self, user='demo1'):
        """servicevm's stacks in ``user``'s project (Heat's policy keeps
        the global listing from admins of other projects)."""
        params = {'tags': 'servicevm'}
        reply = self.cloud_get('orchestration', '/stacks', user=user,
                               params=params)
        return reply['stacks']

    # ---- servicevm resources -----------------------------------------

    def nova_template(self, user='demo1', **attributes):
        attrs = {'image': self.cloud['MINICLOUD_IMAGE_NAME'],
                 'flavor': self.cloud['MINICLOUD_FLAVOR_TINY_NAME'],
                 'networks': [self.cloud['MINICLOUD_MGMT_NET']],
                 'mgmt_network': self.cloud['MINICLOUD_MGMT_NET_NAME']}
        attrs.update(attributes)
        return self.create_template(persona=user, device_driver='nova',
                                    attributes=attrs)

    def wait_operation(self, operation_id, states, user='demo1',
                       timeout=None):
        return self.wait_for_operation(operation_id, states,
                                       timeout=timeout or self.VM_TIMEOUT)
