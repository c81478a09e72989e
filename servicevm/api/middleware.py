"""WSGI middleware of the API: the error barrier, the body size limit and
the noauth caller."""

import json

from oslo_log import log as logging
import webob
import webob.dec

from servicevm.api import errors
from servicevm.common import context as svm_context

LOG = logging.getLogger(__name__)

REQUEST_ID_ENV = 'openstack.request_id'


class FaultWrapper:
    """The outermost barrier: an unexpected exception becomes a 500 in the
    error shape (logged with its traceback, never shown to the client), and
    error responses from other middleware (auth_token's 401, ...) are
    rewritten into the same shape."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, request):
        try:
            response = request.get_response(self.application)
        except Exception:
            LOG.exception('Unexpected error in %s %s', request.method,
                          request.path)
            return errors.error_response(
                500, 'The server failed to process the request; the '
                     'error is logged with the request id.',
                request_id=request.environ.get(REQUEST_ID_ENV))
        if response.status_int >= 400 and not self._is_shaped(response):
            response = self._reshape(request, response)
        return response

    @staticmethod
    def _is_shaped(response):
        if response.content_type != 'application/json':
            return False
        try:
            return 'errors' in json.loads(response.body)
        except ValueError:
            return False

    @staticmethod
    def _reshape(request, response):
        detail = None
        try:
            body = json.loads(response.body)
            inner = body.get('error') or {}
            detail = inner.get('message') or inner.get('description')
        except (ValueError, AttributeError):
            pass
        if not detail:
            detail = response.status.split(' ', 1)[-1]
        new = errors.error_response(
            response.status_int, detail,
            request_id=request.environ.get(REQUEST_ID_ENV))
        for header in ('WWW-Authenticate', 'Allow', 'Retry-After'):
            if header in response.headers:
                new.headers[header] = response.headers[header]
        return new


class BodySizeLimit:
    """Refuses bodies over ``limit`` bytes with 413 before reading them."""

    def __init__(self, application, limit):
        self.application = application
        self.limit = limit

    @webob.dec.wsgify
    def __call__(self, request):
        length = request.content_length
        if length is not None and length > self.limit:
            return errors.error_response(
                413, 'The request body is %d bytes; the limit is %d bytes.'
                     % (length, self.limit),
                request_id=request.environ.get(REQUEST_ID_ENV))
        if length is None and request.is_body_readable:
            # Chunked: read at most one byte past the limit.
            body = request.body_file.read(self.limit + 1)
            if len(body) > self.limit:
                return errors.error_response(
                    413, 'The request body is over the limit of %d bytes.'
                         % self.limit,
                    request_id=request.environ.get(REQUEST_ID_ENV))
            request.body = body
        return request.get_response(self.application)


class NoAuth:
    """auth_strategy = noauth: the caller is whoever the headers say.

    X-User-Id, X-Project-Id and X-Roles (comma-separated) are taken as
    given; without them the caller is user ``admin`` of project ``admin``
    with the admin role. For development and tests only.
    """

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, request):
        headers = request.headers
        user_id = headers.get('X-User-Id') or 'admin'
        project_id = headers.get('X-Project-Id') or 'admin'
        roles = headers.get('X-Roles')
        roles = roles.split(',') if roles is not None else ['admin']
        headers['X-User-Id'] = user_id
        headers['X-Project-Id'] = project_id
        headers['X-Roles'] = ','.join(svm_context.expand_roles(roles))
        headers['X-Identity-Status'] = 'Confirmed'
        return request.get_response(self.application)


class PublicRoutes:
    """Version discovery (``/`` and ``/v1``) answers without a token, as
    in Nova and Ironic, and so do the Prometheus metrics (when enabled);
    every other path goes through ``protected``."""

    ROUTES = ('', '/', '/v1', '/v1/', '/metrics')

    def __init__(self, protected, public):
        self.protected = protected
        self.public = public

    def __call__(self, environ, start_response):
        if (environ.get('PATH_INFO', '') in self.ROUTES and
                environ.get('REQUEST_METHOD') in ('GET', 'HEAD')):
            return self.public(environ, start_response)
        return self.protected(environ, start_response)
