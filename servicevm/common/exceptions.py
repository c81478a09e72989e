"""servicevm exceptions. Each carries the HTTP status the API answers with,
a stable machine-readable code and, where one field was wrong, its name."""

from http import HTTPStatus


class ServiceVMException(Exception):
    """Base of every servicevm error.

    Subclasses set ``code`` (HTTP status) and ``msg_fmt``; the formatted
    message is what a person reads, so it says what was wrong and, where it
    helps, what to do.
    """
    code = HTTPStatus.INTERNAL_SERVER_ERROR
    error_code = 'servicevm.internal_error'
    msg_fmt = 'An unexpected error occurred.'

    def __init__(self, message=None, field=None, **kwargs):
        self.kwargs = kwargs
        self.field = field
        if message is None:
            message = self.msg_fmt % kwargs
        self.message = message
        super().__init__(message)

    @property
    def title(self):
        return HTTPStatus(self.code).phrase


class Invalid(ServiceVMException):
    code = HTTPStatus.BAD_REQUEST
    error_code = 'servicevm.invalid'
    msg_fmt = 'Invalid input: %(reason)s'


class InvalidJSON(Invalid):
    error_code = 'servicevm.malformed_json'
    msg_fmt = 'The request body is not valid JSON: %(reason)s'


class ValidationError(Invalid):
    error_code = 'servicevm.validation_error'
    msg_fmt = '%(reason)s'


class InvalidParameter(Invalid):
    error_code = 'servicevm.invalid_parameter'
    msg_fmt = '%(reason)s'


class NotAuthenticated(ServiceVMException):
    code = HTTPStatus.UNAUTHORIZED
    error_code = 'servicevm.not_authenticated'
    msg_fmt = 'Authentication is required.'


class Forbidden(ServiceVMException):
    code = HTTPStatus.FORBIDDEN
    error_code = 'servicevm.forbidden'
    msg_fmt = 'Policy does not allow %(action)s to be performed.'


class NotFound(ServiceVMException):
    code = HTTPStatus.NOT_FOUND
    error_code = 'servicevm.not_found'
    msg_fmt = 'Resource could not be found.'


class DeviceTemplateNotFound(NotFound):
    error_code = 'servicevm.device_template_not_found'
    msg_fmt = 'Device template %(id)s could not be found.'


class DeviceNotFound(NotFound):
    error_code = 'servicevm.device_not_found'
    msg_fmt = 'Device %(id)s could not be found.'


class ServiceInstanceNotFound(NotFound):
    error_code = 'servicevm.service_instance_not_found'
    msg_fmt = 'Service instance %(id)s could not be found.'


class AlarmNotFound(NotFound):
    error_code = 'servicevm.alarm_not_found'
    msg_fmt = 'Alarm %(id)s could not be found.'


class OperationNotFound(NotFound):
    error_code = 'servicevm.operation_not_found'
    msg_fmt = 'Operation %(id)s could not be found.'


class Conflict(ServiceVMException):
    code = HTTPStatus.CONFLICT
    error_code = 'servicevm.conflict'
    msg_fmt = 'Conflict: %(reason)s'


class InvalidState(Conflict):
    error_code = 'servicevm.invalid_state'
    msg_fmt = ('%(resource)s %(id)s is %(current)s; %(action)s needs it to '
               'be one of %(allowed)s.')


class TemplateInUse(Conflict):
    error_code = 'servicevm.template_in_use'
    msg_fmt = ('Device template %(id)s is used by %(count)d device(s) '
               '(e.g. %(example)s); delete those devices first.')


class DeviceInUse(Conflict):
    error_code = 'servicevm.device_in_use'
    msg_fmt = ('Device %(id)s is bound to service instance(s) %(services)s; '
               'delete those service instances first, or delete the '
               'device with ?cascade=true.')


class DeviceBusy(Conflict):
    error_code = 'servicevm.device_busy'
    msg_fmt = ('Device %(id)s is busy with operation %(operation_id)s '
               '(%(kind)s); wait for it to end.')


class DriverNotEnabled(Invalid):
    error_code = 'servicevm.driver_not_enabled'
    msg_fmt = ('%(kind)s driver %(name)r is not enabled here; enabled: '
               '%(enabled)s.')


class RequestEntityTooLarge(ServiceVMException):
    code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    error_code = 'servicevm.request_too_large'
    msg_fmt = ('The request body is %(size)s bytes; the limit is %(limit)d '
               'bytes.')


class NotAcceptable(ServiceVMException):
    code = HTTPStatus.NOT_ACCEPTABLE
    error_code = 'servicevm.not_acceptable'
    msg_fmt = '%(reason)s'


class UnsupportedMediaType(ServiceVMException):
    code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    error_code = 'servicevm.unsupported_media_type'
    msg_fmt = ('The request body must be JSON (Content-Type: '
               'application/json), not %(content_type)s.')


class DriverError(ServiceVMException):
    error_code = 'servicevm.driver_error'
    msg_fmt = 'Driver %(driver)s failed to %(action)s: %(reason)s'
    #: Whether trying the same call again may succeed.
    retryable = False


class DriverTransientError(DriverError):
    """A driver call failed for a reason that may pass (the VIM is
    unreachable or busy): the conductor retries it."""
    retryable = True


class Interrupted(ServiceVMException):
    """A step was interrupted (its operation was cancelled, paused for
    rollback, or its conductor lost the operation's lease)."""
    error_code = 'servicevm.interrupted'
    msg_fmt = 'Interrupted: %(reason)s'
