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


def paginate(query, model, limit, marker, sort_key, sort_dir,
             not_found_marker, execute=None):
    """The page of ``query`` (an ORM Query; or, with ``execute``, e.g. a
    Connection's, a Core Select of the model's columns) after the row
    ``marker``, ordered by ``sort_key`` then id."""
    def first(q):
        return execute(q).first() if execute else q.first()

    key_col = getattr(model, sort_key)
    if sort_key == 'updated_at':
        # A row never updated has no updated_at: it was last updated when
        # it was created (NULL would break the order and the marker).
        key_col = sa.func.coalesce(model.updated_at, model.created_at)
    ascending = sort_dir == 'asc'
    if marker is not None:
        row = first(query.filter(model.id == marker))
        if row is None:
            raise exceptions.InvalidParameter(
                reason='The marker %s is not a %s this request can see; '
                       'use the id of the last item of the previous page.'
                       % (marker, not_found_marker), field='marker')
        value = getattr(row, sort_key)
        if sort_key == 'updated_at' and value is None:
            value = row.created_at
        if sort_key == 'id':
            query = query.filter(
                model.id > marker if ascending else model.id < marker)
        else:
            after = key_col > value if ascending else key_col < value
            tie = sa.and_(key_col == value,
                          model.id > marker if ascending else
                          model.id < marker)
            query = query.filter(sa.or_(after, tie))
    direction = sa.asc if ascending else sa.desc
    order = [direction(key_col)]
    if sort_key != 'id':
        order.append(direction(model.id))
    query = query.order_by(*order).limit(limit)
    return execute(query).all() if execute else query.all()


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
