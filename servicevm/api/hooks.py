"""Pecan hooks: the request context, the API version, and errors."""

from oslo_db import exception as db_exc
from oslo_log import log as logging
import pecan
import webob.exc

from servicevm.api import errors
from servicevm.api import versions
from servicevm.common import context as svm_context
from servicevm.common import exceptions

LOG = logging.getLogger(__name__)


class ContextHook(pecan.hooks.PecanHook):
    """Builds the request context from the identity headers set by
    auth_token (or by noauth)."""

    def before(self, state):
        ctx = svm_context.RequestContext.from_environ(state.request.environ)
        ctx.roles = svm_context.expand_roles(ctx.roles or [])
        state.request.context = ctx


class VersionHook(pecan.hooks.PecanHook):
    def before(self, state):
        header = state.request.headers.get(versions.HEADER)
        version = versions.MAX_VERSION
        if header:
            version = versions.parse_header(header) or version
        state.request.api_version = version

    def after(self, state):
        version = getattr(state.request, 'api_version', versions.MAX_VERSION)
        state.response.headers[versions.HEADER] = '%s %s' % (
            versions.SERVICE_TYPE, versions.fmt(version))
        state.response.headers['Vary'] = versions.HEADER


class ErrorHook(pecan.hooks.PecanHook):
    """Turns every exception into the one error shape."""

    def on_error(self, state, exc):
        request_id = state.request.environ.get('openstack.request_id')
        if isinstance(exc, (exceptions.ServiceVMException,
                            webob.exc.HTTPException)):
            if getattr(exc, 'code', 500) >= 500:
                LOG.error('%s %s failed: %s', state.request.method,
                          state.request.path, exc)
            response = errors.from_exception(exc, request_id=request_id)
        elif isinstance(exc, db_exc.DBConnectionError):
            LOG.error('%s %s: the database is unreachable: %s',
                      state.request.method, state.request.path, exc)
            response = errors.error_response(
                503, 'The database is unreachable for now; retry in a '
                     'few seconds.',
                request_id=request_id, headers={'Retry-After': '5'})
        else:
            LOG.exception('Unexpected error in %s %s', state.request.method,
                          state.request.path)
            response = errors.error_response(
                500, 'The server failed to process the request; the error '
                     'is logged with the request id.', request_id=request_id)
        response.headers[versions.HEADER] = '%s %s' % (
            versions.SERVICE_TYPE, versions.fmt(versions.MAX_VERSION))
        return response
