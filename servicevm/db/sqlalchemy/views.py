"""The API's reads of devices, built straight from rows.

``GET /v1/devices`` and ``GET /v1/devices/{id}`` need dicts, not ORM
objects, and building a page of 100 devices with their kwargs as ORM
objects cost more than the queries themselves (about 300 objects, their
identity map and attribute state). Here the same dicts come from SQLAlchemy
Core rows: one query, the device rows joined with a UNION ALL of their
collection items (kwargs, service contexts and bound service instances),
its statement built once per shape. ``models.Device.as_dict`` stays the
definition of a device's API view; a unit test holds the two equal.
"""

import datetime
import json

import sqlalchemy as sa

from servicevm.common import secrets
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du

_DEVICES = models.Device.__table__
# The columns a device's API view shows (never trust_id, usage, monitor).
_SHOWN = ('id', 'project_id', 'user_id', 'name', 'description',
          'template_id', 'instance_id', 'mgmt_address', 'mgmt_config',
          'last_seen', 'status', 'status_reason', 'power_state', 'ready',
          'operation_id', 'created_at', 'updated_at')
_TIMES = ('last_seen', 'created_at', 'updated_at')
_LONG_AGO = datetime.datetime.min
COLLECTIONS = ('kwargs', 'service_contexts', 'services')


def _device_select():
    """A SELECT of the shown columns of devices (add WHERE and ORDER)."""
    return sa.select(*[_DEVICES.c[name] for name in _SHOWN])


def _collections_select(of):
    """Every kwarg, service context and binding of the devices that
    ``of(device_id column)`` (a condition) selects, one row each:
    (kind 'k', 'c' or 'b', device_id, texts s1..s5, number, ordinal,
    at)."""
    arg = models.DeviceArg.__table__
    ctx = models.DeviceServiceContext.__table__
    binding = models.ServiceDeviceBinding.__table__

    def select(kind, device_id, texts, number=None, order=None, at=None):
        """One branch, its columns named (the union takes the first
        branch's names) and NULL where the kind has nothing."""
        texts = list(texts) + [None] * (5 - len(texts))
        columns = [sa.literal(kind).label('kind'),
                   device_id.label('device_id')]
        columns += [(sa.cast(sa.null(), sa.String(255)) if t is None
                     else t).label('s%d' % i)
                    for i, t in enumerate(texts, 1)]
        columns += [(sa.cast(sa.null(), sa.Integer) if c is None
                     else c).label(name)
                    for c, name in ((number, 'number'), (order, 'ordinal'))]
        columns.append((sa.cast(sa.null(), sa.DateTime) if at is None
                        else at).label('at'))
        return sa.select(*columns).where(of(device_id))

    return sa.union_all(
        # The kwarg's value as its stored JSON text (decoded below).
        select('k', arg.c.device_id,
               [arg.c.key, sa.type_coerce(arg.c.value, sa.Text())]),
        select('c', ctx.c.device_id,
               [ctx.c.network_id, ctx.c.subnet_id, ctx.c.port_id,
                ctx.c.router_id, ctx.c.role], ctx.c.role_index, ctx.c.id),
        select('b', binding.c.device_id, [binding.c.service_instance_id],
               at=binding.c.created_at))


def _iso(value):
    return value.isoformat() if value is not None else None


def _view(row):
    view = dict(zip(_SHOWN, row))
    for name in _TIMES:
        view[name] = _iso(view[name])
    return view


def _add(views_by_id, items):
    """Put the collection ``items`` (rows of _collections_select) into
    the views, ordered as the ORM relationships order them: kwargs by
    key, contexts by id, bindings as they were made."""
    for view in views_by_id.values():
        view['kwargs'], view['service_contexts'], view['services'] = (
            {}, [], [])

    def order(item):
        kind = item[0]
        if kind == 'k':
            return (kind, item[2])
        if kind == 'c':
            return (kind, item[8])
        # Bindings by creation, then service instance id.
        return (kind, item[9] or _LONG_AGO, item[2])

    for kind, device_id, s1, s2, s3, s4, s5, number, _order, _at in sorted(
            items, key=order):
        view = views_by_id[device_id]
        if kind == 'k':
            value = json.loads(s2) if s2 is not None else None
            view['kwargs'][s1] = secrets.mask(value, key=s1)
        elif kind == 'c':
            view['service_contexts'].append({
                'network_id': s1, 'subnet_id': s2, 'port_id': s3,
                'router_id': s4, 'role': s5, 'index': number})
        else:
            view['services'].append(s1)


def _collections_wanted(wanted):
    return not wanted or bool(set(wanted) & set(COLLECTIONS))


