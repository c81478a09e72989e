"""The OpenStackClient plugin of servicevm (entry point
``openstack.cli.extension``: ``servicevm``).

OSC calls ``make_client`` with its client manager the first time a
command asks for ``client_manager.servicevm``: the client talks through
the manager's keystoneauth session, to the catalog's ``servicevm``
endpoint, or to ``--os-endpoint`` (``--os-auth-type none``) /
``--os-servicevm-endpoint-override``.
"""

import logging

from osc_lib import utils

from servicevmclient import client as svm_client

LOG = logging.getLogger(__name__)

API_NAME = 'servicevm'
API_VERSION_OPTION = 'os_servicevm_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = {'1': 'servicevmclient.client.Client'}
SERVICE_TYPE = svm_client.SERVICE_TYPE


def make_client(instance):
    """A servicevmclient.client.Client on the client manager's session."""
    version = instance._api_version.get(API_NAME, DEFAULT_API_VERSION)
    LOG.debug('Instantiating servicevm client (API version %s)', version)
    endpoint = instance.get_endpoint_for_service_type(
        SERVICE_TYPE, region_name=instance.region_name,
        interface=instance.interface)
    return svm_client.Client(
        session=instance.session, endpoint=endpoint,
        service_type=SERVICE_TYPE, interface=instance.interface,
        region_name=instance.region_name,
        user_agent='python-openstackclient servicevmclient')


def build_option_parser(parser):
    """Add the plugin's global options to the ``openstack`` parser."""
    parser.add_argument(
        '--os-servicevm-api-version',
        metavar='<servicevm-api-version>',
        default=utils.env('OS_SERVICEVM_API_VERSION',
                          default=DEFAULT_API_VERSION),
        help='servicevm API version, default=%s '
             '(Env: OS_SERVICEVM_API_VERSION)' % DEFAULT_API_VERSION)
    return parser
