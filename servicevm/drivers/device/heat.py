"""The Heat device driver: one Heat stack per device.

A device is the stack ``svm-<device id>``, tagged ``servicevm`` and
``svm-dev-<device id>`` and made with rollback disabled (a failed stack
stays, for inspection, until the device is deleted). A repeated create
finds the stack by its name instead of making a second one.

Template attributes it reads:

``hot``
    A HOT template (YAML text or a mapping), with optional ``parameters``
    (a mapping) and ``files`` (name -> content of the nested templates or
    scripts it names).
``vdus``
    Instead of ``hot``, a description the driver turns into HOT::

        {"vdus": {"fw": {"image": "cirros", "flavor": "m1.tiny",
                         "networks": ["mgmt-net", "data-net"],
                         "user_data": "#!/bin/sh ...", "mgmt": true}}}

    One OS::Nova::Server per VDU (an empty ``networks``: no network). The
    first address on the first network of the VDU marked ``mgmt`` (else
    the first VDU) is the management address.
``scaling``
    ``{"min": m, "max": M, "desired": d}``: each VDU becomes an
    OS::Heat::ResourceGroup of ``count`` servers, ``count`` being a stack
    parameter (``desired`` at first; a ``hot`` template declares it
    itself). The action ``scale`` (params ``count``) resizes the group
    within the bounds.

A device's ``kwargs.parameters`` override the template's ``parameters``
(``update`` applies them to its stack); ``kwargs.count`` sets the first
size of a scaled device.

The outputs ``mgmt_address`` and ``instance_ids`` (a list, or a list of
lists) of an active stack give the device's management address and its
VM ids (``PollResult.details['instance_ids']``); they are read once per
stack update, so a steady poll is one stack list a cycle.
"""

import threading
import time

from heatclient import client as heat_client
from heatclient import exc as heat_exc
from oslo_log import log as logging

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.drivers.device import base
from servicevm.drivers.device import openstack

LOG = logging.getLogger(__name__)

# Pike's HOT: list_concat.
HOT_VERSION = '2017-09-01'
TAG = 'servicevm'
# Seconds a stack just asked to update may still show its previous state
# (an engine may start the update after answering) before it is believed.
UPDATE_GRACE = 30.0


def stack_name(device):
    return 'svm-%s' % device['id']


def _attributes(device):
    return (device.get('template') or {}).get('attributes') or {}


def _invalid(reason):
    return exceptions.DriverError(driver='heat', action='read the template',
                                  reason=reason)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_scaling(scaling):
    """The scaling attribute as {'min', 'max', 'desired'}, or None."""
    if scaling is None:
        return None
    if not isinstance(scaling, dict) or not all(
            _is_int(scaling.get(k)) for k in ('min', 'max')):
        raise _invalid('scaling must be {"min": m, "max": M, "desired": d} '
                       'with whole numbers')
    desired = scaling.get('desired', scaling['min'])
    if not _is_int(desired) or not (
            0 <= scaling['min'] <= desired <= scaling['max']):
        raise _invalid('scaling needs 0 <= min <= desired <= max, not %r'
                       % (scaling,))
    return {'min': scaling['min'], 'max': scaling['max'], 'desired': desired}


