from oslo_config import cfg

opts = [
    cfg.ListOpt('enabled_device_drivers', default=['noop'],
                help='Device drivers (names of servicevm.device.drivers '
                     'entry points) this deployment loads. A template '
                     'naming another driver is refused.'),
    cfg.ListOpt('enabled_mgmt_drivers', default=['noop'],
                help='Management drivers (names of servicevm.mgmt.drivers '
                     'entry points) this deployment loads.'),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return [(None, opts)]
