"""Default policy rules, in code (entry point oslo.policy.policies)."""

import itertools

from servicevm.common.policies import alarm
from servicevm.common.policies import base
from servicevm.common.policies import device
from servicevm.common.policies import device_template
from servicevm.common.policies import operation
from servicevm.common.policies import service_instance


def list_rules():
    return list(itertools.chain(
        base.list_rules(),
        device_template.list_rules(),
        device.list_rules(),
        service_instance.list_rules(),
        operation.list_rules(),
        alarm.list_rules(),
    ))
