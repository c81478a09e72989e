from oslo_config import cfg

group = cfg.OptGroup('conductor', title='Conductor options')

opts = [
    cfg.StrOpt('topic', default='servicevm-conductor',
               help='RPC topic the conductors listen on.'),
    cfg.IntOpt('workers', default=8, min=1,
               help='Threads of the conductor\'s RPC server, the number '
                    'of operations one conductor runs in parallel. Many '
                    'workers want as many database connections kept open '
                    '([database] max_pool_size).'),
    cfg.FloatOpt('poll_interval', default=2.0, min=0.01,
                 help='Seconds between two polls of the VIM while waiting '
                      'for a device to be built or torn down, for drivers '
                      'whose poll answers at once (noop). The Nova and '
                      'Heat drivers\' batched polls wait for their next '
                      'cycle ([nova] and [heat] poll_interval) instead.'),
    cfg.IntOpt('device_timeout', default=1800, min=1,
               help='Seconds a device may take to become ACTIVE, or to be '
                    'gone after a delete, before its operation fails.'),
    cfg.IntOpt('delete_retry_interval', default=120, min=1,
               help='Seconds a device may stay in the VIM\'s deleting '
                    'state before its delete is asked again; when it is '
                    'still there after device_timeout, the delete fails '
                    'and an alarm event is recorded.'),
    cfg.FloatOpt('sync_interval', default=30.0, min=0,
                 help='Seconds between two polls of the health watch: each '
                      'conductor polls the ACTIVE devices it watches (the '
                      'devices are shared among the live conductors), one '
                      'batched VIM query per driver and cloud, records '
                      'their power state, usage and last_seen, and marks '
                      'DEAD a device whose VM is gone or in error. 0 turns '
                      'the watch off.'),
    cfg.FloatOpt('health_brake_ratio', default=0.5, min=0, max=1,
                 help='When more than this share of the devices a '
                      'conductor watches die in one pass (and at least '
                      'health_brake_min of them), it heals none of them '
                      'and raises a health.brake alarm instead: so many '
                      'failing together is more likely a partition than '
                      'dead VMs.'),
    cfg.IntOpt('health_brake_min', default=3, min=1,
               help='Fewest dead devices in one pass that can trip the '
                    'brake (see health_brake_ratio).'),
    cfg.IntOpt('heal_reboot_timeout', default=300, min=1,
               help='Seconds the reboot that a heal policy tries first has '
                    'to bring a dead device back (its VM active and, '
                    'with a liveness monitor, answering it) before the '
                    'device is respawned instead.'),
    cfg.IntOpt('heal_max', default=3, min=1,
               help='Heals (respawn or heal policy) the health watch starts '
                    'for one device within heal_window seconds; a device '
                    'that dies again after that many raises a '
                    'device.heal.exhausted alarm instead, and is left DEAD '
                    'for a person (no endless respawn loop).'),
    cfg.IntOpt('heal_window', default=3600, min=1,
               help='Seconds over which heal_max counts a device\'s heals.'),
    cfg.IntOpt('monitor_workers', default=16, min=1,
               help='Liveness probes (ping, ssh, NETCONF) a conductor '
                    'runs at once for the devices it watches.'),
    cfg.IntOpt('takeover_time', default=60, min=3,
               help='Seconds within which another conductor (or this one, '
                    'restarted) takes over the operations of a conductor '
                    'that died. A conductor holds a lease on each '
                    'operation it runs, of five sixths of this time, '
                    'renews it every third of the lease, and looks for '
                    'operations whose lease expired every sixth of it.'),
    cfg.FloatOpt('watch_interval', default=0.5, min=0.05,
                 help='Seconds between two checks, by a conductor, of the '
                      'operations it runs: a cancel, rollback or lost '
                      'lease interrupts a running step within this time.'),
    cfg.IntOpt('driver_call_retries', default=2, min=0,
               help='How many times a driver call failing with a '
                    'transient error (e.g. the VIM is unreachable) is '
                    'retried before its step fails.'),
    cfg.FloatOpt('driver_retry_backoff', default=1.0, min=0,
                 help='Seconds before the first retry of a driver call; '
                      'each further retry waits twice as long.'),
    cfg.IntOpt('max_parallel_driver_calls', default=16, min=1,
               help='Most calls one conductor makes at once to the VIM of '
                    'one device driver.'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
