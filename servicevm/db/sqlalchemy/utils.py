"""Query helpers shared by the SQLAlchemy database API modules."""

from oslo_utils import uuidutils
import sqlalchemy as sa

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.common import states
from servicevm.db.sqlalchemy import models

CONTEXT_FIELDS = ('network_id', 'subnet_id', 'port_id', 'router_id', 'role',
                  'index')


def scope(query, model, context, listing):
    """Limit ``query`` to what ``context`` may see.

    Reading one row by id, an admin sees every project; listing, only with
    ``all_projects``. Everyone else sees their own project only.
    """
    if scoped(context, listing):
        query = query.filter(model.project_id == context.project_id)
    return query


def scoped(context, listing):
    """Whether ``context`` sees its own project only (see scope)."""
    return not (context.all_projects if listing else context.is_admin_role)


def order_by(columns, sort_key, sort_dir):
    """The ORDER BY of a page: ``sort_key`` then id, in ``sort_dir``, on
    ``columns`` (a model, or a table's or subquery's columns)."""
    key_col = getattr(columns, sort_key)
    if sort_key == 'updated_at':
        # A row never updated has no updated_at: it was last updated when
        # it was created (NULL would break the order and the marker).
        key_col = sa.func.coalesce(columns.updated_at, columns.created_at)
    direction = sa.asc if sort_dir == 'asc' else sa.desc
    order = [direction(key_col)]
    if sort_key != 'id':
        order.append(direction(columns.id))
    return order


def after_marker(columns, sort_key, sort_dir, marker, value):
    """The condition on rows that come after the marker row (id
    ``marker``, ``value`` of its ``sort_key``) in the page order."""
    ascending = sort_dir == 'asc'
    beyond = columns.id > marker if ascending else columns.id < marker
    if sort_key == 'id':
        return beyond
    key_col = order_by(columns, sort_key, sort_dir)[0].element
    return sa.or_(key_col > value if ascending else key_col < value,
                  sa.and_(key_col == value, beyond))


def marker_value(row, marker, sort_key, not_found_marker):
    """The ``sort_key`` value of the marker row (None: 400)."""
    if row is None:
        raise exceptions.InvalidParameter(
            reason='The marker %s is not a %s this request can see; '
                   'use the id of the last item of the previous page.'
                   % (marker, not_found_marker), field='marker')
    value = getattr(row, sort_key)
    if sort_key == 'updated_at' and value is None:
        value = row.created_at
    return value


def paginate(query, model, limit, marker, sort_key, sort_dir,
             not_found_marker):
    """The page of ``query`` (an ORM Query) after the row ``marker``,
    ordered by ``sort_key`` then id."""
    if marker is not None:
        value = marker_value(query.filter(model.id == marker).first(),
                             marker, sort_key, not_found_marker)
        query = query.filter(after_marker(model, sort_key, sort_dir,
                                          marker, value))
    return query.order_by(*order_by(model, sort_key, sort_dir)).limit(
        limit).all()


def apply_filters(query, model, filters):
    for key, value in (filters or {}).items():
        if value is None:
            continue
        column = getattr(model, key)
        if isinstance(value, (list, tuple)):
            query = query.filter(column.in_(value))
        else:
            query = query.filter(column == value)
    return query


def kv_rows(model, project_id, pairs, **parent):
    """Rows of key-value pairs, their secrets sealed."""
    return [model(project_id=project_id, key=k,
                  value=secrets.seal(v, key=k), **parent)
            for k, v in (pairs or {}).items()]


def context_rows(model, project_id, contexts, **parent):
    return [model(project_id=project_id,
                  **{f: c.get(f) for f in CONTEXT_FIELDS}, **parent)
            for c in (contexts or ())]


def event(context, resource_type, resource_id, project_id, event_type,
          result='ok', message=None, details=None, operation_id=None):
    return models.Event(
        project_id=project_id, resource_type=resource_type,
        resource_id=resource_id, event_type=event_type, result=result,
        message=message, details=details, operation_id=operation_id,
        user_id=getattr(context, 'user_id', None),
        request_id=getattr(context, 'request_id', None))


def operation(context, resource_type, resource_id, project_id, kind,
              params=None, on_failure=None):
    return models.Operation(
        id=uuidutils.generate_uuid(), project_id=project_id,
        user_id=context.user_id, request_id=context.request_id,
        resource_type=resource_type, resource_id=resource_id, kind=kind,
        state=states.OP_PROCESSING, params=params,
        on_failure=on_failure or 'fail_temp')
