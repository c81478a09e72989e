"""WSGI shims for the minicloud APIs, run by gunicorn in the cloud venv.

    gunicorn --pythonpath tools/minicloud 'minicloud_wsgi:keystone()'

No OpenStack service ships a WSGI script any more. Each factory here points
the service at its config under $MINICLOUD_ETC/<service>/ (the
OS_<SERVICE>_CONFIG_* variables its WSGI module reads) and replaces
gunicorn's command line in sys.argv, which several services parse as their
own (Heat would choke on gunicorn's options), before importing the
service's WSGI application module.
"""

import importlib
import os
import sys


def _etc(service):
    return os.path.join(os.environ["MINICLOUD_ETC"], service)


def _load(module, argv):
    sys.argv = list(argv)
    return importlib.import_module(module).application


def keystone():
    os.environ["OS_KEYSTONE_CONFIG_DIR"] = _etc("keystone")
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = "keystone.conf"
    return _load("keystone.wsgi.api", ["keystone-api"])


def placement():
    os.environ["OS_PLACEMENT_CONFIG_DIR"] = _etc("placement")
    return _load("placement.wsgi.api", ["placement-api"])


def glance():
    # Reads glance-api.conf from here; the paste file is set in it.
    os.environ["OS_GLANCE_CONFIG_DIR"] = _etc("glance")
    return _load("glance.wsgi.api", ["glance-api"])


def nova():
    # Nova loads its paste pipeline from the FIRST of these files.
    os.environ["OS_NOVA_CONFIG_DIR"] = _etc("nova")
    os.environ["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf"
    return _load("nova.wsgi.osapi_compute", ["nova-api"])


def neutron():
    os.environ["OS_NEUTRON_CONFIG_DIR"] = _etc("neutron")
    os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf;ml2_conf.ini"
    return _load("neutron.wsgi.api", ["neutron-api"])


def heat():
    # Heat parses sys.argv itself and has no config-dir variable.
    conf = os.path.join(_etc("heat"), "heat.conf")
    return _load("heat.wsgi.api", ["heat-api", "--config-file", conf])
