"""The ``openstack servicevm ...`` commands (an OpenStackClient plugin)."""
