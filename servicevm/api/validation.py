"""Validation of request bodies and query strings against JSON Schemas,
with messages that name the field and say what is expected."""

import functools

import jsonschema

from servicevm.api import schemas
from servicevm.common import exceptions

_TYPE_NAMES = {'string': 'a string', 'integer': 'an integer',
               'object': 'an object', 'array': 'a list',
               'boolean': 'true or false', 'null': 'null',
               'number': 'a number'}


def _json_type(value):
    for name, types in (('null', type(None)), ('boolean', bool),
                        ('integer', int), ('number', float),
                        ('string', str), ('array', list),
                        ('object', dict)):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _path(parts):
    return '.'.join(str(p) for p in parts)


def _describe(error, what='the body'):
    """(field, message) for one jsonschema error."""
    where = _path(error.absolute_path)
    field = where or None
    label = where or what
    validator = error.validator
    schema = error.schema
    if validator == 'additionalProperties':
        allowed = sorted(schema.get('properties', {}))
        extra = sorted(set(error.instance) - set(allowed))
        name = extra[0] if extra else '?'
        field = _path(list(error.absolute_path) + [name])
        return field, ('%r is not a field that can be given in %s; the '
                       'fields allowed are: %s.'
                       % (name, label, ', '.join(allowed)))
    if validator == 'required':
        missing = [r for r in error.validator_value
                   if r not in error.instance]
        name = missing[0] if missing else '?'
        return (_path(list(error.absolute_path) + [name]),
                '%r is required in %s.' % (name, label))
    if validator == 'type':
        expected = error.validator_value
        if isinstance(expected, str):
            expected = [expected]
        return field, '%s must be %s, not %s.' % (
            label, ' or '.join(_TYPE_NAMES.get(t, t) for t in expected),
            _TYPE_NAMES.get(_json_type(error.instance),
                            _json_type(error.instance)))
    if validator == 'maxLength':
        return field, '%s is longer than %d characters.' % (
            label, error.validator_value)
    if validator == 'minLength':
        return field, '%s must not be empty.' % label
    if validator == 'pattern':
        if error.validator_value == schemas.UUID_PATTERN:
            return field, '%s must be a UUID, not %r.' % (label,
                                                          error.instance)
        return field, '%s has characters that are not allowed: %r.' % (
            label, error.instance[:80])
    if validator == 'enum':
        return field, '%s must be one of %s, not %r.' % (
            label, ', '.join(str(v) for v in error.validator_value),
            error.instance)
    if validator in ('maxItems', 'maxProperties'):
        return field, '%s has more than %d entries.' % (
            label, error.validator_value)
    if validator == 'minProperties':
        return field, '%s must set at least one field.' % label
    if validator == 'uniqueItems':
        return field, '%s has duplicate entries.' % label
    if validator in ('minimum', 'maximum'):
        return field, '%s must be %s %s.' % (
            label, 'at least' if validator == 'minimum' else 'at most',
            error.validator_value)
    if validator == 'propertyNames':
        return field, 'a key in %s is empty or longer than 255 ' \
                      'characters.' % label
    return field, '%s is invalid: %s' % (label, error.message[:200])


@functools.lru_cache(maxsize=None)
def _validator(schema_id):
    schema = _SCHEMAS[schema_id]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


_SCHEMAS = {}


def validate(schema, data, what='the body'):
    """Raise ValidationError (400) naming the first wrong field."""
    key = id(schema)
    _SCHEMAS.setdefault(key, schema)
    validator = _validator(key)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    # anyOf: report against the branch that fits the value's type.
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    field, message = _describe(error, what)
    raise exceptions.ValidationError(reason=message, field=field)
