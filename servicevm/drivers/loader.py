"""Loading device and management drivers by name (stevedore)."""

import threading

from stevedore import driver as stevedore_driver

from servicevm.common import exceptions

DEVICE_NAMESPACE = 'servicevm.device.drivers'
MGMT_NAMESPACE = 'servicevm.mgmt.drivers'

_CACHE = {}
_LOCK = threading.Lock()


def _enabled(conf, namespace):
    if namespace == DEVICE_NAMESPACE:
        return conf.enabled_device_drivers
    return conf.enabled_mgmt_drivers


def check_enabled(conf, namespace, name, field):
    enabled = _enabled(conf, namespace)
    if name not in enabled:
        raise exceptions.DriverNotEnabled(
            kind='Device' if namespace == DEVICE_NAMESPACE else 'Management',
            name=name, enabled=', '.join(enabled), field=field)


def get_driver(conf, namespace, name):
    """The (cached) driver ``name`` of ``namespace``, if enabled."""
    check_enabled(conf, namespace, name, None)
    key = (namespace, name)
    with _LOCK:
        if key not in _CACHE:
            manager = stevedore_driver.DriverManager(
                namespace, name, invoke_on_load=True, invoke_args=(conf,))
            _CACHE[key] = manager.driver
        return _CACHE[key]


def get_device_driver(conf, name):
    return get_driver(conf, DEVICE_NAMESPACE, name)


def get_mgmt_driver(conf, name):
    return get_driver(conf, MGMT_NAMESPACE, name)
