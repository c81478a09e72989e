import os
import tempfile

from oslo_config import cfg

group = cfg.OptGroup('fault_driver', title='The fault-injecting device '
                                           'driver (tests only)')

opts = [
    cfg.StrOpt('state_dir',
               default=os.path.join(tempfile.gettempdir(),
                                    'servicevm-fault-vim'),
               sample_default='$TMPDIR/servicevm-fault-vim',
               help='Directory where the fault driver keeps its pretend '
                    'VIM: one file per instance it created, and a journal '
                    'of every create and delete. Conductors sharing it '
                    'share the VIM.'),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
