"""Policy enforcement (oslo.policy) for the API."""

import threading

from oslo_config import cfg
from oslo_policy import policy

from servicevm.common import exceptions
from servicevm.common import policies

_ENFORCER = None
_LOCK = threading.Lock()


def get_enforcer():
    """The enforcer, also used by oslopolicy-* tools (entry point)."""
    global _ENFORCER
    if _ENFORCER is None:
        with _LOCK:
            if _ENFORCER is None:
                conf = cfg.CONF
                enforcer = policy.Enforcer(conf)
                enforcer.register_defaults(policies.list_rules())
                _ENFORCER = enforcer
    return _ENFORCER


def reset():
    global _ENFORCER
    if _ENFORCER is not None:
        _ENFORCER.clear()
    _ENFORCER = None


def authorize(rule, context, target):
    """Raise Forbidden unless ``context`` may do ``rule`` on ``target``."""
    enforcer = get_enforcer()
    try:
        allowed = enforcer.authorize(rule, target, context, do_raise=False)
    except policy.InvalidScope:
        allowed = False
    if not allowed:
        raise exceptions.Forbidden(action=rule)


def check(rule, context, target):
    """True when ``context`` may do ``rule`` on ``target``."""
    try:
        authorize(rule, context, target)
    except exceptions.Forbidden:
        return False
    return True
