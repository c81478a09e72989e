from servicevm.common.policies import base


def list_rules():
    return base.crud_rules('device_template',
                           '/v1/device_templates/{template_id}',
                           '/v1/device_templates')
