from oslo_config import cfg

group = cfg.OptGroup('conductor', title='Conductor options')

opts = [
    cfg.StrOpt('topic', default='servicevm-conductor',
               help='RPC topic the conductors listen on.'),
    cfg.IntOpt('workers', default=8, min=1,
               help='Threads of the conductor\'s RPC server, the number '
                    'of operations one conductor runs in parallel.'),
    cfg.FloatOpt('poll_interval', default=2.0, min=0.01,
                 help='Seconds between two polls of the VIM while waiting '
                      'for a device to be built or torn down.'),
    cfg.IntOpt('device_timeout', default=1800, min=1,
               help='Seconds a device may take to become ACTIVE, or to be '
                    'gone after a delete, before its operation fails.'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