def vdus_template(vdus, scaling=None, prefix='svm'):
    """HOT (a dict) for the ``vdus`` description (see the module doc)."""
    if not isinstance(vdus, dict) or not vdus:
        raise _invalid('vdus must map VDU names to {"image", "flavor", '
                       '"networks"...}')
    marked = [name for name, vdu in vdus.items()
              if isinstance(vdu, dict) and vdu.get('mgmt')]
    if len(marked) > 1:
        raise _invalid('only one VDU may be mgmt, not %s' % ', '.join(marked))
    mgmt = marked[0] if marked else next(iter(vdus))
    resources, ids = {}, []
    for name, vdu in vdus.items():
        if not isinstance(vdu, dict) or not all(
                vdu.get(k) for k in ('image', 'flavor')):
            raise _invalid('VDU %s needs an image and a flavor' % name)
        networks = vdu.get('networks') or []
        if not isinstance(networks, list):
            raise _invalid('networks of VDU %s must be a list' % name)
        server = {
            'name': '%s-%s%s' % (prefix, name, '-%index%' if scaling else ''),
            'image': vdu['image'], 'flavor': vdu['flavor'],
            'networks': ([{'network': n} for n in networks] or
                         [{'allocate_network': 'none'}]),
            'user_data_format': 'RAW'}
        if vdu.get('user_data'):
            server['user_data'] = vdu['user_data']
        if scaling:
            resources[name] = {
                'type': 'OS::Heat::ResourceGroup',
                'properties': {'count': {'get_param': 'count'},
                               'resource_def': {'type': 'OS::Nova::Server',
                                                'properties': server}}}
            ids.append({'get_attr': [name, 'refs']})
        else:
            resources[name] = {'type': 'OS::Nova::Server',
                               'properties': server}
            ids.append({'get_resource': name})
    outputs = {'instance_ids': {
        'value': {'list_concat': ids} if scaling else ids}}
    mgmt_networks = vdus[mgmt].get('networks') or []
    if mgmt_networks:
        member = ([mgmt, 'resource.0.networks'] if scaling
                  else [mgmt, 'networks'])
        outputs['mgmt_address'] = {
            'value': {'get_attr': member + [mgmt_networks[0], 0]}}
    template = {'heat_template_version': HOT_VERSION,
                'description': 'servicevm device %s' % prefix,
                'resources': resources, 'outputs': outputs}
    if scaling:
        template['parameters'] = {'count': {
            'type': 'number', 'default': scaling['desired'],
            'description': 'Servers of each VDU',
            'constraints': [{'range': {'min': scaling['min'],
                                       'max': scaling['max']}}]}}
    return template


def map_status(status, reason=None):
    """(state, error) of the conductor for a Heat stack status."""
    if not status or status == 'DELETE_COMPLETE':
        return 'gone', None
    action, _, result = status.partition('_')
    if result == 'FAILED':
        return 'error', '%s: %s' % (status, reason or 'no reason given')
    if result == 'IN_PROGRESS' or action == 'INIT':
        return 'building', None
    if action == 'SUSPEND':
        return 'paused', None
    if action == 'ROLLBACK':
        return 'error', '%s (a change failed and was undone): %s' % (
            status, reason or 'no reason given')
    return 'active', None


def _flatten(ids):
    """instance_ids of an output: a list, a list of lists, or nothing."""
    result = []
    for item in ids if isinstance(ids, list) else [ids]:
        if isinstance(item, list):
            result.extend(i for i in item if i)
        elif item:
            result.append(item)
    return result


def _outputs(stack):
    """{key: value} of a stack's outputs Heat could resolve."""
    return {o['output_key']: o.get('output_value')
            for o in getattr(stack, 'outputs', None) or ()
            if not o.get('output_error')}


