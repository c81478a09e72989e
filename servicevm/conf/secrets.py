from oslo_config import cfg

group = cfg.OptGroup('secrets', title='Secrets at rest')

opts = [
    cfg.StrOpt('key_file',
               help='File of Fernet keys (one per line, as made by '
                    '"servicevm-db-manage new-secret-key"). The first key '
                    'seals the credentials given in templates, devices '
                    'and service instances; every key unseals them. '
                    'Readable by the servicevm user only.'),
    cfg.ListOpt('fernet_keys', default=[], secret=True,
                help='Fernet keys, as key_file holds them (key_file\'s '
                     'come first).'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
