"""The reference of bench/api.py: the least an API that reads or writes its
database on every request can do. A Pecan app built with the same Pecan
options as the floor (bench/bare_app.py) and servicevm's API, plus one SQL
statement per request through SQLAlchemy Core (no ORM, no oslo.db, no
auth, no policy, no validation beyond not crashing, no kwargs, events or
operations):

    GET  /                  a constant JSON body (readiness check)
    GET  /v1/devices/<id>   one SELECT of the device's shown columns WHERE
                            id and project_id (X-Project-Id); 200 or 404
    GET  /v1/devices?limit=N  one SELECT of the project's devices ORDER BY
                            created_at, id LIMIT N (default 100)
    POST /v1/devices        one INSERT of a PENDING_CREATE device from
                            {"device": {"template_id": ..., "name": ...}};
                            202

One engine per worker (pool of 8 connections, enough for the gunicorn
threads), in autocommit: each request is one round trip to PostgreSQL
(psycopg2 would otherwise send BEGIN, and ROLLBACK or COMMIT, apart), the
INSERT being a transaction of its own. The statements are built once, and
pecan's signature inspection is cached per method as servicevm's API does.

    BENCH_REF_DB_URL=postgresql+psycopg2://user:pw@127.0.0.1:5432/db \\
        gunicorn --pythonpath bench 'ref_app:app'

(servicevm must be importable: the ``devices`` table is that of
servicevm.db.sqlalchemy.models.)
"""

import datetime
import json
import os
import uuid

import pecan
from pecan import rest
import sqlalchemy as sa

import bare_app

# Imported for its side effect: it caches pecan's signature inspection,
# as it does for servicevm's API (about 0.6 ms of a RestController route).
from servicevm.api import app as _api_app  # noqa: F401
from servicevm.db.sqlalchemy import models

DEVICES = models.Device.__table__
# The columns the API shows of a device (never trust_id, usage, monitor).
SHOWN = ('id', 'project_id', 'user_id', 'name', 'description',
         'template_id', 'instance_id', 'mgmt_address', 'mgmt_config',
         'last_seen', 'status', 'status_reason', 'power_state', 'ready',
         'operation_id', 'created_at', 'updated_at')
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

ENGINE = sa.create_engine(os.environ['BENCH_REF_DB_URL'],
                          isolation_level='AUTOCOMMIT',
                          pool_size=8, max_overflow=8)

_SELECT = sa.select(*[DEVICES.c[name] for name in SHOWN])
SHOW = _SELECT.where(DEVICES.c.id == sa.bindparam('id'),
                     DEVICES.c.project_id == sa.bindparam('project_id'))
LIST = (_SELECT.where(DEVICES.c.project_id == sa.bindparam('project_id'))
        .order_by(DEVICES.c.created_at, DEVICES.c.id)
        .limit(sa.bindparam('limit')))
INSERT = DEVICES.insert()


BODY = {'name': 'ref', 'description': 'The reference of bench/api.py: '
        'the floor plus one SQL statement per request.',
        'version': {'id': 'v1', 'status': 'CURRENT'}}


def _view(mapping):
    return {key: (value.isoformat()
                  if isinstance(value, datetime.datetime) else value)
            for key, value in mapping.items()}


def _project():
    return pecan.request.headers.get('X-Project-Id', '')


def _error(status, message):
    pecan.response.status = status
    return {'error': {'code': status, 'message': message}}


class DevicesController(rest.RestController):

    @pecan.expose('json')
    def get_one(self, device_id):
        with ENGINE.connect() as conn:
            row = conn.execute(SHOW, {'id': device_id,
                                      'project_id': _project()}).first()
        if row is None:
            return _error(404, 'Device %s could not be found.' % device_id)
        return {'device': _view(row._mapping)}

    @pecan.expose('json')
    def get_all(self, **kwargs):
        # The query string in kwargs (a named argument would make pecan's
        # RestController answer 404).
        try:
            limit = int(kwargs.get('limit', DEFAULT_LIMIT))
        except ValueError:
            return _error(400, 'limit must be an integer.')
        limit = max(1, min(limit, MAX_LIMIT))
        with ENGINE.connect() as conn:
            rows = conn.execute(LIST, {'project_id': _project(),
                                       'limit': limit}).all()
        return {'devices': [_view(row._mapping) for row in rows]}

    @pecan.expose('json')
    def post(self, **kwargs):
        try:
            device = json.loads(pecan.request.body)['device']
            template_id = str(device['template_id'])
        except (ValueError, TypeError, KeyError):
            return _error(400, 'A JSON body {"device": {"template_id": ...}}'
                               ' is expected.')
        values = {
            'id': str(uuid.uuid4()), 'project_id': _project(),
            'user_id': pecan.request.headers.get('X-User-Id'),
            'name': str(device.get('name') or ''),
            'description': str(device.get('description') or ''),
            'template_id': template_id, 'instance_id': None,
            'mgmt_address': None, 'mgmt_config': None, 'last_seen': None,
            'status': 'PENDING_CREATE', 'status_reason': None,
            'power_state': 'unknown', 'ready': False, 'operation_id': None,
            'created_at': datetime.datetime.now(
                datetime.timezone.utc).replace(tzinfo=None),
            'updated_at': None}
        try:
            with ENGINE.begin() as conn:
                conn.execute(INSERT, values)
        except sa.exc.IntegrityError:
            # A template that does not exist (foreign key).
            return _error(400, 'Device template %s could not be found.'
                          % template_id)
        pecan.response.status = 202
        return {'device': _view(values)}


class V1Controller:

    devices = DevicesController()

    @pecan.expose('json')
    def index(self):
        return BODY


class RootController(bare_app.RootController):
    """The floor's root (a constant body at /), with /v1."""

    v1 = V1Controller()


app = bare_app.make_app(RootController())
