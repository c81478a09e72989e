"""How the Nova and Heat device drivers reach their cloud.

``[nova]`` and ``[heat]`` take keystoneauth's options (auth_type,
auth_url, username, password, project and domain names, or an
application credential; region_name, valid_interfaces, endpoint_override,
timeouts, TLS), as other OpenStack services' sections for their peers do.
Those credentials are the *service* credentials: the project a VM lands in
when no trust of the requesting user is at hand (``[vim] credentials``).

``[trustee]`` holds servicevm's own user, which the API makes the trustee
of a Keystone trust from the requesting user; the conductor authenticates
as it with that trust and so acts in the user's project, also long after
the user's token expired.
"""

import copy

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

vim_group = cfg.OptGroup('vim', title='Whose project VMs are created in')
nova_group = cfg.OptGroup('nova', title='The Nova device driver')
heat_group = cfg.OptGroup('heat', title='The Heat device driver')
trustee_group = cfg.OptGroup('trustee', title='servicevm as trustee')

vim_opts = [
    cfg.StrOpt('credentials', default='trust',
               choices=[('trust', 'in the requesting user\'s project, '
                                  'through a Keystone trust the API makes '
                                  'when the request carries a Keystone '
                                  'token; falls back to the service '
                                  'credentials when it does not (noauth)'),
                        ('service', 'always with the [nova]/[heat] '
                                    'credentials, in their project')],
               help='In which Keystone project the Nova and Heat drivers '
                    'create a device\'s VMs.'),
]


SERVICE_TYPES = {'nova': 'compute', 'heat': 'orchestration'}


def _driver_opts(name, poll_interval):
    return [
        cfg.IntOpt('call_retries', default=3, min=0,
                   help='Retries of a %s call that failed for a reason '
                        'that may pass (connection error, 5xx, 409 on a '
                        'busy server), with exponential backoff.' % name),
        cfg.FloatOpt('retry_backoff', default=1.0, min=0,
                     help='Seconds before the first retry of a %s call; '
                          'doubled on each further retry.' % name),
        cfg.IntOpt('max_parallel_calls', default=10, min=1,
                   help='Most %s API calls this conductor makes at the '
                        'same time.' % name),
        cfg.FloatOpt('poll_interval', default=poll_interval, min=0.05,
                     help='Seconds between two batched polls of %s: each '
                          'poll is one query that covers every device '
                          'this conductor waits on.' % name),
    ]


nova_opts = _driver_opts('Nova', 1.0) + [
    cfg.StrOpt('api_microversion', default='2.79',
               help='Compute API microversion the driver asks for (at '
                    'least 2.52, for tags at boot).'),
    cfg.IntOpt('list_page_size', default=1000, min=1,
               help='Servers asked for in one list query: Nova\'s [api] '
                    'max_limit (a poll reads the next page only when one '
                    'comes back full).'),
    cfg.FloatOpt('full_list_interval', default=30.0, min=0,
                 help='Most seconds between two polls that list all of a '
                      'project\'s servicevm servers; the polls between ask '
                      'Nova only for the servers changed since the last '
                      'answer (changes-since). A poll that waits for a '
                      'server to be gone, or for one it does not know, '
                      'lists them all. 0: every poll lists them all.'),
    cfg.StrOpt('notifications_url', secret=True,
               help='Transport URL of the bus Nova sends its versioned '
                    'notifications on (nova.conf [oslo_messaging_'
                    'notifications] transport_url, else its '
                    'transport_url). When set, the conductor listens: a '
                    'servicevm server whose build, start, stop or reboot '
                    'ended answers the operations waiting on it at once, '
                    'and any other change of one starts the next batched '
                    'poll now. The poll stays for everything else. Unset: '
                    'polls only.'),
    cfg.StrOpt('notifications_topic', default='versioned_notifications',
               help='Topic of Nova\'s versioned notifications (nova.conf '
                    '[notifications] versioned_notifications_topics).'),
    cfg.StrOpt('notifications_exchange', default='nova',
               help='Exchange Nova sends its notifications to (nova.conf '
                    '[DEFAULT] control_exchange).'),
    cfg.StrOpt('notifications_pool',
               help='Listener pool: each pool gets every notification in '
                    'a queue of its own. Default: servicevm-<host>, so that '
                    'every conductor hears of the servers it waits on.'),
]
heat_opts = _driver_opts('Heat', 2.0)


def register_opts(conf):
    conf.register_group(vim_group)
    conf.register_opts(vim_opts, group=vim_group)
    for group, opts in ((nova_group, nova_opts), (heat_group, heat_opts)):
        conf.register_group(group)
        conf.register_opts(opts, group=group)
        ks_loading.register_session_conf_options(conf, group.name)
        ks_loading.register_auth_conf_options(conf, group.name)
        ks_loading.register_adapter_conf_options(
            conf, group.name, include_deprecated=False)
        conf.set_default('service_type', SERVICE_TYPES[group.name],
                         group=group.name)
    conf.register_group(trustee_group)
    ks_loading.register_auth_conf_options(conf, trustee_group.name)
    ks_loading.register_session_conf_options(conf, trustee_group.name)


def _keystone_opts(service=None):
    opts = (ks_loading.get_session_conf_options() +
            ks_loading.get_auth_common_conf_options() +
            ks_loading.get_auth_plugin_conf_options('password'))
    if service:
        adapter = copy.deepcopy(ks_loading.get_adapter_conf_options(
            include_deprecated=False))
        for opt in adapter:
            if opt.dest == 'service_type':
                opt.default = SERVICE_TYPES[service]
        opts += adapter
    # The plugin's options repeat common ones (auth-url...): once each.
    seen, unique = set(), []
    for opt in opts:
        if opt.dest not in seen:
            seen.add(opt.dest)
            unique.append(opt)
    return unique


def list_opts():
    return [(vim_group, vim_opts),
            (nova_group, nova_opts + _keystone_opts('nova')),
            (heat_group, heat_opts + _keystone_opts('heat')),
            (trustee_group, _keystone_opts())]
