"""A small Python client for the servicevm REST API, and the ``openstack``
CLI plugin built on it (``servicevmclient.osc``).

The client needs only keystoneauth1; the CLI plugin needs the ``cli``
extra (python-openstackclient, osc-lib)::

    from servicevmclient import client
    svm = client.Client.for_url('http://127.0.0.1:9890')   # noauth
    svm = client.Client(session=keystone_session)          # the catalog
    svm.list_devices()
"""
