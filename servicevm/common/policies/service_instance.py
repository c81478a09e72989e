from servicevm.common.policies import base


def list_rules():
    return base.crud_rules('service_instance',
                           '/v1/service_instances/{service_instance_id}',
                           '/v1/service_instances')
