import socket

from oslo_config import cfg

opts = [
    cfg.StrOpt('auth_strategy',
               default='keystone',
               choices=[('keystone', 'Validate tokens with Keystone '
                                     '(keystonemiddleware auth_token).'),
                        ('noauth', 'No authentication: the caller is read '
                                   'from X-User-Id, X-Project-Id and '
                                   'X-Roles. For development only.')],
               help='How API requests are authenticated.'),
    cfg.StrOpt('host',
               sample_default='localhost',
               default=socket.gethostname(),
               help='Name of this host, used as the conductor\'s RPC '
                    'server name and in operation leases.'),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return [(None, opts)]
