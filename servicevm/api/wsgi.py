"""The API as a WSGI application for uwsgi or gunicorn.

    gunicorn 'servicevm.api.wsgi:initialize_wsgi_app()'
    uwsgi --module 'servicevm.api.wsgi:application'

Config files come from SERVICEVM_CONFIG_FILES (';'-separated), else from
the usual places (/etc/servicevm/servicevm.conf ...). Command-line
arguments of the WSGI server are not parsed.
"""

import os

from servicevm.api import app
from servicevm.common import service


def initialize_wsgi_app(argv=None):
    files = os.environ.get('SERVICEVM_CONFIG_FILES')
    conf = service.prepare_service(
        argv or [],
        default_config_files=files.split(';') if files else None)
    return app.setup_app(conf)


class _LazyApplication:
    """Builds the application at its first request (in the worker)."""

    def __init__(self):
        self._app = None

    def __call__(self, environ, start_response):
        if self._app is None:
            self._app = initialize_wsgi_app()
        return self._app(environ, start_response)


application = _LazyApplication()
