from oslo_config import cfg

group = cfg.OptGroup('api', title='REST API options')

opts = [
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address the API listens on.'),
    cfg.PortOpt('port', default=9890, help='Port the API listens on.'),
    cfg.IntOpt('threads', default=16, min=1,
               help='Threads of the built-in HTTP server of servicevm-api '
                    'and servicevm-all-in-one. For several processes, run '
                    'the WSGI application servicevm.api.wsgi:application '
                    'under uwsgi or gunicorn instead.'),
    cfg.IntOpt('max_limit', default=1000, min=1,
               help='Largest page a collection request may ask for; '
                    'larger limits are reduced to it.'),
    cfg.IntOpt('default_limit', default=100, min=1,
               help='Page size of a collection request without a limit.'),
    cfg.IntOpt('max_request_body_size', default=1048576, min=1024,
               help='Largest request body accepted, in bytes; larger '
                    'bodies get 413.'),
    cfg.BoolOpt('metrics_enabled', default=False,
                help='Serve Prometheus metrics at /metrics (device counts '
                     'per status, operations per state, step durations, '
                     'alarms, each device\'s power state), without a '
                     'token: enable it only where the API port is not '
                     'reachable from outside the deployment.'),
    cfg.StrOpt('public_endpoint',
               help='Public URL of the API used in links (next pages, '
                    'Location). Defaults to the URL of the request.'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