def _joined_views(rows):
    """The views of rows of devices joined with their collection items
    (a device's rows together, devices in order)."""
    shown = len(_SHOWN)
    views, items = {}, []
    for row in rows:
        device_id = row[0]
        if device_id not in views:
            views[device_id] = _view(row)
        if row[shown] is not None:
            items.append(row[shown:])
    _add(views, items)
    return list(views.values())


def _with_collections(devices, of):
    """SELECT the columns of ``devices`` (a FROM of device rows) joined
    with each of their collection items; ``of(column)`` limits each
    collection to those devices."""
    items = _collections_select(of).subquery()
    return sa.select(devices, items).select_from(devices.outerjoin(
        items, items.c.device_id == devices.c.id))


def _show_statement(scoped, collections):
    """The SELECT of one device (bound: device_id, and project_id when
    ``scoped``), joined with each of its collection items when
    ``collections``."""
    query = _device_select().where(_DEVICES.c.id == sa.bindparam('device_id'))
    if scoped:
        query = query.where(
            _DEVICES.c.project_id == sa.bindparam('project_id'))
    if collections:
        query = _with_collections(
            query.subquery(), lambda column: column == sa.bindparam(
                'device_id'))
    return query


# Built once: building these statements and their cache keys cost more
# than running them.
_SHOW = {(scoped, collections): _show_statement(scoped, collections)
         for scoped in (True, False) for collections in (True, False)}


def _page_statements(scoped, filtered, sort_key, sort_dir, collections):
    """The statements of a page of devices of one shape: (the marker
    row's, the first page's, a page after a marker's). Bound:
    scope_project_id when ``scoped``; filter_<key> for each (key, many)
    of ``filtered``; marker and marker_value; limit."""
    columns = _DEVICES.c
    query = _device_select()
    if scoped:
        query = query.where(
            columns.project_id == sa.bindparam('scope_project_id'))
    for key, many in filtered:
        value = sa.bindparam('filter_' + key, expanding=many)
        query = query.where(columns[key].in_(value) if many
                            else columns[key] == value)
    marker = query.where(columns.id == sa.bindparam('marker'))
    order = du.order_by(columns, sort_key, sort_dir)
    pages = []
    for condition in (None, du.after_marker(
            columns, sort_key, sort_dir, sa.bindparam('marker'),
            sa.bindparam('marker_value', type_=order[0].element.type))):
        page = query if condition is None else query.where(condition)
        page = page.order_by(*order).limit(sa.bindparam('limit'))
        if collections:
            page = page.cte('page')
            page = _with_collections(
                page, lambda column: column.in_(sa.select(page.c.id))
            ).order_by(*du.order_by(page.c, sort_key, sort_dir))
        pages.append(page)
    return marker, pages[0], pages[1]


# By shape (see _page_statements): bounded by the sort keys, directions
# and filters the query string's schema allows; a few dozen in practice.
_PAGES = {}


def device_page(connection, context, filters, limit, marker, sort_key,
                sort_dir, wanted=None):
    """A page of devices' API views, as ``Connection.device_list``: one
    query, the page (a CTE) joined with its devices' collection items
    (only when ``wanted``, the ``fields`` asked for, None for all, has any
    of them)."""
    params = {'limit': limit, 'marker': marker}
    scoped = du.scoped(context, listing=True)
    if scoped:
        params['scope_project_id'] = context.project_id
    filtered = []
    for key, value in sorted((filters or {}).items()):
        if value is not None:
            many = isinstance(value, (list, tuple))
            filtered.append((key, many))
            params['filter_' + key] = list(value) if many else value
    collections = _collections_wanted(wanted)
    shape = (scoped, tuple(filtered), sort_key, sort_dir, collections)
    statements = _PAGES.get(shape)
    if statements is None:
        statements = _PAGES[shape] = _page_statements(*shape)
    by_marker, first_page, next_page = statements
    query = first_page
    if marker is not None:
        params['marker_value'] = du.marker_value(
            connection.execute(by_marker, params).first(), marker,
            sort_key, 'device')
        query = next_page
    rows = connection.execute(query, params)
    if collections:
        return _joined_views(rows)
    return [_view(row) for row in rows]


def device_one(connection, context, device_id, wanted=None):
    """One device's API view, or None when ``context`` cannot see it: one
    query, the device's row joined with each of its collection items."""
    collections = _collections_wanted(wanted)
    rows = connection.execute(
        _SHOW[du.scoped(context, listing=False), collections],
        {'device_id': device_id, 'project_id': context.project_id}).all()
    if not rows:
        return None
    if collections:
        return _joined_views(rows)[0]
    return _view(rows[0])
