"""Keystone trusts: how the conductor acts in the requesting user's
project after the user's token expired.

When a device is created through a Keystone-authenticated request, the
API asks Keystone, with the user's own token, for a trust from the user to
servicevm's user (``[trustee]``), on the user's project, with the user's
roles and impersonation. The trust's id is kept with the device (never
shown by the API); the Nova and Heat drivers authenticate as ``[trustee]``
with it. Without a token (noauth) or with ``[vim] credentials = service``
no trust is made and the drivers use their own credentials.
"""

import contextlib
import threading

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from oslo_log import log as logging

from servicevm.common import exceptions

LOG = logging.getLogger(__name__)

_TRUSTEE = {}
_LOCK = threading.Lock()


class TrustError(exceptions.ServiceVMException):
    code = 503
    error_code = 'servicevm.trust_failed'
    msg_fmt = ('Keystone did not give servicevm a trust on project '
               '%(project)s: %(reason)s. Try again later, or ask the '
               'operator to check the [trustee] settings.')


def wanted(conf, context):
    return (conf.auth_strategy == 'keystone' and
            conf.vim.credentials == 'trust' and
            bool(getattr(context, 'auth_token', None)))


def _trustee(conf):
    """(session, user id, auth url) of servicevm's trustee user."""
    with _LOCK:
        if 'session' not in _TRUSTEE:
            auth = ks_loading.load_auth_from_conf_options(conf, 'trustee')
            if auth is None:
                raise TrustError(project='?', reason='[trustee] has no '
                                                     'auth_type')
            session = ks_loading.load_session_from_conf_options(
                conf, 'trustee', auth=auth)
            _TRUSTEE.update(session=session, auth_url=conf.trustee.auth_url)
        session = _TRUSTEE['session']
    if 'user_id' not in _TRUSTEE:
        _TRUSTEE['user_id'] = session.get_user_id()
    return session, _TRUSTEE['user_id'], _TRUSTEE['auth_url']


def create_trust(conf, context):
    """A trust from the caller to servicevm on the caller's project;
    returns its id, or None when none is wanted."""
    if not wanted(conf, context):
        return None
    try:
        trustee_session, trustee_id, auth_url = _trustee(conf)
        user = ks_session.Session(
            auth=v3.Token(auth_url=auth_url, token=context.auth_token,
                          project_id=context.project_id),
            verify=trustee_session.verify)
        roles = [{'name': r} for r in (context.roles or [])]
        reply = user.post('/OS-TRUST/trusts', endpoint_filter={
            'service_type': 'identity', 'interface': 'public',
            'version': (3, 0)}, json={'trust': {
                'trustor_user_id': context.user_id,
                'trustee_user_id': trustee_id,
                'project_id': context.project_id,
                'impersonation': True,
                # Heat makes its own trust from ours for a stack's
                # deferred work.
                'allow_redelegation': True,
                'roles': roles}})
        trust_id = reply.json()['trust']['id']
    except ks_exc.ClientException as e:
        raise TrustError(project=context.project_id, reason=str(e)) from e
    LOG.info('Trust %s from user %s on project %s made', trust_id,
             context.user_id, context.project_id)
    return trust_id


# Requests of one user in one project that find no trust wait for the
# one that makes it (in this process): without that, a burst of first
# requests made a trust each (and the conductor a token for each).
_MAKING = [threading.Lock() for _ in range(64)]


@contextlib.contextmanager
def trust_for(conf, context, dbapi):
    """Yields the trust for a device the caller creates in its project:
    the trust of another of its devices there, else a new one (deleted
    again if the body of the ``with`` fails); None when none is wanted.
    The body should commit the device that holds the trust: a new trust
    is made under a lock that other requests of the same user and project
    wait on, which is held until the body ends, so that they find it."""
    if not wanted(conf, context):
        yield None
        return
    user, project = context.user_id, context.project_id
    trust_id = dbapi.device_trust_for(context, user, project)
    if trust_id:
        yield trust_id
        return
    with _MAKING[hash((user, project)) % len(_MAKING)]:
        trust_id = dbapi.device_trust_for(context, user, project)
        if trust_id:        # made meanwhile by a request we waited for
            yield trust_id
            return
        trust_id = create_trust(conf, context)
        try:
            yield trust_id
        except BaseException:
            delete_trust(conf, trust_id)
            raise


def release_trust(conf, context, dbapi, trust_id):
    """A device let go of ``trust_id``: deleted once no device holds
    it."""
    if trust_id and not dbapi.trust_in_use(context, trust_id):
        delete_trust(conf, trust_id)


def delete_trust(conf, trust_id):
    """Best effort: the trust of a deleted device (its trustor or an
    admin may delete it; the [nova] service credentials are tried)."""
    if not trust_id:
        return
    try:
        auth = ks_loading.load_auth_from_conf_options(conf, 'nova')
        if auth is None:
            return
        session = ks_loading.load_session_from_conf_options(
            conf, 'nova', auth=auth)
        reply = session.delete('/OS-TRUST/trusts/%s' % trust_id,
                               endpoint_filter={
                                   'service_type': 'identity',
                                   'interface': 'public',
                                   'version': (3, 0)}, raise_exc=False)
        if reply.status_code not in (204, 404):
            LOG.warning('Trust %s of a deleted device not deleted: Keystone '
                        'answered %s', trust_id, reply.status_code)
        else:
            LOG.info('Trust %s deleted (no device holds it)', trust_id)
    except Exception as e:  # the trust is useless without its device
        LOG.warning('Trust %s of a deleted device not deleted: %s',
                    trust_id, e)
