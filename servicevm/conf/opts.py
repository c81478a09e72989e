"""Options for oslo-config-generator (entry point oslo.config.opts)."""

import itertools

from servicevm.conf import api
from servicevm.conf import conductor
from servicevm.conf import database
from servicevm.conf import default
from servicevm.conf import drivers
from servicevm.conf import fault
from servicevm.conf import mgmt
from servicevm.conf import secrets
from servicevm.conf import vim


def list_opts():
    merged = {}
    for module in (default, drivers, api, conductor, database, fault,
                   mgmt, secrets, vim):
        for group, opts in module.list_opts():
            key = getattr(group, 'name', group)
            merged.setdefault(key, (group, []))[1].extend(opts)
    return [(g, list(itertools.chain(o))) for g, o in merged.values()]


def set_defaults():
    from servicevm.conf import CONF  # noqa: registers everything
    return CONF
