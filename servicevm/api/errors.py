"""The one error shape of the API (OpenStack API-SIG "errors" guideline):

    {"errors": [{"status": 404, "code": "servicevm.device_not_found",
                 "title": "Not Found", "detail": "Device ... not found.",
                 "request_id": "req-...", "field": "template_id"}]}

``field`` is there when one input field was wrong.
"""

from http import HTTPStatus
import json

import webob

from servicevm.common import exceptions


def error_body(status, detail, code=None, title=None, request_id=None,
               field=None):
    status = int(status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = 'Error'
    error = {'status': status,
             'code': code or 'servicevm.%s' % phrase.lower().replace(' ',
                                                                     '_'),
             'title': title or phrase,
             'detail': detail,
             'request_id': request_id}
    if field:
        error['field'] = field
    return {'errors': [error]}


def error_response(status, detail, request_id=None, headers=None, **kwargs):
    body = error_body(status, detail, request_id=request_id, **kwargs)
    response = webob.Response(
        status=int(status), content_type='application/json',
        charset='UTF-8', body=json.dumps(body).encode('utf-8'))
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_exception(exc, request_id=None):
    """An error response for a ServiceVMException or a webob HTTP error."""
    if isinstance(exc, exceptions.ServiceVMException):
        return error_response(exc.code, exc.message, request_id=request_id,
                              code=exc.error_code, field=exc.field)
    status = getattr(exc, 'status_int', 500)
    detail = getattr(exc, 'detail', None) or getattr(exc, 'explanation',
                                                     None) or str(exc)
    headers = {}
    allow = getattr(exc, 'allow', None) or (
        exc.headers.get('Allow') if hasattr(exc, 'headers') else None)
    if allow:
        headers['Allow'] = allow if isinstance(allow, str) else ', '.join(
            allow)
    if status == 404:
        detail = 'No such resource or URL; see GET / for the API versions.'
    elif status == 405:
        detail = 'This method is not allowed on this URL.'
    return error_response(status, detail, request_id=request_id,
                          headers=headers)
