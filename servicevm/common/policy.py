"""Policy enforcement (oslo.policy) for the API."""

import threading
import time

from oslo_config import cfg
from oslo_policy import policy

from servicevm.common import exceptions
from servicevm.common import policies

_ENFORCER = None
_LOCK = threading.Lock()
# Decisions are remembered for a second at most: an enforcement costs as
# much as the rest of a GET (oslo.policy looks for the policy file and
# inspects every check's signature each time), and the same caller asks
# the same question of the same project many times a second. A changed
# policy file takes effect within that second, as before on the next
# request.
DECISION_TTL = 1.0
_DECISIONS_MAX = 4096
_decisions = {}
_decisions_since = 0.0


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
    global _ENFORCER, _decisions
    if _ENFORCER is not None:
        _ENFORCER.clear()
    _ENFORCER = None
    _decisions = {}


def _frozen(value):
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def _decision_key(rule, context, target):
    """What a decision depends on: the rule, the caller's policy values
    and the target; None when they cannot be a key."""
    try:
        key = (rule,
               tuple(sorted((k, _frozen(v)) for k, v in
                            context.to_policy_values().items())),
               tuple(sorted(target.items())))
        hash(key)
    except (TypeError, AttributeError):
        return None
    return key


def _decide(rule, context, target):
    global _decisions, _decisions_since
    key = _decision_key(rule, context, target)
    now = time.monotonic()
    decisions = _decisions
    if now - _decisions_since > DECISION_TTL or len(
            decisions) >= _DECISIONS_MAX:
        # Swapped, not cleared: other threads may be reading the old one.
        decisions = _decisions = {}
        _decisions_since = now
    elif key is not None and key in decisions:
        return decisions[key]
    try:
        allowed = get_enforcer().authorize(rule, target, context,
                                           do_raise=False)
    except policy.InvalidScope:
        allowed = False
    if key is not None:
        decisions[key] = bool(allowed)
    return allowed


def authorize(rule, context, target):
    """Raise Forbidden unless ``context`` may do ``rule`` on ``target``."""
    if not _decide(rule, context, target):
        raise exceptions.Forbidden(action=rule)


def check(rule, context, target):
    """True when ``context`` may do ``rule`` on ``target``."""
    try:
        authorize(rule, context, target)
    except exceptions.Forbidden:
        return False
    return True
