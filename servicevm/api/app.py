"""The WSGI application of the API: pecan, behind its middleware."""

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_log import log as logging
from oslo_middleware import request_id
import pecan
from webob import multidict as webob_multidict

from servicevm.api import hooks
from servicevm.api import middleware

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def _cache_pecan_argspecs():
    """pecan inspects the signature of a controller method on every
    request, and each time builds a new namedtuple class for the answer:
    about a tenth of the API's CPU. A method's signature does not change,
    so remember it per function."""
    from pecan import util as pecan_util
    original = pecan_util._getargspec
    if getattr(original, 'servicevm_cached', False):
        return
    cache = {}

    def getargspec(func):
        key = getattr(func, '__func__', func)
        try:
            return cache[key]
        except (KeyError, TypeError):
            pass
        spec = original(func)
        try:
            cache[key] = spec
        except TypeError:
            pass
        return spec

    getargspec.servicevm_cached = True
    pecan_util._getargspec = getargspec


_cache_pecan_argspecs()


class Request(pecan.Request):
    """pecan parses a JSON body to route; a body that is not UTF-8 or is
    nested too deeply for the parser must reach utils.body (a 400 that
    says so), not fail in pecan (a RecursionError is a 500)."""

    @property
    def json(self):
        try:
            return super().json
        except (RecursionError, UnicodeDecodeError) as e:
            raise ValueError('The JSON body cannot be parsed: %s' % e)

    @property
    def POST(self):
        """Never a form: the API reads JSON bodies only (utils.body
        answers 415 to anything else), and webob fails on a malformed
        multipart body (a 500) when pecan looks for form arguments."""
        return webob_multidict.NoVars('The API takes JSON bodies only')


def setup_app(conf=None):
    """The API as a WSGI callable, configured from ``conf``.

    Outermost first: request id -> error barrier -> body size limit ->
    authentication (auth_token or noauth) -> pecan.
    """
    conf = conf or CONF
    app = pecan.make_app(
        'servicevm.api.controllers.root.RootController',
        hooks=[hooks.ErrorHook(), hooks.VersionHook(), hooks.ContextHook()],
        force_canonical=False,
        guess_content_type_from_ext=False,
        debug=False,
        logging={},
        request_cls=Request,
    )
    if conf.auth_strategy == 'keystone':
        app = middleware.PublicRoutes(
            auth_token.AuthProtocol(app, {'oslo_config_config': conf}), app)
    else:
        LOG.warning('auth_strategy is noauth: the API trusts X-User-Id, '
                    'X-Project-Id and X-Roles as sent, and a request '
                    'without them acts as admin. Use it for development '
                    'only.')
        app = middleware.NoAuth(app)
    app = middleware.BodySizeLimit(app, conf.api.max_request_body_size)
    app = middleware.FaultWrapper(app)
    app = request_id.RequestId(app)
    return app
