"""oslo.messaging set-up shared by the API (client) and the conductor
(server). One transport per process: the in-process ``fake://`` transport
of the all-in-one only links a client and a server that share it."""

import threading

import oslo_messaging as messaging

from servicevm.common import context as svm_context

_TRANSPORT = None
_LOCK = threading.Lock()


class RequestContextSerializer(messaging.Serializer):
    """Sends the request context as a dict and rebuilds it on arrival."""

    def serialize_entity(self, context, entity):
        return entity

    def deserialize_entity(self, context, entity):
        return entity

    def serialize_context(self, context):
        return context.to_dict()

    def deserialize_context(self, context):
        return svm_context.RequestContext.from_dict(context)


def get_transport(conf):
    global _TRANSPORT
    with _LOCK:
        if _TRANSPORT is None:
            _TRANSPORT = messaging.get_rpc_transport(conf)
        return _TRANSPORT


def get_client(conf, target, version_cap=None):
    return messaging.get_rpc_client(
        get_transport(conf), target, version_cap=version_cap,
        serializer=RequestContextSerializer())


def get_server(conf, target, endpoints):
    return messaging.get_rpc_server(
        get_transport(conf), target, endpoints, executor='threading',
        serializer=RequestContextSerializer(),
        access_policy=messaging.DefaultRPCAccessPolicy)


def cleanup():
    global _TRANSPORT
    with _LOCK:
        if _TRANSPORT is not None:
            _TRANSPORT.cleanup()
        _TRANSPORT = None
