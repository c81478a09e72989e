"""Helpers shared by the v1 controllers: bodies, query strings, paging,
ownership and links."""

import json
from urllib import parse

from oslo_config import cfg
import pecan
from oslo_utils import strutils
from pecan import rest
import webob.exc

from servicevm.api import validation
from servicevm.common import exceptions
from servicevm.common import notify
from servicevm.common import policy

CONF = cfg.CONF
FORM_TYPES = ('application/x-www-form-urlencoded', 'multipart/form-data')


def context():
    return pecan.request.context


class RestController(rest.RestController):
    """pecan's RestController, answering 405 (not a TypeError) to PUT,
    PATCH and DELETE on a collection, and refusing pecan's ``_method``
    override (a POST must not become a DELETE)."""

    @pecan.expose()
    def _route(self, args, request=None):
        request = request or pecan.request
        if request.content_type in FORM_TYPES:
            # JSON only: a form is never parsed (so no _method in one).
            raise exceptions.UnsupportedMediaType(
                content_type=request.content_type)
        if '_method' in request.GET:
            raise exceptions.InvalidParameter(
                reason='Query parameter _method is not supported; use the '
                       'HTTP method itself.', field='_method')
        if (request.method in ('PUT', 'PATCH', 'DELETE')
                and not [a for a in args if a]):
            raise webob.exc.HTTPMethodNotAllowed(headers={
                'Allow': 'GET, POST' if hasattr(self, 'post') else 'GET'})
        return super()._route(args, request)


def body(schema):
    """The request's JSON body, validated against ``schema``."""
    request = pecan.request
    raw = request.body
    if not raw:
        raise exceptions.ValidationError(
            reason='The request needs a JSON body.', field=None)
    content_type = request.content_type or ''
    if content_type and content_type not in ('application/json',
                                             'text/json'):
        raise exceptions.UnsupportedMediaType(content_type=content_type)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise exceptions.InvalidJSON(reason=str(e)[:200])
    except RecursionError:
        raise exceptions.InvalidJSON(reason='it is nested too deeply.')
    validation.validate(schema, data)
    return data


def query(schema):
    """The query string as a dict, validated against ``schema``; a
    parameter given twice is an error."""
    params = {}
    for key, value in pecan.request.GET.items():
        if key in params:
            raise exceptions.InvalidParameter(
                reason='Query parameter %r is given more than once.' % key,
                field=key)
        params[key] = value
    try:
        validation.validate(schema, params, what='the query string')
    except exceptions.ValidationError as e:
        raise exceptions.InvalidParameter(
            reason='Query parameter ' + e.message[0].lower() + e.message[1:]
            if e.field else e.message, field=e.field)
    return params


def paging(params, default_sort='created_at'):
    """(limit, marker, sort_key, sort_dir) from validated ``params``."""
    limit = params.get('limit')
    if limit is None:
        limit = CONF.api.default_limit
    else:
        limit = int(limit)
        if limit < 1:
            raise exceptions.InvalidParameter(
                reason='limit must be at least 1, not %d.' % limit,
                field='limit')
    limit = min(limit, CONF.api.max_limit)
    return (limit, params.get('marker'),
            params.get('sort_key', default_sort),
            params.get('sort_dir', 'asc'))


def fields(params):
    value = params.get('fields')
    return value.split(',') if value else None


def view(resource, wanted=None):
    if not wanted:
        return resource
    return {k: v for k, v in resource.items() if k == 'id' or k in wanted}


def scope_listing(ctx, params, rule_prefix):
    """Apply all_projects and project_id to a listing; returns the
    project filter to use (None: every project)."""
    all_projects = strutils.bool_from_string(params.get('all_projects',
                                                        '0'))
    project_id = params.get('project_id')
    target = {'project_id': ctx.project_id}
    policy.authorize(rule_prefix + ':get_all', ctx, target)
    if all_projects or (project_id and project_id != ctx.project_id):
        policy.authorize(rule_prefix + ':get_all:all_projects', ctx, target)
        ctx.all_projects = True
        return project_id
    return None


def owner(ctx, values, resource=None):
    """The project a new resource belongs to: the caller's, or the
    project_id (alias tenant_id) of the body, which policy then checks."""
    project_id = values.pop('project_id', None)
    tenant_id = values.pop('tenant_id', None)
    if project_id and tenant_id and project_id != tenant_id:
        raise exceptions.ValidationError(
            reason='project_id and tenant_id differ; give one of them.',
            field='%s.tenant_id' % resource if resource else 'tenant_id')
    return project_id or tenant_id or ctx.project_id


def base_url():
    return (CONF.api.public_endpoint or pecan.request.host_url).rstrip('/')


def href(*parts):
    return '/'.join([base_url(), 'v1'] + [str(p) for p in parts])


def collection(name, items, limit, wanted=None, marker_key='id'):
    """A collection body with a ``next`` link when the page is full."""
    result = {name: [view(i, wanted) for i in items]}
    links = []
    if items and len(items) >= limit:
        params = {k: v for k, v in pecan.request.GET.items()
                  if k != 'marker'}
        params['marker'] = items[-1][marker_key]
        params['limit'] = limit
        links.append({'rel': 'next',
                      'href': '%s%s?%s' % (base_url(), pecan.request.path,
                                           parse.urlencode(params))})
    result[name + '_links'] = links
    return result


def accepted(operation_id, resource=None, values=None, kind=None,
             others=()):
    """Answer 202 with a Location of the operation started; with
    ``resource`` (its ``values``, the operation's ``kind``), notify
    ``<resource>.<kind>.start`` and the operations' PROCESSING
    (``operation_id`` and ``others``)."""
    pecan.response.status = 202
    pecan.response.headers['Location'] = href('operations', operation_id)
    if resource is None:
        return
    ctx = context()
    publisher = 'servicevm-api:%s' % CONF.host
    notify.notify(CONF, ctx, publisher, '%s.%s.start' % (resource, kind),
                  resource, values, operation_id=operation_id)
    for op_id in (operation_id,) + tuple(others):
        notify.notify(CONF, ctx, publisher, 'operation.processing',
                      'operation', {'id': op_id, 'state': 'PROCESSING',
                                    'project_id': values.get('project_id')})
