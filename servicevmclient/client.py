"""A small client for the servicevm REST API (v1) over a keystoneauth
session.

The endpoint is the one given (``endpoint``, e.g. the ``--os-endpoint`` of
a noauth server), or the catalog's for service type ``servicevm``; the
API's ``/v1`` is appended unless the endpoint already ends with it.
Every error answer of the API becomes an :class:`ApiError` carrying the
API's ``detail`` and ``field``.
"""

import json
import logging
import re
from urllib import parse

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session

LOG = logging.getLogger(__name__)

SERVICE_TYPE = 'servicevm'
API_VERSION = 'v1'
# The keys whose values are secrets (as the server has them): requests
# holding one are not logged as they are, even with --debug.
SECRET_NAMES = frozenset(['password', 'private_key', 'passphrase',
                          'secret', 'token', 'api_key'])
MASK = '***'
_UUID = re.compile('^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                   '[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')


class ClientError(Exception):
    """Anything that went wrong talking to the API."""


class EndpointNotFound(ClientError):
    pass


class ApiError(ClientError):
    """An error answer of the API (``{"errors": [...]}``)."""

    def __init__(self, status, errors=None, method=None, url=None,
                 request_id=None, text=None):
        self.status = status
        self.errors = errors or []
        self.method = method
        self.url = url
        first = self.errors[0] if self.errors else {}
        self.detail = '; '.join(
            e.get('detail') or e.get('title') or '' for e in self.errors
        ) or (text or '').strip()[:500] or 'HTTP %s' % status
        self.field = first.get('field')
        self.code = first.get('code')
        self.request_id = first.get('request_id') or request_id
        super().__init__(str(self))

    def __str__(self):
        text = self.detail
        if self.field:
            text += ' (field: %s)' % self.field
        text += ' (HTTP %s' % self.status
        if self.request_id:
            text += ', request %s' % self.request_id
        return text + ')'


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


def _api_error(status, *args, **kwargs):
    cls = {404: NotFound, 409: Conflict}.get(status, ApiError)
    return cls(status, *args, **kwargs)


def has_secret(value):
    """Whether ``value`` holds a secret (a non-empty value under one of
    SECRET_NAMES at any depth)."""
    if isinstance(value, dict):
        return any((k in SECRET_NAMES and v not in (None, '', MASK)) or
                   has_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_secret(v) for v in value)
    return False


def mask(value):
    """``value`` with every secret replaced by "***"."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_NAMES and v is not None else mask(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def is_uuid(value):
    return bool(_UUID.match(value or ''))


def _clean(params):
    return {k: v for k, v in (params or {}).items() if v is not None}


class Client:
    """The servicevm API, one method per call.

    :param session: a keystoneauth1 session (its auth finds the catalog).
    :param endpoint: the API's URL (with or without ``/v1``); when None,
        the catalog's endpoint of ``service_type``.
    :param headers: extra headers sent with every request (e.g. the
        ``X-Project-Id`` of a noauth server).
    """

    def __init__(self, session, endpoint=None, service_type=SERVICE_TYPE,
                 interface=None, region_name=None, user_agent=None,
                 headers=None):
        self.session = session
        self._endpoint = endpoint
        self.service_type = service_type
        self.interface = interface
        self.region_name = region_name
        self._adapter = adapter.Adapter(
            session, service_type=service_type, interface=interface,
            region_name=region_name, user_agent=user_agent or
            'servicevmclient', additional_headers=headers or {})

    @classmethod
    def for_url(cls, url, headers=None, timeout=None):
        """A client of a server without Keystone (noauth) at ``url``."""
        return cls(ks_session.Session(auth=noauth.NoAuth(), timeout=timeout),
                   endpoint=url, headers=headers)

    @property
    def endpoint(self):
        """The API's base URL, ending with /v1."""
        if self._endpoint is None:
            try:
                url = self.session.get_endpoint(
                    service_type=self.service_type,
                    interface=self.interface or 'public',
                    region_name=self.region_name)
            except ks_exc.EndpointNotFound:
                url = None
            if not url:
                raise EndpointNotFound(
                    'No %s endpoint found in the service catalog (interface '
                    '%s, region %s); give one with --os-endpoint.' % (
                        self.service_type, self.interface or 'public',
                        self.region_name or 'any'))
            self._endpoint = url
        url = self._endpoint.rstrip('/')
        if not url.endswith('/' + API_VERSION):
            url += '/' + API_VERSION
        return url

    # ---- plumbing -----------------------------------------------------

    def request(self, method, path, body=None, params=None):
        """Send one request; return (status, decoded body or None,
        headers). Raises ApiError for an error answer."""
        url = self.endpoint + path
        # No "Accept: application/json": the API answers JSON anyway, and
        # its 204 answers (DELETE of a template) refuse that header (406).
        kwargs = {'raise_exc': False}
        if body is not None:
            kwargs['json'] = body
            if has_secret(body):
                # keystoneauth would log the body as it is with --debug.
                kwargs['log'] = False
                LOG.debug('REQ: %s %s %s (secrets masked)', method, url,
                          json.dumps(mask(body)))
        if params:
            kwargs['params'] = _clean(params)
        try:
            resp = self._adapter.request(url, method, **kwargs)
        except ks_exc.EndpointNotFound as e:
            raise EndpointNotFound(str(e)) from e
        except (ks_exc.ConnectFailure, ks_exc.ConnectionError) as e:
            raise ClientError('Unable to reach the servicevm API at %s: %s'
                              % (self.endpoint, e)) from e
        except ks_exc.ClientException as e:
            raise ClientError('%s %s failed: %s' % (method, url, e)) from e
        data = None
        if resp.content:
            try:
                data = resp.json()
            except ValueError:
                data = None
        request_id = resp.headers.get('x-openstack-request-id')
        if resp.status_code >= 400:
            errors = data.get('errors') if isinstance(data, dict) else None
            raise _api_error(resp.status_code,
                             errors if isinstance(errors, list) else None,
                             method=method, url=url, request_id=request_id,
                             text=None if errors else resp.text)
        return resp.status_code, data, resp.headers

    def _get(self, path, params=None):
        return self.request('GET', path, params=params)[1]

    def _list(self, path, key, params=None, limit=None):
        """Every item of a collection (following its ``next`` links), or
        one page of at most ``limit``."""
        params = _clean(params)
        if limit:
            params['limit'] = limit
        items = []
        while True:
            data = self._get(path, params) or {}
            page = data.get(key) or []
            items.extend(page)
            if limit:
                return items[:limit]
            nxt = [link for link in data.get(key + '_links') or []
                   if link.get('rel') == 'next']
            if not page or not nxt:
                return items
            query = dict(parse.parse_qsl(parse.urlsplit(
                nxt[0]['href']).query))
            if not query.get('marker') or query == params:
                return items
            params = query

    def _find(self, kind, path, key, name_or_id):
        """The resource with this ID, or the only one with this name."""
        missing = None
        if is_uuid(name_or_id):
            try:
                return self._get('%s/%s' % (path, name_or_id))[key]
            except NotFound as e:
                missing = e
        found = self._list(path, key + 's', {'name': name_or_id})
        if len(found) == 1:
            return found[0]
        if not found:
            # The API's own answer for an ID.
            raise missing or NotFound(404, [{
                'detail': 'No %s with name or ID %s.' % (kind, name_or_id)}])
        raise ClientError('%d %ss are named %s; give the ID of one: %s.' % (
            len(found), kind, name_or_id,
            ', '.join(item['id'] for item in found)))

    # ---- device templates ---------------------------------------------

    def list_templates(self, limit=None, **filters):
        return self._list('/device_templates', 'device_templates', filters,
                          limit)

    def get_template(self, template_id):
        return self._get('/device_templates/%s' % template_id)[
            'device_template']

    def find_template(self, name_or_id):
        return self._find('device template', '/device_templates',
                          'device_template', name_or_id)

    def create_template(self, **values):
        return self.request('POST', '/device_templates',
                            {'device_template': values})[1][
                                'device_template']

    def update_template(self, template_id, **values):
        return self.request('PATCH', '/device_templates/%s' % template_id,
                            {'device_template': values})[1][
                                'device_template']

    def delete_template(self, template_id):
        self.request('DELETE', '/device_templates/%s' % template_id)

    # ---- devices --------------------------------------------------------

    def list_devices(self, limit=None, **filters):
        return self._list('/devices', 'devices', filters, limit)

    def get_device(self, device_id):
        return self._get('/devices/%s' % device_id)['device']

    def find_device(self, name_or_id):
        return self._find('device', '/devices', 'device', name_or_id)

    def create_device(self, **values):
        """Returns the answer: {"device": ..., "operation_id": ...}."""
        return self.request('POST', '/devices', {'device': values})[1]

    def update_device(self, device_id, **values):
        """Returns the answer: {"device"} (and "operation_id" when the
        kwargs changed)."""
        return self.request('PATCH', '/devices/%s' % device_id,
                            {'device': values})[1]

    def delete_device(self, device_id, force=False, cascade=False,
                      on_failure=None):
        """Returns the answer: {"device", "operation_id"} (and
        "operation_ids" for a cascade)."""
        params = {'force': 'true' if force else None,
                  'cascade': 'true' if cascade else None,
                  'on_failure': on_failure}
        return self.request('DELETE', '/devices/%s' % device_id,
                            params=params)[1]

    def device_action(self, device_id, action, params=None,
                      on_failure=None):
        """Start one of the device driver's actions (or "reconfigure");
        returns the answer: {"device", "operation_id"}."""
        body = {'action': action}
        if params:
            body['params'] = params
        if on_failure:
            body['on_failure'] = on_failure
        return self.request('POST', '/devices/%s/action' % device_id,
                            body)[1]

    def list_device_events(self, device_id, limit=None, sort_dir=None):
        return self._list('/devices/%s/events' % device_id, 'events',
                          {'sort_dir': sort_dir}, limit)

    def get_device_metrics(self, device_id):
        return self._get('/devices/%s/metrics' % device_id)['metrics']

    # ---- alarms ---------------------------------------------------------

    def list_alarms(self, limit=None, **filters):
        return self._list('/alarms', 'alarms', filters, limit)

    def get_alarm(self, alarm_id):
        return self._get('/alarms/%s' % alarm_id)['alarm']

    def acknowledge_alarm(self, alarm_id):
        return self.request('POST', '/alarms/%s/action' % alarm_id,
                            {'action': 'acknowledge'})[1]['alarm']

    # ---- service instances ------------------------------------------

    def list_services(self, limit=None, **filters):
        return self._list('/service_instances', 'service_instances',
                          filters, limit)

    def get_service(self, service_id):
        return self._get('/service_instances/%s' % service_id)[
            'service_instance']

    def find_service(self, name_or_id):
        return self._find('service instance', '/service_instances',
                          'service_instance', name_or_id)

    def create_service(self, **values):
        """Returns the answer: {"service_instance"} and, when operations
        started, "operation_id" and "operation_ids"."""
        return self.request('POST', '/service_instances',
                            {'service_instance': values})[1]

    def update_service(self, service_id, **values):
        return self.request('PATCH', '/service_instances/%s' % service_id,
                            {'service_instance': values})[1][
                                'service_instance']

    def delete_service(self, service_id):
        """Returns the answer ({"service_instance", "operation_id",
        "operation_ids"}), or None when the service is gone at once."""
        return self.request('DELETE',
                            '/service_instances/%s' % service_id)[1]

    # ---- operations -----------------------------------------------------

    def list_operations(self, limit=None, **filters):
        return self._list('/operations', 'operations', filters, limit)

    def get_operation(self, operation_id):
        return self._get('/operations/%s' % operation_id)['operation']

    def operation_action(self, operation_id, action):
        return self.request('POST', '/operations/%s/action' % operation_id,
                            {'action': action})[1]['operation']
