"""servicevm configuration: one module per option group."""

from oslo_config import cfg

from servicevm.conf import api
from servicevm.conf import conductor
from servicevm.conf import database
from servicevm.conf import default
from servicevm.conf import drivers
from servicevm.conf import fault
from servicevm.conf import mgmt
from servicevm.conf import secrets
from servicevm.conf import vim

CONF = cfg.CONF

default.register_opts(CONF)
api.register_opts(CONF)
conductor.register_opts(CONF)
database.register_opts(CONF)
drivers.register_opts(CONF)
fault.register_opts(CONF)
mgmt.register_opts(CONF)
secrets.register_opts(CONF)
vim.register_opts(CONF)
