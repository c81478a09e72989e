"""Options of the management drivers (``[mgmt]``): how the ssh driver
reaches into a device."""

from oslo_config import cfg

group = cfg.OptGroup('mgmt', title='Management drivers')

opts = [
    cfg.StrOpt('known_hosts_dir',
               sample_default='<tempfile.gettempdir()>/servicevm/'
                              'ssh_known_hosts',
               help='Directory of the ssh host keys the ssh management '
                    'driver pinned, one OpenSSH known_hosts file per '
                    'device id. A device\'s key is learned on the first '
                    'contact and must stay the same afterwards; delete '
                    'its file to have it learned again (e.g. after the '
                    'device was rebuilt). Unset: a directory in the '
                    'system\'s temporary directory, which may not survive '
                    'a reboot; set a persistent directory (e.g. '
                    '/var/lib/servicevm/ssh_known_hosts), shared by all '
                    'conductors, in production.'),
    cfg.FloatOpt('ssh_connect_timeout', default=10.0, min=0.1,
                 help='Seconds one ssh connection attempt (TCP connect, '
                      'banner, key exchange and authentication each) may '
                      'take.'),
    cfg.FloatOpt('ssh_command_timeout', default=600.0, min=0.1,
                 help='Seconds a script run over ssh may take before it '
                      'fails (with the output it gave so far).'),
    cfg.IntOpt('ssh_connect_retries', default=8, min=0,
               help='How many times an ssh connection that failed because '
                    'the device is not reachable yet (connection refused, '
                    'timeout, no route, reset during the handshake: a VM '
                    'still booting) is tried again. An authentication '
                    'failure or a changed host key is never retried.'),
    cfg.FloatOpt('ssh_retry_backoff', default=2.0, min=0,
                 help='Seconds before the first retry of an ssh '
                      'connection; each further retry waits twice as '
                      'long, up to ssh_retry_max_backoff.'),
    cfg.FloatOpt('ssh_retry_max_backoff', default=60.0, min=0,
                 help='Longest wait between two ssh connection attempts.'),
    cfg.IntOpt('ssh_max_sessions', default=16, min=1,
               help='Most ssh sessions (connection attempts and running '
                    'scripts) one conductor\'s ssh driver has at once, '
                    'over all devices.'),
    cfg.FloatOpt('ssh_idle_timeout', default=30.0, min=0,
                 help='Seconds an ssh connection kept for the scripts of '
                      'one operation on one device stays open unused '
                      'before it is closed (0: close after each call).'),
    cfg.IntOpt('ssh_max_output', default=65536, min=1024,
               help='Bytes of a script\'s stdout, and of its stderr, that '
                    'are kept (the last ones; a marker says how much was '
                    'dropped).'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