class HeatDeviceDriver(openstack.OpenStackDriver):

    group = 'heat'
    supported_actions = frozenset(['scale'])
    action_params = {'scale': ({'count': int}, {})}

    def __init__(self, conf):
        super().__init__(conf)
        self._cache_lock = threading.Lock()
        # credentials key -> {stack id: ((updated_time, status), outputs)}
        self._outputs = {}
        # stack id -> (status, updated_time, deadline) before an update
        self._pending = {}

    def _client(self, key):
        adapter = self.credentials.adapter_kwargs()
        return heat_client.Client(
            '1', session=self.credentials.session(key),
            **{k: v for k, v in adapter.items() if v is not None})

    @staticmethod
    def vim_message(error):
        if isinstance(error, heat_exc.HTTPException):
            detail = (getattr(error, 'error', None) or {}).get('error') or {}
            message = (detail.get('message') or error.message or
                       type(error).__name__)
            code = error.code if isinstance(error.code, int) else None
            return '%s (HTTP %s)' % (message, code) if code else message
        return openstack.OpenStackDriver.vim_message(error)

    # ---- stacks --------------------------------------------------------

    @staticmethod
    def _find(client, ref, outputs=False):
        try:
            return client.stacks.get(ref, resolve_outputs=outputs)
        except heat_exc.HTTPNotFound:
            return None

    @staticmethod
    def _reuse(stack):
        """The id of the stack of the device's name, or None when a new
        one may be made."""
        status = getattr(stack, 'stack_status', None)
        if status in (None, 'DELETE_COMPLETE'):
            return None
        if status.startswith('DELETE_'):
            error = (exceptions.DriverTransientError
                     if status == 'DELETE_IN_PROGRESS'
                     else exceptions.DriverError)
            raise error(driver='heat', action='create stack',
                        reason='the stack %s of an earlier create is %s (%s)'
                               % (stack.stack_name, status,
                                  stack.stack_status_reason or 'deleting'))
        return stack.id

    def _stack_fields(self, device):
        attrs = _attributes(device)
        kwargs = device.get('kwargs') or {}
        scaling = check_scaling(attrs.get('scaling'))
        name = stack_name(device)
        if attrs.get('hot') and attrs.get('vdus'):
            raise _invalid('give either hot or vdus, not both')
        if attrs.get('hot'):
            template = attrs['hot']
        elif attrs.get('vdus'):
            template = vdus_template(attrs['vdus'], scaling, name)
        else:
            raise _invalid('the heat driver needs the attribute hot (a HOT '
                           'template) or vdus')
        parameters = dict(attrs.get('parameters') or {})
        parameters.update(kwargs.get('parameters') or {})
        count = kwargs.get('count', parameters.get(
            'count', scaling['desired'] if scaling else None))
        if count is not None:
            if scaling and not (_is_int(count) and
                                scaling['min'] <= count <= scaling['max']):
                raise _invalid('count %r is not within the scaling bounds '
                               '%d..%d' % (count, scaling['min'],
                                           scaling['max']))
            parameters['count'] = count
        fields = {'stack_name': name, 'template': template,
                  'parameters': parameters, 'disable_rollback': True,
                  'tags': '%s,svm-dev-%s' % (TAG, device['id'])}
        if attrs.get('files'):
            fields['files'] = attrs['files']
        return fields

    # ---- the contract --------------------------------------------------

    def create(self, context, device, new=False):
        fields = self._stack_fields(device)
        client = self._client(self.credentials.key(device))
        stack_id = None if new else self._reuse(self.vim_call(
            context, 'find stack', self._find, client, fields['stack_name']))
        if stack_id:
            return stack_id

        def create():
            try:
                return client.stacks.create(**fields)['stack']['id']
            except heat_exc.HTTPConflict:
                # An earlier try made it, and its answer was lost.
                stack_id = self._reuse(
                    self._find(client, fields['stack_name']))
                if not stack_id:
                    raise
                return stack_id
        stack_id = self.vim_call(context, 'create stack', create)
        self.changed(device['id'])
        return stack_id

    def poll_batch(self, key, devices, fresh=False):
        # (Every poll lists the stacks: always fresh.)
        client = self._client(key)
        stacks = self.vim_call(None, 'list stacks', lambda: list(
            client.stacks.list(tags=TAG, filters={'show_hidden': False})))
        by_id = {s.id: s for s in stacks}
        by_name = {s.stack_name: s for s in stacks}
        now = time.monotonic()
        with self._cache_lock:
            cache = self._outputs.setdefault(None, {})
            for stack_id in [s for s in cache if s not in by_id]:
                del cache[stack_id]
            for stack_id in [s for s, p in self._pending.items()
                             if p[2] < now]:
                del self._pending[stack_id]
        result = {}
        for device in devices:
            if device.get('instance_id'):
                stack = by_id.get(device['instance_id'])
            else:
                stack = by_name.get(stack_name(device))
            result[device['id']] = self._poll_one(client, key, stack)
        return result

    def _poll_one(self, client, key, stack):
        if stack is None:
            return base.PollResult(state='gone')
        status = stack.stack_status
        updated = getattr(stack, 'updated_time', None)
        state, error = map_status(
            status, getattr(stack, 'stack_status_reason', None))
        with self._cache_lock:
            # Asked to update, but not showing it yet (see UPDATE_GRACE).
            if self._pending.get(stack.id, ())[:2] == (status, updated):
                state, error = 'building', None
            else:
                self._pending.pop(stack.id, None)
        result = base.PollResult(
            state=state, error=error,
            power_state={'active': states.POWER_RUNNING,
                         'paused': states.POWER_PAUSED}.get(
                             state, states.POWER_UNKNOWN),
            deleting=status == 'DELETE_IN_PROGRESS',
            details={'stack_id': stack.id, 'stack_status': status})
        if state != 'active':
            return result
        version = (updated, status)
        with self._cache_lock:
            cached = self._outputs.get(key, {}).get(stack.id)
        if cached is None or cached[0] != version:
            try:
                full = self.vim_call(None, 'read stack outputs',
                                     client.stacks.get, stack.id)
            except exceptions.DriverError as e:
                LOG.warning('heat: outputs of stack %s unread: %s',
                            stack.id, e)
                result.state = 'building'
                return result
            cached = (version, _outputs(full))
            with self._cache_lock:
                self._outputs.setdefault(None, {})[stack.id] = cached
        address = cached[1].get('mgmt_address')
        if isinstance(address, list):
            address = address[0] if address else None
        result.mgmt_address = address
        result.details['instance_ids'] = _flatten(
            cached[1].get('instance_ids'))
        return result

    def delete(self, context, device):
        client = self._client(self.credentials.key(device))
        ref = device.get('instance_id') or stack_name(device)

        def delete():
            try:
                client.stacks.delete(ref)
            except heat_exc.HTTPNotFound:
                return      # already gone
            except heat_exc.HTTPConflict:
                # Busy (retried), unless it is being deleted already.
                stack = self._find(client, ref)
                if stack and not stack.stack_status.startswith('DELETE_'):
                    raise
        self.vim_call(context, 'delete stack', delete)
        self.changed(device['id'])

    def _update_stack(self, context, device, parameters, what,
                      outputs=False):
        """PATCH the device's stack with ``parameters``; return the stack
        as it was before."""
        client = self._client(self.credentials.key(device))
        ref = device.get('instance_id') or stack_name(device)
        stack = self.vim_call(context, 'find stack', self._find, client, ref,
                              outputs)
        if stack is None or stack.stack_status == 'DELETE_COMPLETE':
            raise exceptions.DriverError(
                driver='heat', action=what,
                reason='stack %s does not exist' % ref)
        with self._cache_lock:
            self._pending[stack.id] = (
                stack.stack_status, getattr(stack, 'updated_time', None),
                time.monotonic() + UPDATE_GRACE)
        try:
            self.vim_call(context, what, client.stacks.update, stack.id,
                          existing=True, parameters=parameters)
        except Exception:
            with self._cache_lock:
                self._pending.pop(stack.id, None)
            raise
        self.changed(device['id'])
        return stack

    def update(self, context, device):
        parameters = (device.get('kwargs') or {}).get('parameters')
        if parameters:
            self._update_stack(context, device, parameters, 'update stack')

    @classmethod
    def check_action(cls, action, params, template=None):
        super().check_action(action, params, template)
        if template is not None:
            cls._check_count(template.get('attributes') or {}, params)

    @staticmethod
    def _check_count(attributes, params):
        scaling = check_scaling(attributes.get('scaling'))
        if scaling is None:
            raise exceptions.InvalidParameter(
                field='action',
                reason='scale needs the template attribute scaling '
                       '({"min", "max", "desired"}); this device\'s '
                       'template has none')
        count = params['count']
        if not scaling['min'] <= count <= scaling['max']:
            raise exceptions.InvalidParameter(
                field='params.count',
                reason='params.count must be between %d and %d (the scaling '
                       'bounds of the device\'s template), not %d' % (
                           scaling['min'], scaling['max'], count))
        return count

    def action(self, context, device, action, params):
        self.check_action(action, params)
        count = self._check_count(_attributes(device), params)
        stack = self._update_stack(context, device, {'count': count},
                                   'scale stack', outputs=True)
        before = _flatten(_outputs(stack).get('instance_ids'))
        return 'scale to %d requested; members before: %s' % (
            count, ', '.join(before) or 'none')
